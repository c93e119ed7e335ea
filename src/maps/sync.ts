/**
 * Declared map contents (issue 13), the edge: read what a map holds, plan (plan.ts), write. Called at start-up and
 * after every reload for each map whose contents the operator declared; a map with no declaration is never passed
 * here (an empty declaration is one: it empties the map).
 *
 * Reads and writes use the kernel's batch commands (BPF_MAP_LOOKUP_BATCH, _UPDATE_BATCH, _DELETE_BATCH, Linux 5.6)
 * where the map type has them and one element at a time otherwise. Whether a type has them is learnt from the
 * kernel's answer, once per map type: a command the type lacks is ENOTSUPP (524, kernel/bpf/syscall.c
 * BPF_DO_BATCH), EOPNOTSUPP on some types, EINVAL on others, each with nothing done. On Linux 6.18 every type
 * handled here has lookup and update batches, and all but the arrays a delete batch (lpm_trie since 5.14).
 *
 * Writes are BPF_ANY, in the plan's order: changed entries, new ones, then removals, so that nothing declared is
 * ever missing, not even for the duration of the sync. Someone else writing the map meanwhile is not an error: an
 * entry deleted between the read and our delete is taken as gone (ENOENT), the rest is what the next sync corrects.
 *
 * Room: more declared entries than max_entries is refused before any write (plan.ts). When an addition finds the
 * map full (E2BIG from a hash map, ENOSPC from an LPM trie) because undeclared entries still take the room, it and
 * the writes after it wait for the deletes; what still does not fit then is the sync's error, with everything else
 * applied. Any other failed write stops the sync at once, before any delete: what was present and declared stays.
 *
 * An LRU hash may evict entries on its own (kernel/bpf/bpf_lru_list.c), declared ones included, before it is full;
 * its contents are as declared right after the sync only.
 */
import { ENOTSUPP, ERRNO, SyscallError } from '../ffi/errno.js'
import {
  mapDeleteBatch,
  mapDeleteElem,
  mapGetNextKey,
  mapLookupBatch,
  mapLookupElem,
  mapUpdateBatch,
  mapUpdateElem,
  numPossibleCpus,
  type BatchAnswer,
} from '../ffi/bpf-fd.js'
import type { Fd } from '../ffi/fd.js'
import { err, ok, type Result } from '../result.js'
import type { MapSpec } from './btf.js'
import { keyAt, keyHex, valueAt, type Entries, type IndexedEntries } from './entries.js'
import { BPF_MAP_TYPE_LPM_TRIE, declarableMapType, isPerCpu } from './map-types.js'
import { hexEntries, kernelValueSize, planEntries, type MapPlanError, type MapShape } from './plan.js'

/** What syncMap needs of a map (a MapSpec has it). */
export type SyncSpec = Pick<MapSpec, 'name' | 'type' | 'keySize' | 'valueSize' | 'maxEntries'>

/** The libbpf calls a sync made, one bpf() syscall each. */
export interface SyncCalls {
  lookupBatch: number
  updateBatch: number
  deleteBatch: number
  getNextKey: number
  lookup: number
  update: number
  delete: number
}

export interface SyncReport {
  added: number
  updated: number
  /** Deleted, or for an array written zero. */
  removed: number
  unchanged: number
  calls: SyncCalls
}

export interface SyncError {
  /** The map's name. */
  map: string
  /** `read`: reading the contents; `plan`: the declaration does not fit the map (nothing written). */
  op: 'read' | 'plan' | 'update' | 'delete'
  /** The key, hex, of the entry that failed. */
  key?: string
  errno?: number
  /** The errno's name (errnoName), for people: code compares `errno`. */
  code?: string
  message: string
  /** What was done before the failure. */
  done: SyncReport
}

export interface SyncOptions {
  /** Elements per batch call, instead of as many as fit in BATCH_BYTES (tests: a small one forces ENOSPC). */
  batchCount?: number
  /** false: one element at a time, as for a map type without batch commands (tests). */
  batch?: boolean
}

/** Bytes of keys and values handed to one batch call: 87,381 IPv4 LPM entries of 12 bytes, 2 calls for 100,000. */
const BATCH_BYTES = 1 << 20

/** Which batch commands a map type has, as the kernel answered; absent until asked. */
export interface BatchSupport {
  lookup?: boolean
  update?: boolean
  delete?: boolean
}
const support = new Map<number, BatchSupport>()

