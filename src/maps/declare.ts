/**
 * A map's declared contents, from the config's `maps:` (config/types.ts MapDeclaration) and the map's BTF
 * (btf.ts MapSpec): every key and value encoded (encode.ts), or every problem found, each located in the config
 * file or the list file it came from. Pure: the list file's text is read by the caller (listfile.ts).
 *
 * The rules an operator relies on:
 * - a key of `keys:` or `file:` gets the declaration's `value:`, or all zero bytes without one (a set: the
 *   bundled block list reads only whether a prefix is present);
 * - a key given twice in the config is an error at the second (the first is named); a key repeated in a list file,
 *   or given both there and in the config with the same value, is one entry (lists kept by other tools repeat);
 * - a hash or LPM map declared with more entries than its max_entries is an error (the kernel would refuse the
 *   rest with E2BIG, src/maps/sync.ts), and so is an array index past max_entries.
 */
import { formatKeyPath, ConfigError, type KeyPath } from '../config/errors.js'
import type { MapDeclaration, Place } from '../config/types.js'
import { err, ok, type Result } from '../result.js'
import type { MapSpec } from './btf.js'
import { encoder, type EncodeError, type Encoder } from './encode.js'
import { copyBytes, equalEntries, KeyIndex, sameBytes, type IndexedEntries } from './entries.js'
import { declarableMapType, mapTypeName } from './map-types.js'

/**
 * A map's declared entries (entries.ts: keys and values of value_size bytes, one value for a per-CPU map: sync.ts
 * repeats it for every CPU) in the declaration's order, with the index by key that found the repeats.
 */
export type DeclaredContents = IndexedEntries

/** A list file's keys (listfile.ts parseListFile), each with its 1-based line. */
export interface ListFileKeys {
  path: string
  /**
   * Read from the file's text as they are iterated, each time: 100,000 of them parsed ahead would be as many small
   * objects alive at once, for the garbage collector to move and the young generation to grow for.
   */
  keys: Iterable<{ key: string; line: number }>
  /** The text's lines: at most as many keys. */
  lines: number
  /** The version read (fs.ts OpenedStat.version), for the watch; '' when not read from a file. */
  version: string
}

/**
 * Encodes `decl` for the map `spec`. `list` is the text of `decl.file`, parsed, when there is one (the caller read
 * it under the path rules; a file that could not be read is the caller's error).
 */
