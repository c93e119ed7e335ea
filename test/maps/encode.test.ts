/**
 * Declared map contents: the operator's value <-> the bytes of a key or value, by BTF type. The tables read as the
 * spec (docs/maps.md); bytes are written as bpftool prints them, so each row can be checked by hand. The round-trip
 * properties run over random types and values from a seeded PRNG (MAPS_SEED=<n> to vary it).
 */
import t from 'tap'
import { canonical, decode, encode, encoder, sizeOf as typeSize, type EncodeError } from '../../src/maps/encode.js'
import { formatIPv6 } from '../../src/maps/addresses.js'
import { c, TypeTable } from '../helpers/btf-builder.js'
import { prng } from '../helpers/prng.js'

const T = c()
const b = T.b
const char8 = b.array(T.char, 8)
const char4 = b.array(T.char, 4)
const u8x5 = b.array(T.u8, 5)
const u16x3 = b.array(T.u16, 3)
const u8x4x2 = b.array(T.u8x4, 2)
const proto = b.enum('proto', 4, [['IPPROTO_TCP', 6], ['IPPROTO_UDP', 17]])
const dir = b.enum('dir', 4, [['DIR_IN', -1], ['DIR_OUT', 1]], true)
const big = b.enum('big', 8, [['SMALL', 0], ['BIG', 0xffffffffffffffffn]])
// enum delta { DOWN = -1, SAME = 0, UP = 1 } as clang 14 emits it: no sign (kind_flag 0), DOWN read as its u32
const delta14 = b.enum('delta', 4, [['DOWN', 0xffffffff], ['SAME', 0], ['UP', 1]])
const lpmBe = b.struct('lpm_key_be', 8, [['prefixlen', T.u32, 0], ['addr', T.be32, 32]])
const ab = b.union('ab', 4, [['a', T.u32, 0], ['b', T.u8x4, 0]])
// struct bits { unsigned int a:1, b:3, c:4, d:24; }
const bits = b.struct('bits', 4, [['a', T.uint, 0, 1], ['b', T.uint, 1, 3], ['c', T.uint, 4, 4], ['d', T.uint, 8, 24]])
// struct sbits { int s:4; bool on:1; enum proto p:8; }
const sbits = b.struct('sbits', 4, [['s', T.int, 0, 4], ['on', T.boolT, 4, 1], ['p', proto, 5, 8]])
const constU32 = b.modifier('const', b.modifier('volatile', T.u32))
// struct pkt { __u32 kind; union { __be32 v4; __u8 v6[16]; }; }
const pkt = b.struct('pkt', 20, [['kind', T.u32, 0], ['', b.union('', 16, [['v4', T.be32, 0], ['v6', T.u8x16, 0]]), 32]])
// struct padded { __u8 a; __u8 :8; __u16 b; }: a nameless member that is no struct is padding
const padded = b.struct('padded', 4, [['a', T.u8, 0], ['', T.u8, 8], ['b', T.u16, 16]])
// struct flex { __u32 n; __u8 data[]; }
const flex = b.struct('flex', 4, [['n', T.u32, 0], ['data', b.array(T.u8, 0), 32]])
// struct rule { __be16 port; enum proto proto; }; struct table { char name[8]; struct rule rules[2]; }
const rule = b.struct('rule', 8, [['port', T.be16, 0], ['proto', proto, 32]])
const table = b.struct('table', 24, [['name', char8, 0], ['rules', b.array(rule, 2), 64]])
const fb = b.union('fb', 4, [['f', T.boolT, 0], ['n', T.u32, 0]])
const fe = b.union('fe', 4, [['f', T.boolT, 0], ['e', proto, 0]])
// struct narrow { enum wide e:2; }, where enum wide has a value of 4
const narrow = b.struct('narrow', 4, [['e', b.enum('wide', 4, [['SMALL', 1], ['WIDE', 4]]), 0, 2]])
// A typedef'd anonymous struct and a u32 whose BTF_INT_BITS say 12 of its bits hold the value.
const pair = b.typedef('pair_t', b.struct('', 4, [['x', T.u16, 0], ['y', T.u16, 16]]))
const u12 = b.int('u12', 4, { bits: 12, bitOffset: 4 })
// Broken BTF: what hand-made or corrupt types must not crash on.
const ptr = b.other('ptr')
const withPtr = b.struct('with_ptr', 8, [['p', ptr, 0]])
const longDouble = b.float('long double', 16)
const loopA = b.types.size + 1
b.typedef('loop_a', loopA + 1)
b.typedef('loop_b', loopA)
const self = b.types.size + 1
b.struct('self', 4, [['next', self, 0]])
const selfArray = b.types.size + 1
b.array(selfArray, 2)
const outside = b.struct('out', 4, [['a', T.u32, 32]])

/** The size a map of the type has (encode checks it; the broken-BTF table gives its own). */
const sizeOf = (id: number): number => {
  const r = typeSize(T.types, id)
  return r.ok ? r.value : 0
}
const hex = (buf: Buffer): string => [...buf].map((x) => x.toString(16).padStart(2, '0')).join(' ')
const bytes = (h: string): Buffer => Buffer.from(h.replace(/ /g, ''), 'hex')
const zeros = (n: number): string => Array(n).fill('00').join(' ')

