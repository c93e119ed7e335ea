import t from 'tap'
import { indexEntries, keyHex, noEntries, valueAt, type Entries } from '../../src/maps/entries.js'
import { kernelValueSize, planEntries, planMapSync, type MapShape } from '../../src/maps/plan.js'

const HASH: MapShape = { kind: 'hash', keySize: 4, valueSize: 4, maxEntries: 8, cpus: null }
const ARRAY: MapShape = { kind: 'array', keySize: 4, valueSize: 4, maxEntries: 4, cpus: null }
// value_size 4 on 2 CPUs: two slots of round_up(4, 8) = 8 bytes.
const PERCPU_HASH: MapShape = { ...HASH, cpus: 2 }
const PERCPU_ARRAY: MapShape = { ...ARRAY, cpus: 2 }
const LPM: MapShape = { kind: 'lpm', keySize: 8, valueSize: 1, maxEntries: 8, cpus: null }

/** A u32 key (an array index), as hex in host (little-endian) order. */
const k = (n: number): string => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n)
  return b.toString('hex')
}
/** A value of hex bytes. */
const v = (hex: string): Buffer => Buffer.from(hex, 'hex')
/** A struct bpf_lpm_trie_key for IPv4: prefixlen (u32, host order), then the address. */
const lpm = (prefixlen: number, addr: string): string => {
  const b = Buffer.alloc(8)
  b.writeUInt32LE(prefixlen)
  addr.split('.').forEach((x, i) => (b[4 + i] = Number(x)))
  return b.toString('hex')
}
const m = (...e: [string, Buffer][]): Map<string, Buffer> => new Map(e)
/** Every index of an array map, zero but for the given ones (as the kernel reads an array: all of it). */
const arr = (shape: MapShape, set: Record<number, Buffer>): Map<string, Buffer> =>
  m(...Array.from({ length: shape.maxEntries }, (_, i): [string, Buffer] => [k(i), set[i] ?? Buffer.alloc(kernelValueSize(shape))]))