export function declaredContents(spec: MapSpec, decl: MapDeclaration, list?: ListFileKeys): Result<DeclaredContents, ConfigError[]> {
  const errors: ConfigError[] = []
  const at = (place: Place, message: string, rel: KeyPath = []): void => void errors.push(errorAt(place, message, rel))
  const kind = declarableMapType(spec.type)
  if (kind === null) {
    at(decl.at, `map ${spec.name} is a ${mapTypeName(spec.type)} map, whose contents cannot be declared (hash, LRU hash, array, LPM trie and their per-CPU kinds can)`)
    return err(errors)
  }
  if (spec.keyType === null || spec.valueType === null) {
    const which = spec.keyType === null && spec.valueType === null ? 'key and value' : spec.keyType === null ? 'key' : 'value'
    at(decl.at, `map ${spec.name} has no BTF type for its ${which}, so xdplinkd cannot tell how to write it; define the map with __type(key, ...) and __type(value, ...) (BTF-defined maps, clang -g)`)
    return err(errors)
  }
  const keyType = spec.keyType
  const valueType = spec.valueType

  const encodeKey = compiled(spec.btf, keyType, spec.keySize)
  const encodeValue = compiled(spec.btf, valueType, spec.valueSize)
  // The declaration's `value:`, encoded once for every key that has none of its own.
  const given = Buffer.alloc(spec.valueSize)
  const problems = decl.value === undefined ? null : encodeValue(decl.value, given, 0)
  for (const e of problems ?? []) at(decl.valueAt ?? decl.at, e.message, e.path)
  const shared = problems === null ? given : null

  // Every key is written in place after the last one kept: room for as many as the config and the list file may
  // give. A key that fails, or repeats one, leaves its bytes there for the next to overwrite.
  const ks = spec.keySize
  const vs = spec.valueSize
  const room = decl.items.length + (list?.lines ?? 0)
  const keys = Buffer.alloc(room * ks)
  const values = Buffer.alloc(room * vs)
  const index = new KeyIndex(keys, ks, room)
  let count = 0
  /** Position -> where the config gave it (list files' keys may repeat). */
  const firstAt = new Map<number, Place>()
  // `where` is the key's place in the config, or its line in the list file: a list key's Place is made only for a
  // message, not for each of 100,000 lines.
  const add = (key: unknown, value: unknown, where: Place | number, valueAt: Place | undefined): void => {
    const fromFile = typeof where === 'number'
    const place = (): Place => (typeof where === 'number' ? { file: list!.path, line: where, col: null, path: '' } : where)
    const off = count * ks
    const k = encodeKey(key, keys, off)
    if (k !== null) {
      for (const e of k) at(place(), fromFile ? `${JSON.stringify(key)}: ${e.message}` : e.message, e.path)
      return
    }
    const voff = count * vs
    if (value !== undefined) {
      const v = encodeValue(value, values, voff)
      if (v !== null) {
        for (const e of v) at(valueAt ?? place(), e.message, e.path)
        return
      }
    } else if (shared === null) return // `value:` is wrong, and said so once
    else copyBytes(shared, 0, values, voff, vs)
    if (kind === 'array') {
      const index = keys.readUInt32LE(off)
      if (index >= spec.maxEntries) {
        at(place(), `index ${index} is past the end of array map ${spec.name} (max_entries ${spec.maxEntries}: 0 to ${spec.maxEntries - 1})`)
        return
      }
    }
    const before = index.add(count)
    if (before >= 0) {
      const first = firstAt.get(before)
      if (!fromFile && first !== undefined) {
        at(place(), `the same key as ${describePlace(first)}; give each key once`)
        return
      }
      if (!sameBytes(values, before * vs, values, voff, vs)) {
        at(place(), `the same key as ${first ? describePlace(first) : 'an earlier line'}, with another value; give each key once`)
      }
      return
    }
    if (!fromFile) firstAt.set(count, where)
    count++
  }
  for (const item of decl.items) add(item.key, item.value, item.at, item.valueAt)
  if (list) {
    for (const { key, line } of list.keys) add(key, undefined, line, undefined)
  }
  if (kind === 'hash' && count > spec.maxEntries) {
    at(decl.at, `declares ${count} entries; map ${spec.name} holds at most ${spec.maxEntries} (max_entries in the object)`)
  }
  return errors.length > 0 ? err(errors) : ok({ keySize: ks, valueSize: vs, count, keys: keys.subarray(0, count * ks), values: values.subarray(0, count * vs), index })
}

/** The type's encoder (encode.ts), or one that gives the type's problem for every value, as encode would. */
function compiled(types: MapSpec['btf'], typeId: number, size: number): Encoder {
  const e = encoder(types, typeId, size)
  return e.ok ? e.value : () => e.error
}

/**
 * Two entries that share a program share its maps: they may declare the same contents for a map twice, not different
 * ones. `decls` are the declarations of one map of one program, with their encoded contents; the error (one, at the
 * second declaration that differs) names both places.
 */
export function sameContents(decls: readonly { decl: MapDeclaration; contents: DeclaredContents }[]): ConfigError[] {
  const first = decls[0]
  if (!first) return []
  const errors: ConfigError[] = []
  for (const d of decls.slice(1)) {
    if (equalEntries(first.contents, d.contents)) continue
    errors.push(
      errorAt(
        d.decl.at,
        `declares other contents for map ${d.decl.map} than ${describePlace(first.decl.at)}; the two entries share one program, and so its maps: declare the contents once, or give one entry another object or program`,
      ),
    )
  }
  return errors
}

/** `attach[0].maps.blocklist_v4[2] (line 7)`, or `line 12 of /etc/xdplinkd/blocked.txt`. */
export function describePlace(p: Place): string {
  if (p.path === '') return `line ${p.line ?? '?'} of ${p.file}`
  return p.line !== null ? `${p.path} (line ${p.line})` : p.path
}

/** A ConfigError at `place`, its key path extended by `rel` (a member inside the value there). */
export function errorAt(place: Place, message: string, rel: KeyPath = []): ConfigError {
  return new ConfigError({ file: place.file, line: place.line, col: place.col, path: place.path === '' ? '' : joinPath(place.path, rel), message })
}

/** `attach[0].maps.ports.entries[1].value` + [`limit`] -> `...value.limit`. */
function joinPath(path: string, rel: KeyPath): string {
  return rel.length === 0 ? path : path + formatKeyPath(['_', ...rel]).slice(1)
}

export type { EncodeError }
