/**
 * Netlink message framing (struct nlmsghdr), NLMSG_ERROR and NLMSG_DONE replies. Pure: no I/O, and malformed input
 * gives an error value, never an exception. Shaped after mdlayher/netlink message.go.
 */
import { err, ok, type Result } from '../result.js'
import { AttributeDecoder, NetlinkDecodeError, getS32, getU16, getU32, putU16, putU32 } from './attributes.js'
import {
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
  NLMSGERR_LEN,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_DUMP_INTR,
  nlmsgAlign,
} from './constants.js'
import { NetlinkError } from './errors.js'

export interface NetlinkHeader {
  /** nlmsg_type: NLMSG_* control types below 0x10, the protocol's own (RTM_*) above. */
  type: number
  /** nlmsg_flags (NLM_F_*). */
  flags: number
  seq: number
  /** nlmsg_pid: the sender's port id; 0 from the kernel and in requests to it. */
  pid: number
}

export interface NetlinkMessage extends NetlinkHeader {
  /** Everything after the header up to nlmsg_len, as a view into the received buffer (no copy). */
  payload: Buffer
}

const U16_MAX = 0xffff
const U32_MAX = 0xffffffff

function checkField(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`nlmsghdr ${name} ${v} is not in 0..${max}`)
}

/**
 * One message: header plus payload, nlmsg_len = 16 + payload length, without trailing padding (the kernel takes
 * the datagram's length for the last message, netlink_rcv_skb() in net/netlink/af_netlink.c). Header fields out
 * of range are programming errors and throw RangeError.
 */
export function encodeMessage(h: NetlinkHeader, payload: Buffer): Buffer {
  const b = Buffer.alloc(NLMSG_HDRLEN + payload.length)
  encodeMessageInto(b, 0, h, payload)
  return b
}

/**
 * encodeMessage() written into `buf` at `off` (a datagram being filled, without a buffer per message); returns the
 * bytes written, nlmsg_len. `buf` must have room for them.
 */
export function encodeMessageInto(buf: Buffer, off: number, h: NetlinkHeader, payload: Buffer): number {
  checkField('type', h.type, U16_MAX)
  checkField('flags', h.flags, U16_MAX)
  checkField('seq', h.seq, U32_MAX)
  checkField('pid', h.pid, U32_MAX)
  const len = NLMSG_HDRLEN + payload.length
  checkField('length', len, U32_MAX)
  putU32(buf, len, off)
  putU16(buf, h.type, off + 4)
  putU16(buf, h.flags, off + 6)
  putU32(buf, h.seq, off + 8)
  putU32(buf, h.pid, off + 12)
  payload.copy(buf, off + NLMSG_HDRLEN)
  return len
}

/**
 * Several messages in one datagram (a batch): each starts on a 4-byte boundary (NLMSG_ALIGN), as the kernel's
 * netlink_rcv_skb() steps by NLMSG_ALIGN(nlmsg_len). A single message encodes exactly as encodeMessage().
 */
export function encodeMessages(list: readonly NetlinkMessage[]): Buffer {
  const parts: Buffer[] = []
  list.forEach((msg, i) => {
    const m = encodeMessage(msg, msg.payload)
    parts.push(m)
    const pad = nlmsgAlign(m.length) - m.length
    if (pad > 0 && i < list.length - 1) parts.push(Buffer.alloc(pad))
  })
  return Buffer.concat(parts)
}

/**
 * Splits one received datagram into messages. nlmsg_len below the header size, a message running past the
 * datagram and a leftover shorter than a header are errors (NLMSG_OK() in include/uapi/linux/netlink.h would stop
 * silently; here a short read must not pass for a complete dump). Payloads are views into `buf`: a caller that
 * reuses its receive buffer must copy it first.
 */
