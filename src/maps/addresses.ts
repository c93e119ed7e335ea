/**
 * Address texts <-> their bytes in network order, for the map encoder's conveniences (encode.ts): IPv4, IPv6, MAC
 * and prefixes. Pure: no I/O, never throws on bad input.
 *
 * node:net's isIPv4/isIPv6 decide what is an address, so that xdplinkd accepts what the rest of Node does; they give
 * no bytes, so the IPv6 text is expanded here group by group rather than by a regex (`::` stands for one or more
 * zero groups, a dotted quad may only end the address).
 */
import { isIPv4, isIPv6 } from 'node:net'
import { err, ok, type Result } from '../result.js'

export type Family = 4 | 6

/** Bytes of an address of each family. */
export const ADDRESS_BYTES = { 4: 4, 6: 16 } as const

/** An IP address with an optional prefix length: `192.0.2.0/24`, `2001:db8::/32`, `198.51.100.7`. */
export interface Prefix {
  family: Family
  /** Network order, 4 or 16 bytes. */
  bytes: Buffer
  /** The address's full length (32 or 128) when the text has no `/`. */
  length: number
}

/** `192.0.2.7` -> c0 00 02 07, or null when node:net does not call it an IPv4 address (it refuses leading zeros). */
export function parseIPv4(text: string): Buffer | null {
  if (!isIPv4(text)) return null
  return Buffer.from(text.split('.').map(Number))
}

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/

/**
 * `2001:db8::1` -> its 16 bytes, or null. A zone id (`fe80::1%eth0`) is refused: isIPv6 accepts it, but a zone
 * names an interface of one host and has no bytes in a map.
 */
export function parseIPv6(text: string): Buffer | null {
  if (!isIPv6(text) || text.includes('%')) return null
  const halves = text.split('::')
  if (halves.length > 2) return null
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'))
  const head = groups(halves[0]!)
  const tail = halves.length === 2 ? groups(halves[1]!) : []
  const words: number[][] = [[], []]
  const parts = [head, tail]
  for (let p = 0; p < 2; p++) {
    const part = parts[p]!
    for (let i = 0; i < part.length; i++) {
      const g = part[i]!
      const last = i === part.length - 1 && (p === 1 || halves.length === 1)
      if (g.includes('.')) {
        // RFC 4291 2.2 form 3: the low 32 bits as a dotted quad, only at the very end.
        const v4 = last ? parseIPv4(g) : null
        if (v4 === null) return null
        words[p]!.push(v4.readUInt16BE(0), v4.readUInt16BE(2))
      } else {
        if (!HEX_GROUP.test(g)) return null
        words[p]!.push(parseInt(g, 16))
      }
    }
  }
  const given = words[0]!.length + words[1]!.length
  // Without `::` all 8 groups are written; with it, it stands for at least one.
  if (halves.length === 1 ? given !== 8 : given > 7) return null
  const all = [...words[0]!, ...new Array<number>(8 - given).fill(0), ...words[1]!]
  const out = Buffer.alloc(16)
  all.forEach((w, i) => out.writeUInt16BE(w, i * 2))
  return out
}

export function formatIPv4(bytes: Buffer): string {
  return [...bytes.subarray(0, 4)].join('.')
}

/**
 * RFC 5952: lower case, no leading zeros, the longest run of two or more zero groups (the first of equal runs) as
 * `::`, and an IPv4-mapped address (::ffff:0:0/96) with its dotted quad (section 5).
 */
