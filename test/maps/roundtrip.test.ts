/**
 * Issue 13: every BTF kind an operator may declare map contents for, through encode, syncMap and the kernel, read
 * back by a decoder nobody here wrote: the `formatted` part of `bpftool -j map dump`, which bpftool makes from the
 * map's BTF (tools/bpf/bpftool/btf_dumper.c). test/fixtures/bpf/maps_kinds.c is loaded with its maps pinned in a
 * private bpffs; for each map a few entries are written as an operator writes them (YAML, parsed as the daemon
 * parses its config), encoded by the map's BTF as the kernel holds it (mapSpecOfFd), written by syncMap, and then:
 * - the kernel holds exactly the encoded bytes (bpftool's raw `key` and `value`, every CPU's for a per-CPU map) and
 *   nothing else (no other key in a hash map, zeros at an array's other indexes);
 * - bpftool's formatted key and value are the declared ones, once the few places where bpftool's JSON says the same
 *   thing another way are normalized (each normalizer below says why);
 * - decode gives the declared value back, or where one value has several spellings (a quoted integer, a union's
 *   second member, an address in capitals) the one form decode gives (`decoded`).
 * Integers are compared as exact integers on both sides: bpftool's JSON is read with big integers (it prints a u64
 * unquoted), and decode gives a number below 2^53, a bigint beyond.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { SocketAddress } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { isMap, isScalar, isSeq, parseDocument } from 'yaml'
import { parseYaml } from '../../src/config/source.js'
import { objGet } from '../../src/ffi/bpf-fd.js'
import { BpfObject } from '../../src/ffi/bpf-object.js'
import { mapSpecOfFd } from '../../src/ffi/btf.js'
import { captureLibbpfLog } from '../../src/ffi/libbpf-log.js'
import type { MapSpec } from '../../src/maps/btf.js'
import { decode, encode } from '../../src/maps/encode.js'
import { BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY, isPerCpu } from '../../src/maps/map-types.js'
import { syncMap } from '../../src/maps/sync.js'
import { bpftool, buildObjects, tempBpffs } from '../helpers/bpf.js'
import { isRoot, needsRoot } from '../helpers/netns.js'

interface Entry {
  key: unknown
  value: unknown
}

/** bpftool's formatted form of a key or value -> the operator's; `want` is the expected value at the same place. */
type Norm = (got: unknown, want: unknown) => unknown

interface Case {
  map: string
  /** The map's entries as an operator writes them. */
  yaml: string
  /**
   * By entry index, the decoded form of a key or value that decodes other than it is written: replaces a scalar or
   * list, or the given members of a mapping (a member given as undefined is not in the decoded form).
   */
  decoded?: Record<number, Partial<Entry>>
  /** How bpftool's formatted key and value read as the operator's form; none: bpftool prints them as written. */
  key?: Norm
  value?: Norm
  /** The bytes by hand, where bpftool cannot decode the type (no float in bpftool v7.1's btf_dumper). */
  bytes?: (want: Entry) => Entry & { key: Buffer; value: Buffer }
}

const obj = (v: unknown): Record<string, unknown> => v as Record<string, unknown>
const list = (v: unknown): unknown[] => v as unknown[]

/** Applies a normalizer to some members of a struct bpftool printed. */
const fields =
  (norms: Record<string, Norm>): Norm =>
  (got, want) => {
    const out = { ...obj(got) }
    for (const [name, norm] of Object.entries(norms)) out[name] = norm(out[name], obj(want)[name])
    return out
  }

/**
 * A union: bpftool prints every member, each a view of the same bytes (btf_dumper_struct walks a union's members
 * as a struct's); an operator writes one. The members of `members` other than the one `want` names are left out.
 */
const union =
  (...members: string[]): Norm =>
  (got, want) => {
    const out = { ...obj(got) }
    for (const m of members) if (!Object.hasOwn(obj(want), m)) delete out[m]
    return out
  }

