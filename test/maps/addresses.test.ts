import t from 'tap'
import { formatIPv6, formatMac, formatPrefix, network, parseIPv4, parseIPv6, parseMac, parsePrefix, writeIPv4Prefix } from '../../src/maps/addresses.js'
import { prng } from '../helpers/prng.js'

const hex = (b: Buffer | null): string | null => (b === null ? null : b.toString('hex').replace(/(..)(?!$)/g, '$1 '))

t.test('parseIPv6: the 16 bytes of a text, every form of RFC 4291 2.2', async (t) => {
  const cases: [string, string | null][] = [
    ['::', '00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00'],
    ['::1', '00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01'],
    ['1::', '00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00'],
    ['2001:db8::1', '20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01'],
    ['2001:DB8:0:0:0:0:0:1', '20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01'],
    ['1:2:3:4:5:6:7:8', '00 01 00 02 00 03 00 04 00 05 00 06 00 07 00 08'],
    ['1:2:3:4:5:6:7::', '00 01 00 02 00 03 00 04 00 05 00 06 00 07 00 00'],
    ['::2:3:4:5:6:7:8', '00 00 00 02 00 03 00 04 00 05 00 06 00 07 00 08'],
    ['1:2:3::6:7:8', '00 01 00 02 00 03 00 00 00 00 00 06 00 07 00 08'],
    ['::ffff:1.2.3.4', '00 00 00 00 00 00 00 00 00 00 ff ff 01 02 03 04'],
    ['::1.2.3.4', '00 00 00 00 00 00 00 00 00 00 00 00 01 02 03 04'],
    ['1:2:3:4:5:6:1.2.3.4', '00 01 00 02 00 03 00 04 00 05 00 06 01 02 03 04'],
    ['fe80::1%eth0', null], // a zone names an interface of one host
    ['fe80::1%1', null],
    ['1::2::3', null],
    [':::', null],
    ['1:2:3:4:5:6:7:8:9', null],
    ['1:2:3:4:5:6:7:8::', null],
    ['1.2.3.4::', null],
    ['::1.2.3', null],
    ['::ffff:01.2.3.4', null],
    ['12345::', null],
    ['g::', null],
    ['', null],
    ['192.0.2.1', null],
    [' ::1', null],
  ]
  for (const [text, want] of cases) t.equal(hex(parseIPv6(text)), want, JSON.stringify(text))
})

t.test('formatIPv6: RFC 5952', async (t) => {
  const cases: [string, string][] = [
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // 4.2.3: the first of two equal runs
    ['2001:0db8:0:0:0:0:2:1', '2001:db8::2:1'], // 4.1: no leading zeros
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // 4.2.2: one zero group is not shortened
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // 4.2.3: the longest run
    ['2001:DB8::AB', '2001:db8::ab'], // 4.3: lower case
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'], // 5: IPv4-mapped with its dotted quad
    ['::ffff:0:0', '::ffff:0.0.0.0'],
    ['::1.2.3.4', '::102:304'], // IPv4-compatible (deprecated): plain hex
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ]
  for (const [text, want] of cases) t.equal(formatIPv6(parseIPv6(text)!), want, text)
})

t.test('IPv4 and MAC', async (t) => {
  t.equal(hex(parseIPv4('192.0.2.1')), 'c0 00 02 01')
  t.equal(parseIPv4('192.0.2.01'), null, 'node:net refuses leading zeros (octal to inet_aton)')
  t.equal(parseIPv4('192.0.2'), null)
  t.equal(parseIPv4('256.0.0.1'), null)
  t.equal(hex(parseMac('aa:BB:cc:0d:ee:ff')), 'aa bb cc 0d ee ff')
  t.equal(parseMac('aa-bb-cc-dd-ee-ff'), null, 'colons only')
  t.equal(parseMac('aa:bb:cc:dd:ee'), null)
  t.equal(parseMac('a:bb:cc:dd:ee:ff'), null)
  t.equal(formatMac(Buffer.from('0a0b0c0d0e0f', 'hex')), '0a:0b:0c:0d:0e:0f')
})

