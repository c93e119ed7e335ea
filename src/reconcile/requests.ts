/**
 * A planned action as the RTM_SETLINK requests that carry it out. Pure: the descriptors are resolved before (the
 * desired program's, and the attached one's for IFLA_XDP_EXPECTED_FD), and nothing is sent here.
 *
 * - attach: XDP_FLAGS_UPDATE_IF_NOEXIST, so that a program someone attaches meanwhile wins (EBUSY) rather than
 *   being clobbered;
 * - replace and detach: XDP_FLAGS_REPLACE with the program expected to be there (-1 detaches), so that the swap is
 *   atomic and a program someone attached in between is never removed (EEXIST, net/core/dev.c dev_xdp_attach);
 *   on a kernel without XDP_FLAGS_REPLACE (before Linux 5.7) a plain set, which is neither;
 * - remode: the kernel cannot swap across modes ("Native and generic XDP can't be active at the same time"), so a
 *   detach in the old mode, then an attach in the new one, the attach marked to go in the same request window.
 */
import { XDP_FLAGS_REPLACE, XDP_FLAGS_UPDATE_IF_NOEXIST } from '../rtnl/constants.js'
import { XDP_MODE_FLAG, type XdpMode, type XdpSetRequest } from '../rtnl/xdp.js'
import type { Action } from './plan.js'

/** An action that sends something. */
export type SendAction = Exclude<Action, { kind: 'none' | 'conflict' }>

/** One RTM_SETLINK IFLA_XDP request; `withPrevious` keeps it in one request window with the one before it. */
export interface SetXdp {
  ifindex: number
  req: XdpSetRequest
  withPrevious?: boolean
}

/**
 * The program whose descriptor the requests need as IFLA_XDP_EXPECTED_FD: the one attached now, for a replace, a
 * detach or a remode's detach. Null for an attach, and wherever the kernel has no XDP_FLAGS_REPLACE.
 */
export function expectedProgId(action: SendAction, replaceSupported: boolean): number | null {
  if (!replaceSupported || action.kind === 'attach') return null
  return action.expectedProgId
}

/**
 * The requests for `action` on `ifindex`. `progFd` is the desired program's descriptor (unused by a detach);
 * `expectedFd` the attached program's (expectedProgId), or null to send plain sets (no XDP_FLAGS_REPLACE).
 */
export function requestsFor(ifindex: number, action: SendAction, progFd: number, expectedFd: number | null): SetXdp[] {
  const attach = (mode: XdpMode): XdpSetRequest => ({ fd: progFd, flags: XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_MODE_FLAG[mode] })
  const swap = (fd: number, mode: XdpMode): XdpSetRequest =>
    expectedFd === null ? { fd, flags: XDP_MODE_FLAG[mode] } : { fd, expectedFd, flags: XDP_FLAGS_REPLACE | XDP_MODE_FLAG[mode] }
  switch (action.kind) {
    case 'attach':
      return [{ ifindex, req: attach(action.mode) }]
    case 'replace':
      return [{ ifindex, req: swap(progFd, action.mode) }]
    case 'detach':
      return [{ ifindex, req: swap(-1, action.mode) }]
    case 'remode':
      return [
        { ifindex, req: swap(-1, action.from) },
        { ifindex, req: attach(action.mode), withPrevious: true },
      ]
  }
}
