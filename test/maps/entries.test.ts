/**
 * Entries (keys and values in two buffers) and their KeyIndex: what the declaration, the read of a map and the plan
 * share. Tables, and a seeded run of many keys through the index (MAPS_SEED=<n> to vary it).
 */
import t from 'tap'
import { copyBytes, entriesOfHex, equalEntries, indexEntries, KeyIndex, keyAt, keyHex, noEntries, sameBytes, valueAt, type Entries, type IndexedEntries } from '../../src/maps/entries.js'
import { prng } from '../helpers/prng.js'

const SEED = Number(process.env['MAPS_SEED'] ?? 13)

/** Entries of hex keys and values, e.g. ['0a00', '01'], in order. */
function entries(keySize: number, valueSize: number, pairs: [string, string][]): Entries {
  return {
    keySize,
    valueSize,
    count: pairs.length,
    keys: Buffer.from(pairs.map(([k]) => k).join(''), 'hex'),
    values: Buffer.from(pairs.map(([, v]) => v).join(''), 'hex'),
  }
}
function indexed(e: Entries): IndexedEntries {
  const r = indexEntries(e)
  if (!r.ok) throw new Error(`key ${r.error.at} repeats ${r.error.first}`)
  return r.value
}

t.test('an entry by position: key, its hex, value (views of the buffers)', async (t) => {
  const e = entries(2, 3, [['0a00', '010203'], ['ffee', '040506']])
  t.equal(keyHex(e, 1), 'ffee')
  t.equal(keyAt(e, 1).toString('hex'), 'ffee')
  t.equal(valueAt(e, 0).toString('hex'), '010203')
  valueAt(e, 1)[0] = 9
  t.equal(e.values[3], 9, 'a view, not a copy')
  t.same(noEntries(8, 1), { keySize: 8, valueSize: 1, count: 0, keys: Buffer.alloc(0), values: Buffer.alloc(0) })
})

t.test('sameBytes and copyBytes: short runs by loop, long ones natively, at offsets', async (t) => {
  for (const n of [0, 1, 7, 32, 33, 100]) {
    const a = Buffer.from(Array.from({ length: n + 5 }, (_, i) => (i * 7) & 0xff))
    const b = Buffer.alloc(n + 9)
    copyBytes(a, 5, b, 9, n)
    t.ok(sameBytes(a, 5, b, 9, n), `${n} bytes copied are the same`)
    t.equal(b.subarray(0, 9).every((x) => x === 0), true, `${n}: nothing before the offset written`)
    if (n === 0) continue
    b[9 + n - 1] = b[9 + n - 1]! ^ 1
    t.notOk(sameBytes(a, 5, b, 9, n), `${n}: the last byte differs`)
    t.ok(sameBytes(a, 5, b, 9, n - 1), `${n}: the others do not`)
  }
})

