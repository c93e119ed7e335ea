/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The statistics map every bundled program shares: one slot per XDP action, counted per CPU.
 *
 * Keyed by the action (XDP_ABORTED=0, XDP_DROP=1, XDP_PASS=2, XDP_TX=3, XDP_REDIRECT=4, enum xdp_action in
 * <linux/bpf.h>) so that xdp_pass, xdp_drop and xdp_blocklist read the same way: `bpftool map dump pinned
 * <pin dir>/maps/xdp_stats` shows one value per CPU, and the sum over CPUs is the total.
 *
 * BPF_MAP_TYPE_PERCPU_ARRAY (Linux 4.6): each CPU increments its own copy, so no atomic operations are needed on
 * the fast path (the kernel's samples/bpf/xdp1 counts the same way).
 *
 * bytes counts the linear part of the packet (data_end - data). A multi-buffer frame (SEC("xdp.frags"), Linux 5.18)
 * would need bpf_xdp_get_buff_len(); these programs are not frags-aware, so the kernel only gives them linear
 * frames and the count is exact.
 */
#ifndef XDPLINKD_XDP_STATS_H
#define XDPLINKD_XDP_STATS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct xdp_stats_rec {
	__u64 packets;
	__u64 bytes;
};

/* One past the highest action in enum xdp_action (XDP_REDIRECT = 4). */
#define XDP_ACTION_MAX (XDP_REDIRECT + 1)

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDP_ACTION_MAX);
	__type(key, __u32);
	__type(value, struct xdp_stats_rec);
} xdp_stats SEC(".maps");

/* Counts one packet under `action` and returns the action, so a program can end with `return count(ctx, XDP_X)`. */
static __always_inline __u32 count(struct xdp_md *ctx, __u32 action)
{
	struct xdp_stats_rec *rec;
	__u32 key = action;

	if (action >= XDP_ACTION_MAX)
		return XDP_ABORTED;
	rec = bpf_map_lookup_elem(&xdp_stats, &key);
	if (!rec)
		return action;
	rec->packets++;
	rec->bytes += (__u64)(ctx->data_end - ctx->data);
	return action;
}

#endif
