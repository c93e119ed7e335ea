/**
 * IFLA_XDP, which means two different things in the two directions, so it has two unrelated types here:
 * - the query side, XdpState, decoded from what rtnl_xdp_fill() (net/core/rtnetlink.c) puts in RTM_NEWLINK:
 *   IFLA_XDP_ATTACHED and program ids;
 * - the request side, XdpSetRequest, encoded for RTM_SETLINK as do_setlink() reads it: IFLA_XDP_FD,
 *   IFLA_XDP_FLAGS and IFLA_XDP_EXPECTED_FD.
 * Neither can be mistaken for the other. jsimonetti/rtnetlink (link.go) has one struct for both, LinkXDP (FD,
 * ExpectedFD, Attached, Flags, ProgID): its encoder leaves Attached and ProgID out with a comment saying they are
 * query-only, and always sends EXPECTED_FD and FLAGS; its decoder reads IFLA_XDP_PROG_ID but no per-mode id. Here
 * the type says what each direction carries instead of a comment.
 */
import { err, ok, type Result } from '../result.js'
import { AttributeDecoder, NetlinkDecodeError, putS32, putU16, putU32 } from '../netlink/attributes.js'
import { NLA_F_NESTED, NLA_HDRLEN } from '../netlink/constants.js'
import {
  AF_UNSPEC,
  IFINFOMSG_LEN,
  IFLA_XDP,
  IFLA_XDP_ATTACHED,
  IFLA_XDP_DRV_PROG_ID,
  IFLA_XDP_EXPECTED_FD,
  IFLA_XDP_FD,
  IFLA_XDP_FLAGS,
  IFLA_XDP_HW_PROG_ID,
  IFLA_XDP_PROG_ID,
  IFLA_XDP_SKB_PROG_ID,
  XDP_ATTACHED_DRV,
  XDP_ATTACHED_HW,
  XDP_ATTACHED_MULTI,
  XDP_ATTACHED_NONE,
  XDP_ATTACHED_SKB,
  XDP_FLAGS_DRV_MODE,
  XDP_FLAGS_HW_MODE,
  XDP_FLAGS_MASK,
  XDP_FLAGS_MODES,
  XDP_FLAGS_REPLACE,
  XDP_FLAGS_SKB_MODE,
} from './constants.js'

// ---- modes -------------------------------------------------------------------------------------------------------

/**
 * Where a program runs on a link: in the driver (native: XDP_ATTACHED_DRV, attached with XDP_FLAGS_DRV_MODE), in the
 * generic hook after the skb is built (generic: XDP_ATTACHED_SKB, XDP_FLAGS_SKB_MODE), or on the NIC (offload:
 * XDP_ATTACHED_HW, XDP_FLAGS_HW_MODE). The one mode vocabulary of xdplinkd: config, plan, status and the requests
 * all use these names. Listed in the order a link running several at once reports them first.
 */
export type XdpMode = 'native' | 'generic' | 'offload'
export const XDP_MODES: readonly XdpMode[] = ['native', 'generic', 'offload']

/** What a config entry asks for: one mode, or `auto` (native where the driver has it, generic elsewhere). */
export type XdpEntryMode = 'auto' | XdpMode
export const XDP_ENTRY_MODES: readonly XdpEntryMode[] = ['auto', ...XDP_MODES]

/** IFLA_XDP_FLAGS bit that attaches in a mode (include/uapi/linux/if_link.h). */
export const XDP_MODE_FLAG: Readonly<Record<XdpMode, XdpFlags>> = {
  native: XDP_FLAGS_DRV_MODE,
  generic: XDP_FLAGS_SKB_MODE,
  offload: XDP_FLAGS_HW_MODE,
}

/** The XdpState field holding the program of a mode (IFLA_XDP_DRV/SKB/HW_PROG_ID). */
const PROG_ID_OF: Readonly<Record<XdpMode, 'drvProgId' | 'skbProgId' | 'hwProgId'>> = {
  native: 'drvProgId',
  generic: 'skbProgId',
  offload: 'hwProgId',
}

// ---- query side ------------------------------------------------------------------------------------------------

/** IFLA_XDP_ATTACHED by name: one mode, or `multi` (more than one mode at once, XDP_ATTACHED_MULTI). */
export type XdpAttachMode = XdpMode | 'multi'

const ATTACH_MODES = new Map<number, XdpAttachMode>([
  [XDP_ATTACHED_DRV, 'native'],
  [XDP_ATTACHED_SKB, 'generic'],
  [XDP_ATTACHED_HW, 'offload'],
  [XDP_ATTACHED_MULTI, 'multi'],
])

/** What runs on a link, as the kernel reports it. */
export interface XdpState {
  mode: XdpAttachMode
  /** IFLA_XDP_PROG_ID: the program when exactly one mode is attached; null for 'multi', where it is not sent. */
  progId: number | null
  /** Per-mode program ids (IFLA_XDP_DRV/SKB/HW_PROG_ID), present for each attached mode. */
  drvProgId?: number
  skbProgId?: number
  hwProgId?: number
}