t.test('encode: each kind and convenience -> bytes', async (t) => {
  const cases: [string, number, unknown, string][] = [
    // integers: host order (little-endian), range by size and signedness
    ['__u8 0', T.u8, 0, '00'],
    ['__u8 255', T.u8, 255, 'ff'],
    ['__u16 443', T.u16, 443, 'bb 01'],
    ['__u16 as 0x hex', T.u16, '0x1bb', 'bb 01'],
    ['__u16 as a decimal string', T.u16, '443', 'bb 01'],
    ['__u32 max as a string', T.u32, '4294967295', 'ff ff ff ff'],
    ['__s8 -1', T.s8, -1, 'ff'],
    ['__s8 -0x80', T.s8, '-0x80', '80'],
    ['__s16 -2', T.s16, -2, 'fe ff'],
    ['__s32 min', T.s32, -2147483648, '00 00 00 80'],
    ['__u64 max (quoted: YAML would round the number)', T.u64, '18446744073709551615', 'ff ff ff ff ff ff ff ff'],
    ['__u64 2^63 as a bigint', T.u64, 1n << 63n, '00 00 00 00 00 00 00 80'],
    ['__s64 min in hex', T.s64, '-0x8000000000000000', '00 00 00 00 00 00 00 80'],
    ['unsigned __int128 1', T.u128, 1, `01 ${zeros(15)}`],
    ['__int128 -1', T.s128, -1, Array(16).fill('ff').join(' ')],
    ['const volatile __u32: modifiers looked through', constU32, 7, '07 00 00 00'],
    ['BTF_INT_BITS 12 at BTF_INT_OFFSET 4', u12, 0xabc, 'c0 ab 00 00'],
    // big-endian typedefs: network order
    ['__be16 port 443', T.be16, 443, '01 bb'],
    ['__be32 as an IPv4 address', T.be32, '192.0.2.1', 'c0 00 02 01'],
    ['__be32 as a number', T.be32, 0xc0000201, 'c0 00 02 01'],
    ['__be64 1', T.be64, 1, '00 00 00 00 00 00 00 01'],
    // bool
    ['_Bool true', T.bool, true, '01'],
    ['_Bool false', T.bool, false, '00'],
    ['bool (typedef) true', T.boolT, true, '01'],
    // enums
    ['enum by name', proto, 'IPPROTO_UDP', '11 00 00 00'],
    ['enum by value', proto, 17, '11 00 00 00'],
    ['signed enum, negative value', dir, 'DIR_IN', 'ff ff ff ff'],
    ['signed enum by its negative number', dir, -1, 'ff ff ff ff'],
    ["clang 14's enum (no sign in BTF) by the negative number C gives it", delta14, -1, 'ff ff ff ff'],
    ["clang 14's enum by the u32 its BTF holds", delta14, 4294967295, 'ff ff ff ff'],
    ['64-bit enum (ENUM64)', big, 'BIG', 'ff ff ff ff ff ff ff ff'],
    // floats
    ['float 1.5', T.float, 1.5, '00 00 c0 3f'],
    ['double 1.5', T.double, 1.5, '00 00 00 00 00 00 f8 3f'],
    ['double -0', T.double, -0, '00 00 00 00 00 00 00 80'],
    // char arrays: UTF-8, NUL-padded, the last byte always NUL
    ['char[8] "eth0"', char8, 'eth0', '65 74 68 30 00 00 00 00'],
    ['char[8] ""', char8, '', zeros(8)],
    ['char[4] "abc": full but for the NUL', char4, 'abc', '61 62 63 00'],
    ['char[4] "é" in UTF-8', char4, 'é', 'c3 a9 00 00'],
    ['char[4] as a list', char4, [104, 105, 0, 0], '68 69 00 00'],
    // byte arrays: lists, and addresses by length
    ['__u8[4] IPv4', T.u8x4, '192.0.2.1', 'c0 00 02 01'],
    ['__u8[4] as a list', T.u8x4, [192, 0, 2, 1], 'c0 00 02 01'],
    ['__u8[16] IPv6', T.u8x16, '2001:db8::1', '20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01'],
    ['__u8[16] IPv4-mapped', T.u8x16, '::ffff:1.2.3.4', '00 00 00 00 00 00 00 00 00 00 ff ff 01 02 03 04'],
    ['__u8[16] ::', T.u8x16, '::', zeros(16)],
    ['__u8[6] MAC', T.u8x6, 'aa:BB:cc:dd:ee:ff', 'aa bb cc dd ee ff'],
    ['__u8[5] as a list', u8x5, [1, 2, 3, 4, 5], '01 02 03 04 05'],
    // arrays: exactly nelems elements, nested
    ['__u16[3]', u16x3, [1, 2, '0x3'], '01 00 02 00 03 00'],
    ['__u8[2][4]: addresses in a list', u8x4x2, ['10.0.0.1', [10, 0, 0, 2]], '0a 00 00 01 0a 00 00 02'],
    // structs: members by name, padding zero
    ['struct limits (issue 13 ports value)', T.limits, { limit: 1000, log: true }, 'e8 03 00 00 01 00 00 00'],
    ['typedef of an anonymous struct', pair, { x: 1, y: 2 }, '01 00 02 00'],
    ['nameless padding member: not given, zero', padded, { a: 1, b: 2 }, '01 00 02 00'],
    ['flexible array member may be left out', flex, { n: 1 }, '01 00 00 00'],
    ['flexible array member given empty', flex, { n: 1, data: [] }, '01 00 00 00'],
    ['nested: char[8], then struct rule[2]', table, { name: 'lo', rules: [{ port: 443, proto: 'IPPROTO_TCP' }, { port: 53, proto: 17 }] },
      '6c 6f 00 00 00 00 00 00 01 bb 00 00 06 00 00 00 00 35 00 00 11 00 00 00'],
    // anonymous union member: its members are the struct's
    ['anonymous union, IPv6 member', pkt, { kind: 6, v6: '2001:db8::1' }, '06 00 00 00 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01'],
    ['anonymous union, IPv4 member', pkt, { kind: 4, v4: '192.0.2.1' }, `04 00 00 00 c0 00 02 01 ${zeros(12)}`],
    // unions: one member
    ['union, second member', ab, { b: [1, 2, 3, 4] }, '01 02 03 04'],
    ['union, first member', ab, { a: 1 }, '01 00 00 00'],
    // bitfields: bit i of a member at bit offset o is bit (o + i) % 8 of byte (o + i) / 8
    ['bitfields a:1 b:3 c:4 d:24', bits, { a: 1, b: 5, c: 15, d: 0x123456 }, 'fb 56 34 12'],
    ['bitfields: signed, bool, enum', sbits, { s: -1, on: true, p: 'IPPROTO_TCP' }, 'df 00 00 00'],
    ['bitfield enum across a byte', sbits, { s: 0, on: false, p: 'IPPROTO_UDP' }, '20 02 00 00'],
    // LPM trie keys: bpf/xdp_blocklist.c's header comment has the first two
    ['LPM v4 192.168.1.0/24', T.lpmV4, '192.168.1.0/24', '18 00 00 00 c0 a8 01 00'],
    ['LPM v6 2001:db8::/32', T.lpmV6, '2001:db8::/32', '20 00 00 00 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 00'],
    ['LPM v4 bare address: /32', T.lpmV4, '198.51.100.7', '20 00 00 00 c6 33 64 07'],
    ['LPM v4 0.0.0.0/0', T.lpmV4, '0.0.0.0/0', zeros(8)],
    ['LPM v6 bare address: /128', T.lpmV6, '::1', `80 00 00 00 ${zeros(15)} 01`],
    ['LPM v4 as the struct mapping', T.lpmV4, { prefixlen: 24, addr: '192.168.1.0' }, '18 00 00 00 c0 a8 01 00'],
    ['LPM v4 mapping with a byte list', T.lpmV4, { prefixlen: 24, addr: [192, 168, 1, 0] }, '18 00 00 00 c0 a8 01 00'],
    ['LPM with __be32 data', lpmBe, '10.0.0.0/8', '08 00 00 00 0a 00 00 00'],
    ['LPM with __be32 data as a mapping', lpmBe, { prefixlen: 8, addr: 0x0a000000 }, '08 00 00 00 0a 00 00 00'],
  ]
  for (const [name, id, value, want] of cases) {
    const r = encode(T.types, id, value, sizeOf(id))
    t.equal(r.ok ? hex(r.value) : JSON.stringify(r.error), want, name)
  }
})