t.test('parsePrefix: length, family and host bits', async (t) => {
  const cases: [string, 4 | 6, string][] = [
    ['192.0.2.0/24', 4, 'c0 00 02 00 /24'],
    ['198.51.100.7', 4, 'c6 33 64 07 /32'],
    ['0.0.0.0/0', 4, '00 00 00 00 /0'],
    ['192.0.2.128/25', 4, 'c0 00 02 80 /25'],
    ['2001:db8::/32', 6, '20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 00 /32'],
    ['::/0', 6, '00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 /0'],
    ['2001:db8::1', 6, '20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 /128'],
    ['192.0.2.0/33', 4, '192.0.2.0/33: prefix length 33 is longer than 32'],
    ['2001:db8::/129', 6, '2001:db8::/129: prefix length 129 is longer than 128'],
    ['192.0.2.1/24', 4, '192.0.2.1/24: host bits are set beyond the /24 prefix; the network is 192.0.2.0/24'],
    ['192.0.2.129/25', 4, '192.0.2.129/25: host bits are set beyond the /25 prefix; the network is 192.0.2.128/25'],
    ['2001:db8::1/32', 6, '2001:db8::1/32: host bits are set beyond the /32 prefix; the network is 2001:db8::/32'],
    ['192.0.2.0/024', 4, '192.0.2.0/024: expected a prefix length from 0 to 32 after "/"'],
    ['192.0.2.0/', 4, '192.0.2.0/: expected a prefix length from 0 to 32 after "/"'],
    ['192.0.2.0/-1', 4, '192.0.2.0/-1: expected a prefix length from 0 to 32 after "/"'],
    ['2001:db8::/32', 4, 'expected an IPv4 prefix such as 192.0.2.0/24 or an IPv4 address (the key\'s address is 4 bytes), got "2001:db8::/32", an IPv6 prefix'],
    ['192.0.2.7', 6, 'expected an IPv6 prefix such as 2001:db8::/32 or an IPv6 address (the key\'s address is 16 bytes), got "192.0.2.7", an IPv4 address'],
    ['fe80::%eth0/64', 6, 'expected an IPv6 prefix such as 2001:db8::/32 or an IPv6 address, got "fe80::%eth0/64": a zone id (%...) names an interface, and has no place in a map'],
    ['192.0.2/24', 4, 'expected an IPv4 prefix such as 192.0.2.0/24 or an IPv4 address, got "192.0.2/24"'],
  ]
  for (const [text, family, want] of cases) {
    const r = parsePrefix(text, family)
    t.equal(r.ok ? `${hex(r.value.bytes)} /${r.value.length}` : r.error, want, `${text} as IPv${family}`)
  }
})

t.test('network and formatPrefix', async (t) => {
  t.equal(hex(network(Buffer.from([192, 0, 2, 255]), 26)), 'c0 00 02 c0')
  t.equal(hex(network(Buffer.from([255, 255, 255, 255]), 0)), '00 00 00 00')
  t.equal(formatPrefix(4, Buffer.from([192, 0, 2, 0]), 24), '192.0.2.0/24')
  t.equal(formatPrefix(4, Buffer.from([192, 0, 2, 7]), 32), '192.0.2.7', 'full length: the bare address')
  t.equal(formatPrefix(6, parseIPv6('2001:db8::')!, 32), '2001:db8::/32')
})

