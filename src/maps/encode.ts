/**
 * Declared map contents (issue 13): an operator's value, as the `yaml` package's toJS gives it, <-> the bytes of a
 * map key or value, typed by the map's BTF (btf.ts). Pure: no I/O, never throws on bad input or bad BTF; problems
 * come back as values, each with the key path of the part of the value it concerns.
 *
 * Byte order: integers are written in host order, and host order is taken to be little-endian: xdplinkd runs on
 * x86-64 and arm64 (both little-endian as Linux runs them). The exceptions are the kernel's big-endian typedefs
 * (`__be16`, `__be32`, `__be64`, include/uapi/linux/types.h), written in network order, and addresses, which are
 * bytes in network order.
 *
 * The forms, by what the BTF type is (docs/maps.md has them with examples):
 * - integer: a number, a bigint, or a string in decimal or 0x hex (64-bit values beyond 2^53 need one of the last
 *   two: YAML reads an unquoted one as an inexact number); range-checked by size (or bits) and signedness.
 * - `__be16`/`__be32`/`__be64`: an integer, stored big-endian (443 for a `__be16` port); a `__be32` also takes an
 *   IPv4 address, and decodes as one.
 * - bool (`_Bool`): true or false only.
 * - enum: an enumerator's name, or a number that is one of its values (a negative one as C writes it, also in
 *   clang < 15's BTF, which holds it as a u32).
 * - float, double: a number.
 * - char array: a UTF-8 string of at most nelems - 1 bytes, NUL-padded: the terminating NUL is always there, since
 *   the program most likely reads the array as a C string (bpf_strncmp, %s). A list of integers also does.
 * - unsigned byte array (`__u8[N]`): a list of N integers; of 4 bytes also an IPv4 address, of 16 an IPv6 address,
 *   of 6 a MAC address (aa:bb:cc:dd:ee:ff), which is also how such arrays decode.
 * - other arrays: a list of exactly nelems elements. Nothing is filled in for the operator: a short list is more
 *   likely a mistake than a wish for zeros, and a zero is quick to write.
 * - struct: a mapping of every member by name. An unknown member is an error, and so is a missing one, except
 *   members with no name that are not structs or unions (padding, which is zero) and members of no bytes (a
 *   flexible array). Members of an anonymous struct or union member are named as if they were the outer struct's
 *   (C11). Padding is written as zeros: a hash map compares the whole key, padding included.
 * - union: a mapping with exactly one member.
 * - LPM trie key, a struct {__u32 prefixlen; <4- or 16-byte byte array or __be32> data} (struct
 *   bpf_lpm_trie_key_u8 in <linux/bpf.h>): `192.0.2.0/24`, `2001:db8::/32` or a bare address (its full length),
 *   or the struct's mapping. prefixlen is host order, the address network order.
 *
 * decode is the inverse: it gives the form an operator writes (prefixes, addresses, enum names, strings, mappings
 * in member order; integers as numbers, as bigints beyond 2^53), so that decode(encode(x)) is x for a value in that
 * form. Bytes that no value encodes to (a bool of 2, an enum value without a name, an LPM key with host bits set) are
 * an error, but padding is not read.
 */
import { stringify } from 'yaml'
import { formatKeyPath, type KeyPath } from '../config/errors.js'
import { suggest } from '../config/suggest.js'
import { err, ok, type Result } from '../result.js'
import {
  ADDRESS_BYTES,
  formatAddress,
  formatIPv4,
  formatIPv6,
  formatMac,
  formatPrefix,
  hostBitsClear,
  network,
  parseIPv4,
  parseIPv6,
  parseMac,
  parsePrefix,
  writeIPv4Prefix,
  type Family,
} from './addresses.js'
import type { BtfArray, BtfComposite, BtfEnum, BtfMember, BtfType, BtfTypes } from './btf.js'

export interface EncodeError {
  /** Relative to the value given to encode: member names and list indexes. */
  path: KeyPath
  message: string
}

/**
 * A map's value is at most KMALLOC_MAX_SIZE (4 MiB with 4 KiB pages; array_map_alloc_check, kernel/bpf/arraymap.c,
 * refuses more with E2BIG), and keys are smaller; a larger size is a mistake, not something to allocate.
 */
const KMALLOC_MAX_SIZE = 4 << 20

/** Deeper nesting than C programs have. */
const MAX_DEPTH = 64

/**
 * Steps (types visited) one encode or decode may take: this many, and STEPS_PER_BYTE more per byte of the key or
 * value. A walk visits about one type per byte or fewer (bitfields share bytes), a union's decode each of its
 * members; BTF crafted so that unions of unions multiply the ways to read some bytes would otherwise take
 * exponential time.
 */
const BASE_STEPS = 1 << 16
const STEPS_PER_BYTE = 64

/** The typedefs of include/uapi/linux/types.h that mean network order, with their sizes. */
const BIG_ENDIAN_TYPEDEFS: ReadonlyMap<string, number> = new Map([
  ['__be16', 2],
  ['__be32', 4],
  ['__be64', 8],
])

/** How a type's value is written: the BTF kind, and the conveniences its shape allows. */
type Form =
  | { kind: 'bool'; size: number; bitOffset: number; bits: number }
  | {
      kind: 'int'
      size: number
      signed: boolean
      /** BTF_INT_OFFSET and BTF_INT_BITS: 0 and size * 8 for every type clang emits. */
      bitOffset: number
      bits: number
      /** A __be16/__be32/__be64. */
      bigEndian: boolean
      /** A __be32: an IPv4 address too. */
      ipv4: boolean
    }
  | { kind: 'enum'; type: BtfEnum }
  | { kind: 'float'; size: number }
  | { kind: 'string'; array: BtfArray }
  | { kind: 'bytes'; array: BtfArray; address: 'ipv4' | 'ipv6' | 'mac' | null }
  | { kind: 'array'; array: BtfArray; elemSize: number }
  | { kind: 'lpm'; type: BtfComposite; family: Family; data: BtfMember }
  | { kind: 'composite'; type: BtfComposite }

