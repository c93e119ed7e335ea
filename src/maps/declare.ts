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
import type { DeclaredItem, MapDeclaration, Place } from '../config/types.js'
import { err, ok, type Result } from '../result.js'
import type { MapSpec } from './btf.js'
import { encode, type EncodeError } from './encode.js'
import { declarableMapType, mapTypeName } from './map-types.js'

export interface DeclaredEntry {
  key: Buffer
  /** value_size bytes (one CPU's value for a per-CPU map: sync.ts repeats it for every CPU). */
  value: Buffer
}

/** Hex of the key -> the entry. Insertion order is the declaration's order. */
export type DeclaredContents = Map<string, DeclaredEntry>

/** A list file's keys (listfile.ts parseListFile), each with its 1-based line. */
export interface ListFileKeys {
  path: string
  keys: { key: string; line: number }[]
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

  // The declaration's `value:`, encoded once for every key that has none of its own.
  let shared: Buffer | null = Buffer.alloc(spec.valueSize)
  if (decl.value !== undefined) {
    const v = encode(spec.btf, valueType, decl.value, spec.valueSize)
    if (v.ok) shared = v.value
    else {
      shared = null
      for (const e of v.error) at(decl.valueAt ?? decl.at, e.message, e.path)
    }
  }

  const out: DeclaredContents = new Map()
  /** Hex key -> where the config gave it first. */
  const firstAt = new Map<string, Place>()
  const add = (item: DeclaredItem, fromFile: boolean): void => {
    const k = encode(spec.btf, keyType, item.key, spec.keySize)
    if (!k.ok) {
      for (const e of k.error) at(item.at, fromFile ? `${JSON.stringify(item.key)}: ${e.message}` : e.message, e.path)
      return
    }
    let value = shared
    if (item.value !== undefined) {
      const v = encode(spec.btf, valueType, item.value, spec.valueSize)
      if (!v.ok) {
        for (const e of v.error) at(item.valueAt ?? item.at, e.message, e.path)
        return
      }
      value = v.value
    }
    if (value === null) return // `value:` is wrong, and said so once
    if (kind === 'array') {
      const index = k.value.readUInt32LE(0)
      if (index >= spec.maxEntries) {
        at(item.at, `index ${index} is past the end of array map ${spec.name} (max_entries ${spec.maxEntries}: 0 to ${spec.maxEntries - 1})`)
        return
      }
    }
    const hex = k.value.toString('hex')
    const before = out.get(hex)
    if (before !== undefined) {
      const first = firstAt.get(hex)
      if (!fromFile && first !== undefined) {
        at(item.at, `the same key as ${describePlace(first)}; give each key once`)
        return
      }
      if (!before.value.equals(value)) {
        at(item.at, `the same key as ${first ? describePlace(first) : 'an earlier line'}, with another value; give each key once`)
        return
      }
      return
    }
    out.set(hex, { key: k.value, value })
    if (!fromFile) firstAt.set(hex, item.at)
  }
  for (const item of decl.items) add(item, false)
  if (list) {
    for (const { key, line } of list.keys) add({ key, at: { file: list.path, line, col: null, path: '' } }, true)
  }
  if (kind === 'hash' && out.size > spec.maxEntries) {
    at(decl.at, `declares ${out.size} entries; map ${spec.name} holds at most ${spec.maxEntries} (max_entries in the object)`)
  }
  return errors.length > 0 ? err(errors) : ok(out)
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
    if (equalContents(first.contents, d.contents)) continue
    errors.push(
      errorAt(
        d.decl.at,
        `declares other contents for map ${d.decl.map} than ${describePlace(first.decl.at)}; the two entries share one program, and so its maps: declare the contents once, or give one entry another object or program`,
      ),
    )
  }
  return errors
}

export function equalContents(a: DeclaredContents, b: DeclaredContents): boolean {
  if (a.size !== b.size) return false
  for (const [k, e] of a) {
    const o = b.get(k)
    if (!o || !o.value.equals(e.value)) return false
  }
  return true
}

/**
 * Declared contents as one buffer of key|value records, in declaration order: what the daemon keeps of a map's
 * declaration once it is written, for the `maps` view to compare the map with. 9 bytes for an IPv4 prefix of the
 * bundled block list, against a few hundred for the Map of hex strings and Buffers (100,000 prefixes: 0.9 MB).
 * Every key must be `keySize` bytes and every value `valueSize` (declaredContents makes them so).
 */
export function packContents(contents: DeclaredContents, keySize: number, valueSize: number): Result<Buffer, string> {
  const out = Buffer.alloc(contents.size * (keySize + valueSize))
  let at = 0
  for (const [hex, { key, value }] of contents) {
    if (key.length !== keySize || value.length !== valueSize) {
      return err(`entry ${hex}: key of ${key.length} bytes and value of ${value.length}, not ${keySize} and ${valueSize}`)
    }
    at += key.copy(out, at)
    at += value.copy(out, at)
  }
  return ok(out)
}

/** packContents' records again, as syncMap and compareMap take them: hex key -> value (views of `packed`). */
export function unpackContents(packed: Buffer, keySize: number, valueSize: number): Result<Map<string, Buffer>, string> {
  const size = keySize + valueSize
  if (keySize <= 0 || valueSize < 0 || packed.length % size !== 0) {
    return err(`${packed.length} bytes are not whole records of a ${keySize}-byte key and a ${valueSize}-byte value`)
  }
  const out = new Map<string, Buffer>()
  for (let at = 0; at < packed.length; at += size) {
    out.set(packed.toString('hex', at, at + keySize), packed.subarray(at + keySize, at + size))
  }
  return ok(out)
}

/** `attach[0].maps.blocklist_v4[2] (line 7)`, or `line 12 of /etc/xdplinkd/blocked.txt`. */
export function describePlace(p: Place): string {
  if (p.path === '') return `line ${p.line ?? '?'} of ${p.file}`
  return p.line !== null ? `${p.path} (line ${p.line})` : p.path
}

function errorAt(place: Place, message: string, rel: KeyPath = []): ConfigError {
  return new ConfigError({ file: place.file, line: place.line, col: place.col, path: place.path === '' ? '' : joinPath(place.path, rel), message })
}

/** `attach[0].maps.ports.entries[1].value` + [`limit`] -> `...value.limit`. */
function joinPath(path: string, rel: KeyPath): string {
  return rel.length === 0 ? path : path + formatKeyPath(['_', ...rel]).slice(1)
}

export type { EncodeError }