t.test('encode: every error, at its path', async (t) => {
  const cases: [string, number, unknown, [(string | number)[], string][]][] = [
    ['negative for unsigned', T.u16, -1, [[[], 'expected an integer from 0 to 65535, got -1']]],
    ['fraction', T.u8, 1.5, [[[], 'expected an integer from 0 to 255, got 1.5']]],
    ['a word', T.u8, 'ten', [[[], 'expected an integer from 0 to 255, got "ten"']]],
    ['leading zero (octal to C)', T.u8, '007', [[[], 'expected an integer from 0 to 255, got "007"']]],
    ['a boolean for an integer', T.u8, true, [[[], 'expected an integer from 0 to 255, got true']]],
    ['null', T.u8, null, [[[], 'expected an integer from 0 to 255, got null (no value)']]],
    ['a list for an integer', T.u8, [1], [[[], 'expected an integer from 0 to 255, got a list of 1']]],
    ['signed overflow', T.s8, 128, [[[], 'expected an integer from -128 to 127, got 128']]],
    ['hex overflow', T.u32, '0x100000000', [[[], 'expected an integer from 0 to 4294967295, got "0x100000000"']]],
    ['a 64-bit number YAML rounded', T.u64, 18446744073709552000, [[[], 'expected an integer from 0 to 18446744073709551615, got 18446744073709552000: beyond 2^53 a number is not exact, write it in quotes']]],
    ['__be32 neither address nor number', T.be32, '192.0.2', [[[], 'expected an IPv4 address or an integer from 0 to 4294967295, got "192.0.2"']]],
    ['bool from a YAML 1.1 word', T.bool, 'yes', [[[], 'expected true or false, got "yes"']]],
    ['bool from a number', T.boolT, 1, [[[], 'expected true or false, got 1']]],
    ['enum name misspelt', proto, 'IPPROTO_UPD', [[[], 'unknown value "IPPROTO_UPD" of enum proto (values: IPPROTO_TCP, IPPROTO_UDP); did you mean IPPROTO_UDP?']]],
    ['enum name in lower case', proto, 'ipproto_tcp', [[[], 'unknown value "ipproto_tcp" of enum proto (values: IPPROTO_TCP, IPPROTO_UDP); did you mean IPPROTO_TCP?']]],
    ['enum number that is no value', proto, 7, [[[], 'expected a name of enum proto or one of its values (IPPROTO_TCP=6, IPPROTO_UDP=17), got 7']]],
    ["clang 14's enum: a negative number that is no value's __s32", delta14, -2, [[[], 'expected a name of enum delta or one of its values (DOWN=4294967295, SAME=0, UP=1), got -2']]],
    ["clang 14's enum: below __s32, not taken modulo 2^32", delta14, -4294967295, [[[], 'expected a name of enum delta or one of its values (DOWN=4294967295, SAME=0, UP=1), got -4294967295']]],
    ['enum from a boolean', proto, true, [[[], 'expected a name of enum proto or one of its values (IPPROTO_TCP=6, IPPROTO_UDP=17), got true']]],
    ['float overflow', T.float, 1e39, [[[], "expected a number within float's range (±3.4028234663852886e+38), got 1e+39"]]],
    ['float from a string', T.float, '1.5', [[[], 'expected a number, got "1.5"']]],
    ['string filling the array: no room for the NUL', char4, 'abcd', [[[], 'expected a string of at most 3 bytes (char[4], with its terminating NUL), got 4 bytes: "abcd"']]],
    ['string too long in UTF-8', char4, 'éé', [[[], 'expected a string of at most 3 bytes (char[4], with its terminating NUL), got 4 bytes: "éé"']]],
    ['string with a NUL', char4, 'a\0b', [[[], 'expected a string without NUL characters, got "a\\u0000b"']]],
    ['string with a lone surrogate', char4, '\ud800', [[[], 'expected a string of valid Unicode, got "\\ud800"']]],
    ['number for a char array', char4, 5, [[[], 'expected a string of at most 3 bytes or a list of 4 integers (char[4]), got 5']]],
    ['short list for a char array', char4, [1, 2], [[[], 'expected a list of exactly 4 elements (char[4]), got 2']]],
    ['char out of range', char4, [1, 2, 3, 200], [[[3], 'expected an integer from -128 to 127, got 200']]],
    ['prefix for a byte array', T.u8x4, '192.0.2.0/24', [[[], 'expected an IPv4 address or a list of 4 integers from 0 to 255, got "192.0.2.0/24": a prefix needs an LPM trie key {__u32 prefixlen; ...}, not a plain byte array']]],
    ['IPv6 for 4 bytes', T.u8x4, '2001:db8::1', [[[], 'expected an IPv4 address or a list of 4 integers from 0 to 255, got "2001:db8::1": an IPv6 address takes a 16-byte array']]],
    ['no address', T.u8x4, '300.1.1.1', [[[], 'expected an IPv4 address or a list of 4 integers from 0 to 255, got "300.1.1.1"']]],
    ['zone id', T.u8x16, 'fe80::1%eth0', [[[], 'expected an IPv6 address or a list of 16 integers from 0 to 255, got "fe80::1%eth0": a zone id (%...) names an interface, and has no place in a map']]],
    ['IPv4 for 16 bytes', T.u8x16, '192.0.2.1', [[[], 'expected an IPv6 address or a list of 16 integers from 0 to 255, got "192.0.2.1": an IPv4 address takes a 4-byte array']]],
    ['MAC with dashes', T.u8x6, 'aa-bb-cc-dd-ee-ff', [[[], 'expected a MAC address (aa:bb:cc:dd:ee:ff) or a list of 6 integers from 0 to 255, got "aa-bb-cc-dd-ee-ff"']]],
    ['address for 5 bytes', u8x5, '1.2.3.4', [[[], 'expected a list of 5 integers from 0 to 255, got "1.2.3.4": an IPv4 address takes a 4-byte array']]],
    ['short list', T.u8x4, [1, 2, 3], [[[], 'expected a list of exactly 4 elements (__u8[4]), got 3']]],
    ['byte out of range', T.u8x4, [1, 2, 3, 256], [[[3], 'expected an integer from 0 to 255, got 256']]],
    ['mapping for an array', u16x3, { a: 1 }, [[[], 'expected a list of 3 elements (__u16[3]), got a mapping']]],
    ['issue 13: unknown member and the missing one', T.limits, { limt: 1000, log: true }, [
      [['limt'], 'unknown member "limt" of struct limits (members: limit, log); did you mean limit?'],
      [[], 'missing member "limit" of struct limits'],
    ]],
    ['every member missing', T.limits, {}, [[[], 'missing members "limit", "log" of struct limits']]],
    ['list for a struct', T.limits, [1, true], [[[], 'expected a mapping of the members of struct limits (limit, log), got a list of 2']]],
    ['two bad members: both reported', T.limits, { limit: -1, log: 'yes' }, [
      [['limit'], 'expected an integer from 0 to 4294967295, got -1'],
      [['log'], 'expected true or false, got "yes"'],
    ]],
    ['padding cannot be given', padded, { a: 1, b: 2, '': 0 }, [[[''], 'unknown member "" of struct padded (members: a, b)']]],
    ['deep paths', table, { name: 'lo', rules: [{ port: 443, proto: 'IPPROTO_TCP' }, { port: 70000, proto: 'TCP' }] }, [
      [['rules', 1, 'port'], 'expected an integer from 0 to 65535, got 70000'],
      [['rules', 1, 'proto'], 'unknown value "TCP" of enum proto (values: IPPROTO_TCP, IPPROTO_UDP)'],
    ]],
    ['union, no member', ab, {}, [[[], 'expected exactly one of the members of union ab (a, b), got none']]],
    ['union, two members', ab, { a: 1, b: [1, 2, 3, 4] }, [[[], 'expected exactly one of the members of union ab (a, b), got 2: a, b']]],
    ['union from a number', ab, 5, [[[], 'expected a mapping with one member of union ab (a, b), got 5']]],
    ['anonymous union, none', pkt, { kind: 4 }, [[[], 'expected exactly one of the members of an anonymous union in struct pkt (v4, v6), got none']]],
    ['anonymous union, both', pkt, { kind: 4, v4: 1, v6: '::1' }, [[[], 'expected exactly one of the members of an anonymous union in struct pkt (v4, v6), got 2: v4, v6']]],
    ['bitfield range', bits, { a: 2, b: 0, c: 0, d: 0 }, [[['a'], 'expected an integer from 0 to 1, got 2']]],
    ['signed and bool bitfields', sbits, { s: 8, on: 1, p: 6 }, [
      [['s'], 'expected an integer from -8 to 7, got 8'],
      [['on'], 'expected true or false, got 1'],
    ]],
    ['enum value wider than its bitfield', narrow, { e: 'WIDE' }, [[['e'], 'expected a value of enum wide that fits in 2 bits (from 0 to 3), got "WIDE" (4)']]],
    ['a hole in a list', T.u8x4, [1, , 3, 4], [[[1], 'expected an integer from 0 to 255, got nothing']]], // eslint-disable-line no-sparse-arrays
    ['BTF_INT_BITS range', u12, 0x1000, [[[], 'expected an integer from 0 to 4095, got 4096']]],
    ['LPM prefix too long', T.lpmV4, '192.0.2.0/33', [[[], '192.0.2.0/33: prefix length 33 is longer than 32']]],
    ['LPM host bits set', T.lpmV4, '192.0.2.1/24', [[[], '192.0.2.1/24: host bits are set beyond the /24 prefix; the network is 192.0.2.0/24']]],
    ['LPM v6 host bits set', T.lpmV6, '2001:db8::1/32', [[[], '2001:db8::1/32: host bits are set beyond the /32 prefix; the network is 2001:db8::/32']]],
    ['LPM other family', T.lpmV4, '2001:db8::/32', [[[], 'expected an IPv4 prefix such as 192.0.2.0/24 or an IPv4 address (the key\'s address is 4 bytes), got "2001:db8::/32", an IPv6 prefix']]],
    ['LPM zone id', T.lpmV6, 'fe80::1%eth0', [[[], 'expected an IPv6 prefix such as 2001:db8::/32 or an IPv6 address, got "fe80::1%eth0": a zone id (%...) names an interface, and has no place in a map']]],
    ['LPM mapping, prefix too long', T.lpmV4, { prefixlen: 33, addr: '192.0.2.0' }, [[['prefixlen'], 'prefix length 33 is longer than 32']]],
    ['LPM mapping, host bits', T.lpmV4, { prefixlen: 24, addr: '192.0.2.1' }, [[['addr'], 'host bits are set beyond the /24 prefix; the network is 192.0.2.0']]],
    ['LPM mapping, missing data', T.lpmV4, { prefixlen: 24 }, [[[], 'missing member "addr" of struct lpm_key_v4']]],
    ['LPM from a number', T.lpmV4, 7, [[[], 'expected a mapping of the members of struct lpm_key_v4 (prefixlen, addr) or a prefix such as 192.0.2.0/24, got 7']]],
  ]
  for (const [name, id, value, want] of cases) {
    const r = encode(T.types, id, value, sizeOf(id))
    t.same(r.ok ? hex(r.value) : r.error.map((e: EncodeError) => [e.path, e.message]), want, name)
  }
})