type Scalar = Extract<Form, { kind: 'bool' | 'int' | 'enum' }>

type Concrete = Exclude<BtfType, { kind: 'typedef' | 'modifier' }>

/** A type with its typedefs and modifiers looked through; `typedefs` are the names met, outermost first. */
function resolve(types: BtfTypes, id: number): Result<{ type: Concrete; typedefs: string[] }, string> {
  const typedefs: string[] = []
  let cur = id
  for (let i = 0; i <= MAX_DEPTH; i++) {
    if (cur === 0) return err('BTF: the type is void')
    const t = types.get(cur)
    if (t === undefined) return err(`BTF: type [${cur}] is missing`)
    if (t.kind === 'typedef') typedefs.push(t.name)
    else if (t.kind !== 'modifier') return ok({ type: t, typedefs })
    cur = t.type
  }
  return err(`BTF: type [${id}] is a chain of more than ${MAX_DEPTH} typedefs and modifiers`)
}

/** The type as C writes it, for messages: its typedef's name, `struct limits`, `__u8[4]`. */
export function typeName(types: BtfTypes, id: number, depth = 0): string {
  const t = types.get(id)
  if (id === 0) return 'void'
  if (t === undefined || depth > MAX_DEPTH) return `[${id}]`
  switch (t.kind) {
    case 'typedef':
    case 'int':
    case 'float':
      return t.name
    case 'modifier':
      return typeName(types, t.type, depth + 1)
    case 'enum':
    case 'struct':
    case 'union':
      return t.name === '' ? `anonymous ${t.kind}` : `${t.kind} ${t.name}`
    case 'array':
      return `${typeName(types, t.elem, depth + 1)}[${t.nelems}]`
    case 'other':
      return t.name === '' ? t.what : `${t.what} ${t.name}`
  }
}

/** Bytes a value of the type takes. */
export function sizeOf(types: BtfTypes, id: number, depth = 0): Result<number, string> {
  if (depth > MAX_DEPTH) return err(`BTF: types nested more than ${MAX_DEPTH} deep`)
  const r = resolve(types, id)
  if (!r.ok) return r
  const t = r.value.type
  switch (t.kind) {
    case 'array': {
      const elem = sizeOf(types, t.elem, depth + 1)
      return elem.ok ? ok(elem.value * t.nelems) : elem
    }
    case 'other':
      return err(`a ${t.what} has no value a map can hold`)
    default:
      return ok(t.size)
  }
}

function formOf(types: BtfTypes, id: number, depth: number): Result<Form, string> {
  if (depth > MAX_DEPTH) return err(`BTF: types nested more than ${MAX_DEPTH} deep`)
  const r = resolve(types, id)
  if (!r.ok) return r
  const { type: t, typedefs } = r.value
  switch (t.kind) {
    case 'int': {
      if (!(t.size >= 1 && t.size <= 16) || t.bits < 1 || t.bitOffset < 0 || t.bitOffset + t.bits > t.size * 8) {
        return err(`BTF: ${t.name} has ${t.bits} bits at bit ${t.bitOffset} of ${t.size} bytes`)
      }
      if (t.bool) return ok({ kind: 'bool', size: t.size, bitOffset: t.bitOffset, bits: t.bits })
      const be = typedefs.find((n) => BIG_ENDIAN_TYPEDEFS.get(n) === t.size)
      const bigEndian = be !== undefined && !t.signed && t.bitOffset === 0 && t.bits === t.size * 8
      return ok({ kind: 'int', size: t.size, signed: t.signed, bitOffset: t.bitOffset, bits: t.bits, bigEndian, ipv4: bigEndian && be === '__be32' })
    }
    case 'float':
      if (t.size !== 4 && t.size !== 8) return err(`floats of ${t.size} bytes (${t.name}) are not supported: only float and double`)
      return ok({ kind: 'float', size: t.size })
    case 'enum':
      if (!(t.size >= 1 && t.size <= 8)) return err(`BTF: ${typeName(types, id)} has ${t.size} bytes`)
      return ok({ kind: 'enum', type: t })
    case 'array': {
      const elem = resolve(types, t.elem)
      const e = elem.ok ? elem.value.type : null
      // One byte that is a whole int: `char` (BTF_INT_CHAR, or clang's name for it: clang sets only
      // BTF_INT_SIGNED, and on arm64 not even that) holds text; unsigned char (__u8) holds bytes. A `char x[0]`
      // (a flexible array) has no room for a string's NUL: it is a list, an empty one.
      if (e !== null && e.kind === 'int' && e.size === 1 && e.bits === 8 && e.bitOffset === 0 && !e.bool) {
        if ((e.char || e.name === 'char') && t.nelems > 0) return ok({ kind: 'string', array: t })
        if (!e.signed) {
          const address = t.nelems === 4 ? 'ipv4' : t.nelems === 16 ? 'ipv6' : t.nelems === 6 ? 'mac' : null
          return ok({ kind: 'bytes', array: t, address })
        }
      }
      const elemSize = sizeOf(types, t.elem, depth + 1)
      return elemSize.ok ? ok({ kind: 'array', array: t, elemSize: elemSize.value }) : elemSize
    }
    case 'struct':
    case 'union': {
      const lpm = lpmOf(types, t, depth)
      return ok(lpm ?? { kind: 'composite', type: t })
    }
    case 'other':
      return err(`a ${t.what} has no value a map can hold`)
  }
}