/** One program the kernel runs on a link, and in which mode. */
export interface XdpProgram {
  progId: number
  mode: XdpMode
}

/** The program attached in one mode (for 'multi' too), or null. */
export function xdpProgIdFor(state: XdpState | null, mode: XdpMode): number | null {
  if (!state) return null
  return state[PROG_ID_OF[mode]] ?? (state.mode === mode ? state.progId : null) ?? null
}

/**
 * Every program the kernel runs on a link, in XDP_MODES order (native first): one for a single mode, up to three
 * for XDP_ATTACHED_MULTI. The first is the one that sees packets first on receive.
 */
export function xdpPrograms(state: XdpState | null): XdpProgram[] {
  if (!state) return []
  const out: XdpProgram[] = []
  for (const mode of XDP_MODES) {
    if (state.mode !== 'multi' && state.mode !== mode) continue
    const progId = xdpProgIdFor(state, mode)
    if (progId) out.push({ progId, mode })
  }
  return out
}

/** The IFLA_XDP the kernel reports once `progId` alone is attached in `mode` (net/core/rtnetlink.c rtnl_xdp_fill). */
export function xdpStateOf(progId: number, mode: XdpMode): XdpState {
  return { mode, progId, [PROG_ID_OF[mode]]: progId }
}

/**
 * Reads the attributes of an IFLA_XDP nest: null when nothing is attached. rtnl_xdp_fill() writes a *_PROG_ID for
 * each mode that has a program, then IFLA_XDP_ATTACHED (u8), then IFLA_XDP_PROG_ID only when exactly one mode is
 * attached. Kernels 4.13-4.18 sent IFLA_XDP_PROG_ID without the per-mode ids, so for a single mode each is filled
 * from the other. Problems are recorded on `d` (its sticky error), for use as `d.nested(readXdp)`.
 */
export function readXdp(d: AttributeDecoder): XdpState | null {
  let attached: number | undefined
  let progId: number | undefined
  const ids: { drvProgId?: number; skbProgId?: number; hwProgId?: number } = {}
  while (d.next()) {
    switch (d.type()) {
      case IFLA_XDP_ATTACHED:
        attached = d.u8()
        break
      case IFLA_XDP_PROG_ID:
        progId = d.u32()
        break
      case IFLA_XDP_DRV_PROG_ID:
        ids.drvProgId = d.u32()
        break
      case IFLA_XDP_SKB_PROG_ID:
        ids.skbProgId = d.u32()
        break
      case IFLA_XDP_HW_PROG_ID:
        ids.hwProgId = d.u32()
        break
    }
  }
  if (d.err()) return null
  if (attached === undefined) return fail(d, 'IFLA_XDP without IFLA_XDP_ATTACHED')
  if (attached === XDP_ATTACHED_NONE) return null
  const mode = ATTACH_MODES.get(attached)
  if (!mode) return fail(d, `unknown IFLA_XDP_ATTACHED value ${attached}`)
  if (mode === 'multi') return { mode, progId: null, ...ids }
  const key = PROG_ID_OF[mode]
  const id = progId ?? ids[key]
  if (!id) return fail(d, `IFLA_XDP: ${mode} program attached but no program id`)
  return { mode, progId: id, ...ids, [key]: ids[key] ?? id }
}

function fail(d: AttributeDecoder, message: string): null {
  d.fail(message)
  return null
}

/** Decodes the payload of IFLA_XDP (see readXdp); `base` is its offset in the message, for error offsets. */
export function decodeXdp(data: Buffer, base = 0): Result<XdpState | null, NetlinkDecodeError> {
  const d = new AttributeDecoder(data, base)
  const state = readXdp(d)
  const e = d.err()
  return e ? err(e) : ok(state)
}

// ---- request side ----------------------------------------------------------------------------------------------

/** A bit set of XDP_FLAGS_* (include/uapi/linux/if_link.h), sent as IFLA_XDP_FLAGS. */
export type XdpFlags = number

/**
 * An RTM_SETLINK IFLA_XDP request. `fd` is a program fd to attach, or -1 to detach. With XDP_FLAGS_REPLACE the
 * kernel swaps only if the program now attached is the one `expectedFd` refers to (-1: none), atomically
 * (dev_xdp_attach() in net/core/dev.c: "Active program does not match expected", EEXIST).
 *
 * There is no way to say IFLA_XDP_ATTACHED or IFLA_XDP_PROG_ID here, on purpose: they are query-only, and
 * do_setlink() (net/core/rtnetlink.c) refuses a request carrying either:
 *   if (xdp[IFLA_XDP_ATTACHED] || xdp[IFLA_XDP_PROG_ID]) { err = -EINVAL; goto errout; }
 */
export type XdpSetRequest =
  | { fd: number; flags: XdpFlags; expectedFd?: undefined }
  | { fd: number; /** includes XDP_FLAGS_REPLACE */ flags: XdpFlags; expectedFd: number }