t.test('encode: sizes and broken BTF are errors, never exceptions', async (t) => {
  const cases: [string, number, number, string][] = [
    ['the map size is not the type size', T.u32, 8, "the map's size is 8 bytes, but its BTF type __u32 takes 4"],
    ['no size a map can have', T.u32, -1, 'a map cannot have a size of -1 bytes'],
    ['void', 0, 4, 'BTF: the type is void'],
    ['a missing type', 9999, 4, 'BTF: type [9999] is missing'],
    ['a pointer', ptr, 8, 'a ptr has no value a map can hold'],
    ['a pointer member', withPtr, 8, 'member "p": a ptr has no value a map can hold'],
    ['long double', longDouble, 16, 'floats of 16 bytes (long double) are not supported: only float and double'],
    ['a typedef loop', loopA, 4, `BTF: typedef loop_a [${loopA}] contains itself`],
    ['a struct that holds itself', self, 4, `BTF: struct self [${self}] contains itself`],
    ['an array of itself', selfArray, 8, `BTF: array [${selfArray}] contains itself`],
    ['a member beyond the struct', outside, 4, 'BTF: member "a" of struct out lies outside its 4 bytes'],
  ]
  for (const [name, id, size, want] of cases) {
    const r = encode(T.types, id, id === withPtr ? { p: 1 } : { a: 1 }, size)
    t.same(r.ok ? hex(r.value) : r.error, [{ path: [], message: want }], name)
  }
  t.same(decode(T.types, self, Buffer.alloc(4)), { ok: false, error: `BTF: struct self [${self}] contains itself` }, 'decoding it')
  // union u<i> { union u<i-1> a; union u<i-1> b; } over a bool: 2^30 ways to read 02, and none works.
  const tt = new TypeTable()
  let u = tt.int('_Bool', 1, { bool: true })
  for (let i = 1; i <= 30; i++) u = tt.union(`u${i}`, 1, [['a', u, 0], ['b', u, 0]])
  const started = Date.now()
  t.same(decode(tt.types, u, Buffer.from([2])), { ok: false, error: 'BTF: the type takes more than 65600 steps to walk' }, 'unions of unions: a bound on the work')
  t.ok(Date.now() - started < 5000, 'in reasonable time')
  // Anonymous members of anonymous members: the names are listed once per type, not once per way to reach them.
  const anon = new TypeTable()
  let v = anon.struct('leaf', 1, [['x', anon.int('unsigned char', 1), 0]])
  for (let i = 1; i <= 40; i++) v = anon.union(i === 40 ? 'top' : '', 1, [['', v, 0], ['', v, 0]])
  t.same(encode(anon.types, v, { x: 7 }, 1), { ok: false, error: [{ path: [], message: 'expected exactly one of the members of union top (x), got 2: x, x' }] }, 'anonymous unions of anonymous unions')
})

