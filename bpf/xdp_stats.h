/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The statistics every bundled program keeps: packets and bytes per XDP action, per link and per program, counted
 * per CPU. Two maps:
 *
 *   xdp_link_stats  BPF_MAP_TYPE_LRU_PERCPU_HASH (Linux 4.10)
 *                   key   struct xdp_link_key   {__u32 netns; __u32 ifindex;}                       8 bytes
 *                   value struct xdp_link_stats {struct xdp_stats_rec action[XDP_ACTION_MAX];}     80 bytes
 *                   One entry per link the program has seen a packet on: `netns` is the inode number of the link's
 *                   network namespace (ns.inum, the st_ino that fstat of /proc/PID/ns/net or of a file under
 *                   /run/netns reports, `net:[inode]` in readlink), `ifindex` the receiving device's. One loaded
 *                   program serves links in many namespaces, and ifindexes are per namespace (a pod's eth0 is
 *                   ifindex 2 in every pod), so the ifindex alone would add up unrelated links.
 *                   This is the stats-map convention xdplinkd reads for `status` and the metrics (docs/reference.md):
 *                   a foreign object that has a map of this name and these key/value sizes gets per-link counters.
 *   xdp_stats       BPF_MAP_TYPE_PERCPU_ARRAY (Linux 4.6), key the action, value struct xdp_stats_rec: the program's
 *                   totals over every link, as before per-link counting. Kept because it is exact whatever the LRU
 *                   map evicts, and because `bpftool map dump pinned <pin dir>/maps/xdp_stats` is what people read.
 *
 * Actions are enum xdp_action in <linux/bpf.h>: XDP_ABORTED=0, XDP_DROP=1, XDP_PASS=2, XDP_TX=3, XDP_REDIRECT=4.
 *
 * Per CPU so that the fast path needs no atomic operations: each CPU increments its own copy (as the kernel's
 * samples/bpf/xdp1 counts); a reader sums the copies (a per-CPU value is one slot per possible CPU, each rounded up to
 * 8 bytes: kernel/bpf/hashtab.c, htab_map_alloc; bpf_map_lookup_elem from userspace copies them all).
 *
 * When xdp_link_stats is full: it is an LRU map, so inserting the entry of a link not yet counted evicts the least
 * recently used entries (kernel/bpf/bpf_lru_list.c): a link that has gone, or carries no traffic, falls out first,
 * and an evicted link that sends again starts from zero (a counter reset, which Prometheus' rate() expects). An LRU
 * map is always preallocated (kernel/bpf/hashtab.c, htab_map_alloc_check refuses BPF_F_NO_PREALLOC for LRU maps):
 * XDP_LINK_STATS_MAX entries cost XDP_LINK_STATS_MAX * 80 bytes per possible CPU (4096: 320 KiB per CPU), plus about
 * 64 bytes of element header each. The common LRU keeps small per-CPU free lists, so on a machine with many CPUs it
 * may start evicting a little before the map is full. If an insertion fails all the same, the packet is counted in
 * xdp_stats only.
 *
 * The namespace: an XDP program's context (struct xdp_md) has the ingress ifindex but not the namespace. The kfunc
 * bpf_cast_to_kern_ctx (Linux 6.2, kernel/bpf/helpers.c) turns it into the kernel's struct xdp_buff, a trusted
 * pointer the verifier lets the program read through (PTR_TO_BTF_ID; loads through it are checked against the
 * kernel's BTF and become exception-handled PROBE_MEM loads, so the chain below cannot fault):
 *   xdp_buff->rxq (struct xdp_rxq_info)->dev (struct net_device)->nd_net.net (struct net)->ns.inum
 * For native XDP rxq is the driver's registered queue (xdp_rxq_info_reg), for generic XDP the device's
 * netdev_rx_queue.xdp_rxq (net/core/dev.c, netif_alloc_rx_queues registers it with the device), for
 * BPF_PROG_TEST_RUN the loopback device's queue of the caller's namespace (net/bpf/test_run.c). The structs are
 * declared below with only the members read and preserve_access_index, so libbpf relocates each offset against the
 * running kernel's BTF (CO-RE): no vmlinux.h is generated or checked in. Reading kernel memory this way needs
 * CAP_PERFMON (or CAP_SYS_ADMIN) at load time (kernel/bpf/verifier.c, check_ptr_to_btf_access: allow_ptr_leaks),
 * which the unit grants (systemd/xdplinkd.service).
 *
 * Kernels without the kfunc (before 6.2), or an object built with -DXDP_STATS_NO_NETNS: `netns` is 0 in every key,
 * so links with the same ifindex in two namespaces share one entry; xdplinkd then attributes an entry to a link only
 * where one link alone has that ifindex among those running the program (docs/reference.md). The kfunc is declared
 * __weak and its one use is behind the kernel's version, LINUX_KERNEL_VERSION >= 6.2.0 (a __kconfig extern libbpf
 * fills from uname at load time, in the read-only, frozen .kconfig map, so the verifier knows it as a constant and
 * drops the branch that cannot be taken). Before 6.2 libbpf finds no such kfunc and leaves the call unresolved in
 * that dead branch, which the verifier removes without checking it (libbpf >= 1.2 turns the call into an invalid
 * helper call for that, any kernel; libbpf 1.0/1.1 leave a kfunc call with id 0, which kernels >= 5.16 accept in
 * dead code: commit a5d827275241 "bpf: Be conservative while processing invalid kfunc calls"). Not
 * bpf_ksym_exists(bpf_cast_to_kern_ctx): where the kfunc exists that is an ld_imm64 of its BTF id, which the verifier
 * accepts only from Linux 6.4 on (commit 58aa2afbb1e6 "bpf: Allow ld_imm64 instruction to point to kfunc"), so 6.2
 * and 6.3 refused the object (measured on 6.18 only; 6.2/6.3 and the dead branch before 6.2 from the sources). A
 * kernel older than 6.2 with the kfunc backported gets `netns` 0 all the same. -DXDP_STATS_NO_NETNS leaves the kfunc
 * out altogether.
 *
 * bytes counts the linear part of the packet (data_end - data). A multi-buffer frame (SEC("xdp.frags"), Linux 5.18)
 * would need bpf_xdp_get_buff_len(); these programs are not frags-aware, so the kernel only gives them linear
 * frames and the count is exact.
 */
#ifndef XDPLINKD_XDP_STATS_H
#define XDPLINKD_XDP_STATS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

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

struct xdp_link_key {
	/* ns.inum of the receiving device's network namespace; 0 where the kernel cannot say (see above). */
	__u32 netns;
	__u32 ifindex;
};

struct xdp_link_stats {
	struct xdp_stats_rec action[XDP_ACTION_MAX];
};

#ifndef XDP_LINK_STATS_MAX
#define XDP_LINK_STATS_MAX 4096
#endif

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, XDP_LINK_STATS_MAX);
	__type(key, struct xdp_link_key);
	__type(value, struct xdp_link_stats);
} xdp_link_stats SEC(".maps");

