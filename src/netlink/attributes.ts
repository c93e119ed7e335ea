/**
 * Netlink attributes (struct nlattr TLVs): a strict parser, a decoder with a sticky error and length-checked typed
 * accessors, and an encoder. Pure: no I/O, and malformed input gives an error value, never an exception.
 * Shaped after mdlayher/netlink attribute.go (AttributeDecoder/AttributeEncoder).
 */
import { endianness } from 'node:os'
import { err, ok, type Result } from '../result.js'
import { NLA_F_NESTED, NLA_HDRLEN, NLA_TYPE_MASK, nlaAlign } from './constants.js'

/** Bytes that are not a well-formed netlink message or attribute. `offset` is where in the input, when known. */
export class NetlinkDecodeError extends Error {
  readonly offset: number | undefined
  constructor(message: string, offset?: number) {
    super(offset === undefined ? message : `${message} (at byte ${offset})`)
    this.name = 'NetlinkDecodeError'
    this.offset = offset
  }
}

// Netlink integers are in host byte order (only NLA_F_NET_BYTEORDER attributes are big-endian), so follow the CPU.
const LE = endianness() === 'LE'

/** Reads a host-order u16/u32/s32 at `off`; the caller has checked the bounds. */
export const getU16 = (b: Buffer, off: number): number => (LE ? b.readUInt16LE(off) : b.readUInt16BE(off))
export const getU32 = (b: Buffer, off: number): number => (LE ? b.readUInt32LE(off) : b.readUInt32BE(off))
export const getS32 = (b: Buffer, off: number): number => (LE ? b.readInt32LE(off) : b.readInt32BE(off))
const getU64 = (b: Buffer, off: number): bigint => (LE ? b.readBigUInt64LE(off) : b.readBigUInt64BE(off))

/** Writes a host-order integer; Buffer throws RangeError for a value that does not fit. */
export const putU16 = (b: Buffer, v: number, off: number): void => void (LE ? b.writeUInt16LE(v, off) : b.writeUInt16BE(v, off))
export const putU32 = (b: Buffer, v: number, off: number): void => void (LE ? b.writeUInt32LE(v, off) : b.writeUInt32BE(v, off))
export const putS32 = (b: Buffer, v: number, off: number): void => void (LE ? b.writeInt32LE(v, off) : b.writeInt32BE(v, off))

export interface Attribute {
  /** nla_type with NLA_F_NESTED and NLA_F_NET_BYTEORDER masked off (NLA_TYPE_MASK). */
  type: number
  /** Whether the sender set NLA_F_NESTED. Advisory only: the kernel still emits some nests without it. */
  nested: boolean
  /** The payload, nla_len - NLA_HDRLEN bytes, as a view into the parsed buffer (no copy). */
  data: Buffer
  /** Where the attribute's header starts: its index in the parsed buffer plus the `base` given to parseAttributes. */
  offset: number
}

/**
 * Splits a buffer into attributes (the AttributeDecoder's walk, kept as values). `base` is added to every offset,
 * so errors point into the enclosing message.
 */
export function parseAttributes(buf: Buffer, base = 0): Result<Attribute[], NetlinkDecodeError> {
  const out: Attribute[] = []
  const d = new AttributeDecoder(buf, base)
  while (d.next()) out.push({ type: d.type(), nested: d.isNested(), data: d.bytes(), offset: d.offset() })
  const e = d.err()
  return e ? err(e) : ok(out)
}

/** Where the attribute after the one at `off` (of nla_len `len`) starts, in a run that ends at `end`. */
const nextAt = (off: number, len: number, end: number): number => off + Math.min(nlaAlign(len), end - off)

/**
 * The first structural problem of the run of attributes buf[start, end), found without allocating. nla_len <
 * NLA_HDRLEN, an attribute running past the end and a leftover of 1-3 bytes (a truncated header) are errors; a
 * missing final pad is not, since only nla_len counts and the kernel's own walker (nla_next/nla_ok in
 * include/net/netlink.h) lets the last aligned step overshoot too. Offsets are counted from `base`.
 */
function checkAttributes(buf: Buffer, start: number, end: number, base: number): NetlinkDecodeError | undefined {
  for (let off = start; off < end; ) {
    const left = end - off
    if (left < NLA_HDRLEN) return new NetlinkDecodeError(`truncated attribute header: ${left} bytes`, base + off - start)
    const len = getU16(buf, off)
    // A zero nla_len would make the walk stand still; the kernel's nla_ok() rejects anything below the header too.
    if (len < NLA_HDRLEN) return new NetlinkDecodeError(`attribute length ${len} is below ${NLA_HDRLEN}`, base + off - start)
    if (len > left) return new NetlinkDecodeError(`attribute length ${len} exceeds the ${left} bytes left`, base + off - start)
    off = nextAt(off, len, end)
  }
  return undefined
}

