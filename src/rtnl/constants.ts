/**
 * rtnetlink link constants, spelled as in the kernel's uapi headers: include/uapi/linux/rtnetlink.h (message types,
 * RTEXT_FILTER_*), include/uapi/linux/if_link.h (IFLA_*, XDP_*), include/uapi/linux/if.h (IFF_*, IF_OPER_*).
 */

// include/uapi/linux/socket.h
export const AF_UNSPEC = 0
export const AF_BRIDGE = 7

// include/uapi/linux/rtnetlink.h: the RTM_*LINK block starts at RTM_BASE (16)
export const RTM_NEWLINK = 16
export const RTM_DELLINK = 17
export const RTM_GETLINK = 18
export const RTM_SETLINK = 19

/** sizeof(struct ifinfomsg): u8 family, u8 pad, u16 type, s32 index, u32 flags, u32 change. */
export const IFINFOMSG_LEN = 16

// include/uapi/linux/rtnetlink.h: values of IFLA_EXT_MASK
export const RTEXT_FILTER_VF = 1 << 0
export const RTEXT_FILTER_BRVLAN = 1 << 1
export const RTEXT_FILTER_BRVLAN_COMPRESSED = 1 << 2
export const RTEXT_FILTER_SKIP_STATS = 1 << 3

// include/uapi/linux/if_link.h: enum of top-level link attributes
export const IFLA_UNSPEC = 0
export const IFLA_ADDRESS = 1
export const IFLA_BROADCAST = 2
export const IFLA_IFNAME = 3
export const IFLA_MTU = 4
export const IFLA_LINK = 5
export const IFLA_QDISC = 6
export const IFLA_STATS = 7
export const IFLA_COST = 8
export const IFLA_PRIORITY = 9
export const IFLA_MASTER = 10
export const IFLA_WIRELESS = 11
export const IFLA_PROTINFO = 12
export const IFLA_TXQLEN = 13
export const IFLA_MAP = 14
export const IFLA_WEIGHT = 15
export const IFLA_OPERSTATE = 16
export const IFLA_LINKMODE = 17
export const IFLA_LINKINFO = 18
export const IFLA_NET_NS_PID = 19
export const IFLA_IFALIAS = 20
export const IFLA_NUM_VF = 21
export const IFLA_VFINFO_LIST = 22
export const IFLA_STATS64 = 23
export const IFLA_VF_PORTS = 24
export const IFLA_PORT_SELF = 25
export const IFLA_AF_SPEC = 26
export const IFLA_GROUP = 27
export const IFLA_NET_NS_FD = 28
export const IFLA_EXT_MASK = 29
export const IFLA_PROMISCUITY = 30
export const IFLA_NUM_TX_QUEUES = 31
export const IFLA_NUM_RX_QUEUES = 32
export const IFLA_CARRIER = 33
export const IFLA_PHYS_PORT_ID = 34
export const IFLA_CARRIER_CHANGES = 35
export const IFLA_PHYS_SWITCH_ID = 36
export const IFLA_LINK_NETNSID = 37
export const IFLA_PHYS_PORT_NAME = 38
export const IFLA_PROTO_DOWN = 39
export const IFLA_GSO_MAX_SEGS = 40
export const IFLA_GSO_MAX_SIZE = 41
export const IFLA_PAD = 42
export const IFLA_XDP = 43
export const IFLA_EVENT = 44
export const IFLA_NEW_NETNSID = 45
export const IFLA_IF_NETNSID = 46
export const IFLA_TARGET_NETNSID = IFLA_IF_NETNSID
export const IFLA_CARRIER_UP_COUNT = 47
export const IFLA_CARRIER_DOWN_COUNT = 48
export const IFLA_NEW_IFINDEX = 49
export const IFLA_MIN_MTU = 50
export const IFLA_MAX_MTU = 51
export const IFLA_PROP_LIST = 52
export const IFLA_ALT_IFNAME = 53
export const IFLA_PERM_ADDRESS = 54
export const IFLA_PROTO_DOWN_REASON = 55
export const IFLA_PARENT_DEV_NAME = 56
export const IFLA_PARENT_DEV_BUS_NAME = 57
export const IFLA_GRO_MAX_SIZE = 58
export const IFLA_TSO_MAX_SIZE = 59
export const IFLA_TSO_MAX_SEGS = 60
export const IFLA_ALLMULTI = 61

