/**
 * Declared map contents for one generation of the config (the daemon's start-up and every reload): found,
 * encoded and checked whole first (`prepareContents`), written afterwards (`applyContents`), so that a config with
 * one bad prefix is rejected before any map changes and the contents in force stay.
 *
 * Which map: the entry's program's own map of that name, pinned next to the program (programs/kernel.ts): entries
 * that share a program share its maps, so their declarations of one map must agree (declare.ts sameContents).
 * Typed by the map's BTF as the kernel holds it (btf_id of the pinned map), not as the object file says: a map
 * adopted from an earlier run is what will be written.
 *
 * All I/O goes through a MapBackend (the kernel by default), the seam the daemon's root-free unit test uses.
 */
import { ConfigError, dedupeErrors } from '../config/errors.js'
import type { WalkOptions } from '../config/secure-path.js'
import { suggestKey } from '../config/suggest.js'
import type { AttachEntry, MapDeclaration, Place } from '../config/types.js'
import { err, ok, type Result } from '../result.js'
import type { MapSpec } from './btf.js'
import type { SyncReport } from './sync.js'
import { declaredContents, errorAt, sameContents, type DeclaredContents, type ListFileKeys } from './declare.js'
import type { Entries } from './entries.js'

/** What contents.ts needs of a program: its name and where its maps are pinned. */
export interface ProgramMaps {
  /** The program's name in the object, for messages. */
  name: string
  objectPath: string
  /** One per program: `<hash16>-<program>` (registry.ts LoadedProgram). */
  pinDirName: string
  /** Map name -> pin path, for the object's own maps. */
  maps: ReadonlyMap<string, string>
}

/** An open map: its description and BTF, and the write of its declared contents. */
export interface MapHandle {
  readonly spec: MapSpec
  /** Makes the map hold exactly `declared`; throws with the map and key named when the kernel refuses. */
  sync(declared: DeclaredContents): SyncReport
  close(): void
}

export type { SyncReport }

export interface MapBackend {
  /** Opens a pinned map (BPF_OBJ_GET) and reads its description and BTF; throws. */
  open(pinPath: string): MapHandle
  /** A list file, read under the path rules (listfile.ts readListFile). */
  readList(path: string, rules: WalkOptions, at: Place): Promise<Result<ListFileKeys, ConfigError>>
}

/** One map of one program with its declared contents, ready to be written. */
export interface PreparedMap {
  program: ProgramMaps
  map: string
  handle: MapHandle
  contents: DeclaredContents
  /** The config entries that declare it (entries that share its program), in config order. */
  entries: string[]
}

export interface Prepared {
  maps: PreparedMap[]
  /** Every list file read -> the version read (fs.ts OpenedStat.version), for the watch. */
  files: Map<string, string>
  close(): void
}

/**
 * Every declared map of `entries` (their programs in `programs`, by entry index), opened, typed and encoded; or
 * every problem found, located in the config or the list file. Nothing is written.
 */