/** What this process has learnt about a map type's batch commands. */
export function batchSupport(type: number): Readonly<BatchSupport> {
  return { ...support.get(type) }
}

function learn(type: number, what: keyof BatchSupport, has: boolean): void {
  const s = support.get(type) ?? {}
  s[what] = has
  support.set(type, s)
}

/** The plan's view of a map type; null for a type whose contents cannot be declared. */
export function mapShape(spec: SyncSpec, cpus: () => number = numPossibleCpus): MapShape | null {
  const base = { keySize: spec.keySize, valueSize: spec.valueSize, maxEntries: spec.maxEntries }
  const kind = declarableMapType(spec.type)
  if (kind === null) return null
  // An LPM key is {__u32 prefixlen; data[]}: compared as a prefix (plan.ts), so it needs data past the length.
  if (spec.type === BPF_MAP_TYPE_LPM_TRIE) return spec.keySize > 4 ? { kind: 'lpm', ...base, cpus: null } : null
  return { kind, ...base, cpus: isPerCpu(spec.type) ? cpus() : null }
}

const newCalls = (): SyncCalls => ({ lookupBatch: 0, updateBatch: 0, deleteBatch: 0, getNextKey: 0, lookup: 0, update: 0, delete: 0 })

/**
 * A map's declared contents as syncMap and compareMap take them: entries (entries.ts; declare.ts gives them with an
 * index) or, for tests and small declarations, a Map of lowercase hex keys. Values are value_size bytes: for a
 * per-CPU map the value every possible CPU gets.
 */
export type Declared = Entries | IndexedEntries | ReadonlyMap<string, Buffer>

function declaredEntries(declared: Declared, shape: MapShape): Result<Entries, MapPlanError> {
  return 'count' in declared ? ok(declared) : hexEntries(declared, shape, 'declared')
}

/** What a read found: values as the kernel reads them (every CPU's for a per-CPU map). */
export interface MapRead {
  entries: Entries
  /** false: the map holds more than the read's limit, and the read stopped there. */
  complete: boolean
}

/** How a map's contents stand against a declaration, without writing anything (the `maps` view). */
export type MapComparison =
  /** Every entry read: what a sync would do (plan.ts), as counts. */
  | { complete: true; read: number; missing: number; changed: number; extra: number; calls: SyncCalls }
  /** The map holds more than `limit` entries; `read` of them were read and nothing was compared. */
  | { complete: false; read: number; calls: SyncCalls }

/**
 * Whether the map behind `fd` holds exactly `declared` (as syncMap takes it): the read and plan of a sync, and no
 * write. `missing` counts the declared entries a sync would add (an array: a declared index holding zero bytes),
 * `changed` those it would rewrite, `extra` the undeclared ones it would delete (an array: non-zero indices it
 * would zero). At most a little more than `limit` entries are read (`options.limit`, all by default).
 */
export function compareMap(
  fd: Fd,
  spec: SyncSpec,
  declared: Declared,
  options: SyncOptions & { limit?: number } = {},
): Result<MapComparison, SyncError> {
  const report: SyncReport = { added: 0, updated: 0, removed: 0, unchanged: 0, calls: newCalls() }
  const fail = (message: string, e?: SyscallError): Result<MapComparison, SyncError> =>
    err({ map: spec.name, op: e ? 'read' : 'plan', ...(e ? { errno: e.errno, code: e.code } : {}), message: `map ${spec.name}: ${message}`, done: report })
  const shape = mapShape(spec)
  if (!shape) return fail(`contents cannot be declared for map type ${spec.type}`)
  const planFail = (e: MapPlanError): Result<MapComparison, SyncError> => fail(e.key !== undefined ? `key ${e.key}: ${e.message}` : e.message)
  const want = declaredEntries(declared, shape)
  if (!want.ok) return planFail(want.error)
  try {
    const read = new MapIo(fd, spec, shape, report.calls, options).read(options.limit)
    if (!read.complete) return ok({ complete: false, read: read.entries.count, calls: report.calls })
    const planned = planEntries(want.value, read.entries, shape)
    if (!planned.ok) return planFail(planned.error)
    const p = planned.value
    return ok({ complete: true, read: read.entries.count, missing: p.added, changed: p.changed, extra: p.removed, calls: report.calls })
  } catch (e) {
    if (!(e instanceof Failed)) throw e
    return fail(`reading its contents: ${e.error.message}`, e.error)
  }
}