/** {__u32 prefixlen; data} where data is an IPv4 or IPv6 address: struct bpf_lpm_trie_key_u8's layout. */
function lpmOf(types: BtfTypes, t: BtfComposite, depth: number): Extract<Form, { kind: 'lpm' }> | null {
  if (t.kind !== 'struct' || t.members.length !== 2) return null
  const [prefixlen, data] = t.members as [BtfMember, BtfMember]
  if (prefixlen.name !== 'prefixlen' || prefixlen.bitOffset !== 0 || prefixlen.bitfieldSize !== 0) return null
  if (data.bitOffset !== 32 || data.bitfieldSize !== 0) return null
  const p = formOf(types, prefixlen.type, depth + 1)
  if (!p.ok || p.value.kind !== 'int' || p.value.size !== 4 || p.value.bits !== 32 || p.value.signed || p.value.bigEndian) return null
  const d = formOf(types, data.type, depth + 1)
  if (!d.ok) return null
  let family: Family | null = null
  if (d.value.kind === 'int' && d.value.ipv4) family = 4
  if (d.value.kind === 'bytes' && d.value.address === 'ipv4') family = 4
  if (d.value.kind === 'bytes' && d.value.address === 'ipv6') family = 6
  if (family === null || t.size !== 4 + ADDRESS_BYTES[family]) return null
  return { kind: 'lpm', type: t, family, data }
}

/** How a value shows after "got". */
function shown(v: unknown): string {
  if (v === undefined) return 'nothing'
  if (v === null) return 'null (no value)'
  if (typeof v === 'string') {
    const s = JSON.stringify(v)
    return s.length > 80 ? `${s.slice(0, 76)}..."` : s
  }
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : `a list of ${v.length}`
  if (typeof v === 'object') return 'a mapping'
  return String(v)
}

/** A list of names for a message, cut after 16. */
function names(list: readonly string[]): string {
  return list.length <= 16 ? list.join(', ') : `${list.slice(0, 16).join(', ')}, ... (${list.length - 16} more)`
}

/** How far a suggestion may be from a word: 2 edits, fewer for a short word (`x` is 1 edit from every `y`). */
function editsFor(word: string): number {
  return Math.min(2, word.length - 1)
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** A property set as data even when it is named `__proto__` (a valid C identifier). */
function put(out: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true })
}

const DECIMAL = /^-?(0|[1-9][0-9]*)$/
const HEX = /^-?0[xX][0-9a-fA-F]+$/

/** The integer a number, bigint or decimal/hex string stands for, or null (with why, for a number). */
function integerOf(value: unknown): { value: bigint | null; note: string } {
  if (typeof value === 'bigint') return { value, note: '' }
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) return { value: BigInt(value), note: '' }
    // YAML reads 18446744073709551615 as the number 18446744073709552000 unless told to use bigints.
    if (Number.isInteger(value)) return { value: null, note: ': beyond 2^53 a number is not exact, write it in quotes' }
  }
  if (typeof value === 'string') {
    if (DECIMAL.test(value)) return { value: BigInt(value), note: '' }
    if (HEX.test(value)) {
      const neg = value.startsWith('-')
      const v = BigInt(neg ? value.slice(1) : value)
      return { value: neg ? -v : v, note: '' }
    }
  }
  return { value: null, note: '' }
}

function limits(bits: number, signed: boolean): [bigint, bigint] {
  const b = BigInt(bits)
  return signed ? [-(1n << (b - 1n)), (1n << (b - 1n)) - 1n] : [0n, (1n << b) - 1n]
}

function integer(value: unknown, bits: number, signed: boolean, what = 'an integer'): Result<bigint, string> {
  const [lo, hi] = limits(bits, signed)
  const { value: v, note } = integerOf(value)
  if (v === null || v < lo || v > hi) return err(`expected ${what} from ${lo} to ${hi}, got ${shown(value)}${note}`)
  return ok(v)
}

/** The number decode gives: a number while it is exact, a bigint beyond. */
function numeric(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v
}

function enumName(e: BtfEnum): string {
  return e.name === '' ? 'the anonymous enum' : `enum ${e.name}`
}

function enumValue(e: BtfEnum, value: unknown, bits: number): Result<bigint, string> {
  const name = enumName(e)
  const all = e.values.map((v) => v.name)
  let raw: bigint
  if (typeof value === 'string') {
    const hit = e.values.find((v) => v.name === value)
    if (hit === undefined) {
      // Enumerators are usually upper case, and an operator may not write them so.
      const hint = suggest(value, all, editsFor(value)) ?? all.find((n) => n.toLowerCase() === value.toLowerCase()) ?? null
      return err(`unknown value ${JSON.stringify(value)} of ${name} (values: ${names(all)})${hint === null ? '' : `; did you mean ${hint}?`}`)
    }
    raw = hit.value
  } else {
    const v = typeof value === 'number' || typeof value === 'bigint' ? integerOf(value).value : null
    // A BTF_KIND_ENUM's values are __s32 (struct btf_enum) read as u32 without kind_flag, and clang < 15 never
    // sets kind_flag: C's `DOWN = -1` is 4294967295 in such BTF. The number C gives an enumerator is its value
    // too, so a negative one within __s32 is taken as the u32 it is stored as.
    const stored = v !== null && !e.signed && e.size <= 4 && v < 0n && v >= -(1n << 31n) ? BigInt.asUintN(32, v) : v
    const hit = e.values.find((x) => x.value === stored)
    if (hit === undefined) {
      const pairs = e.values.map((x) => `${x.name}=${x.value}`)
      return err(`expected a name of ${name} or one of its values (${names(pairs)}), got ${shown(value)}`)
    }
    raw = hit.value
  }
  const [lo, hi] = limits(bits, e.signed)
  // Only a bitfield narrower than the enum can fail here.
  if (raw < lo || raw > hi) return err(`expected a value of ${name} that fits in ${bits} bits (from ${lo} to ${hi}), got ${shown(value)} (${raw})`)
  return ok(raw)
}

