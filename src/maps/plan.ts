/**
 * What to write so that a map holds exactly its declared contents (issue 13): the pure core of src/maps/sync.ts. It
 * compares the declared entries with what the kernel holds and returns the writes in the order that never leaves a
 * declared entry missing: changed entries, then new ones, then the removals (deletes, or zero writes for an array).
 * An entry that is already right is not written, so a map that holds its declared contents costs reads only.
 *
 * Keys are lowercase hex strings of the key's bytes (a Map key by value, and what an error names); values are
 * Buffers. Declared values are one value (`valueSize` bytes); current values and the values to write are as the
 * kernel reads and writes them (kernel/bpf/syscall.c, bpf_map_value_size): for a per-CPU map one slot of
 * round_up(value_size, 8) bytes per possible CPU. Multi-byte integers in keys (an array's index, an LPM trie's
 * prefixlen) are host order, little-endian on the only hosts src/ffi supports.
 */
import { err, ok, type Result } from '../result.js'

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

export interface MapSyncPlan {
  /**
   * Writes (BPF_ANY), in order: the `changed` entries (already present: they need no room), the `added` ones, then,
   * for an array, the `removed` indices written as zero.
   */
  updates: [key: string, value: Buffer][]
  /** Keys to delete after every update (never for an array). */
  deletes: string[]
  changed: number
  added: number
  removed: number
  /** Declared entries the map already holds. */
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
const HEX = /^(?:[0-9a-f]{2})*$/

/**
 * The writes that turn `current` into `declared`. Fails, before anything is written, on a declared key or value
 * not of the map's sizes, an array index at or past max_entries, two declared keys naming one LPM prefix, or more
 * declared entries than max_entries: such a map could only end up holding an arbitrary part of its declaration.
 */
export function planMapSync(
  declared: ReadonlyMap<string, Buffer>,
  current: ReadonlyMap<string, Buffer>,
  shape: MapShape,
): Result<MapSyncPlan, MapPlanError> {
  if (declared.size > shape.maxEntries) {
    return err({
      kind: 'capacity',
      message: `declares ${declared.size} entries; the map holds at most ${shape.maxEntries} (max_entries)`,
    })
  }
  const size = kernelValueSize(shape)
  const cur = canonical(current, shape, 'current')
  if (!cur.ok) return cur
  const want = canonical(declared, shape, 'declared')
  if (!want.ok) return want
  for (const [key, value] of cur.value) {
    if (value.length !== size) {
      return err({ kind: 'current', key, message: `the map's value is ${value.length} bytes, expected ${size}` })
    }
  }

  const changed: [string, Buffer][] = []
  const added: [string, Buffer][] = []
  let unchanged = 0
  for (const [key, value] of want.value) {
    if (value.length !== shape.valueSize) {
      return err({ kind: 'declared', key, message: `value is ${value.length} bytes; the map's value_size is ${shape.valueSize}` })
    }
    const now = cur.value.get(key)
    if (now !== undefined && holds(now, value, shape)) {
      unchanged++
      continue
    }
    const write = shape.cpus === null ? value : perCpuValue(value, shape)
    // An array index holding zero counts as absent: the zero value is what an undeclared index means.
    const present = now !== undefined && !(shape.kind === 'array' && isZero(now, shape))
    ;(present ? changed : added).push([key, write])
  }

  const removals: string[] = []
  for (const [key, value] of cur.value) {
    if (want.value.has(key)) continue
    if (shape.kind === 'array' && isZero(value, shape)) continue
    removals.push(key)
  }
  if (shape.kind === 'array') {
    const zero = Buffer.alloc(size)
    return ok({
      updates: [...changed, ...added, ...removals.map((k): [string, Buffer] => [k, zero])],
      deletes: [],
      changed: changed.length,
      added: added.length,
      removed: removals.length,
      unchanged,
    })
  }
  return ok({
    updates: [...changed, ...added],
    deletes: removals,
    changed: changed.length,
    added: added.length,
    removed: removals.length,
    unchanged,
  })
}

/**
 * The entries by the key as the map tells them apart: `entries` itself when every key is already so (the common
 * case: no copy of 100,000 entries), else a copy. A key of another shape fails; so do two declared keys for one
 * entry.
 */
function canonical(
  entries: ReadonlyMap<string, Buffer>,
  shape: MapShape,
  kind: 'declared' | 'current',
): Result<ReadonlyMap<string, Buffer>, MapPlanError> {
  let copy: Map<string, Buffer> | null = null
  for (const [key, value] of entries) {
    const k = canonicalKey(key, shape)
    if (!k.ok) {
      const message = kind === 'current' ? `the map holds a key that is not of its shape: ${k.error}` : k.error
      return err({ kind, key, message })
    }
    if (k.value !== key && copy === null) {
      copy = new Map()
      for (const [earlier, v] of entries) {
        if (earlier === key) break
        copy.set(earlier, v)
      }
    }
    if (copy === null) continue
    if (copy.has(k.value)) return err({ kind, key, message: `the prefix ${k.value} is declared twice` })
    copy.set(k.value, value)
  }
  return ok(copy ?? entries)
}

/**
 * The key as the map tells entries apart. An array's index must be below max_entries (array_map_update_elem: E2BIG).
 * An LPM trie's key with its bits past prefixlen zeroed: the trie matches only the first prefixlen bits and keeps
 * whatever data it was given (kernel/bpf/lpm_trie.c, trie_update_elem copies the key whole; longest_prefix_match),
 * so 10.0.0.1/24 and 10.0.0.0/24 are one entry, and deleting the one would delete the other. Read from the hex
 * without making a Buffer unless the key has to change.
 */
function canonicalKey(key: string, shape: MapShape): Result<string, string> {
  if (key.length !== shape.keySize * 2 || !HEX.test(key)) {
    return err(`key is not ${shape.keySize} bytes as lowercase hex`)
  }
  if (shape.kind === 'hash') return ok(key)
  // A u32 in host (little-endian) order: an array's index, an LPM key's prefixlen.
  const first = parseInt(key.slice(6, 8) + key.slice(4, 6) + key.slice(2, 4) + key.slice(0, 2), 16)
  if (shape.kind === 'array') {
    if (first >= shape.maxEntries) return err(`index ${first} is past the array's ${shape.maxEntries} entries`)
    return ok(key)
  }
  const bits = (shape.keySize - 4) * 8
  // trie_update_elem: EINVAL past the data's bits.
  if (first > bits) return err(`prefixlen ${first} is past the key's ${bits} bits of data`)
  if (isCanonicalPrefix(key, first)) return ok(key)
  const bytes = Buffer.from(key, 'hex')
  for (let bit = first; bit < bits; bit++) {
    const i = 4 + (bit >> 3)
    bytes[i] = bytes[i]! & ~(0x80 >> (bit & 7))
  }
  return ok(bytes.toString('hex'))
}

/** Whether every bit of an LPM key's data past `prefixlen` is zero, read from the hex (4 bits a digit). */
function isCanonicalPrefix(key: string, prefixlen: number): boolean {
  let digit = 8 + (prefixlen >> 2)
  if (prefixlen & 3) {
    // The digit holding the boundary: its low 4 - prefixlen % 4 bits are past it.
    if ((parseInt(key[digit]!, 16) & (0xf >> (prefixlen & 3))) !== 0) return false
    digit++
  }
  for (; digit < key.length; digit++) if (key[digit] !== '0') return false
  return true
}

/** Whether the kernel's value (every CPU's, for a per-CPU map) is the declared one. Padding bytes do not count. */
function holds(now: Buffer, value: Buffer, shape: MapShape): boolean {
  if (shape.cpus === null) return now.equals(value)
  const stride = roundUp8(shape.valueSize)
  for (let cpu = 0; cpu < shape.cpus; cpu++) {
    if (!now.subarray(cpu * stride, cpu * stride + shape.valueSize).equals(value)) return false
  }
  return true
}

function isZero(now: Buffer, shape: MapShape): boolean {
  const stride = shape.cpus === null ? shape.valueSize : roundUp8(shape.valueSize)
  for (let cpu = 0; cpu < (shape.cpus ?? 1); cpu++) {
    for (let i = cpu * stride; i < cpu * stride + shape.valueSize; i++) if (now[i] !== 0) return false
  }
  return true
}

/** The same value on every possible CPU, each slot padded with zeros to 8 bytes (bpf_percpu_hash_update copies them). */
function perCpuValue(value: Buffer, shape: MapShape): Buffer {
  const stride = roundUp8(shape.valueSize)
  const out = Buffer.alloc(stride * shape.cpus!)
  for (let cpu = 0; cpu < shape.cpus!; cpu++) value.copy(out, cpu * stride)
  return out
}