t.test('decode: bytes -> the form an operator writes', async (t) => {
  const cases: [string, number, string, unknown][] = [
    ['__u16', T.u16, 'bb 01', 443],
    ['__s16', T.s16, 'fe ff', -2],
    ['__u64 max: a bigint', T.u64, 'ff ff ff ff ff ff ff ff', 18446744073709551615n],
    ['__u64 2^53 - 1: still a number', T.u64, 'ff ff ff ff ff ff 1f 00', 9007199254740991],
    ['__u64 2^53: a bigint', T.u64, '00 00 00 00 00 00 20 00', 9007199254740992n],
    ['__s64 min', T.s64, '00 00 00 00 00 00 00 80', -9223372036854775808n],
    ['BTF_INT_BITS: bits outside are not read', u12, 'cf ab 00 f0', 0xabc],
    ['__be16', T.be16, '01 bb', 443],
    ['__be32: an address', T.be32, 'c0 00 02 01', '192.0.2.1'],
    ['__be64', T.be64, '00 00 00 00 00 00 00 01', 1],
    ['bool', T.bool, '01', true],
    ['enum: the name', proto, '11 00 00 00', 'IPPROTO_UDP'],
    ['signed enum', dir, 'ff ff ff ff', 'DIR_IN'],
    ['float', T.float, '00 00 c0 3f', 1.5],
    ['char[8]: a string', char8, '65 74 68 30 00 00 00 00', 'eth0'],
    ['char[4] without a NUL: a list', char4, '61 62 63 64', [97, 98, 99, 100]],
    ['char[4] with bytes after the NUL: a list', char4, '61 00 62 00', [97, 0, 98, 0]],
    ['char[4] not UTF-8: a list (char is signed)', char4, 'ff 00 00 00', [-1, 0, 0, 0]],
    ['__u8[4]: an IPv4 address', T.u8x4, 'c0 00 02 01', '192.0.2.1'],
    ['__u8[16]: an IPv6 address', T.u8x16, '20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01', '2001:db8::1'],
    ['__u8[16]: IPv4-mapped', T.u8x16, '00 00 00 00 00 00 00 00 00 00 ff ff 01 02 03 04', '::ffff:1.2.3.4'],
    ['__u8[6]: a MAC address', T.u8x6, 'aa bb cc dd ee ff', 'aa:bb:cc:dd:ee:ff'],
    ['__u8[5]: a list', u8x5, '01 02 03 04 05', [1, 2, 3, 4, 5]],
    ['struct; padding not read', T.limits, 'e8 03 00 00 01 ff ff ff', { limit: 1000, log: true }],
    ['nameless padding member not read', padded, '01 ff 02 00', { a: 1, b: 2 }],
    ['flexible array member left out', flex, '01 00 00 00', { n: 1 }],
    ['nested', table, '6c 6f 00 00 00 00 00 00 01 bb 00 00 06 00 00 00 00 35 00 00 11 00 00 00',
      { name: 'lo', rules: [{ port: 443, proto: 'IPPROTO_TCP' }, { port: 53, proto: 'IPPROTO_UDP' }] }],
    ['LPM: the prefix', T.lpmV4, '18 00 00 00 c0 a8 01 00', '192.168.1.0/24'],
    ['LPM full length: the bare address', T.lpmV4, '20 00 00 00 c6 33 64 07', '198.51.100.7'],
    ['LPM v6', T.lpmV6, '20 00 00 00 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 00', '2001:db8::/32'],
    ['LPM with __be32 data', lpmBe, '08 00 00 00 0a 00 00 00', '10.0.0.0/8'],
    ['union: the first member', ab, '01 02 03 04', { a: 67305985 }],
    ['union: the first member that gives the bytes back', fb, '01 00 00 01', { n: 16777217 }],
    ['union: a member that does not decode is passed', fb, '02 00 00 00', { n: 2 }],
    ['anonymous union: the IPv6 member', pkt, '06 00 00 00 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01', { kind: 6, v6: '2001:db8::1' }],
    ['anonymous union: the IPv4 member', pkt, `04 00 00 00 c0 00 02 01 ${zeros(12)}`, { kind: 4, v4: '192.0.2.1' }],
    ['bitfields', bits, 'fb 56 34 12', { a: 1, b: 5, c: 15, d: 0x123456 }],
    ['bitfields: signed, bool, enum', sbits, 'df 00 00 00', { s: -1, on: true, p: 'IPPROTO_TCP' }],
  ]
  for (const [name, id, h, want] of cases) {
    const r = decode(T.types, id, bytes(h))
    t.strictSame(r.ok ? r.value : r.error, want, name)
  }
})