/**
 * A __be32: bpftool prints every integer in host order (btf_dumper_int does not look at typedefs), so the number
 * it prints is the network-order bytes read little-endian; those bytes are the address decode gives.
 */
const be32Address: Norm = (got) => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(Number(got))
  return [...b].join('.')
}

/** A __be16, printed in host order as any integer: the operator's number is the same bytes read big-endian. */
const be16: Norm = (got) => {
  const b = Buffer.alloc(2)
  b.writeUInt16LE(Number(got))
  return b.readUInt16BE(0)
}

/** An IPv6 address in a __u8[16]: bpftool prints the bytes; RFC 5952 text by libuv's inet_ntop, not ours. */
const ipv6Bytes: Norm = (got) => {
  const b = Buffer.from(list(got).map(Number))
  const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16))
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address
}

/** A MAC address in a __u8[6]: bpftool prints the bytes; the operator's form is lower-case hex with colons. */
const macBytes: Norm = (got) =>
  list(got)
    .map((x) => Number(x).toString(16).padStart(2, '0'))
    .join(':')

/**
 * An IPv4 LPM key: bpftool prints struct lpm_v4_key's members, {prefixlen, data: [4 bytes]}; the operator writes
 * the prefix, and a bare address for the full /32 (docs/maps.md: "the bare address at full length").
 */
const prefix4: Norm = (got) => {
  const { prefixlen, data } = obj(got)
  const address = list(data).join('.')
  return Number(prefixlen) === 32 ? address : `${address}/${prefixlen}`
}

/** Bitfields: bpftool prints each as a hex string of its bits (btf_dumper_bitfield), the operator a number. */
const bitfields: Norm = (got) => Object.fromEntries(Object.entries(obj(got)).map(([k, v]) => [k, BigInt(v as string)]))

/**
 * A char array: bpftool prints it as a string only when every byte before the NUL is printable ASCII
 * (btf_dumper.c, is_str_array: 0x20 to 0x7e), otherwise as the list of its chars, signed. UTF-8 text is such a
 * list: its bytes up to the NUL, with only NULs after, are the string.
 */
const cString: Norm = (got) => {
  if (typeof got === 'string') return got
  const b = Buffer.from(list(got).map((x) => Number(x) & 0xff))
  const nul = b.indexOf(0)
  return nul >= 0 && b.subarray(nul).every((x) => x === 0) ? b.subarray(0, nul).toString('utf8') : got
}