/**
 * Walks the attributes of one buffer. The first problem (a malformed buffer, a typed accessor on an attribute of
 * the wrong size, a malformed nest) is kept in err(); from then on next() returns false and the accessors return
 * zero values, so a decoding loop needs a single check at the end:
 *
 *   const d = new AttributeDecoder(buf)
 *   while (d.next()) switch (d.type()) { case IFLA_MTU: mtu = d.u32(); break }
 *   if (d.err()) return err(d.err())
 *
 * The buffer is checked whole up front (so a malformed one yields no attribute at all), then walked in place: no
 * object and no view per attribute, only what an accessor returns. A link message has some 50 attributes, of which
 * the daemon reads a handful.
 */
export class AttributeDecoder {
  /** The run of attributes is #buf[#start, #end); #base is the offset of #start in the message, for errors. */
  #buf!: Buffer
  #start!: number
  #end!: number
  #base!: number
  /** The current attribute's header in #buf, its nla_len and raw nla_type; #at is -1 when there is none. */
  #at = -1
  #len = 0
  #rawType = 0
  #nextAt!: number
  #err: NetlinkDecodeError | undefined

  /** `base` is the offset of `buf` inside the message, for error offsets. */
  constructor(buf: Buffer, base = 0) {
    this.#init(buf, 0, buf.length, base)
  }