t.test('KeyIndex: a key found by its bytes, wherever they lie', async (t) => {
  for (const keySize of [1, 3, 4, 5, 8, 16, 20]) {
    const rand = prng(SEED + keySize)
    const n = keySize === 1 ? 256 : 5000
    const keys = Buffer.alloc((n + 1) * keySize)
    const index = new KeyIndex(keys, keySize, n + 1)
    let count = 0
    let repeats = 0
    let sameKey = 0
    for (let i = 0; i < n; i++) {
      // A 1-byte key takes every value once; larger ones are random, a few copies of earlier ones among them.
      const off = count * keySize
      if (keySize === 1) keys[off] = i
      else if (count > 0 && rand() < 0.05) keyAt({ keySize, valueSize: 0, count, keys, values: keys }, Math.floor(rand() * count)).copy(keys, off)
      else for (let j = 0; j < keySize; j++) keys[off + j] = Math.floor(rand() * 256)
      const first = index.add(count)
      if (first < 0) count++
      else {
        repeats++
        if (sameBytes(keys, off, keys, first * keySize, keySize)) sameKey++
      }
    }
    t.equal(index.size, count, `${keySize}-byte keys: each added once`)
    let found = 0
    for (let i = 0; i < count; i++) if (index.find(keys, i * keySize) === i) found++
    t.equal(found, count, `${keySize}-byte keys: every key found at its position`)
    t.equal(sameKey, repeats, `${keySize}-byte keys: a repeat names the key it repeats (${repeats})`)
    if (keySize > 1) t.ok(repeats > 0, `${keySize}-byte keys: some repeated`)
    // Elsewhere: in another buffer, at an offset.
    const other = Buffer.alloc(3 + keySize)
    keys.copy(other, 3, (count - 1) * keySize, count * keySize)
    t.equal(index.find(other, 3), count - 1, `${keySize}-byte keys: found in another buffer`)
    if (keySize > 1) {
      other.fill(0xab, 3)
      const absent = [...Array(count).keys()].every((i) => !sameBytes(keys, i * keySize, other, 3, keySize))
      if (absent) t.equal(index.find(other, 3), -1, `${keySize}-byte keys: an absent key is -1`)
    }
  }
  const small = new KeyIndex(Buffer.alloc(64), 4, 2)
  for (let i = 0; i < 8; i++) small.add(i) // eight keys of zeros: one, the rest repeat it
  t.equal(small.size, 1)
  const full = new KeyIndex(Buffer.from([...Array(64).keys()]), 1, 2)
  t.throws(() => {
    for (let i = 0; i < 64; i++) full.add(i)
  }, RangeError, 'more keys than it was made for is a bug: thrown')
})

t.test('indexEntries and equalEntries', async (t) => {
  const a = entries(2, 1, [['0001', '0a'], ['0002', '0b'], ['0003', '0c']])
  t.same(indexEntries(entries(2, 1, [['0001', '0a'], ['0002', '0b'], ['0001', '0c']])), { ok: false, error: { at: 2, first: 0 } }, 'a repeated key: both places')
  const cases: [string, Entries, Entries, boolean][] = [
    ['the same', a, a, true],
    ['the same in another order', a, entries(2, 1, [['0003', '0c'], ['0001', '0a'], ['0002', '0b']]), true],
    ['one value differs', a, entries(2, 1, [['0001', '0a'], ['0002', '0b'], ['0003', '0d']]), false],
    ['one key differs', a, entries(2, 1, [['0001', '0a'], ['0002', '0b'], ['0004', '0c']]), false],
    ['one fewer', a, entries(2, 1, [['0001', '0a'], ['0002', '0b']]), false],
    ['values of other sizes', entries(2, 1, [['0001', '0a']]), entries(2, 2, [['0001', '0a00']]), false],
    ['nothing, twice', noEntries(2, 1), noEntries(2, 1), true],
  ]
  for (const [what, x, y, want] of cases) {
    t.equal(equalEntries(indexed(x), indexed(y)), want, what)
    t.equal(equalEntries(indexed(y), indexed(x)), want, `${what}, the other way`)
  }
})

t.test('entriesOfHex: a Map of hex keys, in its order; the first key or value of another size fails', async (t) => {
  const ok = entriesOfHex(new Map([['0a0b', Buffer.from([1])], ['0000', Buffer.from([2])]]), 2, 1)
  t.same(ok, { ok: true, value: { keySize: 2, valueSize: 1, count: 2, keys: Buffer.from('0a0b0000', 'hex'), values: Buffer.from([1, 2]) } })
  const cases: [string, [string, Buffer][], object][] = [
    ['a short key', [['0a', Buffer.from([1])]], { key: '0a', what: 'key' }],
    ['upper case', [['0A0B', Buffer.from([1])]], { key: '0A0B', what: 'key' }],
    ['not hex', [['0g0b', Buffer.from([1])]], { key: '0g0b', what: 'key' }],
    ['a long value', [['0a0b', Buffer.from([1]), ], ['0c0d', Buffer.from([1, 2])]], { key: '0c0d', what: 'value', length: 2 }],
  ]
  for (const [what, pairs, want] of cases) t.match(entriesOfHex(new Map(pairs), 2, 1), { ok: false, error: want }, what)
  t.same(entriesOfHex(new Map(), 4, 4), { ok: true, value: noEntries(4, 4) }, 'nothing')
})
