import { errnoName } from '../ffi/errno.js'

/**
 * The kernel refused a request: an NLMSG_ERROR with a non-zero error, or an NLMSG_DONE ending a failed dump.
 * `extAck` is the NLMSGERR_ATTR_MSG text and `extAckOffset` the NLMSGERR_ATTR_OFFS byte offset of the offending
 * attribute in the request (from the start of its nlmsghdr), present when the socket enabled NETLINK_EXT_ACK and
 * the kernel code set them (NL_SET_ERR_MSG / NL_SET_BAD_ATTR, include/linux/netlink.h).
 */
export class NetlinkError extends Error {
  /** Positive errno (the wire carries it negated). */
  readonly errno: number
  /** Symbolic errno name such as 'ENOBUFS'. */
  readonly code: string
  /** nlmsg_seq of the request this answers. */
  readonly seq: number
  readonly extAck: string | undefined
  readonly extAckOffset: number | undefined

  constructor(errno: number, seq: number, extAck?: string, extAckOffset?: number) {
    const code = errnoName(errno)
    super(`netlink: ${code} (seq ${seq})${extAck ? `: ${extAck}` : ''}`)
    this.name = 'NetlinkError'
    this.errno = Math.abs(errno)
    this.code = code
    this.seq = seq
    this.extAck = extAck
    this.extAckOffset = extAckOffset
  }

  /** An error built locally (a failed send, a closed socket) in the same shape as one the kernel returned. */
  static fromErrno(errno: number, seq = 0, detail?: string, offset?: number): NetlinkError {
    return new NetlinkError(errno, seq, detail, offset)
  }
}
