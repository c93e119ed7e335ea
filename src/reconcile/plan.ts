/**
 * What to do about one link: the pure decision at the heart of the reconciler. It compares the desired program
 * (from the first matching config entry) with what the kernel reports in IFLA_XDP, and never touches a program it
 * does not own unless the entry says `replace-foreign`.
 *
 * "Ours" is decided by the caller (a program pinned under our bpffs), so ownership survives a daemon restart.
 */
import { xdpPrograms, type XdpEntryMode, type XdpMode, type XdpProgram, type XdpState } from '../rtnl/xdp.js'

export interface Desired {
  /** Kernel id of the program that should run. */
  progId: number
  mode: XdpEntryMode
  replaceForeign: boolean
  /** Entry label, for logs. */
  entry: string
}

export interface PlanInput {
  desired: Desired | null
  xdp: XdpState | null
  isOurs: (progId: number) => boolean
  /** Native mode failed with EOPNOTSUPP on this link before: `auto` means generic here. */
  nativeUnsupported: boolean
}

export type Action =
  | { kind: 'none' }
  /** Nothing attached: attach with XDP_FLAGS_UPDATE_IF_NOEXIST so a program someone attaches meanwhile wins. */
  | { kind: 'attach'; progId: number; mode: XdpMode }
  /** Atomic swap (XDP_FLAGS_REPLACE + IFLA_XDP_EXPECTED_FD): the link is never without a program. */
  | { kind: 'replace'; progId: number; expectedProgId: number; mode: XdpMode; foreign: boolean }
  /** Ours attached, none desired: detach only if it is still ours (fd -1 + expected fd + XDP_FLAGS_REPLACE). */
  | { kind: 'detach'; expectedProgId: number; mode: XdpMode }
  /**
   * The right program in the wrong mode (the config's mode changed). The kernel cannot swap across modes ("Native
   * and generic XDP can't be active at the same time", net/core/dev.c dev_xdp_attach): detach, then attach.
   */
  | { kind: 'remode'; progId: number; expectedProgId: number; from: XdpMode; mode: XdpMode }
  /** A program we do not own is attached where ours should be: leave it and report. */
  | { kind: 'conflict'; foreignProgId: number; mode: XdpMode }

/** The program the kernel runs on the link, if any. With several modes at once (MULTI), native counts first. */
export function observed(xdp: XdpState | null): XdpProgram | null {
  return xdpPrograms(xdp)[0] ?? null
}

/** Whether a program attached in `attached` mode satisfies a config's `mode`. */
export function modeSatisfies(mode: XdpEntryMode, attached: XdpMode): boolean {
  if (mode === 'auto') return attached === 'native' || attached === 'generic'
  return mode === attached
}

/** The mode to attach in: `auto` tries native first unless this link already refused it. */
export function attachMode(mode: XdpEntryMode, nativeUnsupported: boolean): XdpMode {
  if (mode === 'auto') return nativeUnsupported ? 'generic' : 'native'
  return mode
}

export function plan(input: PlanInput): Action {
  const { desired, isOurs } = input
  const obs = observed(input.xdp)
  if (!desired) {
    if (obs && isOurs(obs.progId)) return { kind: 'detach', expectedProgId: obs.progId, mode: obs.mode }
    return { kind: 'none' }
  }
  const mode = attachMode(desired.mode, input.nativeUnsupported)
  if (!obs) return { kind: 'attach', progId: desired.progId, mode }
  const ours = isOurs(obs.progId)
  if (!ours && !desired.replaceForeign) return { kind: 'conflict', foreignProgId: obs.progId, mode: obs.mode }
  if (modeSatisfies(desired.mode, obs.mode)) {
    if (obs.progId === desired.progId) return { kind: 'none' }
    // Replace in the mode it already runs in: a swap must stay in one mode to be atomic.
    return { kind: 'replace', progId: desired.progId, expectedProgId: obs.progId, mode: obs.mode, foreign: !ours }
  }
  return { kind: 'remode', progId: desired.progId, expectedProgId: obs.progId, from: obs.mode, mode }
}