const S32_MAX = 0x7fffffff
const isFd = (v: number): boolean => Number.isInteger(v) && v >= -1 && v <= S32_MAX

/**
 * Why `ifindex` cannot name a link in an ifinfomsg, or null: ifi_index is an int, and the kernel numbers links from 1
 * (net/core/dev.c dev_index_reserve); 0 in a request means "by name" or "no link". Used by every request here and in
 * link.ts.
 */
export function ifindexProblem(ifindex: number): string | null {
  return Number.isInteger(ifindex) && ifindex > 0 && ifindex <= S32_MAX ? null : `invalid ifindex ${ifindex}`
}

/** Why a request would be refused, checked as do_setlink() and dev_xdp_attach() would, or null. */
function checkRequest(ifindex: number, req: XdpSetRequest): string | null {
  const bad = ifindexProblem(ifindex)
  if (bad) return bad
  if (!isFd(req.fd)) return `invalid program fd ${req.fd} (a descriptor, or -1 to detach)`
  const { flags } = req
  if (!Number.isInteger(flags) || flags < 0 || (flags & ~XDP_FLAGS_MASK) !== 0) {
    return `invalid XDP flags ${flags}: only XDP_FLAGS_MASK bits exist`
  }
  const modes = flags & XDP_FLAGS_MODES
  if ((modes & (modes - 1)) !== 0) return 'more than one of XDP_FLAGS_SKB_MODE, XDP_FLAGS_DRV_MODE, XDP_FLAGS_HW_MODE'
  const replace = (flags & XDP_FLAGS_REPLACE) !== 0
  // do_setlink() reads IFLA_XDP_EXPECTED_FD only under XDP_FLAGS_REPLACE and fails with EINVAL when it is missing.
  if (replace && req.expectedFd === undefined) return 'XDP_FLAGS_REPLACE needs expectedFd'
  if (!replace && req.expectedFd !== undefined) return 'expectedFd is ignored by the kernel without XDP_FLAGS_REPLACE'
  if (req.expectedFd !== undefined && !isFd(req.expectedFd)) return `invalid expected fd ${req.expectedFd}`
  return null
}

/**
 * struct ifinfomsg addressing one link (0: none, for dumps): family AF_UNSPEC, type 0, flags 0, change 0. Shared
 * with link.ts; it lives here so that link.ts -> xdp.ts stays the only import between the two.
 */
export function encodeIfinfomsg(ifindex: number): Buffer {
  const b = Buffer.alloc(IFINFOMSG_LEN)
  b.writeUInt8(AF_UNSPEC, 0)
  putS32(b, ifindex, 4)
  putU32(b, 0, 8)
  putU32(b, 0, 12)
  return b
}

/**
 * The RTM_SETLINK payload (ifinfomsg + IFLA_XDP) for `req`, or why the kernel would refuse it. Byte for byte what
 * libbpf's __bpf_set_link_xdp_fd_replace() (src/netlink.c) sends: a nest flagged NLA_F_NESTED holding
 * IFLA_XDP_FD (s32), then IFLA_XDP_FLAGS (u32) only when flags are non-zero, then IFLA_XDP_EXPECTED_FD (s32)
 * only with XDP_FLAGS_REPLACE.
 */
export function encodeSetLinkXdp(ifindex: number, req: XdpSetRequest): Result<Buffer, RangeError> {
  const problem = checkRequest(ifindex, req)
  if (problem) return err(new RangeError(`RTM_SETLINK IFLA_XDP: ${problem}`))
  // Written in place (one buffer per request, where an AttributeEncoder makes one per attribute and nest): the
  // reconciler sends one of these per link.
  const inner = XDP_ATTR_LEN * (1 + (req.flags !== 0 ? 1 : 0) + (req.expectedFd !== undefined ? 1 : 0))
  // From Buffer's pool and zeroed here: a zero-filled Buffer.alloc is an ArrayBuffer of its own per request.
  const b = Buffer.allocUnsafe(IFINFOMSG_LEN + NLA_HDRLEN + inner).fill(0)
  b.writeUInt8(AF_UNSPEC, 0)
  putS32(b, ifindex, 4)
  let off = IFINFOMSG_LEN
  putU16(b, NLA_HDRLEN + inner, off)
  putU16(b, IFLA_XDP | NLA_F_NESTED, off + 2)
  off += NLA_HDRLEN
  const attr = (type: number, put: typeof putS32, v: number): void => {
    putU16(b, XDP_ATTR_LEN, off)
    putU16(b, type, off + 2)
    put(b, v, off + NLA_HDRLEN)
    off += XDP_ATTR_LEN
  }
  attr(IFLA_XDP_FD, putS32, req.fd)
  if (req.flags !== 0) attr(IFLA_XDP_FLAGS, putU32, req.flags)
  if (req.expectedFd !== undefined) attr(IFLA_XDP_EXPECTED_FD, putS32, req.expectedFd)
  return ok(b)
}

/** A 4-byte attribute with its header: already NLA_ALIGNed. */
const XDP_ATTR_LEN = NLA_HDRLEN + 4