/** The raw integer of a bool, integer or enum, `bits` wide (the type's, or a bitfield's). */
function scalarValue(form: Scalar, value: unknown, bits: number, bitfield: boolean): Result<bigint, string> {
  switch (form.kind) {
    case 'bool':
      if (typeof value !== 'boolean') return err(`expected true or false, got ${shown(value)}`)
      return ok(value ? 1n : 0n)
    case 'enum':
      return enumValue(form.type, value, bits)
    case 'int': {
      if (form.ipv4 && !bitfield) {
        const v4 = typeof value === 'string' ? parseIPv4(value) : null
        if (v4 !== null) return ok(BigInt(v4.readUInt32BE(0)))
        return integer(value, bits, false, 'an IPv4 address or an integer')
      }
      return integer(value, bits, form.signed)
    }
  }
}

/**
 * Where a bool's, integer's or enum's value lies in its bytes: the whole of them (in host order, or network order
 * for a __be type), or `bits` bits from `bitOffset` (BTF_INT_OFFSET/BTF_INT_BITS).
 */
function layoutOf(form: Scalar): { size: number; signed: boolean; bigEndian: boolean; bitOffset: number; bits: number; whole: boolean } {
  if (form.kind === 'enum') {
    const size = form.type.size
    return { size, signed: form.type.signed, bigEndian: false, bitOffset: 0, bits: size * 8, whole: true }
  }
  const signed = form.kind === 'int' && form.signed
  const bigEndian = form.kind === 'int' && form.bigEndian
  return { size: form.size, signed, bigEndian, bitOffset: form.bitOffset, bits: form.bits, whole: form.bitOffset === 0 && form.bits === form.size * 8 }
}

function writeInt(buf: Buffer, off: number, size: number, raw: bigint, bigEndian: boolean): void {
  let u = BigInt.asUintN(size * 8, raw)
  for (let i = 0; i < size; i++) {
    buf[bigEndian ? off + size - 1 - i : off + i] = Number(u & 0xffn)
    u >>= 8n
  }
}

function readInt(buf: Buffer, off: number, size: number, signed: boolean, bigEndian: boolean): bigint {
  let u = 0n
  for (let i = 0; i < size; i++) u = (u << 8n) | BigInt(buf[bigEndian ? off + i : off + size - 1 - i]!)
  return signed ? BigInt.asIntN(size * 8, u) : u
}

/** Bit i of a little-endian value is bit i % 8 of byte i / 8: how clang lays out bitfields on x86-64 and arm64. */
function writeBits(buf: Buffer, bit: number, bits: number, raw: bigint): void {
  const u = BigInt.asUintN(bits, raw)
  for (let i = 0; i < bits; i++) {
    if ((u >> BigInt(i)) & 1n) buf[(bit + i) >> 3] = buf[(bit + i) >> 3]! | (1 << ((bit + i) & 7))
  }
}

function readBits(buf: Buffer, bit: number, bits: number, signed: boolean): bigint {
  let u = 0n
  for (let i = bits - 1; i >= 0; i--) u = (u << 1n) | BigInt((buf[(bit + i) >> 3]! >> ((bit + i) & 7)) & 1)
  return signed ? BigInt.asIntN(bits, u) : u
}

/** What one encode or decode carries along. */
interface Walk {
  types: BtfTypes
  buf: Buffer
  /** Shared with the encodes a union's decode makes to check a member. */
  work: { steps: number; max: number }
  names: Map<BtfComposite, string[]>
}

/** One step of a walk: the form of `id`, or why there is none; null once the steps have run out and it was said. */
function visit(w: Walk, id: number, depth: number): Result<Form, string | null> {
  if (++w.work.steps > w.work.max) return err(w.work.steps === w.work.max + 1 ? tooComplex(w) : null)
  return formOf(w.types, id, depth)
}

function exhausted(w: Walk): boolean {
  return w.work.steps > w.work.max
}

function tooComplex(w: Walk): string {
  return `BTF: the type takes more than ${w.work.max} steps to walk`
}

function walk(types: BtfTypes, buf: Buffer): Walk {
  return { types, buf, work: { steps: 0, max: BASE_STEPS + STEPS_PER_BYTE * buf.length }, names: new Map() }
}

interface Enc extends Walk {
  errors: EncodeError[]
}

/**
 * A type that holds itself by value (directly or through members, arrays, typedefs) has no size and no end. The
 * kernel refuses such BTF (btf_resolve: "Loop detected"); hand-made or corrupt types are checked here, once per
 * call, so that the walks below can recurse without looking for loops.
 */
function checkNoLoop(types: BtfTypes, id: number): Result<void, string> {
  const children = (x: number): number[] => {
    const t = types.get(x)
    if (t === undefined) return []
    if (t.kind === 'typedef' || t.kind === 'modifier') return [t.type]
    if (t.kind === 'array') return [t.elem]
    if (t.kind === 'struct' || t.kind === 'union') return t.members.map((m) => m.type)
    return []
  }
  // 1: on the current path, 2: done. Iterative: a chain of typedefs may be long.
  const state = new Map<number, 1 | 2>([[id, 1]])
  const stack: { id: number; next: number[] }[] = [{ id, next: children(id) }]
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!
    const child = top.next.pop()
    if (child === undefined) {
      state.set(top.id, 2)
      stack.pop()
      continue
    }
    const seen = state.get(child)
    if (seen === 1) {
      const t = types.get(child)!
      const what = t.kind === 'struct' || t.kind === 'union' || t.kind === 'typedef' ? `${t.kind} ${t.name}` : t.kind
      return err(`BTF: ${what} [${child}] contains itself`)
    }
    if (seen === undefined) {
      state.set(child, 1)
      stack.push({ id: child, next: children(child) })
    }
  }
  return ok(undefined)
}

/**
 * `value` as a `typeId` of exactly `size` bytes (the map's key_size or value_size, checked against the BTF type's).
 * Every problem is reported, each at its place in the value.
 */
