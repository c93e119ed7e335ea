/**
 * What to write so that a map holds exactly its declared contents (issue 13): the pure core of src/maps/sync.ts. It
 * compares the declared entries with what the kernel holds and returns the writes in the order that never leaves a
 * declared entry missing: changed entries, then new ones, then the removals (deletes, or zero writes for an array).
 * An entry that is already right is not written, so a map that holds its declared contents costs reads only.
 *
 * Entries are keys and values in two buffers (entries.ts), as the batch commands take them; an error names a key by
 * its hex. Declared values are one value (`valueSize` bytes); current values and the values to write are as the
 * kernel reads and writes them (kernel/bpf/syscall.c, bpf_map_value_size): for a per-CPU map one slot of
 * round_up(value_size, 8) bytes per possible CPU. Multi-byte integers in keys (an array's index, an LPM trie's
 * prefixlen) are host order, little-endian on the only hosts src/ffi supports.
 */
import { err, ok, type Result } from '../result.js'
import { copyBytes, entriesOfHex, indexEntries, keyHex, noEntries, sameBytes, valueAt, type Entries, type IndexedEntries } from './entries.js'

/** What the plan needs to know of a map. */
export interface MapShape {
  /**
   * `array`: every index below max_entries exists and cannot be deleted (kernel/bpf/arraymap.c,
   * array_map_delete_elem is EINVAL), an undeclared index means the zero value. `lpm`: keys are struct
   * bpf_lpm_trie_key (u32 prefixlen, then the data) and name a prefix: bits past prefixlen do not count.
   * `hash`: keys are compared as bytes.
   */
  kind: 'hash' | 'array' | 'lpm'
  keySize: number
  /** The map's value_size: one CPU's value. */
  valueSize: number
  maxEntries: number
  /** Possible CPUs for a per-CPU map (libbpf_num_possible_cpus), null for any other. */
  cpus: number | null
}

/**
 * The writes, as the sync hands them to the kernel: entries (entries.ts) whose values are as the kernel takes them
 * (kernelValueSize), and keys to delete.
 */
export interface EntriesPlan {
  /**
   * Writes (BPF_ANY), in order: the `changed` entries (already present: they need no room), the `added` ones, then,
   * for an array, the `removed` indices written as zero.
   */
  updates: Entries
  /** Keys to delete after every update (never for an array); its values are empty. */
  deletes: Entries
  changed: number
  added: number
  removed: number
  /** Declared entries the map already holds. */
  unchanged: number
}

/** The plan of planMapSync, by hex key: what tests and messages read. */
export interface MapSyncPlan {
  updates: [key: string, value: Buffer][]
  deletes: string[]
  changed: number
  added: number
  removed: number
  unchanged: number
}

export interface MapPlanError {
  /** `declared`: an entry that cannot be written as given; `current`: the map's own bytes are not of its shape. */
  kind: 'declared' | 'current' | 'capacity'
  /** The entry's key, hex, when one is at fault. */
  key?: string
  message: string
}

/** The bytes of one value as the kernel reads and writes it (bpf_map_value_size). */
export function kernelValueSize(shape: MapShape): number {
  return shape.cpus === null ? shape.valueSize : roundUp8(shape.valueSize) * shape.cpus
}

const roundUp8 = (n: number): number => Math.ceil(n / 8) * 8

/**
 * The writes that turn `current` (values of kernelValueSize bytes) into `declared` (values of value_size bytes).
 * Fails, before anything is written, on an array index at or past max_entries, two declared keys naming one LPM
 * prefix, values of other sizes, or more declared entries than max_entries: such a map could only end up holding an
 * arbitrary part of its declaration. A `declared` with an index (declare.ts gives one) is looked up through it.
 *
 * The work is one lookup per entry the map holds, in the declared entries' index: the map is read whole whatever
 * changed (someone else may have written it), and only what differs is copied into the writes.
 */
export function planEntries(declared: Entries | IndexedEntries, current: Entries, shape: MapShape): Result<EntriesPlan, MapPlanError> {
  const room = capacity(declared.count, shape)
  if (!room.ok) return room
  const size = kernelValueSize(shape)
  const cur = canonical(current, shape, 'current')
  if (!cur.ok) return cur
  const c = cur.value
  // The kernel holds each key once; keys made canonical may have become one.
  if (c !== current) {
    const once = indexed(c, current, 'current')
    if (!once.ok) return once
  }
  const want = canonical(declared, shape, 'declared')
  if (!want.ok) return want
  const d = want.value === declared && 'index' in declared ? ok(declared) : indexed(want.value, declared, 'declared')
  if (!d.ok) return d
  if (c.count > 0 && c.valueSize !== size) return err(valueSizeError('current', keyHex(c, 0), c.valueSize, shape))
  if (d.value.count > 0 && d.value.valueSize !== shape.valueSize) return err(valueSizeError('declared', keyHex(d.value, 0), d.value.valueSize, shape))
  return ok(compare(d.value, c, shape))
}

function capacity(count: number, shape: MapShape): Result<void, MapPlanError> {
  if (count <= shape.maxEntries) return ok(undefined)
  return err({ kind: 'capacity', message: `declares ${count} entries; the map holds at most ${shape.maxEntries} (max_entries)` })
}

