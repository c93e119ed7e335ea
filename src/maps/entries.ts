/**
 * A map's entries as the kernel's batch commands take them (issue 13): `count` keys of `keySize` bytes back to back in
 * one buffer, their values, `valueSize` bytes each, in another, in the same order (kernel/bpf/syscall.c,
 * generic_map_update_batch reads `keys` and `values` so). Declared contents, what a read of a map found and the writes
 * a sync plans are all kept this way. Pure.
 *
 * Why not a Map of hex keys to Buffers: 100,000 IPv4 prefixes of an LPM trie are 0.9 MB here, against some 25 MB as
 * 100,000 hex strings and Buffers (and the garbage collector's time to trace them, twice for a sync that also read
 * the map), and a batch call takes a slice of these buffers as it is. Where entries are looked up by key, a KeyIndex
 * finds them by their bytes where they lie: no object or string per key either. Small objects by the 100,000 that
 * live through a scavenge are what grows V8's young generation to its largest (2 x 16 MB), which, with the daemon's
 * --no-memory-reducer, it then keeps.
 */
import { err, ok, type Result } from '../result.js'

export interface Entries {
  keySize: number
  /** Bytes a value: value_size for declared contents, the kernel's bpf_map_value_size for what it reads or writes. */
  valueSize: number
  count: number
  /** At least `count * keySize` bytes; what is past them is not an entry. */
  keys: Buffer
  /** At least `count * valueSize` bytes. */
  values: Buffer
}

/** Entries with each key's position. */
export interface IndexedEntries extends Entries {
  index: KeyIndex
}

/** The key of entry `i` as lowercase hex, as messages name a key. */
export function keyHex(e: Entries, i: number): string {
  return e.keys.toString('hex', i * e.keySize, (i + 1) * e.keySize)
}

/** The bytes of entry `i`'s key, a view. */
export function keyAt(e: Entries, i: number): Buffer {
  return e.keys.subarray(i * e.keySize, (i + 1) * e.keySize)
}

/** The bytes of entry `i`'s value, a view. */
export function valueAt(e: Entries, i: number): Buffer {
  return e.values.subarray(i * e.valueSize, (i + 1) * e.valueSize)
}

/** `n` bytes of `a` at `aOff` against `b` at `bOff`; a loop for the short values maps mostly hold, memcmp beyond. */
export function sameBytes(a: Buffer, aOff: number, b: Buffer, bOff: number, n: number): boolean {
  if (n > 32) return a.compare(b, bOff, bOff + n, aOff, aOff + n) === 0
  for (let i = 0; i < n; i++) if (a[aOff + i] !== b[bOff + i]) return false
  return true
}

/** Copies `n` bytes; a loop for short runs, where Buffer.copy's native call costs more than the bytes. */
export function copyBytes(from: Buffer, fromOff: number, to: Buffer, toOff: number, n: number): void {
  if (n > 32) from.copy(to, toOff, fromOff, fromOff + n)
  else for (let i = 0; i < n; i++) to[toOff + i] = from[fromOff + i]!
}

/** No entries, keys of `keySize` and values of `valueSize` bytes. */
export function noEntries(keySize: number, valueSize: number): Entries {
  return { keySize, valueSize, count: 0, keys: Buffer.alloc(0), values: Buffer.alloc(0) }
}

/**
 * Seeds the hash per process: a list file comes from outside (a feed), and keys crafted to share one slot of a
 * hash known in advance would make every lookup walk them all.
 */
const SEED = Math.floor(Math.random() * 2 ** 32)

/**
 * Where each key of some entries is, found by its bytes: an open-addressing table (linear probing, at most half
 * full) of positions into the entries' own `keys` buffer, hashed with MurmurHash3's 32-bit mixing. 100,000 keys take
 * one Int32Array of 2^18 slots (1 MB) and no object per key; a key is looked up where it lies (`find(buf, off)`),
 * in a read's buffer as in a declaration's.
 */
export class KeyIndex {
  readonly #keys: Buffer
  readonly #keySize: number
  /** Position + 1 of the key hashed there; 0: empty. */
  readonly #slots: Int32Array
  readonly #mask: number
  #size = 0