export function encode(types: BtfTypes, typeId: number, value: unknown, size: number): Result<Buffer, EncodeError[]> {
  const compiled = encoder(types, typeId, size)
  if (!compiled.ok) return compiled
  const buf = Buffer.alloc(size)
  const problems = compiled.value(value, buf, 0)
  return problems === null ? ok(buf) : err(problems)
}

/**
 * Writes `value` as the encoder's type at `out[off]` (its size in bytes, zeroed first); returns the value's
 * problems, as encode does, or null.
 */
export type Encoder = (value: unknown, out: Buffer, off: number) => EncodeError[] | null

/**
 * encode for many values of one type, such as the 100,000 prefixes of a list file: the type is checked (size, no
 * loop) once rather than per value, and each value is written in place, into a buffer of many keys, rather than a
 * Buffer of its own. An IPv4 LPM key given as a prefix text, what a block list holds, is parsed and written without
 * walking the type (addresses.ts writeIPv4Prefix); any other value, or a text that is no IPv4 prefix, takes the walk,
 * which says what is wrong with it. Fails as encode does when the type does not fit `size`.
 */
export function encoder(types: BtfTypes, typeId: number, size: number): Result<Encoder, EncodeError[]> {
  const own = checkSize(types, typeId, size)
  if (!own.ok) return err([{ path: [], message: own.error }])
  const max = BASE_STEPS + STEPS_PER_BYTE * size
  const walked: Encoder = (value, out, off) => {
    out.fill(0, off, off + size)
    const c: Enc = { types, buf: out, work: { steps: 0, max }, names: new Map(), errors: [] }
    encodeAt(c, typeId, value, off, [], 0)
    return c.errors.length > 0 ? c.errors : null
  }
  const form = formOf(types, typeId, 0)
  if (!form.ok || form.value.kind !== 'lpm' || form.value.family !== 4) return ok(walked)
  // lpmOf: {__u32 prefixlen; 4 bytes of address}, 8 bytes, every one written here.
  return ok((value, out, off) => {
    const length = typeof value === 'string' ? writeIPv4Prefix(value, out, off + 4) : -1
    if (length < 0) return walked(value, out, off)
    out.writeUInt32LE(length, off)
    return null
  })
}

function checkSize(types: BtfTypes, typeId: number, size: number): Result<void, string> {
  const loop = checkNoLoop(types, typeId)
  if (!loop.ok) return loop
  const own = sizeOf(types, typeId)
  if (!own.ok) return own
  if (!Number.isSafeInteger(size) || size < 0 || size > KMALLOC_MAX_SIZE) return err(`a map cannot have a size of ${size} bytes`)
  if (own.value !== size) return err(`the map's size is ${size} bytes, but its BTF type ${typeName(types, typeId)} takes ${own.value}`)
  return ok(undefined)
}

function encodeAt(c: Enc, id: number, value: unknown, off: number, path: KeyPath, depth: number): void {
  const problem = (message: string): void => void c.errors.push({ path, message })
  const f = visit(c, id, depth)
  if (!f.ok) return f.error === null ? undefined : problem(f.error)
  const form = f.value
  switch (form.kind) {
    case 'bool':
    case 'int':
    case 'enum': {
      const l = layoutOf(form)
      const raw = scalarValue(form, value, l.bits, false)
      if (!raw.ok) return problem(raw.error)
      if (l.whole) return writeInt(c.buf, off, l.size, raw.value, l.bigEndian)
      return writeBits(c.buf, off * 8 + l.bitOffset, l.bits, raw.value)
    }
    case 'float': {
      let v: number | null = typeof value === 'number' ? value : null
      if (typeof value === 'bigint' && BigInt(Number(value)) === value) v = Number(value)
      if (v === null) return problem(`expected a number, got ${shown(value)}`)
      if (form.size === 4) {
        // A double beyond float's range would become an infinity: not what was written.
        if (Number.isFinite(v) && !Number.isFinite(Math.fround(v))) return problem(`expected a number within float's range (±3.4028234663852886e+38), got ${v}`)
        c.buf.writeFloatLE(v, off)
      } else c.buf.writeDoubleLE(v, off)
      return
    }
    case 'string': {
      const n = form.array.nelems
      if (typeof value !== 'string') {
        if (Array.isArray(value)) return encodeList(c, form.array, 1, value, off, path, depth)
        return problem(`expected a string of at most ${n - 1} bytes or a list of ${n} integers (${typeName(c.types, id)}), got ${shown(value)}`)
      }
      const bytes = Buffer.from(value, 'utf8')
      if (bytes.toString('utf8') !== value) return problem(`expected a string of valid Unicode, got ${shown(value)}`)
      if (bytes.includes(0)) return problem(`expected a string without NUL characters, got ${shown(value)}`)
      if (bytes.length > n - 1) {
        return problem(`expected a string of at most ${n - 1} bytes (${typeName(c.types, id)}, with its terminating NUL), got ${bytes.length} bytes: ${shown(value)}`)
      }
      bytes.copy(c.buf, off)
      return
    }
    case 'bytes': {
      if (Array.isArray(value)) return encodeList(c, form.array, 1, value, off, path, depth)
      const n = form.array.nelems
      const list = `a list of ${n} integers from 0 to 255`
      const parsed = typeof value !== 'string' ? null : form.address === 'ipv4' ? parseIPv4(value) : form.address === 'ipv6' ? parseIPv6(value) : form.address === 'mac' ? parseMac(value) : null
      if (parsed !== null) return void parsed.copy(c.buf, off)
      const what = { ipv4: 'an IPv4 address', ipv6: 'an IPv6 address', mac: 'a MAC address (aa:bb:cc:dd:ee:ff)' }
      const expected = form.address === null ? list : `${what[form.address]} or ${list}`
      return problem(`expected ${expected}, got ${shown(value)}${typeof value === 'string' ? bytesHint(value, form.address) : ''}`)
    }
    case 'array': {
      if (Array.isArray(value)) return encodeList(c, form.array, form.elemSize, value, off, path, depth)
      return problem(`expected a list of ${form.array.nelems} elements (${typeName(c.types, id)}), got ${shown(value)}`)
    }
    case 'lpm': {
      const dataOff = off + 4
      if (typeof value === 'string') {
        const prefix = parsePrefix(value, form.family)
        if (!prefix.ok) return problem(prefix.error)
        c.buf.writeUInt32LE(prefix.value.length, off)
        prefix.value.bytes.copy(c.buf, dataOff)
        return
      }
      const before = c.errors.length
      encodeComposite(c, form.type, value, off * 8, path, depth, typeName(c.types, id), 'or a prefix such as ' + (form.family === 4 ? '192.0.2.0/24' : '2001:db8::/32'))
      if (c.errors.length > before) return
      // The mapping form is held to the prefix form's rules: the trie refuses a longer prefix (EINVAL,
      // trie_update_elem), and host bits make two spellings of one trie node.
      const bits = ADDRESS_BYTES[form.family] * 8
      const length = c.buf.readUInt32LE(off)
      const bytes = c.buf.subarray(dataOff, dataOff + ADDRESS_BYTES[form.family])
      if (length > bits) return void c.errors.push({ path: [...path, 'prefixlen'], message: `prefix length ${length} is longer than ${bits}` })
      if (!hostBitsClear(bytes, length)) {
        const net = formatAddress(form.family, network(bytes, length))
        c.errors.push({ path: [...path, form.data.name], message: `host bits are set beyond the /${length} prefix; the network is ${net}` })
      }
      return
    }
    case 'composite':
      return encodeComposite(c, form.type, value, off * 8, path, depth, typeName(c.types, id), '')
  }
}