t.test('planMapSync: declared vs current, the writes in order', async (t) => {
  type Want = { updates: [string, string][]; deletes: string[]; changed: number; added: number; removed: number; unchanged: number }
  const cases: [string, Map<string, Buffer>, Map<string, Buffer>, MapShape, Want][] = [
    ['hash: an empty map gets every entry, in declared order', m([k(2), v('02000000')], [k(1), v('01000000')]), m(), HASH,
      { updates: [[k(2), '02000000'], [k(1), '01000000']], deletes: [], changed: 0, added: 2, removed: 0, unchanged: 0 }],
    ['hash: holding its declared contents, nothing is written', m([k(1), v('01000000')]), m([k(1), v('01000000')]), HASH,
      { updates: [], deletes: [], changed: 0, added: 0, removed: 0, unchanged: 1 }],
    ['hash: changed before added, deletes apart (after every update)',
      m([k(3), v('03000000')], [k(1), v('11000000')], [k(2), v('02000000')]),
      m([k(1), v('01000000')], [k(2), v('02000000')], [k(9), v('09000000')]), HASH,
      { updates: [[k(1), '11000000'], [k(3), '03000000']], deletes: [k(9)], changed: 1, added: 1, removed: 1, unchanged: 1 }],
    ['hash: an empty declaration empties the map', m(), m([k(1), v('01000000')], [k(2), v('02000000')]), HASH,
      { updates: [], deletes: [k(1), k(2)], changed: 0, added: 0, removed: 2, unchanged: 0 }],
    ['array: a zero index counts as absent; an undeclared non-zero one is written zero, last',
      m([k(1), v('07000000')]), arr(ARRAY, { 2: v('05000000') }), ARRAY,
      { updates: [[k(1), '07000000'], [k(2), '00000000']], deletes: [], changed: 0, added: 1, removed: 1, unchanged: 0 }],
    ['array: zero declared where zero is: nothing to write', m([k(0), v('00000000')]), arr(ARRAY, {}), ARRAY,
      { updates: [], deletes: [], changed: 0, added: 0, removed: 0, unchanged: 1 }],
    ['array: zero declared over a value: a change', m([k(3), v('00000000')]), arr(ARRAY, { 3: v('01000000') }), ARRAY,
      { updates: [[k(3), '00000000']], deletes: [], changed: 1, added: 0, removed: 0, unchanged: 0 }],
    ['per-CPU hash: the same value on every CPU, padded to 8 bytes each', m([k(1), v('01020304')]), m(), PERCPU_HASH,
      { updates: [[k(1), '0102030400000000' + '0102030400000000']], deletes: [], changed: 0, added: 1, removed: 0, unchanged: 0 }],
    ['per-CPU hash: every CPU holding it (padding aside) is unchanged', m([k(1), v('01020304')]),
      m([k(1), v('01020304ffffffff' + '0102030400000000')]), PERCPU_HASH,
      { updates: [], deletes: [], changed: 0, added: 0, removed: 0, unchanged: 1 }],
    ['per-CPU hash: CPUs that differ count as changed', m([k(1), v('01020304')]),
      m([k(1), v('0102030400000000' + '0900000000000000')]), PERCPU_HASH,
      { updates: [[k(1), '0102030400000000' + '0102030400000000']], deletes: [], changed: 1, added: 0, removed: 0, unchanged: 0 }],
    ['per-CPU array: one CPU non-zero is not zero; padding is not looked at', m(),
      arr(PERCPU_ARRAY, { 0: v('00000000ffffffff' + '0000000000000000'), 1: v('0000000000000000' + '0100000000000000') }), PERCPU_ARRAY,
      { updates: [[k(1), '00'.repeat(16)]], deletes: [], changed: 0, added: 0, removed: 1, unchanged: 0 }],
    ['lpm: bits past prefixlen do not count: 10.0.0.1/24 held is 10.0.0.0/24 declared', m([lpm(24, '10.0.0.0'), v('01')]),
      m([lpm(24, '10.0.0.1'), v('01')]), LPM,
      { updates: [], deletes: [], changed: 0, added: 0, removed: 0, unchanged: 1 }],
    ['lpm: a changed prefix is written with its canonical key (replacing the node), not deleted',
      m([lpm(24, '10.0.0.9'), v('02')]), m([lpm(24, '10.0.0.1'), v('01')]), LPM,
      { updates: [[lpm(24, '10.0.0.0'), '02']], deletes: [], changed: 1, added: 0, removed: 0, unchanged: 0 }],
    ['lpm: a more specific prefix added before the covering one goes', m([lpm(25, '10.0.0.128'), v('01')]),
      m([lpm(16, '10.0.255.255'), v('01')]), LPM,
      { updates: [[lpm(25, '10.0.0.128'), '01']], deletes: [lpm(16, '10.0.0.0')], changed: 0, added: 1, removed: 1, unchanged: 0 }],
    ['lpm: a prefix boundary inside a hex digit', m([lpm(27, '10.0.0.33'), v('01')], [lpm(26, '10.0.0.64'), v('01')], [lpm(30, '10.0.0.7'), v('01')]), m(), LPM,
      { updates: [[lpm(27, '10.0.0.32'), '01'], [lpm(26, '10.0.0.64'), '01'], [lpm(30, '10.0.0.4'), '01']], deletes: [], changed: 0, added: 3, removed: 0, unchanged: 0 }],
    ['lpm: /0 and /32', m([lpm(0, '1.2.3.4'), v('01')], [lpm(32, '1.2.3.4'), v('01')]), m(), LPM,
      { updates: [[lpm(0, '0.0.0.0'), '01'], [lpm(32, '1.2.3.4'), '01']], deletes: [], changed: 0, added: 2, removed: 0, unchanged: 0 }],
  ]
  for (const [name, declared, current, shape, want] of cases) {
    const p = planMapSync(declared, current, shape)
    if (!p.ok) {
      t.fail(`${name}: ${p.error.message}`)
      continue
    }
    const { updates, ...rest } = p.value
    t.same({ updates: updates.map(([key, value]) => [key, value.toString('hex')]), ...rest }, want, name)
  }
})

t.test('planMapSync: what cannot be planned fails before any write, naming the key', async (t) => {
  const cases: [string, Map<string, Buffer>, Map<string, Buffer>, MapShape, object][] = [
    ['a key of the wrong size', m(['0100', v('01000000')]), m(), HASH, { kind: 'declared', key: '0100', message: /4 bytes/ }],
    ['a key not in lowercase hex', m(['0A000000', v('01000000')]), m(), HASH, { kind: 'declared', key: '0A000000' }],
    ['a value of the wrong size', m([k(1), v('01')]), m(), HASH, { kind: 'declared', key: k(1), message: /value_size is 4/ }],
    ['a per-CPU value is declared once, not per CPU', m([k(1), v('01020304'.repeat(4))]), m(), PERCPU_HASH, { kind: 'declared' }],
    ['an array index past max_entries', m([k(4), v('01000000')]), arr(ARRAY, {}), ARRAY,
      { kind: 'declared', key: k(4), message: 'index 4 is past the array\'s 4 entries' }],
    ['an LPM prefixlen past the data', m([lpm(33, '1.2.3.4'), v('01')]), m(), LPM, { kind: 'declared', message: /prefixlen 33/ }],
    ['one LPM prefix declared twice', m([lpm(8, '10.0.0.0'), v('01')], [lpm(8, '10.1.0.0'), v('02')]), m(), LPM,
      { kind: 'declared', key: lpm(8, '10.1.0.0'), message: /declared twice/ }],
    ['more entries than max_entries', m(...Array.from({ length: 9 }, (_, i): [string, Buffer] => [k(i), v('01000000')])), m(), HASH,
      { kind: 'capacity', message: 'declares 9 entries; the map holds at most 8 (max_entries)' }],
    ['a current value not of the kernel size (per-CPU read as one value)', m(), m([k(1), v('01000000')]), PERCPU_HASH,
      { kind: 'current', key: k(1), message: /expected 16/ }],
  ]
  for (const [name, declared, current, shape, want] of cases) {
    const p = planMapSync(declared, current, shape)
    t.equal(p.ok, false, name)
    if (!p.ok) t.match(p.error, want, name)
  }
})

