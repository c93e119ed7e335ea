// SPDX-License-Identifier: GPL-2.0
/*
 * Drops IPv4 and IPv6 packets whose source address lies in a blocked prefix; passes everything else.
 *
 * Maps (pinned by xdplinkd under <bpffs>/<sha256-prefix>-xdp_blocklist/maps/, see src/programs/pins.ts):
 *   blocklist_v4  BPF_MAP_TYPE_LPM_TRIE  key {__u32 prefixlen; __u8 addr[4];}   value __u8
 *   blocklist_v6  BPF_MAP_TYPE_LPM_TRIE  key {__u32 prefixlen; __u8 addr[16];}  value __u8
 *   xdp_stats     BPF_MAP_TYPE_PERCPU_ARRAY, passed packets under key 2 (XDP_PASS), dropped under key 1 (XDP_DROP)
 *   xdp_link_stats  BPF_MAP_TYPE_LRU_PERCPU_HASH, the same per link: {netns inode, ifindex} -> per action (xdp_stats.h)
 *
 * An entry's presence blocks its prefix; the one-byte value is not read (the config writes 00, bpftool users 01).
 * prefixlen is a host-order __u32 (little-endian on x86-64 and arm64), the address is in network order
 * (struct bpf_lpm_trie_key in <linux/bpf.h>). Longest-prefix matching is the trie's (kernel/bpf/lpm_trie.c), so
 * an operator can block 192.168.1.0/24 and a /32 inside it without ordering concerns.
 *
 * Filling it: declare the prefixes in xdplinkd's config, which keeps the maps holding exactly them (added, updated,
 * removed at start-up and at every reload, typed by the maps' BTF; docs/maps.md):
 *   attach:
 *     - interfaces: [eth0]
 *       object: /usr/lib/xdplinkd/bpf/xdp_blocklist.o
 *       maps:
 *         blocklist_v4: [192.168.1.0/24, 198.51.100.7]
 *         blocklist_v6: { file: /etc/xdplinkd/blocked-v6.txt }   # one prefix a line
 *
 * By hand, the low-level way (as root; <dir> is the pin directory, e.g.
 * /sys/fs/bpf/xdplinkd/3f2a9c0d1b2e4f60-xdp_blocklist); a map whose contents the config declares is put back as
 * declared at the next reload:
 *   block 192.168.1.0/24:
 *     bpftool map update pinned <dir>/maps/blocklist_v4 key hex 18 00 00 00 c0 a8 01 00 value hex 01
 *   block 2001:db8::/32:
 *     bpftool map update pinned <dir>/maps/blocklist_v6 \
 *       key hex 20 00 00 00 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 00 value hex 01
 *   unblock / list:
 *     bpftool map delete pinned <dir>/maps/blocklist_v4 key hex 18 00 00 00 c0 a8 01 00
 *     bpftool map dump pinned <dir>/maps/blocklist_v4
 * The maps outlive daemon restarts and program reloads of the same object: xdplinkd reuses the pinned maps.
 *
 * Parsing: Ethernet, at most one 802.1Q or 802.1ad tag, then the fixed IPv4 or IPv6 header; every header is
 * bounds-checked against data_end before it is read (the verifier rejects the program otherwise). Anything that is
 * not IPv4/IPv6, or is too short to hold the source address, is passed: the stack is better placed to judge it.
 * With VLAN receive offload (rxvlan, the usual default) the NIC strips the outer tag before XDP runs, so the program
 * sees an untagged frame there; the tag check matters for drivers/veth without offload and for QinQ inner tags.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "xdp_stats.h"

/* <linux/if_vlan.h> keeps struct vlan_hdr kernel-internal; this is its layout (include/linux/if_vlan.h). */
struct vlan_hdr {
	__be16 h_vlan_TCI;
	__be16 h_vlan_encapsulated_proto;
};

struct lpm_key_v4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct lpm_key_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};

/*
 * LPM tries must be created with BPF_F_NO_PREALLOC (kernel/bpf/lpm_trie.c, trie_alloc: -EINVAL otherwise), Linux
 * 4.11. max_entries bounds memory; with no preallocation only the entries present cost anything, so the bound is
 * generous: a list of a million prefixes kept by a feed (declared through a list file) fits.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, struct lpm_key_v4);
	__type(value, __u8);
} blocklist_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 20);
	__type(key, struct lpm_key_v6);
	__type(value, __u8);
} blocklist_v6 SEC(".maps");

SEC("xdp")
int xdp_blocklist(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l3;
	__be16 proto;

	if ((void *)(eth + 1) > data_end)
		return count(ctx, XDP_PASS);
	proto = eth->h_proto;
	l3 = eth + 1;

	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vh = l3;

		if ((void *)(vh + 1) > data_end)
			return count(ctx, XDP_PASS);
		proto = vh->h_vlan_encapsulated_proto;
		l3 = vh + 1;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		struct lpm_key_v4 key = { .prefixlen = 32 };

		if ((void *)(ip + 1) > data_end)
			return count(ctx, XDP_PASS);
		__builtin_memcpy(key.addr, &ip->saddr, sizeof(key.addr));
		if (bpf_map_lookup_elem(&blocklist_v4, &key))
			return count(ctx, XDP_DROP);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		struct lpm_key_v6 key = { .prefixlen = 128 };

		if ((void *)(ip6 + 1) > data_end)
			return count(ctx, XDP_PASS);
		__builtin_memcpy(key.addr, &ip6->saddr, sizeof(key.addr));
		if (bpf_map_lookup_elem(&blocklist_v6, &key))
			return count(ctx, XDP_DROP);
	}
	return count(ctx, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