/**
 * A failure the sync reports rather than throws: the kernel's errno (SyscallError, LibbpfError) with the map and
 * key. Anything else is a bug and is thrown on.
 */
class Failed extends Error {
  constructor(
    readonly op: SyncError['op'],
    readonly error: SyscallError,
    readonly key?: string,
  ) {
    super(error.message)
  }
}

/** Makes the map behind `fd` hold exactly `declared` and says what it did. */
export function syncMap(
  fd: Fd,
  spec: SyncSpec,
  declared: Declared,
  options: SyncOptions = {},
): Result<SyncReport, SyncError> {
  const report: SyncReport = { added: 0, updated: 0, removed: 0, unchanged: 0, calls: newCalls() }
  const fail = (op: SyncError['op'], message: string, e?: SyscallError, key?: string): Result<SyncReport, SyncError> =>
    err({
      map: spec.name,
      op,
      ...(key !== undefined ? { key } : {}),
      ...(e ? { errno: e.errno, code: e.code } : {}),
      message: `map ${spec.name}: ${message}`,
      done: report,
    })
  const shape = mapShape(spec)
  if (!shape) return fail('plan', `contents cannot be declared for map type ${spec.type}`)
  const planFail = ({ key, message }: MapPlanError): Result<SyncReport, SyncError> =>
    fail('plan', key !== undefined ? `key ${key}: ${message}` : message, undefined, key)
  const want = declaredEntries(declared, shape)
  if (!want.ok) return planFail(want.error)
  const io = new MapIo(fd, spec, shape, report.calls, options)
  try {
    const planned = planEntries(want.value, io.read().entries, shape)
    if (!planned.ok) return planFail(planned.error)
    const p = planned.value
    report.unchanged = p.unchanged
    const tally = (i: number): void => {
      if (i < p.changed) report.updated++
      else if (i < p.changed + p.added) report.added++
      else report.removed++
    }
    // Updates in the plan's order; additions that found no room wait for the deletes.
    const full = io.update(p.updates, tally)
    report.removed += io.delete(p.deletes)
    if (full >= 0) {
      const later = slice(p.updates, full)
      const still = io.update(later, (j) => tally(full + j))
      if (still >= 0) {
        const key = keyHex(later, still)
        const e = io.lastFull!
        return fail(
          'update',
          `${later.count - still} of ${want.value.count} declared entries do not fit (max_entries ${spec.maxEntries}), ` +
            `the first key ${key}: ${e.code}`,
          e,
          key,
        )
      }
    }
    return ok(report)
  } catch (e) {
    if (!(e instanceof Failed)) throw e
    const what = e.op === 'read' ? 'reading its contents' : `${e.op} of key ${e.key}`
    return fail(e.op, `${what}: ${e.error.message}`, e.error, e.key)
  }
}

/**
 * How a map type that lacks a batch command answers it, having done nothing: ENOTSUPP (BPF_DO_BATCH), EOPNOTSUPP
 * or EINVAL on some. EINVAL with no element done may also be the first element's own: a write tells them apart by
 * doing that element alone.
 */
const LACKS: ReadonlySet<number> = new Set([ENOTSUPP, ERRNO.EOPNOTSUPP, ERRNO.EINVAL])
const lacks = (a: BatchAnswer): boolean => a.error !== null && a.count === 0 && LACKS.has(a.error.errno)

/** Reads and writes one map, batch or per element, counting calls. Throws Failed. */
class MapIo {
  readonly #fd: Fd
  readonly #type: number
  readonly #keySize: number
  readonly #valueSize: number
  readonly #maxEntries: number
  readonly #calls: SyncCalls
  readonly #batch: number
  readonly #batchOff: boolean
  /** The error of the last addition that found no room, for the report. */
  lastFull: SyscallError | undefined

  constructor(fd: Fd, spec: SyncSpec, shape: MapShape, calls: SyncCalls, options: SyncOptions = {}) {
    this.#fd = fd
    this.#type = spec.type
    this.#keySize = spec.keySize
    this.#valueSize = kernelValueSize(shape)
    this.#maxEntries = spec.maxEntries
    this.#calls = calls
    this.#batch = Math.max(1, options.batchCount ?? Math.floor(BATCH_BYTES / (this.#keySize + this.#valueSize)))
    this.#batchOff = options.batch === false
  }