/** Why an address text does not fit a byte array, when it is one of another kind. */
function bytesHint(text: string, address: 'ipv4' | 'ipv6' | 'mac' | null): string {
  if (text.includes('%') && parseIPv6(text.slice(0, text.indexOf('%'))) !== null) return ': a zone id (%...) names an interface, and has no place in a map'
  if (text.includes('/') && address !== null) return ': a prefix needs an LPM trie key {__u32 prefixlen; ...}, not a plain byte array'
  if (address !== 'ipv4' && parseIPv4(text) !== null) return ': an IPv4 address takes a 4-byte array'
  if (address !== 'ipv6' && parseIPv6(text) !== null) return ': an IPv6 address takes a 16-byte array'
  if (address !== 'mac' && parseMac(text) !== null) return ': a MAC address takes a 6-byte array'
  return ''
}

function encodeList(c: Enc, array: BtfArray, elemSize: number, value: unknown[], off: number, path: KeyPath, depth: number): void {
  if (value.length !== array.nelems) {
    const name = typeName(c.types, array.id)
    return void c.errors.push({ path, message: `expected a list of exactly ${array.nelems} elements (${name}), got ${value.length}` })
  }
  // Indexes, not forEach: a sparse list's holes are values that are missing, not skipped.
  for (let i = 0; i < value.length; i++) encodeAt(c, array.elem, value[i], off + i * elemSize, [...path, i], depth + 1)
}

/** A member with no name that is a struct or union: its members are named as the outer composite's. */
function anonymous(types: BtfTypes, m: BtfMember): BtfComposite | null {
  if (m.name !== '') return null
  const r = resolve(types, m.type)
  return r.ok && (r.value.type.kind === 'struct' || r.value.type.kind === 'union') ? r.value.type : null
}

/**
 * The members a value may name: padding left out, an anonymous composite member's own members in its place. Kept
 * per walk: a union of anonymous unions would otherwise list the same names again at each level.
 */
function memberNames(w: Walk, t: BtfComposite, depth = 0): string[] {
  const known = w.names.get(t)
  if (known !== undefined) return known
  if (depth > MAX_DEPTH) return []
  const out = [
    ...new Set(
      t.members.flatMap((m) => {
        if (m.name !== '') return [m.name]
        const inner = anonymous(w.types, m)
        return inner === null ? [] : memberNames(w, inner, depth + 1)
      }),
    ),
  ]
  w.names.set(t, out)
  return out
}

/** Members that take a value: named ones and anonymous structs and unions (a nameless int is padding). */
function valueMembers(types: BtfTypes, t: BtfComposite): BtfMember[] {
  return t.members.filter((m) => m.name !== '' || anonymous(types, m) !== null)
}

/** Where a member lies, checked against the composite's bytes: hand-made BTF could place it outside. */
function memberSpan(types: BtfTypes, t: BtfComposite, m: BtfMember, depth: number): Result<{ bits: number }, string> {
  const label = m.name === '' ? 'an anonymous member' : `member "${m.name}"`
  let bits = m.bitfieldSize
  if (bits === 0) {
    const size = sizeOf(types, m.type, depth + 1)
    if (!size.ok) return err(`${label}: ${size.error}`)
    if (m.bitOffset % 8 !== 0) return err(`BTF: ${label} of ${t.kind} ${t.name} starts at bit ${m.bitOffset}, inside a byte`)
    bits = size.value * 8
  }
  if (m.bitOffset < 0 || m.bitOffset + bits > t.size * 8) return err(`BTF: ${label} of ${t.kind} ${t.name} lies outside its ${t.size} bytes`)
  return ok({ bits })
}

function encodeComposite(c: Enc, t: BtfComposite, value: unknown, bit0: number, path: KeyPath, depth: number, name: string, or: string): void {
  const all = memberNames(c, t)
  if (!isMapping(value)) {
    const what = t.kind === 'union' ? `a mapping with one member of ${name} (${names(all)})` : `a mapping of the members of ${name} (${names(all)})`
    return void c.errors.push({ path, message: `expected ${what}${or === '' ? '' : ` ${or}`}, got ${shown(value)}` })
  }
  for (const key of Object.keys(value)) {
    if (all.includes(key)) continue
    const hint = suggest(key, all, editsFor(key))
    c.errors.push({ path: [...path, key], message: `unknown member ${JSON.stringify(key)} of ${name} (members: ${names(all)})${hint === null ? '' : `; did you mean ${hint}?`}` })
  }
  encodeMembers(c, t, value, bit0, path, depth, name, name)
}