const CASES: Case[] = [
  {
    map: 'ints_by_u32',
    yaml: `
- key: 0
  value: { u8: 0, u16: 0, u32: 0, u64: 0, s8: 0, s16: 0, s32: 0, s64: 0, flag: false, letter: 0 }
# the maxima, quoted beyond 2^53 (YAML reads an unquoted one as an inexact number)
- key: 4294967295
  value: { u8: 255, u16: 65535, u32: 4294967295, u64: "18446744073709551615",
           s8: 127, s16: 32767, s32: 2147483647, s64: "9223372036854775807", flag: true, letter: 127 }
# the minima
- key: 1
  value: { u8: 0, u16: 0, u32: 0, u64: 0,
           s8: -128, s16: -32768, s32: -2147483648, s64: "-9223372036854775808", flag: false, letter: -128 }
# hex strings; 2^53 - 1, the largest exact unquoted, and 2^53 quoted
- key: "0xdeadbeef"
  value: { u8: "0x7f", u16: "0x1bb", u32: "0x80000000", u64: 9007199254740991,
           s8: "-0x80", s16: -1, s32: -1, s64: "9007199254740992", flag: true, letter: 65 }
`,
    decoded: {
      1: { value: { u64: 18446744073709551615n, s64: 9223372036854775807n } },
      2: { value: { s64: -9223372036854775808n } },
      3: { key: 0xdeadbeef, value: { u8: 127, u16: 443, u32: 0x80000000, s8: -128, s64: 9007199254740992n } },
    },
  },
  {
    map: 'u8_to_s8',
    yaml: `
- { key: 0, value: -128 }
- { key: 255, value: 127 }
- { key: 1, value: -1 }
`,
  },
  {
    map: 'u16_to_s16',
    yaml: `
- { key: 0, value: -32768 }
- { key: 65535, value: 32767 }
- { key: "0x1bb", value: -1 }
`,
    decoded: { 2: { key: 443 } },
  },
  {
    map: 'u64_to_s64',
    yaml: `
- { key: 0, value: "-9223372036854775808" }
- { key: "18446744073709551615", value: "9223372036854775807" }
- { key: "9007199254740993", value: -1 }
`,
    decoded: {
      0: { value: -9223372036854775808n },
      1: { key: 18446744073709551615n, value: 9223372036854775807n },
      2: { key: 9007199254740993n },
    },
  },
  {
    map: 's32_to_bool',
    yaml: `
- { key: -2147483648, value: true }
- { key: 2147483647, value: false }
- { key: -1, value: true }
- { key: 0, value: false }
`,
  },
  {
    // bpftool prints an enum value by its enumerator's name (btf_dumper_enum), as the operator writes it. enum
    // wide's WIDE_HIGH is 0 here: clang 14 cuts an 8-byte enum's values to 32 bits (maps_kinds.c).
    map: 'enums_by_color',
    yaml: `
- key: RED
  value: { color: BLUE, delta: DOWN, wide: WIDE_LOW }
- key: GREEN
  value: { color: RED, delta: SAME, wide: WIDE_HIGH }
# enumerators as numbers, the negative one as C has it: decoded as the names
- key: 2
  value: { color: 1, delta: -1, wide: 1 }
`,
    decoded: { 2: { key: 'BLUE', value: { color: 'GREEN', delta: 'DOWN', wide: 'WIDE_LOW' } } },
  },
  {
    map: 'arrays_by_name',
    yaml: `
- key: eth0
  value: { label: abcdefg, counts: [0, 1, 4294967295, "0xffffffff"], matrix: [[0, 1, 2], [65535, 3, 4]] }
# 15 bytes, the most a char[16] holds with its NUL; an empty string
- key: abcdefghijklmno
  value: { label: "", counts: [0, 0, 0, 0], matrix: [[0, 0, 0], [0, 0, 0]] }
# UTF-8: 11 bytes, and 7 (the most a char[8] holds) of three characters
- key: ünïcødé
  value: { label: 日本x, counts: [1, 2, 3, 4], matrix: [[1, 2, 3], [4, 5, 6]] }
# a char array as its bytes: decoded as the string they hold
- key: [104, 105, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
  value: { label: naïve, counts: [4, 3, 2, 1], matrix: [[6, 5, 4], [3, 2, 1]] }
`,
    decoded: { 0: { value: { counts: [0, 1, 4294967295, 4294967295] } }, 3: { key: 'hi' } },
    key: cString,
    value: fields({ label: cString }),
  },
  {
    // Index 2 is left undeclared: zero. The anonymous struct's and union's members are named as the outer
    // struct's; bpftool prints each anonymous member as a member named "" (merged in readDump).
    map: 'nested_array',
    yaml: `
- key: 0
  value:
    one: { a: 1, b: 2 }
    pair: [{ a: 4294967295, b: 65535 }, { a: 0, b: 0 }]
    word: { as_u32: 16909060 }
    x: 255
    y: 0
    port: 443
# the unions through their second members: decoded as the first member that gives the bytes back
- key: 1
  value:
    one: { a: 0, b: 0 }
    pair: [{ a: 1, b: 1 }, { a: 2, b: 2 }]
    word: { bytes: [1, 2, 3, 4] }
    x: 0
    y: 255
    port_bytes: [1, 187]
- key: 3
  value: { one: { a: 7, b: 8 }, pair: [{ a: 9, b: 10 }, { a: 11, b: 12 }], word: { as_u32: 0 }, x: 1, y: 2, port: 65535 }
`,
    decoded: { 1: { value: { word: { as_u32: 0x04030201 }, port: 0xbb01, port_bytes: undefined } } },
    value: (got, want) => fields({ word: union('as_u32', 'bytes') })(union('port', 'port_bytes')(got, want), want),
  },
  {
    // Indexes 1 and 3 left undeclared: zero.
    map: 'bitfield_array',
    yaml: `
- key: 0
  value: { low: 7, mid: 8191, high: 65535, flag: 1, wide: 1099511627775 }
- key: 2
  value: { low: 5, mid: 4096, high: 1, flag: 0, wide: "0x8000000001" }
`,
    decoded: { 1: { value: { wide: 0x8000000001 } } },
    value: bitfields,
  },
  {
    map: 'flows',
    yaml: `
- key: { saddr: 192.0.2.1, daddr: 0.0.0.0, sport: 443, dport: 65535, proto: 6, pad: [0, 0, 0] }
  value: { as_u32: 1 }
- key: { saddr: 255.255.255.255, daddr: 198.51.100.7, sport: 0, dport: 1, proto: 17, pad: [0, 0, 0] }
  value: { bytes: [1, 2, 3, 4] }
# a __be32 as the integer it also is, and a __be16 in hex: decoded as the address and the number
- key: { saddr: 167772161, daddr: "0xc0000201", sport: "0x1bb", dport: 8080, proto: 255, pad: [1, 2, 3] }
  value: { as_u32: 4294967295 }
`,
    decoded: {
      1: { value: { as_u32: 0x04030201, bytes: undefined } },
      2: { key: { saddr: '10.0.0.1', daddr: '192.0.2.1', sport: 443 } },
    },
    key: fields({ saddr: be32Address, daddr: be32Address, sport: be16, dport: be16 }),
    value: union('as_u32', 'bytes'),
  },
  {
    map: 'lpm_v4',
    yaml: `
- { key: 0.0.0.0/0, value: 0 }
- { key: 192.0.2.0/24, value: 1 }
# a bare address: the full length
- { key: 198.51.100.7, value: 2 }
- { key: 255.255.255.255/32, value: 4294967295 }
- { key: 10.0.0.0/8, value: 3 }
# the key struct's own mapping
- { key: { prefixlen: 12, data: 172.16.0.0 }, value: 4 }
`,
    decoded: { 3: { key: '255.255.255.255' }, 5: { key: '172.16.0.0/12' } },
    key: prefix4,
  },
  {
    map: 'neighbours',
    yaml: `
- key: { addr: "::ffff:1.2.3.4" }
  value: { mac: "02:00:00:00:00:01", vlan: 0 }
- key: { addr: "2001:DB8:0:0:0:0:0:1" }
  value: { mac: "AA:BB:CC:DD:EE:FF", vlan: 4095 }
- key: { addr: "::" }
  value: { mac: "00:00:00:00:00:00", vlan: 65535 }
- key: { addr: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" }
  value: { mac: "ff:ff:ff:ff:ff:ff", vlan: 1 }
# an address and a MAC as their bytes
- key: { addr: [254, 128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1] }
  value: { mac: [2, 0, 0, 0, 0, 2], vlan: 2 }
`,
    decoded: {
      1: { key: { addr: '2001:db8::1' }, value: { mac: 'aa:bb:cc:dd:ee:ff' } },
      4: { key: { addr: 'fe80::1' }, value: { mac: '02:00:00:00:00:02' } },
    },
    key: fields({ addr: ipv6Bytes }),
    value: fields({ mac: macBytes }),
  },
  {
    // 0.1 is not a float: decoded as the float nearest to it.
    map: 'float_array',
    yaml: `
- key: 0
  value: { f: 0.1, d: -.inf }
`,
    decoded: { 0: { value: { f: Math.fround(0.1) } } },
    bytes: (want) => {
      const key = Buffer.alloc(4)
      key.writeUInt32LE(Number(want.key))
      // struct floats: f at 0, 4 bytes of padding, d at 8.
      const value = Buffer.alloc(16)
      value.writeFloatLE(Number(obj(want.value).f), 0)
      value.writeDoubleLE(Number(obj(want.value).d), 8)
      return { key, value }
    },
  },
  {
    map: 'percpu_by_addr',
    yaml: `
- key: 192.0.2.1
  value: { packets: 0, bytes: "18446744073709551615" }
- key: 0.0.0.0
  value: { packets: 1, bytes: 1500 }
- key: 255.255.255.255
  value: { packets: 9007199254740991, bytes: 0 }
# a __be32 key as an integer
- key: 3325256704
  value: { packets: 2, bytes: 3 }
`,
    decoded: { 0: { value: { bytes: 18446744073709551615n } }, 3: { key: '198.51.100.0' } },
    key: be32Address,
  },
  {
    // Index 2 left undeclared: zero on every CPU.
    map: 'percpu_array',
    yaml: `
- { key: 0, value: "18446744073709551615" }
- { key: 1, value: 1 }
- { key: 3, value: "0x8000000000000000" }
`,
    decoded: { 0: { value: 18446744073709551615n }, 2: { value: 9223372036854775808n } },
  },
  {
    map: 'modifiers',
    yaml: `
- key: 443
  value: { seen: 1, fixed: 2, mask: "0xffffffff" }
- key: 65535
  value: { seen: 4294967295, fixed: 0, mask: 0 }
- key: 0
  value: { seen: 0, fixed: 4294967295, mask: 1 }
`,
    decoded: { 0: { value: { mask: 4294967295 } } },
    key: be16,
  },
]

