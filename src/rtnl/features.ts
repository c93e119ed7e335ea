/**
 * What the kernel can do, learned from what it answers rather than from its version string (a distribution kernel
 * may carry a feature back to an older version, or build without it), as cilium/ebpf's internal/feature.go does.
 */
import { ERRNO } from '../ffi/errno.js'
import type { RequestResult } from '../netlink/socket.js'
import type { NetlinkError } from '../netlink/errors.js'
import { err, ok, type Result } from '../result.js'
import { XDP_FLAGS_REPLACE, XDP_FLAGS_SKB_MODE } from './constants.js'
import type { XdpSetRequest } from './xdp.js'

/** The loopback device has this ifindex in every network namespace (include/net/flow.h, LOOPBACK_IFINDEX). */
export const LOOPBACK_IFINDEX = 1

/**
 * The probe for XDP_FLAGS_REPLACE (Linux 5.7, commit 92234c8f15c8 "xdp: Support atomic replacement of XDP
 * interface"): on loopback, detach the generic program provided none is attached (fd -1, expected fd -1). It cannot
 * change anything: with nothing attached there is nothing to detach (dev_xdp_attach returns 0 before calling the
 * driver), and with a program attached the expectation fails (EEXIST "Active program does not match expected").
 * A kernel without the flag refuses the unknown bit first: do_setlink answers EINVAL for `xdp_flags &
 * ~XDP_FLAGS_MASK`.
 */
export const REPLACE_PROBE: { ifindex: number; req: XdpSetRequest } = {
  ifindex: LOOPBACK_IFINDEX,
  req: { fd: -1, expectedFd: -1, flags: XDP_FLAGS_REPLACE | XDP_FLAGS_SKB_MODE },
}

/**
 * What the probe's answer means. Accepted, or refused past the flag check (EEXIST: a program is attached; EBUSY:
 * a bpf_link holds the hook), the flag is known. EINVAL: it is not. Anything else (EPERM without CAP_NET_ADMIN)
 * says nothing about the flag: an error.
 */
export function replaceSupport(answer: RequestResult): Result<boolean, NetlinkError> {
  if (answer.ok) return ok(true)
  switch (answer.error.errno) {
    case ERRNO.EEXIST:
    case ERRNO.EBUSY:
      return ok(true)
    case ERRNO.EINVAL:
      return ok(false)
    default:
      return err(answer.error)
  }
}

/** Asks the kernel whether it has XDP_FLAGS_REPLACE (one RTM_SETLINK on loopback; see REPLACE_PROBE). */
export async function probeXdpReplace(setter: {
  setXdp(reqs: { ifindex: number; req: XdpSetRequest }[]): Promise<RequestResult[]>
}): Promise<Result<boolean, NetlinkError>> {
  const [answer] = await setter.setXdp([REPLACE_PROBE])
  return replaceSupport(answer!)
}