/**
 * `name` is the composite the value is a mapping of, `label` the one whose members these are: the same, or `an
 * anonymous union in struct pkt`.
 */
function encodeMembers(c: Enc, t: BtfComposite, obj: Record<string, unknown>, bit0: number, path: KeyPath, depth: number, name: string, label: string): void {
  if (depth > MAX_DEPTH) return void c.errors.push({ path, message: `BTF: types nested more than ${MAX_DEPTH} deep` })
  const given = (m: BtfMember): string[] => {
    const inner = anonymous(c.types, m)
    const ns = inner === null ? [m.name] : memberNames(c, inner)
    return ns.filter((n) => Object.hasOwn(obj, n))
  }
  const members = valueMembers(c.types, t)
  if (t.kind === 'union') {
    const chosen = members.filter((m) => given(m).length > 0)
    if (chosen.length !== 1) {
      const got = chosen.length === 0 ? 'none' : `${chosen.length}: ${chosen.flatMap(given).join(', ')}`
      return void c.errors.push({ path, message: `expected exactly one of the members of ${label} (${names(memberNames(c, t))}), got ${got}` })
    }
    return encodeMember(c, t, chosen[0]!, obj, bit0, path, depth, name)
  }
  const missing: string[] = []
  for (const m of members) {
    if (m.name === '' || Object.hasOwn(obj, m.name)) encodeMember(c, t, m, obj, bit0, path, depth, name)
    else {
      const size = sizeOf(c.types, m.type, depth + 1)
      // A flexible array member (`__u8 data[]`) takes no bytes: there is nothing to write.
      if (!(size.ok && size.value === 0)) missing.push(JSON.stringify(m.name))
    }
  }
  if (missing.length > 0) c.errors.push({ path, message: `missing member${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${label}` })
}

function encodeMember(c: Enc, t: BtfComposite, m: BtfMember, obj: Record<string, unknown>, bit0: number, path: KeyPath, depth: number, name: string): void {
  const span = memberSpan(c.types, t, m, depth)
  if (!span.ok) return void c.errors.push({ path, message: span.error })
  const bit = bit0 + m.bitOffset
  const inner = anonymous(c.types, m)
  if (inner !== null) return encodeMembers(c, inner, obj, bit, path, depth + 1, name, `an anonymous ${inner.kind} in ${name}`)
  const inside = [...path, m.name]
  const value = obj[m.name]
  if (m.bitfieldSize === 0) return encodeAt(c, m.type, value, bit / 8, inside, depth + 1)
  const f = bitfieldForm(c.types, m, depth)
  if (!f.ok) return void c.errors.push({ path: inside, message: f.error })
  const raw = scalarValue(f.value, value, m.bitfieldSize, true)
  if (!raw.ok) return void c.errors.push({ path: inside, message: raw.error })
  writeBits(c.buf, bit, m.bitfieldSize, raw.value)
}

/**
 * A bitfield's type: an integer, bool or enum. Its bits are in host order whatever the type; a __be16 bitfield
 * (which C allows, meaninglessly) is an integer like any other.
 */
function bitfieldForm(types: BtfTypes, m: BtfMember, depth: number): Result<Scalar, string> {
  const f = formOf(types, m.type, depth + 1)
  if (!f.ok) return f
  const form = f.value
  if (form.kind !== 'int' && form.kind !== 'bool' && form.kind !== 'enum') return err(`BTF: a bitfield of ${typeName(types, m.type)}`)
  if (m.bitfieldSize > layoutOf(form).size * 8) return err(`BTF: a bitfield of ${m.bitfieldSize} bits of ${typeName(types, m.type)}`)
  return ok(form)
}

/** The operator's form of `bytes`, a `typeId`: the inverse of encode. */
export function decode(types: BtfTypes, typeId: number, bytes: Buffer): Result<unknown, string> {
  const loop = checkNoLoop(types, typeId)
  if (!loop.ok) return loop
  const own = sizeOf(types, typeId)
  if (!own.ok) return own
  if (own.value !== bytes.length) return err(`expected ${own.value} bytes for ${typeName(types, typeId)}, got ${bytes.length}`)
  return decodeAt(walk(types, bytes), typeId, 0, [], 0)
}

/**
 * One line for a key or value in messages and diffs: the decoded form as YAML flow (`192.0.2.0/24`,
 * `{ limit: 1000, log: true }`), which an operator can paste into the config; bytes that do not decode as bpftool
 * takes them (`hex 18 00 00 00 c0 a8 01 01`).
 */
export function canonical(types: BtfTypes, typeId: number, bytes: Buffer): string {
  const d = decode(types, typeId, bytes)
  if (!d.ok) return `hex ${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ')}`
  return stringify(d.value, { collectionStyle: 'flow', lineWidth: 0 }).trimEnd()
}

/** `limits.log: ` before a decode error, nothing at the top. */
function at(path: KeyPath): string {
  return path.length === 0 ? '' : `${formatKeyPath(path)}: `
}