/** Defined with sizes and no types: no BTF to encode by (mapSpecOfFd gives null types). */
const UNTYPED = ['sizes_only']

/** Integers as bigints, wherever they are and whichever of number and bigint they came as. */
function exact(v: unknown): unknown {
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v)
  if (Array.isArray(v)) return v.map(exact)
  if (typeof v === 'object' && v !== null && typeof v !== 'bigint') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, exact(x)]))
  }
  return v
}

/** What decode should give for `declared`, with a case's `decoded` replacements. */
function expected(declared: unknown, over: unknown): unknown {
  if (over === undefined) return declared
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)
  if (!isObj(over) || !isObj(declared)) return over
  const out: Record<string, unknown> = { ...declared, ...over }
  for (const [k, v] of Object.entries(over)) if (v === undefined) delete out[k]
  return out
}

interface DumpEntry {
  key: Buffer
  /** One per possible CPU for a per-CPU map. */
  values: Buffer[]
  /** bpftool's decoding by BTF; null when it could not make one. */
  formatted: { key: unknown; values: unknown[] } | null
}

const hexBytes = (x: unknown): Buffer => Buffer.from(list(x).map((b) => Number.parseInt(String(b), 16)))

/**
 * bpftool's JSON as plain values, read by the yaml package (JSON is YAML) rather than JSON.parse, for two things
 * JSON.parse gets wrong here: bpftool prints a u64 as an unquoted number (read as a bigint here, exactly), and an
 * anonymous struct or union member as a member named "", twice in struct nested (JSON.parse keeps the last). An
 * anonymous member's members are put in its place, named as the outer struct's, as the operator names them (C11).
 */
