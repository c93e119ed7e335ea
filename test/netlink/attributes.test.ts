import t from 'tap'
import { AttributeDecoder, AttributeEncoder, NetlinkDecodeError, parseAttributes } from '../../src/netlink/attributes.js'
import { NLA_F_NESTED, NLA_F_NET_BYTEORDER } from '../../src/netlink/constants.js'
import { hex } from '../fixtures/netlink/kernel.js'

const h = (b: Buffer): string => b.toString('hex')

t.test('AttributeEncoder: golden bytes, padded to 4 with nla_len excluding the pad', async (t) => {
  const cases: [string, (e: AttributeEncoder) => AttributeEncoder, string][] = [
    ['u8', (e) => e.u8(1, 0xab), '05000100 ab000000'],
    ['u16', (e) => e.u16(2, 0x1234), '06000200 34120000'],
    ['u32', (e) => e.u32(3, 0xdeadbeef), '08000300 efbeadde'],
    ['s32 -1', (e) => e.s32(4, -1), '08000400 ffffffff'],
    ['u64', (e) => e.u64(5, 0x0102030405060708n), '0c000500 08070605 04030201'],
    ['string, NUL-terminated (as the kernel sends IFLA_IFNAME "lo")', (e) => e.string(3, 'lo'), '07000300 6c6f0000'],
    ['empty string is one NUL', (e) => e.string(6, ''), '05000600 00000000'],
    ['string of 4 bytes takes a second word for the NUL', (e) => e.string(3, 'eth0'), '09000300 65746830 00000000'],
    ['bytes', (e) => e.bytes(1, hex('020000000001')), '0a000100 02000000 00010000'],
    ['empty bytes', (e) => e.bytes(9, Buffer.alloc(0)), '04000900'],
    ['flag', (e) => e.flag(7), '04000700'],
    ['nested sets NLA_F_NESTED', (e) => e.nested(43, (x) => x.s32(1, 7)), '0c002b80 08000100 07000000'],
    ['empty nest', (e) => e.nested(52, () => undefined), '04003480'],
    [
      'nest of two: nla_len counts the inner padding, the last one too (nla_nest_end)',
      (e) => e.nested(18, (x) => x.string(1, 'veth').u8(2, 1)),
      '18001280 09000100 76657468 00000000 05000200 01000000',
    ],
    ['several in order', (e) => e.u32(4, 1500).u8(16, 6), '08000400 dc050000 05001000 06000000'],
  ]
  for (const [name, build, want] of cases) t.equal(h(build(new AttributeEncoder()).encode()), want.replace(/ /g, ''), name)
})

t.test('AttributeEncoder: values it cannot encode are programming errors (RangeError)', async (t) => {
  const bad: [string, (e: AttributeEncoder) => unknown][] = [
    ['u8 300', (e) => e.u8(1, 300)],
    ['u16 negative', (e) => e.u16(1, -1)],
    ['u32 2^32', (e) => e.u32(1, 2 ** 32)],
    ['s32 2^31', (e) => e.s32(1, 2 ** 31)],
    ['u64 negative', (e) => e.u64(1, -1n)],
    ['type above NLA_TYPE_MASK', (e) => e.u8(0x4000, 0)],
    ['negative type', (e) => e.flag(-1)],
    ['fractional type', (e) => e.flag(1.5)],
    ['string with NUL', (e) => e.string(3, 'a\0b')],
    ['attribute over 64 KiB', (e) => e.bytes(1, Buffer.alloc(0xffff))],
  ]
  for (const [name, f] of bad) t.throws(() => f(new AttributeEncoder()), RangeError, name)
})

t.test('parseAttributes: splits, masks the type, keeps views', async (t) => {
  const buf = hex('05000100 ab000000 0c002b80 08000100 07000000 06000240 3412 0000'.replace(/ /g, ''))
  const r = parseAttributes(buf)
  if (!r.ok) throw r.error
  t.same(
    r.value.map((a) => [a.type, a.nested, h(a.data), a.offset]),
    [
      [1, false, 'ab', 0],
      [43, true, '08000100' + '07000000', 8],
      [2, false, '3412', 20],
    ],
    'NLA_F_NESTED reported, NLA_F_NET_BYTEORDER masked off',
  )
  // a view, not a copy: the kernel's receive buffer is not duplicated per attribute
  buf[4] = 0xcd
  t.equal(r.value[0]!.data[0], 0xcd)
  const based = parseAttributes(buf, 32)
  t.same(based.ok && based.value.map((a) => a.offset), [32, 40, 52], 'base shifts offsets')
})