/** Per declared entry, what the map holds of it. */
const ABSENT = 0 // not in the map (or, in an array, zero there)
const HELD = 1 // as declared
const OTHER = 2 // with another value

function compare(d: IndexedEntries, c: Entries, shape: MapShape): EntriesPlan {
  const state = new Uint8Array(d.count)
  const removals = new Int32Array(c.count)
  let removed = 0
  const array = shape.kind === 'array'
  for (let i = 0; i < c.count; i++) {
    const j = d.index.find(c.keys, i * c.keySize)
    // An array index holding zero counts as absent: the zero value is what an undeclared index means.
    if (j < 0) {
      if (!(array && isZero(c, i, shape))) removals[removed++] = i
    } else if (holds(c, i, d, j, shape)) state[j] = HELD
    else if (!(array && isZero(c, i, shape))) state[j] = OTHER
  }
  let changed = 0
  let unchanged = 0
  for (let j = 0; j < d.count; j++) {
    if (state[j] === HELD) unchanged++
    else if (state[j] === OTHER) changed++
  }
  const gone = removals.subarray(0, removed)
  return {
    updates: writes(d, state, changed, d.count - changed - unchanged, c, array ? gone : new Int32Array(0), shape),
    deletes: array ? noEntries(shape.keySize, 0) : pick(c, gone),
    changed,
    added: d.count - changed - unchanged,
    removed,
    unchanged,
  }
}

/**
 * planEntries over Maps of hex keys (declared values of value_size bytes, current ones as the kernel reads them),
 * the writes by hex key: for tests, and for callers that hold a few entries so. A key not `keySize` bytes of
 * lowercase hex fails, as does a value of another size.
 */
export function planMapSync(
  declared: ReadonlyMap<string, Buffer>,
  current: ReadonlyMap<string, Buffer>,
  shape: MapShape,
): Result<MapSyncPlan, MapPlanError> {
  const room = capacity(declared.size, shape)
  if (!room.ok) return room
  const c = hexEntries(current, shape, 'current')
  if (!c.ok) return c
  const d = hexEntries(declared, shape, 'declared')
  if (!d.ok) return d
  const p = planEntries(d.value, c.value, shape)
  if (!p.ok) return p
  const { updates, deletes, ...counts } = p.value
  return ok({
    updates: Array.from({ length: updates.count }, (_, i): [string, Buffer] => [keyHex(updates, i), valueAt(updates, i)]),
    deletes: Array.from({ length: deletes.count }, (_, i) => keyHex(deletes, i)),
    ...counts,
  })
}

/** A Map of hex keys as entries of the map's sizes (declared: value_size; current: the kernel's), or the plan's error. */
export function hexEntries(map: ReadonlyMap<string, Buffer>, shape: MapShape, kind: 'declared' | 'current'): Result<Entries, MapPlanError> {
  const size = kind === 'current' ? kernelValueSize(shape) : shape.valueSize
  const e = entriesOfHex(map, shape.keySize, size)
  if (e.ok) return e
  const { key, what, length } = e.error
  if (what === 'value') return err(valueSizeError(kind, key, length, shape))
  return err(keyError(kind, key, `key is not ${shape.keySize} bytes as lowercase hex`))
}

/** A value of another size than the map's: as the kernel reads it (`current`), or value_size (`declared`). */
function valueSizeError(kind: 'declared' | 'current', key: string, length: number, shape: MapShape): MapPlanError {
  const message = kind === 'current' ? `the map's value is ${length} bytes, expected ${kernelValueSize(shape)}` : `value is ${length} bytes; the map's value_size is ${shape.valueSize}`
  return { kind, key, message }
}

/** A key that is not of the map's shape; one the map holds is said to be so. */
function keyError(kind: 'declared' | 'current', key: string, problem: string): MapPlanError {
  return { kind, key, message: kind === 'current' ? `the map holds a key that is not of its shape: ${problem}` : problem }
}

/**
 * The entries with every key as the map tells entries apart: `e` itself when every key is already so (the common
 * case: no copy of 100,000 keys), else a copy. An array's index must be below max_entries (array_map_update_elem:
 * E2BIG). An LPM trie's key has its bits past prefixlen zeroed: the trie matches only the first prefixlen bits and
 * keeps whatever data it was given (kernel/bpf/lpm_trie.c, trie_update_elem copies the key whole;
 * longest_prefix_match), so 10.0.0.1/24 and 10.0.0.0/24 are one entry, and deleting the one would delete the other.
 */
