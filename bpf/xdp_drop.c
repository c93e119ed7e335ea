// SPDX-License-Identifier: GPL-2.0
/* Drops every packet and counts it (xdp_stats[XDP_DROP], and per link in xdp_link_stats: xdp_stats.h). */
#include "xdp_stats.h"

SEC("xdp")
int xdp_drop(struct xdp_md *ctx)
{
	return count(ctx, XDP_DROP);
}

char LICENSE[] SEC("license") = "GPL";