  /** Whether to try the batch command: not known to be missing for the type. */
  #batches(what: keyof BatchSupport): boolean {
    return !this.#batchOff && support.get(this.#type)?.[what] !== false
  }

  /**
   * What the map holds, up to a little more than `limit` entries (all by default): `complete` false when it holds
   * more than `limit` and the read stopped there.
   */
  read(limit = Infinity): MapRead {
    if (this.#batches('lookup')) {
      const got = this.#readBatch(limit)
      if (got) return got
    }
    return this.#readEach(limit)
  }

  /**
   * BPF_MAP_LOOKUP_BATCH from the start to ENOENT; null when the type has no lookup batch. A hash map answers
   * ENOSPC, with nothing read, when its next bucket holds more elements than `count` (kernel/bpf/hashtab.c,
   * __htab_map_lookup_and_delete_batch): asked again with twice the room.
   */
  #readBatch(limit: number): MapRead | null {
    const ks = this.#keySize
    const vs = this.#valueSize
    const read = new EntriesBuilder(ks, vs)
    // One buffer is both in_batch and out_batch: the kernel reads the one before it writes the other.
    const token = Buffer.alloc(Math.max(4, ks))
    let started = false
    let count = Math.min(this.#batch, Math.max(1, this.#maxEntries), limit + 1)
    for (;;) {
      const keys = Buffer.allocUnsafe(count * ks)
      const values = Buffer.allocUnsafe(count * vs)
      this.#calls.lookupBatch++
      const a = mapLookupBatch(this.#fd, started ? token : null, token, keys, values, count)
      if (a.error && !started && LACKS.has(a.error.errno)) {
        learn(this.#type, 'lookup', false)
        return null
      }
      learn(this.#type, 'lookup', true)
      const errno = a.error?.errno
      if (errno === ERRNO.ENOSPC && a.count === 0) {
        count *= 2
        continue
      }
      if (a.error && errno !== ERRNO.ENOENT) throw new Failed('read', a.error)
      read.add(keys, values, a.count)
      // The end; or as many entries as the map can hold, so the ENOENT call is not needed (an array: always).
      if (errno === ERRNO.ENOENT || read.count >= this.#maxEntries) return { entries: read.done(), complete: true }
      if (read.count > limit) return { entries: read.done(), complete: false }
      started = true
    }
  }

  /**
   * BPF_MAP_GET_NEXT_KEY and BPF_MAP_LOOKUP_ELEM per key. A hash map's walk starts over when the key it stands on
   * is deleted meanwhile (htab_map_get_next_key), so keys are kept by value and the walk is bounded.
   */
  #readEach(limit: number): MapRead {
    const seen = new Map<string, Buffer>()
    const next = Buffer.alloc(this.#keySize)
    let prev: Buffer | null = null
    const read = (complete: boolean): MapRead => {
      const out = new EntriesBuilder(this.#keySize, this.#valueSize)
      for (const [key, value] of seen) out.add(Buffer.from(key, 'latin1'), value, 1)
      return { entries: out.done(), complete }
    }
    for (let steps = 0; ; steps++) {
      if (steps > 2 * this.#maxEntries + 1) {
        throw new Failed('read', new SyscallError('bpf_map_get_next_key', ERRNO.EAGAIN, 'the map kept changing while read'))
      }
      if (seen.size > limit) return read(false)
      this.#calls.getNextKey++
      if (!this.#call('read', () => mapGetNextKey(this.#fd, prev, next))) return read(true)
      const value = Buffer.alloc(this.#valueSize)
      this.#calls.lookup++
      // Absent: deleted since get_next_key gave it. (An LPM trie's lookup is a longest-prefix match, but of a key
      // it holds: that entry's own value.)
      if (this.#call('read', () => mapLookupElem(this.#fd, next, value))) seen.set(next.toString('latin1'), value)
      prev = Buffer.from(next)
    }
  }

  /**
   * Writes `w`'s entries in order with BPF_ANY, `each(i)` for each one written; batches are views of its buffers.
   * Returns -1, or the first entry not written because the map was full (E2BIG, ENOSPC): none after it is written
   * either, since they would find no room either (trying each would be a failed call per entry). Any other failure
   * is thrown at once.
   */
  update(w: Entries, each: (i: number) => void): number {
    let full = -1
    const failed = (i: number, e: SyscallError): void => {
      if (e.errno !== ERRNO.E2BIG && e.errno !== ERRNO.ENOSPC) throw new Failed('update', e, keyHex(w, i))
      this.lastFull = e
      full = i
    }
    const ks = w.keySize
    const vs = w.valueSize
    let i = 0
    while (i < w.count && full < 0 && this.#batches('update')) {
      const n = Math.min(this.#batch, w.count - i)
      this.#calls.updateBatch++
      const a = mapUpdateBatch(this.#fd, w.keys.subarray(i * ks, (i + n) * ks), w.values.subarray(i * vs, (i + n) * vs), n)
      if (lacks(a)) {
        // That element alone: written, the type lacks the batch; refused, the error was its own (thrown) unless it
        // found no room, which says nothing about the batch.
        const at = i++
        if (this.#updateOne(w, at, (e) => failed(at, e))) each(at)
        if (full < 0 || a.error!.errno !== ERRNO.EINVAL) learn(this.#type, 'update', false)
        continue
      }
      learn(this.#type, 'update', true)
      for (let j = 0; j < a.count; j++) each(i + j)
      i += a.count
      if (a.error) failed(i, a.error)
    }
    for (; i < w.count && full < 0; i++) {
      const at = i
      if (this.#updateOne(w, at, (e) => failed(at, e))) each(at)
    }
    return full
  }

  #updateOne(w: Entries, i: number, failed: (e: SyscallError) => void): boolean {
    this.#calls.update++
    try {
      mapUpdateElem(this.#fd, keyAt(w, i), valueAt(w, i))
      return true
    } catch (e) {
      if (!(e instanceof SyscallError)) throw e
      failed(e)
      return false
    }
  }

  /** Deletes the keys of `d`, batch where the type has it; a key already gone is skipped. Returns how many it deleted. */
  delete(d: Entries): number {
    const ks = d.keySize
    let deleted = 0
    let i = 0
    while (i < d.count && this.#batches('delete')) {
      const n = Math.min(this.#batch, d.count - i)
      this.#calls.deleteBatch++
      const a = mapDeleteBatch(this.#fd, d.keys.subarray(i * ks, (i + n) * ks), n)
      if (lacks(a)) {
        // That key alone: deleted (or gone), the type lacks the batch; any other answer is thrown.
        if (this.#deleteOne(d, i++)) deleted++
        learn(this.#type, 'delete', false)
        continue
      }
      learn(this.#type, 'delete', true)
      deleted += a.count
      i += a.count
      if (!a.error) continue
      // Deleted by someone else since the read: what we wanted.
      if (a.error.errno !== ERRNO.ENOENT) throw new Failed('delete', a.error, keyHex(d, i))
      i++
    }
    for (; i < d.count; i++) if (this.#deleteOne(d, i)) deleted++
    return deleted
  }

  #deleteOne(d: Entries, i: number): boolean {
    this.#calls.delete++
    return this.#call('delete', () => mapDeleteElem(this.#fd, keyAt(d, i)), keyHex(d, i))
  }

  /** A per-element call whose SyscallError becomes Failed. */
  #call<T>(op: SyncError['op'], fn: () => T, key?: string): T {
    try {
      return fn()
    } catch (e) {
      if (e instanceof SyscallError) throw new Failed(op, e, key)
      throw e
    }
  }
}

/** Entries `from` to the end of `e`, views of its buffers. */
function slice(e: Entries, from: number): Entries {
  return { ...e, count: e.count - from, keys: e.keys.subarray(from * e.keySize), values: e.values.subarray(from * e.valueSize) }
}

/** Entries read in parts (one a batch call), joined at the end: one part is kept as it is, without a copy. */
class EntriesBuilder {
  readonly #keys: Buffer[] = []
  readonly #values: Buffer[] = []
  count = 0

  constructor(
    readonly keySize: number,
    readonly valueSize: number,
  ) {}

  /** The first `n` entries of `keys` and `values`. */
  add(keys: Buffer, values: Buffer, n: number): void {
    if (n === 0) return
    this.#keys.push(keys.subarray(0, n * this.keySize))
    this.#values.push(values.subarray(0, n * this.valueSize))
    this.count += n
  }

  done(): Entries {
    const join = (parts: Buffer[]): Buffer => (parts.length === 1 ? parts[0]! : Buffer.concat(parts))
    return { keySize: this.keySize, valueSize: this.valueSize, count: this.count, keys: join(this.#keys), values: join(this.#values) }
  }
}
