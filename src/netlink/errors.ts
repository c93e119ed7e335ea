import { errnoName } from '../ffi/errno.js'

/**
 * A netlink request failed. Either the kernel refused it (`origin: 'kernel'`): an NLMSG_ERROR with a non-zero error,
 * or an NLMSG_DONE ending a failed dump; `extAck` is then the NLMSGERR_ATTR_MSG text and `extAckOffset` the
 * NLMSGERR_ATTR_OFFS byte offset of the offending attribute in the request (from the start of its nlmsghdr), present
 * when the socket enabled NETLINK_EXT_ACK and the kernel code set them (NL_SET_ERR_MSG / NL_SET_BAD_ATTR,
 * include/linux/netlink.h). Or it failed on our side (`origin: 'local'`): the socket closed, a send failed, acks lost
 * to an overrun, a request we would not send; its text is in `detail`, never in `extAck`, so that nothing presents
 * our words as the kernel's.
 */
export class NetlinkError extends Error {
  /** Positive errno (the wire carries it negated). */
  readonly errno: number
  /** Symbolic errno name such as 'ENOBUFS', for messages; code compares `errno`. */
  readonly code: string
  /** nlmsg_seq of the request this answers. */
  readonly seq: number
  readonly origin: 'kernel' | 'local'
  /** The kernel's extended-ack text (origin 'kernel' only). */
  readonly extAck: string | undefined
  readonly extAckOffset: number | undefined
  /** What went wrong on our side (origin 'local' only). */
  readonly detail: string | undefined

  constructor(errno: number, seq: number, extAck?: string, extAckOffset?: number, local?: { detail?: string }) {
    const code = errnoName(errno)
    const text = local ? local.detail : extAck
    super(`netlink: ${code} (seq ${seq})${text ? `: ${text}` : ''}`)
    this.name = 'NetlinkError'
    this.errno = Math.abs(errno)
    this.code = code
    this.seq = seq
    this.origin = local ? 'local' : 'kernel'
    this.extAck = local ? undefined : extAck
    this.extAckOffset = local ? undefined : extAckOffset
    this.detail = local?.detail
  }

  /** An error of our own making (a failed send, a closed socket) in the same shape as one the kernel returned. */
  static fromErrno(errno: number, seq = 0, detail?: string): NetlinkError {
    return new NetlinkError(errno, seq, undefined, undefined, { detail })
  }
}