t.test('decode: bytes no value encodes to', async (t) => {
  const cases: [string, number, string, string][] = [
    ['wrong length', T.u32, '01 02 03', 'expected 4 bytes for __u32, got 3'],
    ['bool of 2', T.bool, '02', 'a bool holds 2, neither 0 (false) nor 1 (true)'],
    ['a member that is no bool', T.limits, 'e8 03 00 00 02 00 00 00', 'log: a bool holds 2, neither 0 (false) nor 1 (true)'],
    ['enum value without a name', proto, '07 00 00 00', 'enum proto has no name for 7'],
    ['deep path', table, '6c 6f 00 00 00 00 00 00 01 bb 00 00 06 00 00 00 00 35 00 00 07 00 00 00', 'rules[1].proto: enum proto has no name for 7'],
    ['LPM host bits', T.lpmV4, '18 00 00 00 c0 a8 01 01', '192.168.1.1/24: host bits are set beyond the prefix'],
    ['LPM prefix too long', T.lpmV4, '21 00 00 00 c0 a8 01 01', 'prefix length 33 is longer than 32'],
    ['union no member gives', fe, '02 00 00 00', 'the bytes of union fe are the value of none of its members'],
    ['broken BTF', withPtr, '00 00 00 00 00 00 00 00', 'member "p": a ptr has no value a map can hold'],
  ]
  for (const [name, id, h, want] of cases) {
    const r = decode(T.types, id, bytes(h))
    t.equal(r.ok ? JSON.stringify(r.value) : r.error, want, name)
  }
})

t.test('canonical: one line of YAML for messages and diffs, hex when it does not decode', async (t) => {
  const cases: [number, string, string][] = [
    [T.lpmV4, '18 00 00 00 c0 a8 01 00', '192.168.1.0/24'],
    [T.lpmV6, '20 00 00 00 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 00', '2001:db8::/32'],
    [T.u16, 'bb 01', '443'],
    [T.u64, 'ff ff ff ff ff ff ff ff', '18446744073709551615'],
    [T.limits, 'e8 03 00 00 01 00 00 00', '{ limit: 1000, log: true }'],
    [char8, '74 72 75 65 00 00 00 00', '"true"'],
    [table, '6c 6f 00 00 00 00 00 00 01 bb 00 00 06 00 00 00 00 35 00 00 11 00 00 00',
      '{ name: lo, rules: [ { port: 443, proto: IPPROTO_TCP }, { port: 53, proto: IPPROTO_UDP } ] }'],
    [T.lpmV4, '18 00 00 00 c0 a8 01 01', 'hex 18 00 00 00 c0 a8 01 01'],
    [T.u32, '01', 'hex 01'],
  ]
  for (const [id, h, want] of cases) t.equal(canonical(T.types, id, bytes(h)), want, want)
})

// Round trips over random types and values.

const SEED = Number(process.env.MAPS_SEED ?? 0x13c0de) >>> 0
const rand = prng(SEED)
const int = (n: number): number => Math.floor(rand() * n)
const pick = <X>(xs: readonly X[]): X => xs[int(xs.length)]!

/** A random type with a generator of values in the operator's form; `exact` is false where decode may pick another union member. */
interface Gen {
  id: number
  size: number
  align: number
  value(): { v: unknown; exact: boolean }
}

function randomBig(bits: number, signed: boolean): bigint {
  let u = 0n
  for (let i = 0; i < bits; i += 16) u = (u << 16n) | BigInt(int(0x10000))
  // Small values and the ends of the range as often as the middle.
  const r = int(4)
  if (r === 0) u = BigInt(int(4))
  if (r === 1) u = signed ? (1n << BigInt(bits - 1)) - 1n : (1n << BigInt(bits)) - 1n
  return signed ? BigInt.asIntN(bits, u) : BigInt.asUintN(bits, u)
}
const numeric = (v: bigint): number | bigint => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v)
const exactly = (v: unknown) => ({ v, exact: true })
const randomBytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => (rand() < 0.4 ? 0 : int(256))))
const ipv4 = (): string => [...randomBytes(4)].join('.')
const ipv6 = (): string => formatIPv6(randomBytes(16))