function fromBpftoolJson(text: string): unknown {
  const doc = parseDocument(text, { intAsBigInt: true, uniqueKeys: false, version: '1.2', schema: 'core' })
  if (doc.errors.length > 0) throw doc.errors[0]
  const plain = (n: unknown): unknown => {
    if (isSeq(n)) return n.items.map(plain)
    if (isMap(n)) {
      const out: Record<string, unknown> = {}
      for (const p of n.items) {
        const k = String(isScalar(p.key) ? p.key.value : p.key)
        const v = plain(p.value)
        if (k === '' && typeof v === 'object' && v !== null && !Array.isArray(v)) Object.assign(out, v)
        else out[k] = v
      }
      return out
    }
    return isScalar(n) ? n.value : n
  }
  return plain(doc.contents)
}

/**
 * `bpftool -j map dump pinned PIN`. bpftool v7.1 has no BTF_KIND_FLOAT in its btf_dumper and writes
 * `(unsupported-kind` into the middle of the JSON: then only the raw bytes are read, which come before it in each
 * entry, and `formatted` is null.
 */
function readDump(pin: string): DumpEntry[] {
  const text = bpftool('-j', 'map', 'dump', 'pinned', pin)
  if (text.includes('(unsupported-kind')) {
    return [...text.matchAll(/\{"key":(\[[^\]]*\]),"value":(\[[^\]]*\])/g)].map((m) => ({
      key: hexBytes(JSON.parse(m[1]!)),
      values: [hexBytes(JSON.parse(m[2]!))],
      formatted: null,
    }))
  }
  return list(fromBpftoolJson(text)).map((e) => {
    const { key, value, values, formatted } = obj(e)
    const f = obj(formatted)
    // A per-CPU map: `values` and `formatted.values`, [{cpu, value}], one per possible CPU.
    const perCpu = values !== undefined
    return {
      key: hexBytes(key),
      values: perCpu ? list(values).map((v) => hexBytes(obj(v).value)) : [hexBytes(value)],
      formatted:
        formatted === undefined
          ? null
          : { key: f.key, values: perCpu ? list(f.values).map((v, i) => cpuValue(v, i)) : [f.value] },
    }
  })
}