t.test('kernelValueSize: bpf_map_value_size', async (t) => {
  t.equal(kernelValueSize(HASH), 4)
  t.equal(kernelValueSize({ ...HASH, valueSize: 12, cpus: 3 }), 48)
  t.equal(kernelValueSize({ ...HASH, valueSize: 16, cpus: 2 }), 32)
})

t.test('planEntries: the writes as the batch calls take them', async (t) => {
  /** Entries of hex keys and values; `room` more keys of garbage past the last, as a declaration's buffer may have. */
  const e = (keySize: number, valueSize: number, pairs: [string, string][], room = 0): Entries => ({
    keySize,
    valueSize,
    count: pairs.length,
    keys: Buffer.concat([Buffer.from(pairs.map(([k]) => k).join(''), 'hex'), Buffer.alloc(room * keySize, 0xaa)]),
    values: Buffer.concat([Buffer.from(pairs.map(([, v]) => v).join(''), 'hex'), Buffer.alloc(room * valueSize, 0xaa)]),
  })
  const rows = (x: Entries): string[] => Array.from({ length: x.count }, (_, i) => `${keyHex(x, i)}=${valueAt(x, i).toString('hex')}`)
  const declared = e(4, 4, [[k(2), '02000000'], [k(1), '01000000']], 3)

  const fill = planEntries(declared, noEntries(4, 4), HASH)
  t.ok(fill.ok && fill.value.updates.keys === declared.keys && fill.value.updates.values === declared.values, 'an empty map: the declaration\'s buffers are the writes, nothing copied')
  t.same(fill.ok && rows(fill.value.updates), [`${k(2)}=02000000`, `${k(1)}=01000000`], 'its entries, not the room past them')

  const indexed = indexEntries(declared)
  if (!indexed.ok) throw new Error('repeat')
  const some = planEntries(indexed.value, e(4, 4, [[k(1), '01000000'], [k(9), '09000000']]), HASH)
  t.same(
    some.ok && { updates: rows(some.value.updates), deletes: rows(some.value.deletes), changed: some.value.changed, added: some.value.added, removed: some.value.removed, unchanged: some.value.unchanged },
    { updates: [`${k(2)}=02000000`], deletes: [`${k(9)}=`], changed: 0, added: 1, removed: 1, unchanged: 1 },
    'with the index declare.ts gives: the missing entry written, the extra one deleted',
  )
  const perCpu = planEntries(declared, noEntries(4, 16), PERCPU_HASH)
  t.same(perCpu.ok && rows(perCpu.value.updates), [`${k(2)}=${'0200000000000000'.repeat(2)}`, `${k(1)}=${'0100000000000000'.repeat(2)}`], 'per CPU: each value copied for every CPU')

  const cases: [string, Entries, Entries, MapShape, object][] = [
    ['declared keys of another size', e(2, 4, [['0100', '01000000']]), noEntries(4, 4), HASH, { kind: 'declared', key: '0100', message: 'key is not 4 bytes' }],
    ['read keys of another size', noEntries(4, 4), e(2, 4, [['0100', '01000000']]), HASH, { kind: 'current', key: '0100', message: /not of its shape: key is not 4 bytes/ }],
    ['declared values of another size', e(4, 2, [[k(1), '0100']]), noEntries(4, 4), HASH, { kind: 'declared', key: k(1), message: /value_size is 4/ }],
    ['the map holding one prefix twice (with host bits set)', noEntries(8, 1), e(8, 1, [[lpm(24, '10.0.0.1'), '01'], [lpm(24, '10.0.0.0'), '01']]), LPM,
      { kind: 'current', key: lpm(24, '10.0.0.0'), message: `the prefix ${lpm(24, '10.0.0.0')} is declared twice` }],
  ]
  for (const [what, d, c, shape, want] of cases) t.match(planEntries(d, c, shape), { ok: false, error: want }, what)
})
