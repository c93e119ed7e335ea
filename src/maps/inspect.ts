/**
 * One pinned map as the `maps` view shows it (issue 13): what the kernel says of it, how many entries it holds, and
 * for a map whose contents the config declares, whether it holds exactly them. Read when asked, never on a timer.
 *
 * The work is bounded, since it runs on the daemon's event loop (links wait meanwhile): an array's count is its
 * max_entries (every index exists: nothing to walk); another map's keys are walked (BPF_MAP_GET_NEXT_KEY, about
 * 2.5 µs a key) up to `limit`, past which the count is a lower bound. A declared map is read whole instead, with the
 * lookup batches a sync reads it with (sync.ts compareMap), up to the larger of `limit` and its declared count: a map
 * holding more than that holds more than was declared, whatever the rest is.
 */
import { SyscallError } from '../ffi/errno.js'
import { mapInfo, objGet, type MapInfo } from '../ffi/bpf-fd.js'
import type { Fd } from '../ffi/fd.js'
import { err, ok, type Result } from '../result.js'
import type { DeclaredMap } from './contents.js'
import { isIndexed } from './map-types.js'
import { compareMap, type MapComparison } from './sync.js'
import { walkKeys } from './walk.js'

/** Keys walked per map (about 0.25 s of the daemon's time) before its count is given as a lower bound. */
export const COUNT_LIMIT = 100_000

export interface InspectedMap {
  info: Pick<MapInfo, 'id' | 'type' | 'name' | 'keySize' | 'valueSize' | 'maxEntries' | 'flags'>
  /** Entries it holds (an array: max_entries); null when they could not be counted (`countProblem`). */
  count: number | null
  /** false: the map holds more than `count` (the walk stopped at the limit, or the map kept changing under it). */
  countExact: boolean
  countProblem?: string
  /** For a declared map: how it stands against the declaration, or why that could not be read. */
  comparison?: Result<MapComparison, string>
}

/** Reads one map from its pin; `declared`: what the config in force declares for it. */
export type MapInspector = (pin: string, declared: DeclaredMap | undefined, limit: number) => Result<InspectedMap, string>

/** The kernel's. */
export const inspectPinnedMap: MapInspector = (pin, declared, limit) => {
  let fd: Fd
  try {
    fd = objGet(pin)
  } catch (e) {
    return err(`cannot open ${pin}: ${(e as Error).message}`)
  }
  try {
    const i = mapInfo(fd)
    const info = { id: i.id, type: i.type, name: i.name, keySize: i.keySize, valueSize: i.valueSize, maxEntries: i.maxEntries, flags: i.flags }
    const out: InspectedMap = { info, count: null, countExact: true }
    if (declared) {
      out.comparison = compare(fd, i, declared, limit)
      if (out.comparison.ok) {
        const c = out.comparison.value
        if (isIndexed(i.type)) return ok({ ...out, count: i.maxEntries })
        return ok({ ...out, count: c.read, countExact: c.complete })
      }
    }
    if (isIndexed(i.type)) return ok({ ...out, count: i.maxEntries })
    try {
      const walk = walkKeys(fd, i.keySize, i.maxEntries, limit)
      return ok({ ...out, count: walk.keys.size, countExact: walk.complete })
    } catch (e) {
      // A map without keys to walk (a ring buffer, a queue: EINVAL/ENOTSUPP) or one we may not read.
      if (!(e instanceof SyscallError)) throw e
      return ok({ ...out, countProblem: `cannot walk its keys: ${e.message}` })
    }
  } catch (e) {
    if (e instanceof SyscallError) return err(`cannot read ${pin}: ${e.message}`)
    throw e
  } finally {
    fd.close()
  }
}

function compare(fd: Fd, i: MapInfo, declared: DeclaredMap, limit: number): Result<MapComparison, string> {
  if (i.keySize !== declared.keySize || i.valueSize !== declared.valueSize) {
    return err(`the map's key and value are ${i.keySize} and ${i.valueSize} bytes, the declaration's ${declared.keySize} and ${declared.valueSize}`)
  }
  const spec = { name: i.name, type: i.type, keySize: i.keySize, valueSize: i.valueSize, maxEntries: i.maxEntries }
  const r = compareMap(fd, spec, declared.contents, { limit: Math.max(limit, declared.count) })
  return r.ok ? r : err(r.error.message)
}
