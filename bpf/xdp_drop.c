// SPDX-License-Identifier: GPL-2.0
/* Drops every packet and counts it (xdp_stats[XDP_DROP]). */
#include "xdp_stats.h"

SEC("xdp")
int xdp_drop(struct xdp_md *ctx)
{
	return count(ctx, XDP_DROP);
}

char LICENSE[] SEC("license") = "GPL";
