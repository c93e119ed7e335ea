// SPDX-License-Identifier: GPL-2.0
/*
 * Passes every packet to the kernel stack and counts it (xdp_stats[XDP_PASS], and per link in xdp_link_stats:
 * xdp_stats.h).
 */
#include "xdp_stats.h"

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return count(ctx, XDP_PASS);
}

/* GPL: the kernel refuses gpl_only helpers to other licenses (kernel/bpf/verifier.c, check_helper_call). */
char LICENSE[] SEC("license") = "GPL";
