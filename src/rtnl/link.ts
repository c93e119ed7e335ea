/**
 * RTM_NEWLINK/RTM_DELLINK decoding into the link state the daemon tracks, and the RTM_GETLINK requests that ask
 * for it. Pure: no I/O, and malformed input gives an error value, never an exception.
 */
import { err, ok, type Result } from '../result.js'
import { AttributeDecoder, AttributeEncoder, NetlinkDecodeError, getS32, getU32 } from '../netlink/attributes.js'
import { NLMSG_HDRLEN } from '../netlink/constants.js'
import type { NetlinkMessage } from '../netlink/message.js'
import {
  AF_UNSPEC,
  IFF_RUNNING,
  IFF_UP,
  IFINFOMSG_LEN,
  IFLA_ADDRESS,
  IFLA_ALT_IFNAME,
  IFLA_EXT_MASK,
  IFLA_IFNAME,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  IFLA_MASTER,
  IFLA_MTU,
  IFLA_OPERSTATE,
  IFLA_PROP_LIST,
  IFLA_XDP,
  RTEXT_FILTER_SKIP_STATS,
  RTM_DELLINK,
  RTM_NEWLINK,
} from './constants.js'
import { encodeIfinfomsg, ifindexProblem, readXdp, type XdpState } from './xdp.js'

/** RFC 2863 operational state (IFLA_OPERSTATE, IF_OPER_* in include/uapi/linux/if.h), by name. */
export type OperState = 'unknown' | 'notpresent' | 'down' | 'lowerlayerdown' | 'testing' | 'dormant' | 'up'

// Indexed by IF_OPER_* value.
const OPER_STATES: readonly OperState[] = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up']