  /** A decoder of the nest at buf[start, end), sharing the buffer (no copy, no view). */
  static #range(buf: Buffer, start: number, end: number, base: number): AttributeDecoder {
    const d = new AttributeDecoder(EMPTY)
    d.#init(buf, start, end, base)
    return d
  }

  #init(buf: Buffer, start: number, end: number, base: number): void {
    this.#buf = buf
    this.#start = start
    this.#end = end
    this.#base = base
    this.#nextAt = start
    this.#err = checkAttributes(buf, start, end, base)
  }

  /** Advances to the next attribute; false at the end or once an error has been recorded. */
  next(): boolean {
    if (this.#err) return false
    const off = this.#nextAt
    if (off >= this.#end) {
      this.#at = -1
      return false
    }
    this.#at = off
    this.#len = getU16(this.#buf, off)
    this.#rawType = getU16(this.#buf, off + 2)
    this.#nextAt = nextAt(off, this.#len, this.#end)
    return true
  }

  /** The current attribute's type (NLA_TYPE_MASK applied); 0 when there is none. */
  type(): number {
    return this.#at < 0 ? 0 : this.#rawType & NLA_TYPE_MASK
  }

  /** Whether the current attribute carries NLA_F_NESTED. */
  isNested(): boolean {
    return this.#at >= 0 && (this.#rawType & NLA_F_NESTED) !== 0
  }

  /** The first error met, if any. */
  err(): NetlinkDecodeError | undefined {
    return this.#err
  }

  /**
   * Records `message` as the error unless one is already kept, for semantic checks (a required attribute missing,
   * an unknown enum value) inside nested() callbacks. It points at the current attribute, else at the buffer.
   */
  fail(message: string): void {
    this.#err ??= new NetlinkDecodeError(message, this.offset())
  }

  u8(): number {
    const at = this.#sized(1, 'u8')
    return at < 0 ? 0 : this.#buf.readUInt8(at)
  }

  u16(): number {
    const at = this.#sized(2, 'u16')
    return at < 0 ? 0 : getU16(this.#buf, at)
  }

  u32(): number {
    const at = this.#sized(4, 'u32')
    return at < 0 ? 0 : getU32(this.#buf, at)
  }

  s32(): number {
    const at = this.#sized(4, 's32')
    return at < 0 ? 0 : getS32(this.#buf, at)
  }

  u64(): bigint {
    const at = this.#sized(8, 'u64')
    return at < 0 ? 0n : getU64(this.#buf, at)
  }

  /**
   * The payload as UTF-8 up to the first NUL (the kernel's NLA_NUL_STRING/nla_put_string end with one; a payload
   * without a NUL is accepted whole, as iproute2 and the kernel's nla_strscpy() do).
   */
  string(): string {
    if (!this.#data()) return ''
    const from = this.#at + NLA_HDRLEN
    const to = this.#at + this.#len
    const nul = this.#buf.indexOf(0, from)
    return this.#buf.toString('utf8', from, nul < 0 || nul > to ? to : nul)
  }

  /** The payload as a view into the parsed buffer (no copy); an empty buffer after an error. */
  bytes(): Buffer {
    if (!this.#data()) return Buffer.alloc(0)
    return this.#buf.subarray(this.#at + NLA_HDRLEN, this.#at + this.#len)
  }

  /**
   * Decodes the current attribute's payload as a nest with `fn`. A malformed nest, or an error recorded by `fn` on
   * the inner decoder, becomes this decoder's error and the result is undefined. NLA_F_NESTED is not required:
   * rtnl_fill_ifinfo() opens IFLA_XDP, IFLA_LINKINFO and IFLA_PROP_LIST with nla_nest_start_noflag().
   */
  nested<T>(fn: (d: AttributeDecoder) => T): T | undefined {
    if (!this.#data()) return undefined
    const inner = AttributeDecoder.#range(this.#buf, this.#at + NLA_HDRLEN, this.#at + this.#len, this.offset() + NLA_HDRLEN)
    const value = inner.#err ? undefined : fn(inner)
    if (inner.#err) {
      this.#err = inner.#err
      return undefined
    }
    return value
  }

  /**
   * Where the current attribute's header is, counted from `base` (in the message, as NLMSGERR_ATTR_OFFS counts);
   * where the run starts when there is no current attribute.
   */
  offset(): number {
    return this.#at < 0 ? this.#base : this.#base + this.#at - this.#start
  }

  /** Whether there is a current attribute to read (recording the misuse as the error when there is none). */
  #data(): boolean {
    if (this.#err) return false
    if (this.#at < 0) {
      this.#err = new NetlinkDecodeError('attribute accessor called without a current attribute')
      return false
    }
    return true
  }

  /** Where the current payload starts when it is exactly `size` bytes, else -1 (and the error recorded). */
  #sized(size: number, what: string): number {
    if (!this.#data()) return -1
    const got = this.#len - NLA_HDRLEN
    if (got !== size) {
      this.#err = new NetlinkDecodeError(`attribute type ${this.type()}: ${what} needs ${size} bytes, got ${got}`, this.offset())
      return -1
    }
    return this.#at + NLA_HDRLEN
  }
}

const EMPTY = Buffer.alloc(0)

const NLA_MAX_LEN = 0xffff

/**
 * Builds a run of attributes. Each attribute is padded to 4 bytes with zeros and nla_len excludes the padding,
 * as nla_put() does (lib/nlattr.c). Values that cannot be encoded (out of range, a type above NLA_TYPE_MASK, a
 * string with a NUL, an attribute over 64 KiB) are programming errors and throw RangeError.
 */
export class AttributeEncoder {
  readonly #parts: Buffer[] = []

  u8(type: number, v: number): this {
    return this.#fixed(type, 1, (b) => b.writeUInt8(v, 0))
  }

  u16(type: number, v: number): this {
    return this.#fixed(type, 2, (b) => putU16(b, v, 0))
  }

  u32(type: number, v: number): this {
    return this.#fixed(type, 4, (b) => putU32(b, v, 0))
  }

  s32(type: number, v: number): this {
    return this.#fixed(type, 4, (b) => putS32(b, v, 0))
  }

  u64(type: number, v: bigint): this {
    return this.#fixed(type, 8, (b) => (LE ? b.writeBigUInt64LE(v, 0) : b.writeBigUInt64BE(v, 0)))
  }

  /** A NUL-terminated string, as nla_put_string() sends and NLA_NUL_STRING policies require. */
  string(type: number, s: string): this {
    const b = Buffer.from(s, 'utf8')
    if (b.includes(0)) throw new RangeError(`attribute type ${type}: string contains a NUL byte`)
    return this.bytes(type, Buffer.concat([b, Buffer.alloc(1)]))
  }

  bytes(type: number, data: Buffer): this {
    return this.#put(type, data)
  }

  /** A flag attribute (NLA_FLAG): present means true, no payload. */
  flag(type: number): this {
    return this.#put(type, Buffer.alloc(0))
  }

  /** A nest built by `fn`, with NLA_F_NESTED set as nla_nest_start() does for new attributes. */
  nested(type: number, fn: (e: AttributeEncoder) => void): this {
    const inner = new AttributeEncoder()
    fn(inner)
    return this.#put(type, inner.encode(), NLA_F_NESTED)
  }

  /** The attributes in the order they were added. */
  encode(): Buffer {
    return Buffer.concat(this.#parts)
  }

  #fixed(type: number, size: number, write: (b: Buffer) => unknown): this {
    const b = Buffer.alloc(size)
    write(b)
    return this.#put(type, b)
  }

  #put(type: number, data: Buffer, typeFlags = 0): this {
    if (!Number.isInteger(type) || type < 0 || type > NLA_TYPE_MASK) throw new RangeError(`invalid attribute type ${type}`)
    const len = NLA_HDRLEN + data.length
    if (len > NLA_MAX_LEN) throw new RangeError(`attribute type ${type}: ${len} bytes do not fit nla_len`)
    const b = Buffer.alloc(nlaAlign(len))
    putU16(b, len, 0)
    putU16(b, type | typeFlags, 2)
    data.copy(b, NLA_HDRLEN)
    this.#parts.push(b)
    return this
  }
}