/** A per-CPU map's formatted value of CPU `i`, checked to be listed in CPU order. */
function cpuValue(v: unknown, i: number): unknown {
  if (Number(obj(v).cpu) !== i) throw new Error(`bpftool listed cpu ${obj(v).cpu} at ${i}`)
  return obj(v).value
}

/** Possible CPUs by the kernel's own list (0-1, 0,2-3): a per-CPU map has a value for each. */
function possibleCpus(): number {
  const ranges = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim().split(',')
  return ranges.reduce((n, r) => {
    const [a, b] = r.split('-').map(Number)
    return n + (b === undefined ? 1 : b - a! + 1)
  }, 0)
}

function parseEntries(c: Case): Entry[] {
  const parsed = parseYaml(c.yaml, `${c.map}.yaml`)
  if (!parsed.ok) throw new Error(`${c.map}: ${parsed.error.map((e) => e.message).join('; ')}`)
  return list(parsed.value.data).map((e) => obj(e) as unknown as Entry)
}

/** Every declaration here is valid: an encode error fails the map's test, with each problem's path. */
function encodeOrThrow(spec: MapSpec, which: 'key' | 'value', v: unknown): Buffer {
  const type = which === 'key' ? spec.keyType! : spec.valueType!
  const r = encode(spec.btf, type, v, which === 'key' ? spec.keySize : spec.valueSize)
  if (!r.ok) throw new Error(`${spec.name} ${which} ${JSON.stringify(v)}: ${r.error.map((e) => `${e.path.join('.')}: ${e.message}`).join('; ')}`)
  return r.value
}