t.test('parseAttributes: malformed input is an error value with an offset', async (t) => {
  const cases: [string, string, number, RegExp][] = [
    ['header shorter than 4 bytes', '050001', 0, /truncated attribute header: 3 bytes/],
    ['leftover after the last attribute', '08000100 01000000 0800'.replace(/ /g, ''), 8, /truncated attribute header: 2 bytes/],
    ['nla_len 0 would never advance', '00000100 00000000', 0, /length 0 is below 4/],
    ['nla_len 3', '03000100', 0, /length 3 is below 4/],
    ['nla_len beyond the buffer', '09000100 01020304'.replace(/ /g, ''), 0, /length 9 exceeds the 8 bytes left/],
    ['second attribute oversized', '04000100 ffff0200 00000000'.replace(/ /g, ''), 4, /length 65535 exceeds/],
  ]
  for (const [name, bytes, offset, msg] of cases) {
    const r = parseAttributes(hex(bytes.replace(/ /g, '')))
    t.notOk(r.ok, name)
    if (r.ok) continue
    t.type(r.error, NetlinkDecodeError, name)
    t.equal(r.error.offset, offset, `${name}: offset`)
    t.match(r.error.message, msg, name)
  }
})

t.test('parseAttributes: what is not an error', async (t) => {
  const ok = (b: string): number => {
    const r = parseAttributes(hex(b.replace(/ /g, '')))
    return r.ok ? r.value.length : -1
  }
  t.equal(ok(''), 0, 'empty')
  t.equal(ok('05000100 ab000000'), 1, 'trailing padding after the last attribute')
  t.equal(ok('05000100 ab'), 1, 'last attribute without its padding (nla_len is what counts)')
  t.equal(ok('04000100 04000200'), 2, 'zero-payload attributes')
  t.equal(ok('05000100 ab000000 05000200 cd'), 2, 'padding between, none at the end')
})

t.test('AttributeDecoder.offset: where the current attribute is in the message, inside a nest too', async (t) => {
  const d = new AttributeDecoder(hex('05000100 ab000000 0c002b80 08000100 07000000'.replace(/ /g, '')), 20)
  t.equal(d.offset(), 20, 'before the first attribute: where the run starts')
  const seen: number[] = []
  while (d.next()) {
    seen.push(d.offset())
    if (d.type() === 43) d.nested((n) => { while (n.next()) seen.push(n.offset()) })
  }
  t.same(seen, [20, 28, 32], 'the u8 at 20, the nest at 28, its first attribute after the nest header')
})

t.test('AttributeDecoder: typed accessors', async (t) => {
  const buf = new AttributeEncoder()
    .u8(1, 0xfe)
    .u16(2, 0xbeef)
    .u32(3, 0xfffffffe)
    .s32(4, -22)
    .u64(5, 0xfedcba9876543210n)
    .string(6, 'veth0')
    .bytes(7, hex('02000000000a'))
    .flag(8)
    .nested(9, (x) => x.u32(1, 42).string(2, 'inner'))
    .encode()
  const d = new AttributeDecoder(buf)
  const got: unknown[] = []
  while (d.next()) {
    switch (d.type()) {
      case 1:
        got.push(d.u8())
        break
      case 2:
        got.push(d.u16())
        break
      case 3:
        got.push(d.u32())
        break
      case 4:
        got.push(d.s32())
        break
      case 5:
        got.push(d.u64())
        break
      case 6:
        got.push(d.string())
        break
      case 7:
        got.push(h(d.bytes()))
        break
      case 8:
        got.push(d.bytes().length)
        break
      case 9:
        got.push(d.isNested())
        got.push(
          d.nested((x) => {
            const inner: unknown[] = []
            while (x.next()) inner.push(x.type() === 1 ? x.u32() : x.string())
            return inner
          }),
        )
        break
    }
  }
  t.equal(d.err(), undefined)
  t.same(got, [0xfe, 0xbeef, 0xfffffffe, -22, 0xfedcba9876543210n, 'veth0', '02000000000a', 0, true, [42, 'inner']])
  t.equal(d.next(), false, 'stays at the end')
  t.equal(d.type(), 0)
})

t.test('AttributeDecoder: strings', async (t) => {
  const one = (payload: string): string => {
    const d = new AttributeDecoder(new AttributeEncoder().bytes(1, hex(payload)).encode())
    d.next()
    return d.string()
  }
  t.equal(one('6c6f00'), 'lo', 'trailing NUL trimmed')
  t.equal(one('6c6f'), 'lo', 'no NUL is fine')
  t.equal(one('6c6f0000000000'), 'lo', 'NUL padding (a fixed IFNAMSIZ buffer) trimmed')
  t.equal(one('6c6f0078'), 'lo', 'read up to the first NUL, as C does')
  t.equal(one(''), '', 'empty')
  t.equal(one('c3a9746830'), 'éth0', 'UTF-8')
  t.equal(one('ff00'), '\ufffd', 'invalid UTF-8 is replaced, not thrown')
})