// include/uapi/linux/if_link.h: attributes nested in IFLA_LINKINFO
export const IFLA_INFO_UNSPEC = 0
export const IFLA_INFO_KIND = 1
export const IFLA_INFO_DATA = 2
export const IFLA_INFO_XSTATS = 3
export const IFLA_INFO_SLAVE_KIND = 4
export const IFLA_INFO_SLAVE_DATA = 5

// include/uapi/linux/if_link.h: attributes nested in IFLA_XDP
export const IFLA_XDP_UNSPEC = 0
export const IFLA_XDP_FD = 1
export const IFLA_XDP_ATTACHED = 2
export const IFLA_XDP_FLAGS = 3
export const IFLA_XDP_PROG_ID = 4
export const IFLA_XDP_DRV_PROG_ID = 5
export const IFLA_XDP_SKB_PROG_ID = 6
export const IFLA_XDP_HW_PROG_ID = 7
export const IFLA_XDP_EXPECTED_FD = 8

// include/uapi/linux/if_link.h: IFLA_XDP_FLAGS, request side only
export const XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
export const XDP_FLAGS_SKB_MODE = 1 << 1
export const XDP_FLAGS_DRV_MODE = 1 << 2
export const XDP_FLAGS_HW_MODE = 1 << 3
export const XDP_FLAGS_REPLACE = 1 << 4
export const XDP_FLAGS_MODES = XDP_FLAGS_SKB_MODE | XDP_FLAGS_DRV_MODE | XDP_FLAGS_HW_MODE
export const XDP_FLAGS_MASK = XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_MODES | XDP_FLAGS_REPLACE

// include/uapi/linux/if_link.h: values of IFLA_XDP_ATTACHED, query side only ("stored into IFLA_XDP_ATTACHED on dump")
export const XDP_ATTACHED_NONE = 0
export const XDP_ATTACHED_DRV = 1
export const XDP_ATTACHED_SKB = 2
export const XDP_ATTACHED_HW = 3
export const XDP_ATTACHED_MULTI = 4

// include/uapi/linux/if.h: enum net_device_flags (ifi_flags)
export const IFF_UP = 1 << 0
export const IFF_BROADCAST = 1 << 1
export const IFF_DEBUG = 1 << 2
export const IFF_LOOPBACK = 1 << 3
export const IFF_POINTOPOINT = 1 << 4
export const IFF_NOTRAILERS = 1 << 5
export const IFF_RUNNING = 1 << 6
export const IFF_NOARP = 1 << 7
export const IFF_PROMISC = 1 << 8
export const IFF_ALLMULTI = 1 << 9
export const IFF_MASTER = 1 << 10
export const IFF_SLAVE = 1 << 11
export const IFF_MULTICAST = 1 << 12
export const IFF_PORTSEL = 1 << 13
export const IFF_AUTOMEDIA = 1 << 14
export const IFF_DYNAMIC = 1 << 15
export const IFF_LOWER_UP = 1 << 16
export const IFF_DORMANT = 1 << 17
export const IFF_ECHO = 1 << 18

// include/uapi/linux/if.h: RFC 2863 operational status, the value of IFLA_OPERSTATE
export const IF_OPER_UNKNOWN = 0
export const IF_OPER_NOTPRESENT = 1
export const IF_OPER_DOWN = 2
export const IF_OPER_LOWERLAYERDOWN = 3
export const IF_OPER_TESTING = 4
export const IF_OPER_DORMANT = 5
export const IF_OPER_UP = 6

// include/uapi/linux/if.h
export const IFNAMSIZ = 16
export const ALTIFNAMSIZ = 128
