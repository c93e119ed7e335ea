/**
 * The `maps` answer: each program in use with its maps, what the kernel says of each, how many entries it holds,
 * and whether xdplinkd manages its contents (the config in force declares them) and the map holds exactly them.
 * The maps are read when asked, through a MapInspector (the kernel's by default, maps/inspect.ts; tests give
 * theirs); the rest is joined here without I/O.
 */
import type { DeclaredMap } from '../maps/contents.js'
import { COUNT_LIMIT, inspectPinnedMap, type InspectedMap, type MapInspector } from '../maps/inspect.js'
import { declarableMapType, mapTypeName } from '../maps/map-types.js'
import type { Result } from '../result.js'
import type { ManagedMapJson, MapJson, MapsJson } from './protocol.js'
import { programRows, type ProgramUse } from './status.js'

/** What the `maps` answer reads; the Daemon is one. */
export interface MapsSource {
  readonly config: { path: string }
  programs(): ProgramUse[]
  /** The map contents the config in force declares, as written, by pin path. */
  declaredMaps(): ReadonlyMap<string, DeclaredMap>
}

export function buildMaps(src: MapsSource, inspect: MapInspector = inspectPinnedMap, limit = COUNT_LIMIT): MapsJson {
  const uses = src.programs()
  const declared = src.declaredMaps()
  const byId = new Map(uses.map((u) => [u.program.id, u.program]))
  const programs = programRows(uses).map((row) => {
    const p = byId.get(row.id)!
    const maps = [...p.maps]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, pin]) => {
        const d = declared.get(pin)
        return mapJson(name, pin, d, inspect(pin, d, limit), limit)
      })
    return { id: row.id, name: row.name, object: row.object, pin: row.pin, entries: row.entries, maps }
  })
  return { pid: process.pid, config: src.config.path, countLimit: limit, programs }
}

/** One map's row from what was read of it. Pure. */
export function mapJson(name: string, pin: string, declared: DeclaredMap | undefined, read: Result<InspectedMap, string>, limit: number): MapJson {
  if (!read.ok) {
    return {
      name,
      pin,
      id: null,
      type: null,
      keySize: null,
      valueSize: null,
      maxEntries: null,
      flags: null,
      count: null,
      countExact: false,
      managed: declared ? { declaredBy: declared.entries, declared: declared.count, holdsDeclared: null, holdsProblem: read.error } : null,
      problem: read.error,
    }
  }
  const { info, count, countExact, countProblem } = read.value
  const row: MapJson = {
    name,
    pin,
    id: info.id,
    type: mapTypeName(info.type),
    keySize: info.keySize,
    valueSize: info.valueSize,
    maxEntries: info.maxEntries,
    flags: info.flags,
    count,
    countExact,
    managed: declared ? managedJson(declared, info.type, read.value, limit) : null,
  }
  if (countProblem !== undefined) row.problem = countProblem
  return row
}

/** Who declares the map and whether it holds what they declare, as far as the read could tell. */
function managedJson(d: DeclaredMap, type: number, read: InspectedMap, limit: number): ManagedMapJson {
  const base = { declaredBy: d.entries, declared: d.count }
  const c = read.comparison
  if (!c) return { ...base, holdsDeclared: null, holdsProblem: 'not compared' }
  if (!c.ok) return { ...base, holdsDeclared: null, holdsProblem: c.error }
  const v = c.value
  if (v.complete) {
    return { ...base, holdsDeclared: v.missing + v.changed + v.extra === 0, missing: v.missing, changed: v.changed, extra: v.extra }
  }
  const readTo = Math.max(limit, d.count)
  // Keys come and go in a hash or trie: more keys than were declared is more than was declared.
  if (declarableMapType(type) === 'hash') {
    return { ...base, holdsDeclared: false, holdsProblem: `it holds more than ${readTo} entries (read no further), more than the ${d.count} declared` }
  }
  return { ...base, holdsDeclared: null, holdsProblem: `not compared: an array of ${read.info.maxEntries} entries, read up to ${readTo}` }
}