function leaf(tt: TypeTable): Gen {
  const k = int(12)
  if (k === 0) {
    const size = pick([1, 2, 4, 8, 16])
    const signed = rand() < 0.5
    const id = tt.int(`i${size}${signed ? 's' : 'u'}`, size, { signed })
    return { id, size, align: Math.min(size, 16), value: () => exactly(numeric(randomBig(size * 8, signed))) }
  }
  if (k === 1) return { id: tt.int('_Bool', 1, { bool: true }), size: 1, align: 1, value: () => exactly(rand() < 0.5) }
  if (k === 2) {
    const size = pick([2, 4, 8])
    const id = tt.typedef(`__be${size * 8}`, tt.int(`u${size}`, size))
    return { id, size, align: size, value: () => exactly(size === 4 ? ipv4() : numeric(randomBig(size * 8, false))) }
  }
  if (k === 3) {
    const size = pick([1, 2, 4, 8])
    const signed = rand() < 0.5
    const values = new Map<bigint, string>()
    for (let i = 0; i < 1 + int(5); i++) values.set(randomBig(size * 8, signed), `E${i}`)
    const entries = [...values].map(([v, n]): [string, bigint] => [n, v])
    const id = tt.enum(`e${tt.types.size}`, size, entries, signed)
    return { id, size, align: size, value: () => exactly(pick(entries)[0]) }
  }
  if (k === 4) {
    const size = pick([4, 8])
    const id = tt.float(size === 4 ? 'float' : 'double', size)
    return { id, size, align: size, value: () => exactly(size === 4 ? Math.fround((rand() - 0.5) * 1e6) : (rand() - 0.5) * 1e300) }
  }
  if (k === 5) {
    const n = 1 + int(12)
    const id = tt.array(tt.int('char', 1, { signed: true }), n)
    const alphabet = ['a', 'Z', '0', ' ', 'é', '€', '\n']
    return {
      id, size: n, align: 1,
      value: () => {
        let s = ''
        for (let i = int(n); i > 0; i--) {
          const next = s + pick(alphabet)
          if (Buffer.byteLength(next) <= n - 1) s = next
        }
        return exactly(s)
      },
    }
  }
  if (k <= 7) {
    const n = pick([4, 16, 6, 3])
    const id = tt.array(tt.typedef('__u8', tt.int('unsigned char', 1)), n)
    const v = (): unknown => (n === 4 ? ipv4() : n === 16 ? ipv6() : n === 6 ? [...randomBytes(6)].map((x) => x.toString(16).padStart(2, '0')).join(':') : [...randomBytes(n)])
    return { id, size: n, align: 1, value: () => exactly(v()) }
  }
  if (k === 8) {
    const family = rand() < 0.5 ? 4 : 6
    const n = family === 4 ? 4 : 16
    const u32 = tt.typedef('__u32', tt.int('unsigned int', 4))
    const data = family === 4 && rand() < 0.3 ? tt.typedef('__be32', u32) : tt.array(tt.int('unsigned char', 1), n)
    const id = tt.struct('lpm', 4 + n, [['prefixlen', u32, 0], ['data', data, 32]])
    return {
      id, size: 4 + n, align: 4,
      value: () => {
        const length = int(n * 8 + 1)
        const bytes = randomBytes(n)
        for (let i = 0; i < n; i++) bytes[i] = bytes[i]! & ((0xff00 >> Math.min(8, Math.max(0, length - i * 8))) & 0xff)
        const text = family === 4 ? [...bytes].join('.') : formatIPv6(bytes)
        return exactly(length === n * 8 ? text : `${text}/${length}`)
      },
    }
  }
  return leaf(tt)
}

function randomType(tt: TypeTable, depth: number): Gen {
  const k = depth >= 3 ? 0 : int(6)
  if (k <= 2) return leaf(tt)
  if (k === 3) {
    const elem = randomType(tt, depth + 1)
    const n = 1 + int(3)
    const id = tt.array(elem.id, n)
    return {
      id, size: elem.size * n, align: elem.align,
      value: () => {
        const vs = Array.from({ length: n }, () => elem.value())
        return { v: vs.map((x) => x.v), exact: vs.every((x) => x.exact) }
      },
    }
  }
  const union = k === 5
  const members = Array.from({ length: 1 + int(4) }, () => randomType(tt, depth + 1))
  const specs: [string, number, number, number?][] = []
  const fields: { name: string; gen: () => { v: unknown; exact: boolean } }[] = []
  let off = 0
  let align = 1
  members.forEach((m, i) => {
    const at = union ? 0 : Math.ceil(off / m.align) * m.align
    specs.push([`m${i}`, m.id, at * 8])
    fields.push({ name: `m${i}`, gen: m.value })
    off = union ? Math.max(off, m.size) : at + m.size
    align = Math.max(align, m.align)
  })
  if (!union && rand() < 0.4) {
    // A run of bitfields in a 4-byte unit: unsigned, signed and bool.
    const at = Math.ceil(off / 4) * 4
    let bit = 0
    for (let i = 0; bit < 32 && i < 4; i++) {
      const width = Math.min(32 - bit, 1 + int(12))
      const kind = int(3)
      const type = kind === 2 ? tt.int('_Bool', 1, { bool: true }) : tt.int(kind === 1 ? 'int' : 'unsigned int', 4, { signed: kind === 1 })
      const w = kind === 2 ? 1 : width
      specs.push([`b${i}`, type, at * 8 + bit, w])
      fields.push({ name: `b${i}`, gen: () => exactly(kind === 2 ? rand() < 0.5 : numeric(randomBig(w, kind === 1))) })
      bit += w
    }
    off = at + 4
    align = Math.max(align, 4)
  }
  const size = Math.ceil(off / align) * align
  const id = tt.composite(union ? 'union' : 'struct', `s${tt.types.size}`, size, specs)
  return {
    id, size, align,
    value: () => {
      if (union) {
        const i = int(fields.length)
        const { v, exact } = fields[i]!.gen()
        return { v: { [fields[i]!.name]: v }, exact: exact && i === 0 }
      }
      const out: Record<string, unknown> = {}
      let exact = true
      for (const f of fields) {
        const x = f.gen()
        out[f.name] = x.v
        exact &&= x.exact
      }
      return { v: out, exact }
    },
  }
}

t.test(`round trip over random types and values (MAPS_SEED=${SEED})`, async (t) => {
  const failures: string[] = []
  let exact = 0
  for (let i = 0; i < 600; i++) {
    const tt = new TypeTable()
    const g = randomType(tt, 0)
    for (let j = 0; j < 4; j++) {
      const { v, exact: isExact } = g.value()
      const where = `case ${i}.${j}, value ${JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? `${x}n` : x))}`
      const e = encode(tt.types, g.id, v, g.size)
      if (!e.ok) {
        failures.push(`${where}: encode: ${JSON.stringify(e.error)}`)
        continue
      }
      const d = decode(tt.types, g.id, e.value)
      if (!d.ok) {
        failures.push(`${where}: decode of ${hex(e.value)}: ${d.error}`)
        continue
      }
      if (isExact) {
        exact++
        if (!t.strictSame(d.value, v, where, { diagnostic: false })) failures.push(where)
      }
      const again = encode(tt.types, g.id, d.value, g.size)
      if (!again.ok || !again.value.equals(e.value)) failures.push(`${where}: encode(decode(bytes)) is not the bytes`)
    }
  }
  t.same(failures, [], 'no failures')
  t.ok(exact > 1000, `${exact} values compared exactly`)
})