#ifndef XDP_STATS_NO_NETNS
/*
 * The kernel's structs, only the members read; libbpf finds each member by name in the kernel's BTF (CO-RE), so
 * these declarations need not match the kernel's layout. The ___xdplinkd suffix is a CO-RE flavour (ignored when
 * matching names) that keeps them from clashing with a header that defines the real ones.
 */
struct ns_common___xdplinkd {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net___xdplinkd {
	struct ns_common___xdplinkd ns;
} __attribute__((preserve_access_index));

/* possible_net_t (include/net/net_namespace.h): a struct holding the pointer, empty without CONFIG_NET_NS. */
typedef struct {
	struct net___xdplinkd *net;
} possible_net_t___xdplinkd;

struct net_device___xdplinkd {
	possible_net_t___xdplinkd nd_net;
} __attribute__((preserve_access_index));

struct xdp_rxq_info___xdplinkd {
	struct net_device___xdplinkd *dev;
} __attribute__((preserve_access_index));

struct xdp_buff___xdplinkd {
	struct xdp_rxq_info___xdplinkd *rxq;
} __attribute__((preserve_access_index));

/* Linux 6.2, kernel/bpf/helpers.c; __weak: the object loads where the kernel lacks it (see above). */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;

/* The running kernel's version, as libbpf reads it (uname, with the distributions' fix-ups): a known constant. */
extern unsigned int LINUX_KERNEL_VERSION __kconfig;

/* <linux/version.h>'s encoding; <bpf/bpf_helpers.h> of some libbpf versions has it, others do not. */
#ifndef KERNEL_VERSION
#define KERNEL_VERSION(a, b, c) (((a) << 16) + ((b) << 8) + ((c) > 255 ? 255 : (c)))
#endif
#endif /* XDP_STATS_NO_NETNS */

/* The inode number of the network namespace the packet arrived in; 0 where the kernel cannot tell. */
static __always_inline __u32 xdp_netns(struct xdp_md *ctx)
{
#ifndef XDP_STATS_NO_NETNS
	if (LINUX_KERNEL_VERSION >= KERNEL_VERSION(6, 2, 0)) {
		struct xdp_buff___xdplinkd *xdp = bpf_cast_to_kern_ctx(ctx);
		struct net___xdplinkd *net;

		/* Without CONFIG_NET_NS there is one namespace and no pointer to it: 0 says as much. */
		if (!bpf_core_field_exists(xdp->rxq->dev->nd_net.net))
			return 0;
		/* rxq and dev are never NULL for a program attached to a device; a NULL read gives 0 (PROBE_MEM). */
		net = xdp->rxq->dev->nd_net.net;
		if (!net)
			return 0;
		return net->ns.inum;
	}
#endif
	return 0;
}

/* Adds one packet of `bytes` under `action` to the link's entry, made on the link's first packet. */
static __always_inline void count_link(struct xdp_md *ctx, __u32 action, __u64 bytes)
{
	struct xdp_link_key key = { .netns = xdp_netns(ctx), .ifindex = ctx->ingress_ifindex };
	struct xdp_link_stats *v;

	v = bpf_map_lookup_elem(&xdp_link_stats, &key);
	if (!v) {
		struct xdp_link_stats zero = {};

		/* BPF_NOEXIST: another CPU may have made it meanwhile (EEXIST), then the lookup finds theirs. On a per-CPU
		 * map a program's update writes this CPU's copy and zeroes the others of a new element
		 * (kernel/bpf/hashtab.c, pcpu_init_value). */
		bpf_map_update_elem(&xdp_link_stats, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&xdp_link_stats, &key);
		if (!v)
			return;
	}
	v->action[action].packets++;
	v->action[action].bytes += bytes;
}

/* Counts one packet under `action` and returns the action, so a program can end with `return count(ctx, XDP_X)`. */
static __always_inline __u32 count(struct xdp_md *ctx, __u32 action)
{
	struct xdp_stats_rec *rec;
	__u32 key = action;
	__u64 bytes = (__u64)(ctx->data_end - ctx->data);

	if (action >= XDP_ACTION_MAX)
		return XDP_ABORTED;
	rec = bpf_map_lookup_elem(&xdp_stats, &key);
	if (rec) {
		rec->packets++;
		rec->bytes += bytes;
	}
	count_link(ctx, action, bytes);
	return action;
}

#endif