  /** An empty index over `keys` (keys of `keySize` bytes) for up to `capacity` of them. */
  constructor(keys: Buffer, keySize: number, capacity: number) {
    this.#keys = keys
    this.#keySize = keySize
    let slots = 16
    while (slots < capacity * 2) slots *= 2
    this.#slots = new Int32Array(slots)
    this.#mask = slots - 1
  }

  get size(): number {
    return this.#size
  }

  /** The position of the key at `buf[off]` (keySize bytes); -1 when it is not there. */
  find(buf: Buffer, off: number): number {
    const ks = this.#keySize
    for (let s = hashBytes(buf, off, ks) & this.#mask; ; s = (s + 1) & this.#mask) {
      const at = this.#slots[s]! - 1
      if (at < 0) return -1
      if (sameBytes(this.#keys, at * ks, buf, off, ks)) return at
    }
  }

  /**
   * Adds the key at position `i` of the buffer; returns -1, or the position of the same key already there (then `i`
   * is not added). At most `capacity` keys: one more is a bug, and throws.
   */
  add(i: number): number {
    const ks = this.#keySize
    if (this.#size * 2 >= this.#slots.length) throw new RangeError(`KeyIndex: more than ${this.#slots.length / 2} keys`)
    let s = hashBytes(this.#keys, i * ks, ks) & this.#mask
    for (; this.#slots[s] !== 0; s = (s + 1) & this.#mask) {
      const at = this.#slots[s]! - 1
      if (sameBytes(this.#keys, at * ks, this.#keys, i * ks, ks)) return at
    }
    this.#slots[s] = i + 1
    this.#size++
    return -1
  }
}

/** MurmurHash3 (x86, 32-bit) of `n` bytes at `buf[off]`, seeded with SEED. */
function hashBytes(buf: Buffer, off: number, n: number): number {
  let h = SEED
  let i = off
  const end = off + n
  for (; i + 4 <= end; i += 4) {
    h ^= mixK(buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24))
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  if (i < end) {
    let k = 0
    for (let j = end - 1; j >= i; j--) k = (k << 8) | buf[j]!
    h ^= mixK(k)
  }
  h ^= n
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

function mixK(k: number): number {
  k = Math.imul(k, 0xcc9e2d51)
  k = (k << 15) | (k >>> 17)
  return Math.imul(k, 0x1b873593)
}

/** Every key's position; fails at the first key given twice, with both positions. */
export function indexEntries(e: Entries): Result<IndexedEntries, { at: number; first: number }> {
  const index = new KeyIndex(e.keys, e.keySize, e.count)
  for (let i = 0; i < e.count; i++) {
    const first = index.add(i)
    if (first >= 0) return err({ at: i, first })
  }
  return ok({ ...e, index })
}

/** Whether `a` and `b` hold the same keys, each with the same value (in any order). */
export function equalEntries(a: IndexedEntries, b: IndexedEntries): boolean {
  if (a.count !== b.count || a.valueSize !== b.valueSize || a.keySize !== b.keySize) return false
  for (let i = 0; i < a.count; i++) {
    const j = b.index.find(a.keys, i * a.keySize)
    if (j < 0 || !sameBytes(a.values, i * a.valueSize, b.values, j * b.valueSize, a.valueSize)) return false
  }
  return true
}

/** Why a hex Map is not entries of the sizes asked: a key not `keySize` bytes of lowercase hex, or a value not `valueSize`. */
export interface HexProblem {
  key: string
  what: 'key' | 'value'
  /** The value's length, for `value`. */
  length: number
}

const HEX = /^(?:[0-9a-f]{2})*$/

/**
 * Entries of a Map of lowercase hex keys to values (the form tests and the bench write declarations in), in the Map's
 * order; the first key or value not of the sizes asked fails.
 */
export function entriesOfHex(map: ReadonlyMap<string, Buffer>, keySize: number, valueSize: number): Result<Entries, HexProblem> {
  const keys = Buffer.alloc(map.size * keySize)
  const values = Buffer.alloc(map.size * valueSize)
  let i = 0
  for (const [key, value] of map) {
    if (key.length !== keySize * 2 || !HEX.test(key)) return err({ key, what: 'key', length: value.length })
    if (value.length !== valueSize) return err({ key, what: 'value', length: value.length })
    keys.write(key, i * keySize, 'hex')
    value.copy(values, i * valueSize)
    i++
  }
  return ok({ keySize, valueSize, count: i, keys, values })
}