t.test('AttributeDecoder: the first error sticks and later accessors return zero values', async (t) => {
  const buf = hex(['07000300 010203 00', '08000400 2a000000', '07000600 6c6f00 00'].join('').replace(/ /g, ''))
  const d = new AttributeDecoder(buf)
  t.ok(d.next())
  t.equal(d.u32(), 0, 'u32 on 3 bytes')
  const e = d.err()
  t.type(e, NetlinkDecodeError)
  t.match(e?.message, /attribute type 3: u32 needs 4 bytes, got 3/)
  t.equal(e?.offset, 0)
  t.equal(d.next(), false, 'next() stops after an error')
  t.equal(d.u32(), 0)
  t.equal(d.s32(), 0)
  t.equal(d.u8(), 0)
  t.equal(d.u16(), 0)
  t.equal(d.u64(), 0n)
  t.equal(d.string(), '')
  t.equal(d.bytes().length, 0)
  t.equal(d.nested(() => 'never'), undefined)
  d.fail('later problem')
  t.equal(d.err(), e, 'the first error is kept')
})

t.test('AttributeDecoder: wrong sizes for each accessor', async (t) => {
  const cases: [string, (d: AttributeDecoder) => unknown, string][] = [
    ['u8 on 2 bytes', (d) => d.u8(), '0100'],
    ['u16 on 1 byte', (d) => d.u16(), '01'],
    ['u16 on 4 bytes', (d) => d.u16(), '01000000'],
    ['u32 on 8 bytes', (d) => d.u32(), '0100000000000000'],
    ['s32 on 2 bytes', (d) => d.s32(), '0100'],
    ['u64 on 4 bytes', (d) => d.u64(), '01000000'],
    ['u32 on nothing', (d) => d.u32(), ''],
  ]
  for (const [name, f, payload] of cases) {
    const d = new AttributeDecoder(new AttributeEncoder().bytes(5, hex(payload)).encode())
    d.next()
    f(d)
    t.type(d.err(), NetlinkDecodeError, name)
  }
})

t.test('AttributeDecoder: accessor without a current attribute', async (t) => {
  const d = new AttributeDecoder(Buffer.alloc(0))
  t.equal(d.u32(), 0)
  t.match(d.err()?.message, /without a current attribute/)
})

t.test('AttributeDecoder: a malformed buffer is an error from the start', async (t) => {
  const d = new AttributeDecoder(hex('0900010001020304'), 32)
  t.equal(d.next(), false)
  t.equal(d.err()?.offset, 32, 'offset includes the base')
})

t.test('AttributeDecoder: nested', async (t) => {
  t.test('NLA_F_NESTED is not required (rtnl_fill_ifinfo uses nla_nest_start_noflag)', async (t) => {
    const d = new AttributeDecoder(hex('0c002b00 05000200 02000000'.replace(/ /g, '')))
    d.next()
    t.equal(d.isNested(), false)
    t.equal(
      d.nested((x) => (x.next() ? x.u8() : -1)),
      2,
    )
    t.equal(d.err(), undefined)
  })
  t.test('a malformed nest becomes the outer error, with the offset of the bad inner attribute', async (t) => {
    // outer attr at 8 (after a good one); its payload starts at 12 and holds an inner attr with nla_len 2
    const d = new AttributeDecoder(hex('08000100 01000000 08000280 02000100'.replace(/ /g, '')), 100)
    d.next()
    t.equal(d.u32(), 1)
    d.next()
    let called = false
    t.equal(
      d.nested(() => (called = true)),
      undefined,
    )
    t.notOk(called, 'callback not run on a malformed nest')
    t.equal(d.err()?.offset, 112)
    t.equal(d.next(), false)
  })
  t.test('an error inside the callback propagates and the result is dropped', async (t) => {
    const d = new AttributeDecoder(new AttributeEncoder().nested(1, (x) => x.u16(1, 5)).u8(2, 1).encode())
    d.next()
    t.equal(
      d.nested((x) => {
        x.next()
        return x.u32()
      }),
      undefined,
    )
    t.match(d.err()?.message, /u32 needs 4 bytes, got 2/)
    t.equal(d.err()?.offset, 4, 'inner attribute offset, relative to the outer buffer')
  })
  t.test('fail() inside the callback', async (t) => {
    const d = new AttributeDecoder(new AttributeEncoder().nested(1, () => undefined).encode(), 16)
    d.next()
    t.equal(
      d.nested((x) => {
        x.fail('required attribute missing')
        return 1
      }),
      undefined,
    )
    t.match(d.err()?.message, /required attribute missing \(at byte 20\)/, 'points at the (empty) nest payload')
  })
})

t.test('NetlinkDecodeError', async (t) => {
  const e = new NetlinkDecodeError('bad', 12)
  t.type(e, Error)
  t.equal(e.name, 'NetlinkDecodeError')
  t.equal(e.message, 'bad (at byte 12)')
  t.equal(e.offset, 12)
  t.equal(new NetlinkDecodeError('bad').offset, undefined)
  t.equal(new NetlinkDecodeError('bad').message, 'bad')
})

t.test('flag bits', async (t) => {
  const r = parseAttributes(hex('04000180 04000140 0400ffff'))
  t.same(r.ok && r.value.map((a) => [a.type, a.nested]), [
    [1, true],
    [1, false],
    [0x3fff, true],
  ])
  t.equal(NLA_F_NESTED | NLA_F_NET_BYTEORDER, 0xc000)
})