t.test('writeIPv4Prefix: what parsePrefix(text, 4) accepts, written in place; -1 for the rest', async (t) => {
  /** What writeIPv4Prefix gives, and parsePrefix's answer in the same form. */
  const fast = (text: string): string => {
    const out = Buffer.alloc(7, 0xee)
    const length = writeIPv4Prefix(text, out, 2)
    if (length < 0) return out.equals(Buffer.alloc(7, 0xee)) ? 'refused' : 'refused, and wrote'
    return `${out.toString('hex', 2, 6)}/${length}${out[0] === 0xee && out[1] === 0xee && out[6] === 0xee ? '' : ' (and beyond)'}`
  }
  const slow = (text: string): string => {
    const p = parsePrefix(text, 4)
    return p.ok ? `${p.value.bytes.toString('hex')}/${p.value.length}` : 'refused'
  }
  const cases: [string, string][] = [
    ['192.0.2.0/24', 'c0000200/24'],
    ['198.51.100.7', 'c6336407/32'],
    ['198.51.100.7/32', 'c6336407/32'],
    ['0.0.0.0/0', '00000000/0'],
    ['255.255.255.255', 'ffffffff/32'],
    ['10.0.0.0/8', '0a000000/8'],
    ['128.0.0.0/1', '80000000/1'],
    ['10.0.0.32/27', '0a000020/27'],
    ['192.0.2.1/24', 'refused'], // host bits: parsePrefix says which network
    ['1.0.0.0/0', 'refused'],
    ['10.0.0.33/27', 'refused'],
    ['192.0.2.0/33', 'refused'],
    ['192.0.2.0/024', 'refused'],
    ['192.0.2.0/', 'refused'],
    ['192.0.2.0/+24', 'refused'],
    ['192.0.2.0/24 ', 'refused'],
    ['192.0.2.0/100', 'refused'],
    ['192.0.2.0/1000', 'refused'],
    ['192.0.2.0/2a', 'refused'],
    ['192.0.2.0//24', 'refused'],
    ['01.2.3.4', 'refused'], // isIPv4: no leading zeros
    ['1.2.3.04', 'refused'],
    ['00.0.0.0', 'refused'],
    ['256.0.0.0', 'refused'],
    ['1.2.3.256', 'refused'],
    ['1000.0.0.0', 'refused'],
    ['1.2.3', 'refused'],
    ['1.2.3.', 'refused'],
    ['1.2.3.4.', 'refused'],
    ['1.2.3.4.5', 'refused'],
    ['.1.2.3', 'refused'],
    ['1..2.3', 'refused'],
    [' 1.2.3.4', 'refused'],
    ['1.2.3.4 ', 'refused'],
    ['1.2.3.-4', 'refused'],
    ['١.2.3.4', 'refused'], // an Arabic-Indic digit is no [0-9]
    ['::ffff:1.2.3.4', 'refused'],
    ['2001:db8::/32', 'refused'],
    ['', 'refused'],
    ['/24', 'refused'],
  ]
  for (const [text, want] of cases) {
    t.equal(fast(text), want, JSON.stringify(text))
    t.equal(slow(text), want, `${JSON.stringify(text)}: parsePrefix agrees`)
  }
  // Texts near the grammar's edges, from a seeded PRNG (MAPS_SEED=<n> to vary it): the two agree on every one.
  const rand = prng(Number(process.env['MAPS_SEED'] ?? 13))
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
  const parts = ['0', '0', '0', '1', '9', '10', '99', '100', '128', '199', '200', '249', '250', '255']
  const odd = ['01', '256', '300', '999', '0000', '', ' ', 'a', '-1']
  const lengths = ['', '/0', '/1', '/8', '/16', '/23', '/24', '/31', '/32', '/33', '/08', '/', '/x', '/320', '//8']
  let agreed = 0
  let accepted = 0
  const n = 20000
  for (let i = 0; i < n; i++) {
    const dots = rand() < 0.9 ? 4 : pick([3, 5])
    const text = Array.from({ length: dots }, () => pick(rand() < 0.95 ? parts : odd)).join(rand() < 0.98 ? '.' : ':') + pick(lengths)
    const f = fast(text)
    if (f !== 'refused') accepted++
    if (f === slow(text)) agreed++
    else t.fail(`${JSON.stringify(text)}: writeIPv4Prefix ${f}, parsePrefix ${slow(text)}`)
  }
  t.equal(agreed, n, `${n} texts: the same answer`)
  t.ok(accepted > n / 50, `of which prefixes: ${accepted}`)
})