export function parseMessages(buf: Buffer): Result<NetlinkMessage[], NetlinkDecodeError> {
  const out: NetlinkMessage[] = []
  let off = 0
  while (off < buf.length) {
    const left = buf.length - off
    if (left < NLMSG_HDRLEN) return err(new NetlinkDecodeError(`truncated message header: ${left} bytes`, off))
    const len = getU32(buf, off)
    if (len < NLMSG_HDRLEN) return err(new NetlinkDecodeError(`nlmsg_len ${len} is below ${NLMSG_HDRLEN}`, off))
    if (len > left) return err(new NetlinkDecodeError(`nlmsg_len ${len} exceeds the ${left} bytes left`, off))
    out.push({
      type: getU16(buf, off + 4),
      flags: getU16(buf, off + 6),
      seq: getU32(buf, off + 8),
      pid: getU32(buf, off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    })
    off += Math.min(nlmsgAlign(len), left)
  }
  return ok(out)
}

/**
 * The dump this message belongs to changed while it was being read (nl_dump_check_consistent(), set on any
 * message of the dump, NLMSG_DONE included): its result is inconsistent and the dump should be redone.
 */
export function isDumpInterrupted(m: NetlinkHeader): boolean {
  return (m.flags & NLM_F_DUMP_INTR) !== 0
}

/** The end of a multipart (NLM_F_MULTI) dump. Check parseDoneError() too: a dump can end in an error. */
export function isDone(m: NetlinkHeader): boolean {
  return m.type === NLMSG_DONE
}

interface ExtAck {
  msg?: string
  offs?: number
}

/** NLMSGERR_ATTR_* TLVs written by netlink_ack_tlv_fill(); unknown ones (POLICY, COOKIE, MISS_*) are skipped. */
function decodeExtAck(buf: Buffer, base: number): Result<ExtAck, NetlinkDecodeError> {
  const d = new AttributeDecoder(buf, base)
  const ack: ExtAck = {}
  while (d.next()) {
    switch (d.type()) {
      case NLMSGERR_ATTR_MSG:
        ack.msg = d.string()
        break
      case NLMSGERR_ATTR_OFFS:
        ack.offs = d.u32()
        break
    }
  }
  const e = d.err()
  return e ? err(e) : ok(ack)
}

/**
 * Decodes an NLMSG_ERROR: null for an ACK (error 0), else the NetlinkError. Layout from netlink_ack()
 * (net/netlink/af_netlink.c): s32 error, the request's nlmsghdr, then the rest of the request unless
 * NLM_F_CAPPED (NETLINK_CAP_ACK was set, or the request succeeded), then, with NLM_F_ACK_TLVS, the extended-ack
 * attributes. The echoed request is nlmsg_append()ed, so the TLVs start at the NLMSG_ALIGN of its length.
 */
export function parseErrorMessage(m: NetlinkMessage): Result<NetlinkError | null, NetlinkDecodeError> {
  if (m.type !== NLMSG_ERROR) return err(new NetlinkDecodeError(`message type ${m.type} is not NLMSG_ERROR`))
  const p = m.payload
  if (p.length < NLMSGERR_LEN) {
    return err(new NetlinkDecodeError(`NLMSG_ERROR payload of ${p.length} bytes is shorter than struct nlmsgerr`, NLMSG_HDRLEN))
  }
  const error = getS32(p, 0)
  if (error === 0) return ok(null)
  if ((m.flags & NLM_F_ACK_TLVS) === 0) return ok(new NetlinkError(error, m.seq))
  let tlvs = NLMSGERR_LEN
  if ((m.flags & NLM_F_CAPPED) === 0) {
    const echoed = getU32(p, 4)
    if (echoed < NLMSG_HDRLEN || 4 + nlmsgAlign(echoed) > p.length) {
      return err(new NetlinkDecodeError(`echoed request length ${echoed} does not fit the NLMSG_ERROR payload`, NLMSG_HDRLEN + 4))
    }
    tlvs = 4 + nlmsgAlign(echoed)
  }
  const ack = decodeExtAck(p.subarray(tlvs), NLMSG_HDRLEN + tlvs)
  if (!ack.ok) return ack
  return ok(new NetlinkError(error, m.seq, ack.value.msg, ack.value.offs))
}

/**
 * The error a dump ended with, or null. netlink_dump_done() puts the dump's int result (0 or a negative errno)
 * in NLMSG_DONE, followed by extended-ack TLVs when NLM_F_ACK_TLVS is set. A DONE without the int (some old or
 * non-rtnetlink senders) counts as success, and unreadable TLVs only lose the text, not the error.
 */
export function parseDoneError(m: NetlinkMessage): NetlinkError | null {
  if (m.type !== NLMSG_DONE || m.payload.length < 4) return null
  const error = getS32(m.payload, 0)
  if (error === 0) return null
  if ((m.flags & NLM_F_ACK_TLVS) === 0) return new NetlinkError(error, m.seq)
  const ack = decodeExtAck(m.payload.subarray(4), NLMSG_HDRLEN + 4)
  return ack.ok ? new NetlinkError(error, m.seq, ack.value.msg, ack.value.offs) : new NetlinkError(error, m.seq)
}