function canonical(e: Entries, shape: MapShape, kind: 'declared' | 'current'): Result<Entries, MapPlanError> {
  const fail = (i: number, problem: string): Result<never, MapPlanError> => err(keyError(kind, keyHex(e, i), problem))
  if (e.count > 0 && e.keySize !== shape.keySize) return fail(0, `key is not ${shape.keySize} bytes`)
  if (shape.kind === 'hash') return ok(e)
  const ks = shape.keySize
  const bits = (ks - 4) * 8
  let keys: Buffer | null = null
  for (let i = 0; i < e.count; i++) {
    // A u32 in host (little-endian) order: an array's index, an LPM key's prefixlen.
    const first = e.keys.readUInt32LE(i * ks)
    if (shape.kind === 'array') {
      if (first >= shape.maxEntries) return fail(i, `index ${first} is past the array's ${shape.maxEntries} entries`)
      continue
    }
    // trie_update_elem: EINVAL past the data's bits.
    if (first > bits) return fail(i, `prefixlen ${first} is past the key's ${bits} bits of data`)
    if (isCanonicalPrefix(e.keys, i * ks, first, ks)) continue
    keys ??= Buffer.from(e.keys.subarray(0, e.count * ks))
    clearPastPrefix(keys, i * ks, first, ks)
  }
  return ok(keys === null ? e : { ...e, keys })
}

/** `e` (`given` made canonical) with its index; two keys that became one entry fail, named as given. */
function indexed(e: Entries, given: Entries, kind: 'declared' | 'current'): Result<IndexedEntries, MapPlanError> {
  const r = indexEntries(e)
  if (r.ok) return r
  return err({ kind, key: keyHex(given, r.error.at), message: `the prefix ${keyHex(e, r.error.at)} is declared twice` })
}

/** Whether every bit of the LPM key at `off` past `prefixlen` (of its data, after the u32) is zero. */
function isCanonicalPrefix(keys: Buffer, off: number, prefixlen: number, keySize: number): boolean {
  const data = off + 4
  const whole = prefixlen >> 3
  if (prefixlen & 7 && (keys[data + whole]! & (0xff >> (prefixlen & 7))) !== 0) return false
  for (let i = data + whole + (prefixlen & 7 ? 1 : 0); i < off + keySize; i++) if (keys[i] !== 0) return false
  return true
}

function clearPastPrefix(keys: Buffer, off: number, prefixlen: number, keySize: number): void {
  for (let bit = prefixlen; bit < (keySize - 4) * 8; bit++) {
    const i = off + 4 + (bit >> 3)
    keys[i] = keys[i]! & ~(0x80 >> (bit & 7))
  }
}

/** Whether the kernel's value of entry `i` (every CPU's, for a per-CPU map) is the declared value `j`. Padding does not count. */
function holds(c: Entries, i: number, d: Entries, j: number, shape: MapShape): boolean {
  const vs = shape.valueSize
  if (shape.cpus === null) return sameBytes(c.values, i * c.valueSize, d.values, j * vs, vs)
  const stride = roundUp8(vs)
  for (let cpu = 0; cpu < shape.cpus; cpu++) {
    if (!sameBytes(c.values, i * c.valueSize + cpu * stride, d.values, j * vs, vs)) return false
  }
  return true
}

function isZero(c: Entries, i: number, shape: MapShape): boolean {
  const stride = shape.cpus === null ? shape.valueSize : roundUp8(shape.valueSize)
  for (let cpu = 0; cpu < (shape.cpus ?? 1); cpu++) {
    const from = i * c.valueSize + cpu * stride
    for (let b = from; b < from + shape.valueSize; b++) if (c.values[b] !== 0) return false
  }
  return true
}

/**
 * The updates: the declared entries held with another value, then those absent, in declared order, with their values
 * as the kernel takes them (the same value on every possible CPU, each slot padded with zeros to 8 bytes:
 * bpf_percpu_hash_update copies them), then the current entries `zeros` with zero values. Every declared entry in
 * order, one value each, are `d`'s own buffers: a first fill copies nothing.
 */
function writes(d: Entries, state: Uint8Array, changed: number, added: number, c: Entries, zeros: Int32Array, shape: MapShape): Entries {
  const ks = shape.keySize
  const vs = shape.valueSize
  if (shape.cpus === null && added === d.count && zeros.length === 0) return { keySize: ks, valueSize: vs, count: d.count, keys: d.keys, values: d.values }
  const size = kernelValueSize(shape)
  const stride = shape.cpus === null ? vs : roundUp8(vs)
  const n = changed + added + zeros.length
  const keys = Buffer.allocUnsafe(n * ks)
  const values = Buffer.alloc(n * size)
  let at = 0
  for (const want of [OTHER, ABSENT]) {
    for (let j = 0; j < d.count; j++) {
      if (state[j] !== want) continue
      copyBytes(d.keys, j * ks, keys, at * ks, ks)
      for (let cpu = 0; cpu < (shape.cpus ?? 1); cpu++) copyBytes(d.values, j * vs, values, at * size + cpu * stride, vs)
      at++
    }
  }
  for (const i of zeros) copyBytes(c.keys, i * ks, keys, at++ * ks, ks)
  return { keySize: ks, valueSize: size, count: n, keys, values }
}

/** The keys of entries `which`, in that order (values left out). */
function pick(c: Entries, which: Int32Array): Entries {
  const ks = c.keySize
  const keys = Buffer.allocUnsafe(which.length * ks)
  which.forEach((i, at) => copyBytes(c.keys, i * ks, keys, at * ks, ks))
  return { keySize: ks, valueSize: 0, count: which.length, keys, values: Buffer.alloc(0) }
}