function decodeAt(d: Walk, id: number, off: number, path: KeyPath, depth: number): Result<unknown, string> {
  const problem = (message: string): Result<never, string> => err(`${at(path)}${message}`)
  const f = visit(d, id, depth)
  if (!f.ok) return problem(f.error ?? tooComplex(d))
  const form = f.value
  switch (form.kind) {
    case 'bool':
    case 'int':
    case 'enum': {
      if (form.kind === 'int' && form.ipv4) return ok(formatIPv4(d.buf.subarray(off, off + 4)))
      const l = layoutOf(form)
      const raw = l.whole ? readInt(d.buf, off, l.size, l.signed, l.bigEndian) : readBits(d.buf, off * 8 + l.bitOffset, l.bits, l.signed)
      const v = scalarOf(form, raw)
      return v.ok ? v : problem(v.error)
    }
    case 'float':
      return ok(form.size === 4 ? d.buf.readFloatLE(off) : d.buf.readDoubleLE(off))
    case 'string': {
      const bytes = d.buf.subarray(off, off + form.array.nelems)
      const nul = bytes.indexOf(0)
      const text = nul < 0 ? null : bytes.subarray(0, nul).toString('utf8')
      // Text only when encode would give these bytes back: valid UTF-8, then NULs to the end.
      if (text !== null && Buffer.from(text, 'utf8').equals(bytes.subarray(0, nul)) && bytes.subarray(nul).every((b) => b === 0)) return ok(text)
      return decodeList(d, form.array, 1, off, path, depth)
    }
    case 'bytes': {
      const bytes = d.buf.subarray(off, off + form.array.nelems)
      if (form.address === 'ipv4') return ok(formatIPv4(bytes))
      if (form.address === 'ipv6') return ok(formatIPv6(bytes))
      if (form.address === 'mac') return ok(formatMac(bytes))
      return ok([...bytes])
    }
    case 'array':
      return decodeList(d, form.array, form.elemSize, off, path, depth)
    case 'lpm': {
      const bits = ADDRESS_BYTES[form.family] * 8
      const length = d.buf.readUInt32LE(off)
      const bytes = d.buf.subarray(off + 4, off + 4 + ADDRESS_BYTES[form.family])
      if (length > bits) return problem(`prefix length ${length} is longer than ${bits}`)
      if (!hostBitsClear(bytes, length)) return problem(`${formatAddress(form.family, bytes)}/${length}: host bits are set beyond the prefix`)
      return ok(formatPrefix(form.family, bytes, length))
    }
    case 'composite': {
      const out: Record<string, unknown> = {}
      const name = typeName(d.types, id)
      const r = decodeMembers(d, form.type, off * 8, path, depth, name, name, out)
      return r.ok ? ok(out) : r
    }
  }
}

function scalarOf(form: Scalar, raw: bigint): Result<unknown, string> {
  switch (form.kind) {
    case 'bool':
      if (raw === 0n || raw === 1n) return ok(raw === 1n)
      return err(`a bool holds ${raw}, neither 0 (false) nor 1 (true)`)
    case 'enum': {
      const hit = form.type.values.find((v) => v.value === raw)
      if (hit !== undefined) return ok(hit.name)
      return err(`${enumName(form.type)} has no name for ${raw}`)
    }
    case 'int':
      return ok(numeric(raw))
  }
}

function decodeList(d: Walk, array: BtfArray, elemSize: number, off: number, path: KeyPath, depth: number): Result<unknown[], string> {
  const out: unknown[] = []
  for (let i = 0; i < array.nelems; i++) {
    const v = decodeAt(d, array.elem, off + i * elemSize, [...path, i], depth + 1)
    if (!v.ok) return v
    out.push(v.value)
  }
  return ok(out)
}

function decodeMembers(d: Walk, t: BtfComposite, bit0: number, path: KeyPath, depth: number, name: string, label: string, out: Record<string, unknown>): Result<void, string> {
  if (depth > MAX_DEPTH) return err(`${at(path)}BTF: types nested more than ${MAX_DEPTH} deep`)
  const members = valueMembers(d.types, t)
  if (t.kind === 'struct') {
    for (const m of members) {
      const r = decodeMember(d, t, m, bit0, path, depth, name, out)
      if (!r.ok) return r
    }
    return ok(undefined)
  }
  // A union's bytes do not say which member was written: the first member whose value encodes to exactly these
  // bytes is the one given back (so decode(encode(x)) is x when x names the first member that fits).
  const start = bit0 / 8
  const bytes = d.buf.subarray(start, start + t.size)
  for (const m of members) {
    const candidate: Record<string, unknown> = {}
    if (decodeMember(d, t, m, bit0, path, depth, name, candidate).ok) {
      // The same walk's steps and names, a buffer of its own.
      const again: Enc = { ...d, buf: Buffer.alloc(t.size), errors: [] }
      encodeMembers(again, t, candidate, 0, path, depth, name, label)
      if (again.errors.length === 0 && again.buf.equals(bytes)) {
        for (const [k, v] of Object.entries(candidate)) put(out, k, v)
        return ok(undefined)
      }
    }
    // A member that failed for want of steps says nothing about the bytes.
    if (exhausted(d)) return err(`${at(path)}${tooComplex(d)}`)
  }
  return err(`${at(path)}the bytes of ${label} are the value of none of its members`)
}

function decodeMember(d: Walk, t: BtfComposite, m: BtfMember, bit0: number, path: KeyPath, depth: number, name: string, out: Record<string, unknown>): Result<void, string> {
  const span = memberSpan(d.types, t, m, depth)
  if (!span.ok) return err(`${at(path)}${span.error}`)
  const bit = bit0 + m.bitOffset
  const inner = anonymous(d.types, m)
  if (inner !== null) return decodeMembers(d, inner, bit, path, depth + 1, name, `an anonymous ${inner.kind} in ${name}`, out)
  const inside = [...path, m.name]
  if (span.value.bits === 0) return ok(undefined)
  if (m.bitfieldSize === 0) {
    const v = decodeAt(d, m.type, bit / 8, inside, depth + 1)
    if (!v.ok) return v
    put(out, m.name, v.value)
    return ok(undefined)
  }
  const f = bitfieldForm(d.types, m, depth)
  if (!f.ok) return err(`${at(inside)}${f.error}`)
  const v = scalarOf(f.value, readBits(d.buf, bit, m.bitfieldSize, layoutOf(f.value).signed))
  if (!v.ok) return err(`${at(inside)}${v.error}`)
  put(out, m.name, v.value)
  return ok(undefined)
}