export interface LinkState {
  ifindex: number
  name: string
  /** ifi_flags (IFF_*). */
  flags: number
  /** IFF_UP: administratively up. */
  up: boolean
  /** IFF_RUNNING: operationally up (RFC 2863 OPER_UP, dormant excluded). */
  running: boolean
  operState: OperState
  /** IFLA_INFO_KIND ('veth', 'bridge', ...): null for a device without rtnl_link_ops, i.e. a physical one. */
  kind: string | null
  /** IFLA_ALT_IFNAME entries of IFLA_PROP_LIST, in kernel order. */
  altNames: string[]
  /** IFLA_MASTER: ifindex of the bridge/bond this link is enslaved to. */
  master: number | null
  xdp: XdpState | null
  mtu?: number
  /** IFLA_ADDRESS as lower-case colon-separated hex ('02:00:00:00:00:01'); absent for links without one. */
  address?: string
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/** '02:00:00:00:00:01' (non-empty `b`); once per link message, so without an array per byte. */
function hexAddress(b: Buffer): string {
  let s = HEX[b[0]!]!
  for (let i = 1; i < b.length; i++) s += `:${HEX[b[i]!]!}`
  return s
}

/** The IFLA_INFO_KIND of an IFLA_LINKINFO nest, or null. */
function readKind(d: AttributeDecoder): string | null {
  let kind: string | null = null
  while (d.next()) if (d.type() === IFLA_INFO_KIND) kind = d.string()
  return kind
}

/** The IFLA_ALT_IFNAME entries of an IFLA_PROP_LIST nest. */
function readAltNames(d: AttributeDecoder): string[] {
  const names: string[] = []
  while (d.next()) if (d.type() === IFLA_ALT_IFNAME) names.push(d.string())
  return names
}

/**
 * Decodes an RTM_NEWLINK or RTM_DELLINK (struct ifinfomsg, then IFLA_* attributes as rtnl_fill_ifinfo() in
 * net/core/rtnetlink.c writes them). Only family AF_UNSPEC messages describe a whole link: the bridge
 * (br_ifinfo_notify(), AF_BRIDGE) and IPv6 (inet6_ifinfo_notify(), AF_INET6) reuse these types for partial
 * views without IFLA_XDP or IFLA_LINKINFO, which would read as "no program, no kind", so they are refused.
 * Error offsets count from the start of the message (its nlmsghdr), like NLMSGERR_ATTR_OFFS.
 */
export function decodeLink(m: NetlinkMessage): Result<LinkState, NetlinkDecodeError> {
  if (m.type !== RTM_NEWLINK && m.type !== RTM_DELLINK) {
    return err(new NetlinkDecodeError(`message type ${m.type} is not RTM_NEWLINK or RTM_DELLINK`))
  }
  const p = m.payload
  if (p.length < IFINFOMSG_LEN) {
    return err(new NetlinkDecodeError(`payload of ${p.length} bytes is shorter than struct ifinfomsg`, NLMSG_HDRLEN))
  }
  const family = p.readUInt8(0)
  if (family !== AF_UNSPEC) {
    return err(new NetlinkDecodeError(`ifi_family ${family} is not AF_UNSPEC: a partial link view`, NLMSG_HDRLEN))
  }
  const ifindex = getS32(p, 4)
  const flags = getU32(p, 8)
  let name: string | undefined
  let operState: OperState = 'unknown'
  let kind: string | null = null
  let altNames: string[] = []
  let master: number | null = null
  let xdp: XdpState | null = null
  let mtu: number | undefined
  let address: string | undefined

  const d = new AttributeDecoder(p.subarray(IFINFOMSG_LEN), NLMSG_HDRLEN + IFINFOMSG_LEN)
  while (d.next()) {
    switch (d.type()) {
      case IFLA_IFNAME:
        name = d.string()
        break
      case IFLA_OPERSTATE:
        // A value past IF_OPER_UP would be a new RFC 2863 state this code does not know: report it as unknown.
        operState = OPER_STATES[d.u8()] ?? 'unknown'
        break
      case IFLA_LINKINFO:
        kind = d.nested(readKind) ?? null
        break
      case IFLA_PROP_LIST:
        altNames = d.nested(readAltNames) ?? []
        break
      case IFLA_MASTER:
        master = d.u32()
        break
      case IFLA_XDP:
        xdp = d.nested(readXdp) ?? null
        break
      case IFLA_MTU:
        mtu = d.u32()
        break
      case IFLA_ADDRESS: {
        const a = d.bytes()
        address = a.length > 0 ? hexAddress(a) : undefined
        break
      }
    }
  }
  const e = d.err()
  if (e) return err(e)
  // rtnl_fill_ifinfo() always puts IFLA_IFNAME; without it the message cannot be matched against config.
  if (name === undefined) return err(new NetlinkDecodeError(`link ${ifindex} has no IFLA_IFNAME`, NLMSG_HDRLEN))
  const link: LinkState = {
    ifindex,
    name,
    flags,
    up: (flags & IFF_UP) !== 0,
    running: (flags & IFF_RUNNING) !== 0,
    operState,
    kind,
    altNames,
    master,
    xdp,
  }
  if (mtu !== undefined) link.mtu = mtu
  if (address !== undefined) link.address = address
  return ok(link)
}

/**
 * IFLA_EXT_MASK for our requests: RTEXT_FILTER_SKIP_STATS drops the counters (IFLA_STATS, IFLA_STATS64; a quarter
 * of a veth's RTM_NEWLINK on 6.18) that the daemon never reads. iproute2 asks for RTEXT_FILTER_VF as well, to print SR-IOV VFs;
 * leaving it out keeps IFLA_VFINFO_LIST, which grows with the VF count, out of every message of a PF.
 */
const extMask = (): AttributeEncoder => new AttributeEncoder().u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)

/**
 * Payload of an RTM_GETLINK dump (send with NLM_F_REQUEST|NLM_F_DUMP). Under NETLINK_GET_STRICT_CHK the kernel
 * requires a zeroed ifinfomsg and accepts IFLA_EXT_MASK (rtnl_valid_dump_ifinfo_req() in net/core/rtnetlink.c).
 */
export function encodeGetLinkDump(): Buffer {
  return Buffer.concat([encodeIfinfomsg(0), extMask().encode()])
}

/** Payload of an RTM_GETLINK for one link, answered by one RTM_NEWLINK or ENODEV; an error for an index no link has. */
export function encodeGetLink(ifindex: number): Result<Buffer, RangeError> {
  const bad = ifindexProblem(ifindex)
  if (bad) return err(new RangeError(`RTM_GETLINK: ${bad}`))
  return ok(Buffer.concat([encodeIfinfomsg(ifindex), extMask().encode()]))
}
