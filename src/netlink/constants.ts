/**
 * Netlink framing constants, spelled as in include/uapi/linux/netlink.h (socket options from the same header,
 * SOL_NETLINK from include/linux/socket.h).
 */

// include/uapi/linux/netlink.h: protocol family of an AF_NETLINK socket
export const NETLINK_ROUTE = 0

// Control message types below NLMSG_MIN_TYPE; every protocol's own types start at 0x10.
export const NLMSG_NOOP = 0x1
export const NLMSG_ERROR = 0x2
export const NLMSG_DONE = 0x3
export const NLMSG_OVERRUN = 0x4
export const NLMSG_MIN_TYPE = 0x10

// nlmsg_flags common to every message
export const NLM_F_REQUEST = 0x01
export const NLM_F_MULTI = 0x02
export const NLM_F_ACK = 0x04
export const NLM_F_ECHO = 0x08
/** Set by nl_dump_check_consistent() when the object list changed during a dump (net/netlink/af_netlink.c). */
export const NLM_F_DUMP_INTR = 0x10
export const NLM_F_DUMP_FILTERED = 0x20

// Modifiers to GET requests. They share bits with the NEW modifiers below: the meaning depends on the type.
export const NLM_F_ROOT = 0x100
export const NLM_F_MATCH = 0x200
export const NLM_F_ATOMIC = 0x400
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH

// Modifiers to NEW requests
export const NLM_F_REPLACE = 0x100
export const NLM_F_EXCL = 0x200
export const NLM_F_CREATE = 0x400
export const NLM_F_APPEND = 0x800

// Flags of an NLMSG_ERROR reply (the same bits again, meaningful only on NLMSG_ERROR/NLMSG_DONE)
/** netlink_ack(): only the request's header was echoed, not its payload (NETLINK_CAP_ACK, or a success ACK). */
export const NLM_F_CAPPED = 0x100
/** netlink_ack(): extended-ack TLVs (struct nlattr) follow the echoed request. */
export const NLM_F_ACK_TLVS = 0x200

// enum nlmsgerr_attrs: extended-ack attributes after struct nlmsgerr
export const NLMSGERR_ATTR_UNUSED = 0
export const NLMSGERR_ATTR_MSG = 1
export const NLMSGERR_ATTR_OFFS = 2
export const NLMSGERR_ATTR_COOKIE = 3
export const NLMSGERR_ATTR_POLICY = 4
export const NLMSGERR_ATTR_MISS_TYPE = 5
export const NLMSGERR_ATTR_MISS_NEST = 6

// setsockopt(SOL_NETLINK, ...) options
export const SOL_NETLINK = 270
export const NETLINK_ADD_MEMBERSHIP = 1
export const NETLINK_DROP_MEMBERSHIP = 2
export const NETLINK_NO_ENOBUFS = 5
export const NETLINK_CAP_ACK = 10
export const NETLINK_EXT_ACK = 11
export const NETLINK_GET_STRICT_CHK = 12

// include/uapi/linux/rtnetlink.h: legacy bind() group mask for link notifications (RTNLGRP_LINK = 1)
export const RTMGRP_LINK = 1

// struct nlattr type bits. The kernel's NLA_TYPE_MASK is ~(NESTED|NET_BYTEORDER) on an int; only the low 16 bits
// exist in nla_type, so it is spelled here as the 16-bit mask it acts as.
export const NLA_F_NESTED = 1 << 15
export const NLA_F_NET_BYTEORDER = 1 << 14
export const NLA_TYPE_MASK = 0xffff & ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER)

export const NLMSG_ALIGNTO = 4
export const NLA_ALIGNTO = 4
/** sizeof(struct nlmsghdr): u32 len, u16 type, u16 flags, u32 seq, u32 pid. */
export const NLMSG_HDRLEN = 16
/** sizeof(struct nlattr): u16 len, u16 type. */
export const NLA_HDRLEN = 4
/** sizeof(struct nlmsgerr): s32 error followed by the echoed struct nlmsghdr. */
export const NLMSGERR_LEN = 4 + NLMSG_HDRLEN

/** NLMSG_ALIGN(len): messages in one datagram start on 4-byte boundaries. */
export const nlmsgAlign = (len: number): number => (len + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1)
/** NLA_ALIGN(len): attributes start on 4-byte boundaries; nla_len itself excludes the padding. */
export const nlaAlign = (len: number): number => (len + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1)