/** One map: declared, encoded, synced, then read back as bytes, by bpftool and by decode. */
function checkMap(t: Test, c: Case, pin: string, cpus: number): void {
  const fd = objGet(pin)
  t.teardown(() => fd.close())
  const spec = mapSpecOfFd(fd)
  t.ok(spec.keyType !== null && spec.valueType !== null, 'the kernel holds the BTF of its key and value')

  const entries = parseEntries(c)
  const encoded = entries.map((e) => ({ key: encodeOrThrow(spec, 'key', e.key), value: encodeOrThrow(spec, 'value', e.value) }))
  const declared = new Map(encoded.map((e) => [e.key.toString('hex'), e.value]))
  t.equal(declared.size, entries.length, 'no two entries encode to one key')
  const synced = syncMap(fd, spec, declared)
  t.ok(synced.ok, 'syncMap', synced.ok ? {} : { error: synced.error })

  const dump = readDump(pin)
  const array = spec.type === BPF_MAP_TYPE_ARRAY || spec.type === BPF_MAP_TYPE_PERCPU_ARRAY
  t.equal(dump.length, array ? spec.maxEntries : entries.length, array ? 'every index listed' : 'no key but the declared ones')
  if (c.bytes === undefined) t.ok(dump.every((d) => d.formatted !== null), 'bpftool decodes every entry by BTF')

  entries.forEach((entry, i) => {
    const want = { key: expected(entry.key, c.decoded?.[i]?.key), value: expected(entry.value, c.decoded?.[i]?.value) }
    const { key, value } = encoded[i]!
    const label = `entry ${i} (${JSON.stringify(entry.key)})`
    const found = dump.find((d) => d.key.equals(key))
    if (!t.ok(found, `${label}: in the map`) || !found) return
    t.equal(found.values.length, isPerCpu(spec.type) ? cpus : 1, `${label}: a value per possible CPU, or one`)
    found.values.forEach((v, cpu) => t.equal(v.toString('hex'), value.toString('hex'), `${label}: the bytes written, cpu ${cpu}`))
    if (c.bytes !== undefined) {
      const byHand = c.bytes(want)
      t.equal(key.toString('hex'), byHand.key.toString('hex'), `${label}: the key's bytes, by hand`)
      t.equal(value.toString('hex'), byHand.value.toString('hex'), `${label}: the value's bytes, by hand`)
    }

    const k = decode(spec.btf, spec.keyType!, key)
    const v = decode(spec.btf, spec.valueType!, value)
    t.strictSame(k.ok ? exact(k.value) : k, exact(want.key), `${label}: decode gives the key back`)
    t.strictSame(v.ok ? exact(v.value) : v, exact(want.value), `${label}: decode gives the value back`)

    if (found.formatted === null) return
    const normKey = c.key ?? ((x: unknown) => x)
    const normValue = c.value ?? ((x: unknown) => x)
    t.strictSame(exact(normKey(found.formatted.key, want.key)), exact(want.key), `${label}: bpftool's key`)
    found.formatted.values.forEach((fv, cpu) =>
      t.strictSame(exact(normValue(fv, want.value)), exact(want.value), `${label}: bpftool's value${found.values.length > 1 ? `, cpu ${cpu}` : ''}`),
    )
  })

  // An array has every index: those not declared hold zeros (nothing was there before, and syncMap writes zeros).
  const declaredKeys = new Set(encoded.map((e) => e.key.toString('hex')))
  for (const d of dump.filter((x) => !declaredKeys.has(x.key.toString('hex')))) {
    t.ok(array, `${d.key.toString('hex')}: only an array has undeclared keys`)
    t.ok(d.values.every((v) => v.every((b) => b === 0)), `index ${d.key.readUInt32LE(0)}: zero`)
  }
}

const missing = (cmd: string, arg: string): boolean => spawnSync(cmd, [arg]).status !== 0
const noTools = missing('clang', '--version') ? 'no clang' : missing('bpftool', 'version') ? 'no bpftool' : false

t.test('kernel: every kind encoded, written, read back by bpftool and decoded', { skip: needsRoot || noTools }, async (t) => {
  const objs = buildObjects(t)
  const bpffs = tempBpffs(t)
  const bpf = BpfObject.open(readFileSync(objs.fixture('maps_kinds')), 'maps_kinds')
  t.teardown(() => bpf.close())
  const names = bpf.maps().map((m) => m.name)
  for (const m of bpf.maps()) m.setPinPath(join(bpffs, m.name))
  captureLibbpfLog(() => {}, () => bpf.load())

  t.strictSame(
    [...CASES.map((c) => c.map), ...UNTYPED].sort(),
    [...names].sort(),
    'a case for every map of the fixture but the one without types',
  )
  const cpus = possibleCpus()
  for (const c of CASES) t.test(c.map, async (t) => checkMap(t, c, join(bpffs, c.map), cpus))
})

t.test('without root nothing here runs', { skip: isRoot ? 'root' : false }, async (t) => {
  t.pass('skipped: needs root')
})