export function formatIPv6(bytes: Buffer): string {
  const words = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2))
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) return `::ffff:${formatIPv4(bytes.subarray(12, 16))}`
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j === i ? i + 1 : j
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':')
  if (best < 0) return hex(words)
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`
}

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/

/** `aa:bb:cc:dd:ee:ff` (either case, colons only) -> 6 bytes, or null. */
export function parseMac(text: string): Buffer | null {
  if (!MAC.test(text)) return null
  return Buffer.from(text.split(':').map((h) => parseInt(h, 16)))
}

export function formatMac(bytes: Buffer): string {
  return [...bytes.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':')
}

export function parseAddress(text: string): { family: Family; bytes: Buffer } | null {
  const v4 = parseIPv4(text)
  if (v4 !== null) return { family: 4, bytes: v4 }
  const v6 = parseIPv6(text)
  return v6 === null ? null : { family: 6, bytes: v6 }
}

export function formatAddress(family: Family, bytes: Buffer): string {
  return family === 4 ? formatIPv4(bytes) : formatIPv6(bytes)
}

/** A prefix length as written after `/`: decimal, no sign, no leading zeros. */
const PREFIX_LENGTH = /^(0|[1-9][0-9]{0,2})$/

/**
 * `192.0.2.0/24`, `2001:db8::/32` or a bare address (its full length) for a key of `family`. A prefix with host
 * bits set (`192.0.2.1/24`) is refused with its network form as the hint: an LPM trie stores the bytes it is given
 * (kernel/bpf/lpm_trie.c), so `192.0.2.1/24` and `192.0.2.0/24` would be one trie node read back as either.
 */
export function parsePrefix(text: string, family: Family): Result<Prefix, string> {
  const bits = ADDRESS_BYTES[family] * 8
  const slash = text.lastIndexOf('/')
  const addressText = slash < 0 ? text : text.slice(0, slash)
  const address = parseAddress(addressText)
  const expected = `an IPv${family} prefix such as ${family === 4 ? '192.0.2.0/24' : '2001:db8::/32'} or an IPv${family} address`
  if (address === null) {
    const zone = addressText.includes('%') && parseIPv6(addressText.slice(0, addressText.indexOf('%'))) !== null
    return err(`expected ${expected}, got ${JSON.stringify(text)}${zone ? ': a zone id (%...) names an interface, and has no place in a map' : ''}`)
  }
  if (address.family !== family) {
    const what = slash < 0 ? 'address' : 'prefix'
    return err(`expected ${expected} (the key's address is ${ADDRESS_BYTES[family]} bytes), got ${JSON.stringify(text)}, an IPv${address.family} ${what}`)
  }
  if (slash < 0) return ok({ family, bytes: address.bytes, length: bits })
  const lengthText = text.slice(slash + 1)
  if (!PREFIX_LENGTH.test(lengthText)) return err(`${text}: expected a prefix length from 0 to ${bits} after "/"`)
  const length = Number(lengthText)
  if (length > bits) return err(`${text}: prefix length ${length} is longer than ${bits}`)
  if (!hostBitsClear(address.bytes, length)) {
    return err(`${text}: host bits are set beyond the /${length} prefix; the network is ${formatAddress(family, network(address.bytes, length))}/${length}`)
  }
  return ok({ family, bytes: address.bytes, length })
}

/**
 * parsePrefix(text, 4) without allocating, for the many keys of a list file: writes the address's 4 bytes at
 * `out[off]` and returns the prefix length (32 for a bare address), or returns -1 for any text it does not accept as
 * an IPv4 prefix, having written nothing (parsePrefix then says why). It accepts what parsePrefix does: the address
 * as isIPv4 has it (four decimal numbers 0-255 without leading zeros, dots between: node's lib/internal/net.js
 * IPv4Reg), a length as PREFIX_LENGTH, no host bits (test/maps/addresses.test.ts holds the two side by side).
 */
export function writeIPv4Prefix(text: string, out: Buffer, off: number): number {
  const slash = text.lastIndexOf('/')
  const end = slash < 0 ? text.length : slash
  let address = 0
  let i = 0
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      if (text.charCodeAt(i) !== 0x2e) return -1
      i++
    }
    const n = decimal(text, i, end)
    if (n < 0 || n > 255) return -1
    address = address * 256 + n
    i += n < 10 ? 1 : n < 100 ? 2 : 3
  }
  if (i !== end) return -1
  let length = 32
  if (slash >= 0) {
    length = decimal(text, slash + 1, text.length)
    if (length < 0 || length > 32 || slash + 1 + (length < 10 ? 1 : 2) !== text.length) return -1
    // Host bits: the low 32 - length bits of the address (`&` reads it as an int32: the same bits).
    if (length < 32 && (address & (0xffffffff >>> length)) !== 0) return -1
  }
  out.writeUInt32BE(address, off)
  return length
}

/**
 * The decimal number at `text[from]`: up to 3 digits, before `end` or a non-digit, no leading zero (`0` alone is
 * one); -1 for none. Its length is that of the number written back (callers check where it ends).
 */
function decimal(text: string, from: number, end: number): number {
  let n = 0
  let i = from
  for (; i < end && i - from < 3; i++) {
    const d = text.charCodeAt(i) - 0x30
    if (d < 0 || d > 9) break
    n = n * 10 + d
  }
  if (i === from || (i - from > 1 && text.charCodeAt(from) === 0x30)) return -1
  // A fourth digit: no number of 3 digits at most.
  if (i < end && i - from === 3) {
    const d = text.charCodeAt(i) - 0x30
    if (d >= 0 && d <= 9) return -1
  }
  return n
}

/** The address with every bit after the first `length` cleared. */
export function network(bytes: Buffer, length: number): Buffer {
  const out = Buffer.from(bytes)
  for (let i = 0; i < out.length; i++) {
    const keep = Math.min(8, Math.max(0, length - i * 8))
    out[i] = out[i]! & ((0xff00 >> keep) & 0xff)
  }
  return out
}

export function hostBitsClear(bytes: Buffer, length: number): boolean {
  return network(bytes, length).equals(bytes)
}

/** `192.0.2.0/24`, or the bare address at full length: the form an operator writes, for decode. */
export function formatPrefix(family: Family, bytes: Buffer, length: number): string {
  const address = formatAddress(family, bytes)
  return length === ADDRESS_BYTES[family] * 8 ? address : `${address}/${length}`
}