export async function prepareContents(
  entries: readonly AttachEntry[],
  programs: ReadonlyMap<number, ProgramMaps>,
  backend: MapBackend,
  rules: WalkOptions,
): Promise<Result<Prepared, ConfigError[]>> {
  const errors: ConfigError[] = []
  const handles = new Map<string, MapHandle>()
  const close = (): void => {
    for (const h of handles.values()) h.close()
  }
  /** `<pinDirName>/<map>` -> the declarations of that map, with their contents. */
  const byMap = new Map<
    string,
    { program: ProgramMaps; map: string; decls: { decl: MapDeclaration; contents: DeclaredContents }[]; entries: string[] }
  >()
  const lists = new Map<string, Promise<Result<ListFileKeys, ConfigError>>>()
  try {
    for (const e of entries) {
      const program = programs.get(e.index)
      if (!program) continue
      for (const decl of e.maps) {
        const pin = program.maps.get(decl.map)
        if (pin === undefined) {
          errors.push(unknownMap(decl, program))
          continue
        }
        const id = `${program.pinDirName}/${decl.map}`
        let handle = handles.get(id)
        if (!handle) {
          try {
            handle = backend.open(pin)
          } catch (x) {
            errors.push(errorAt(decl.at, `cannot open map ${decl.map} of program ${program.name} (${pin}): ${(x as Error).message}`))
            continue
          }
          handles.set(id, handle)
        }
        let list: ListFileKeys | undefined
        if (decl.file !== null) {
          let read = lists.get(decl.file)
          if (!read) lists.set(decl.file, (read = backend.readList(decl.file, rules, decl.fileAt ?? decl.at)))
          const r = await read
          if (!r.ok) {
            errors.push(r.error)
            continue
          }
          list = r.value
        }
        const contents = declaredContents(handle.spec, decl, list)
        if (!contents.ok) {
          errors.push(...contents.error)
          continue
        }
        let group = byMap.get(id)
        if (!group) byMap.set(id, (group = { program, map: decl.map, decls: [], entries: [] }))
        group.decls.push({ decl, contents: contents.value })
        if (!group.entries.includes(e.name)) group.entries.push(e.name)
      }
    }
    for (const g of byMap.values()) errors.push(...sameContents(g.decls))
  } catch (x) {
    close()
    throw x
  }
  if (errors.length > 0) {
    close()
    return err(dedupeErrors(errors))
  }
  const maps: PreparedMap[] = [...byMap.entries()].map(([id, g]) => ({
    program: g.program,
    map: g.map,
    handle: handles.get(id)!,
    contents: g.decls[0]!.contents,
    entries: g.entries,
  }))
  const files = new Map<string, string>()
  for (const [path, read] of lists) {
    const r = await read
    if (r.ok) files.set(path, r.value.version)
  }
  return ok({ maps, files, close })
}

export interface Applied {
  map: PreparedMap
  report?: SyncReport
  error?: Error
}

/**
 * Writes every prepared map, one after the other; a map the kernel refuses does not stop the others. Within a map
 * the sync adds and updates before it removes (sync.ts), so nothing declared before is missing at any moment.
 */
export function applyContents(p: Prepared): Applied[] {
  return p.maps.map((map) => {
    try {
      return { map, report: map.handle.sync(map.contents) }
    } catch (e) {
      return { map, error: e as Error }
    }
  })
}

/**
 * A map whose contents the config in force declares, as the daemon keeps it after writing them: for the `maps`
 * view, which says who declares it and compares the map with it when asked.
 */
export interface DeclaredMap {
  /** The map's pin (LoadedProgram.maps). */
  pin: string
  map: string
  /** The config entries that declare it. */
  entries: string[]
  /** How many entries are declared. */
  count: number
  keySize: number
  valueSize: number
  /** The declared entries, without the index that found their repeats (rebuilt when the view compares). */
  contents: Entries
}

/**
 * What the daemon keeps of each prepared map once written, by pin path: the declared entries' buffers (0.9 MB for
 * 100,000 IPv4 prefixes), not their index by key, which goes with the Prepared.
 */
export function declaredMaps(p: Prepared): Map<string, DeclaredMap> {
  const out = new Map<string, DeclaredMap>()
  for (const m of p.maps) {
    const pin = m.program.maps.get(m.map)
    if (pin === undefined) continue
    const { keySize, valueSize, count, keys, values } = m.contents
    const contents = { keySize, valueSize, count, keys, values }
    out.set(pin, { pin, map: m.map, entries: m.entries, count, keySize, valueSize, contents })
  }
  return out
}

function unknownMap(decl: MapDeclaration, program: ProgramMaps): ConfigError {
  const names = [...program.maps.keys()].sort()
  const guess = suggestKey(decl.map, names)
  const hint = guess !== null ? ` (did you mean "${guess}"?)` : ''
  const have = names.length === 0 ? 'it has no maps' : `its maps: ${names.join(', ')}`
  return errorAt(decl.at, `program ${program.name} of ${program.objectPath} has no map ${decl.map}${hint}; ${have}`)
}