t.test(`random bytes: decode never throws, and what decodes encodes back (MAPS_SEED=${SEED})`, async (t) => {
  const failures: string[] = []
  let decoded = 0
  for (let i = 0; i < 600; i++) {
    const tt = new TypeTable()
    const g = randomType(tt, 0)
    const raw = Buffer.from(Array.from({ length: g.size }, () => int(256)))
    const d = decode(tt.types, g.id, raw)
    canonical(tt.types, g.id, raw)
    if (!d.ok) continue
    decoded++
    const e = encode(tt.types, g.id, d.value, g.size)
    const d2 = e.ok ? decode(tt.types, g.id, e.value) : null
    if (d2 === null || !d2.ok) failures.push(`case ${i}: ${hex(raw)} decoded but did not encode back`)
    else if (!t.strictSame(d2.value, d.value, `case ${i}`, { diagnostic: false })) failures.push(`case ${i}: ${hex(raw)}`)
  }
  t.same(failures, [], 'no failures')
  t.ok(decoded > 100, `${decoded} of 600 decoded`)
})

t.test(`junk values and junk BTF: errors, never exceptions (MAPS_SEED=${SEED})`, async (t) => {
  const junk = (depth: number): unknown => {
    const k = int(depth > 2 ? 8 : 10)
    if (k === 0) return null
    if (k === 1) return rand() < 0.5
    if (k === 2) return pick([0, -1, 1.5, 2 ** 60, NaN, Infinity, 255, 65536])
    if (k === 3) return pick(['', 'x', '0x', '-', '1.2.3.4', '::', '192.0.2.0/24', 'aa:bb:cc:dd:ee:ff', '%', '/', 'E0', 'm0'])
    if (k === 4) return BigInt(int(1000)) - 500n
    if (k === 5) return undefined
    if (k === 6) return pick(['__proto__', 'constructor', 'toString'])
    if (k === 7) return 'é'.repeat(int(20))
    if (k === 8) return Array.from({ length: int(5) }, () => junk(depth + 1))
    const o: Record<string, unknown> = {}
    for (let i = int(4); i > 0; i--) o[pick(['m0', 'm1', 'b0', 'prefixlen', 'data', 'x', '__proto__'])] = junk(depth + 1)
    return o
  }
  let errors = 0
  for (let i = 0; i < 1000; i++) {
    const tt = new TypeTable()
    const g = randomType(tt, 0)
    // Corrupt one type in a third of the cases: a dangling id, a loop, or a member moved out of place.
    if (rand() < 0.33) {
      const victim = tt.types.get(1 + int(tt.types.size))!
      if (victim.kind === 'typedef' || victim.kind === 'array') tt.types.set(victim.id, { ...victim, ...(victim.kind === 'typedef' ? { type: pick([0, 999, victim.id]) } : { elem: pick([0, 999, victim.id]) }) })
      if (victim.kind === 'struct' || victim.kind === 'union') tt.types.set(victim.id, { ...victim, members: victim.members.map((m) => ({ ...m, bitOffset: m.bitOffset + pick([0, 3, 8 * victim.size]), type: pick([m.type, m.type, 999, victim.id]) })) })
    }
    const v = junk(0)
    const e = encode(tt.types, g.id, v, g.size)
    if (!e.ok) {
      errors++
      for (const x of e.error) if (!Array.isArray(x.path) || typeof x.message !== 'string') t.fail(`case ${i}: a malformed error`)
    } else if (e.value.length !== g.size) t.fail(`case ${i}: ${e.value.length} bytes`)
    decode(tt.types, g.id, Buffer.alloc(g.size, 0xff))
    canonical(tt.types, g.id, Buffer.alloc(g.size))
  }
  t.ok(errors > 500, `${errors} of 1000 refused, none thrown`)
})

t.test('encoder: many values of one type, each written in place over whatever was there, as encode gives it', async (t) => {
  const cases: [string, number, unknown[]][] = [
    // The LPM IPv4 key from a prefix text takes a path of its own; what it does not accept, the walk does (or refuses).
    ['LPM v4', T.lpmV4, ['192.168.1.0/24', '198.51.100.7', '0.0.0.0/0', '192.0.2.1/24', '192.0.2.0/33', '01.2.3.4', '2001:db8::/32', '', 7, null, { prefixlen: 24, addr: '192.168.1.0' }, { prefixlen: 24, addr: '192.0.2.1' }, { prefixlen: 24 }]],
    ['LPM with __be32 data', lpmBe, ['10.0.0.0/8', '10.0.0.1/8', { prefixlen: 8, addr: 0x0a000000 }]],
    ['LPM v6', T.lpmV6, ['2001:db8::/32', '2001:db8::1/32', '192.0.2.0/24']],
    ['struct limits (padding zeroed)', T.limits, [{ limit: 1000, log: true }, { limit: 1000 }, { limit: -1, log: true }]],
    ['u32', T.u32, [0, 4294967295, '0xffff', -1, 'x']],
    ['char[8]', char8, ['eth0', 'toolongname', ['a']]],
    ['bitfields', bits, [{ a: 1, b: 7, c: 15, d: 0xffffff }, { a: 2, b: 0, c: 0, d: 0 }]],
  ]
  for (const [what, id, values] of cases) {
    const size = sizeOf(id)
    const compiled = encoder(T.types, id, size)
    if (!compiled.ok) {
      t.fail(`${what}: ${compiled.error[0]?.message}`)
      continue
    }
    const out = Buffer.alloc(size + 6, 0xee)
    for (const value of values) {
      const problems = compiled.value(value, out, 3)
      const once = encode(T.types, id, value, size)
      const name = `${what}: ${JSON.stringify(value)}`
      if (once.ok) {
        t.equal(problems, null, `${name}: accepted`)
        t.equal(hex(out.subarray(3, 3 + size)), hex(once.value), `${name}: encode's bytes`)
      } else t.same(problems, once.error, `${name}: encode's problems`)
      t.equal(hex(Buffer.concat([out.subarray(0, 3), out.subarray(3 + size)])), 'ee ee ee ee ee ee', `${name}: nothing written outside`)
    }
  }
  t.same(encoder(T.types, T.u32, 8), encode(T.types, T.u32, 1, 8), 'a type of another size: encode\'s error')
  t.same(encoder(T.types, self, 4), encode(T.types, self, 1, 4), 'a type that holds itself: encode\'s error')
})
