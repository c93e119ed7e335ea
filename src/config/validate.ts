/**
 * Config text -> normalized Config, or every problem found. Pure: no I/O, never throws on bad input.
 *
 * Three passes, each reporting everything it finds:
 * 1. YAML syntax (source.ts);
 * 2. the published JSON Schema (schema.ts), compiled by ajv with allErrors (at build time: schema-validator.ts); ajv's instancePath is mapped back to
 *    the YAML node for the line and column;
 * 3. what a schema cannot say: max-settle >= settle, glob syntax, host:port, socket path length, unique names, that
 *    a control-group name is a group (looked up in the /etc/group text the caller read), netns-dirs without ".." or
 *    duplicates, and no netns glob that only a watched directory could satisfy when none is watched.
 *    A value the schema already rejected is not checked again, so each problem is reported once.
 */
import { isIP, isIPv4, isIPv6 } from 'node:net'
import { posix } from 'node:path'
import type { ErrorObject } from 'ajv/dist/2020.js'
import { err, ok, type Result } from '../result.js'
import { formatDuration, parseDuration } from './durations.js'
import { ConfigError, dedupeErrors, formatKeyPath, sortErrors, type KeyPath } from './errors.js'
import { compileGlobs, globProblem, LINK_NAMES, NETNS_NAMES, type GlobSubject } from './globs.js'
import { configSchema } from './schema.js'
import { loadSchemaValidator } from './schema-validator.js'
import { parseYaml, type YamlSource } from './source.js'
import { suggestKey } from './suggest.js'
import type { XdpEntryMode } from '../rtnl/xdp.js'
import {
  DEFAULT_NETNS,
  DEFAULT_NETNS_DIRS,
  DEFAULTS,
  HOST_NETNS,
  type AttachEntry,
  type Config,
  type ControlGroup,
  type MapDeclaration,
  type MetricsEndpoint,
  type OnExit,
  type Place,
} from './types.js'

const validateSchema = loadSchemaValidator()

/** sun_path is 108 bytes including the terminating NUL (include/uapi/linux/un.h, UNIX_PATH_MAX). */
export const MAX_SOCKET_PATH_BYTES = 107

/** Where `control-group:` names are looked up. NSS sources other than files (LDAP, sssd) are not consulted. */
export const GROUP_FILE = '/etc/group'

/** The glob keys of an attach entry and what each is matched against. */
const ENTRY_GLOBS: readonly (readonly ['interfaces' | 'exclude' | 'netns', GlobSubject])[] = [
  ['interfaces', LINK_NAMES],
  ['exclude', LINK_NAMES],
  ['netns', NETNS_NAMES],
]

/** Whether a glob matches the own namespace's name: the one a namespace glob can match with no directory watched. */
const matchesHost = (glob: string): boolean => compileGlobs([glob])(HOST_NETNS)

/** Group name -> gid from GROUP_FILE, or why it could not be read. */
export type GroupTable = Result<ReadonlyMap<string, number>, string>

export interface ParseOptions {
  /** Needed only when the config names a group; without it a name is an error. */
  groups?: GroupTable
}

export interface ParsedConfig {
  config: Config
  /** For locating later findings (an unsafe object file) at their line in the file. */
  source: YamlSource
}

/**
 * Parses and validates a config file's text. `path` names the file in errors and is the base of relative object
 * paths; it should be absolute (a relative one is resolved against the working directory).
 */
export function parseConfig(text: string, path: string, opts: ParseOptions = {}): Result<Config, ConfigError[]> {
  const r = parseConfigSource(text, path, opts)
  return r.ok ? ok(r.value.config) : r
}

/** parseConfig, also returning the parsed source for positions. */
export function parseConfigSource(text: string, path: string, opts: ParseOptions = {}): Result<ParsedConfig, ConfigError[]> {
  const file = posix.resolve(path)
  const parsed = parseYaml(text, file)
  if (!parsed.ok) return parsed
  const src = parsed.value
  const checker = new Checker(src, opts)
  if (!validateSchema(src.data)) checker.schemaErrors(validateSchema.errors ?? [])
  const config = checker.build(file)
  if (config === null && checker.errors.length === 0) {
    // not expected: the schema rejects whatever build() cannot use; but never report failure without a reason
    checker.errors.push(src.errorAt([], 'invalid configuration'))
  }
  if (checker.errors.length > 0 || config === null) return err(sortErrors(dedupeErrors(checker.errors)))
  return ok({ config, source: src })
}

type Json = Record<string, unknown>

class Checker {
  readonly errors: ConfigError[] = []
  /** JSON pointers of values the schema rejected: pass 3 leaves them alone. */
  readonly #rejected = new Set<string>()

  constructor(
    readonly src: YamlSource,
    readonly opts: ParseOptions,
  ) {}

  schemaErrors(errors: ErrorObject[]): void {
    for (const e of errors) {
      this.#rejected.add(e.instancePath)
      const error = this.#fromAjv(e)
      if (error) this.errors.push(error)
    }
  }

  /** Pass 3; the normalized config when the data is valid as far as this pass can tell. */
  build(file: string): Config | null {
    const data = this.src.data
    if (!isRecord(data)) return null
    const settleMs = this.#duration(data, 'settle', DEFAULTS.settleMs)
    const maxSettleMs = this.#duration(data, 'max-settle', DEFAULTS.maxSettleMs)
    if (settleMs !== null && maxSettleMs !== null && maxSettleMs < settleMs) {
      if ('max-settle' in data) {
        this.#error(['max-settle'], `expected a duration of at least settle (${formatDuration(settleMs)}), got ${repr(data['max-settle'])}`)
      } else {
        this.#error(['settle'], `expected at most max-settle (by default ${formatDuration(maxSettleMs)}), got ${repr(data['settle'])}: set max-settle as well`)
      }
    }
    const bpffs = this.#absolutePath(data, 'bpffs', DEFAULTS.bpffs)
    const controlSocket = this.#absolutePath(data, 'control-socket', DEFAULTS.controlSocket)
    if (controlSocket !== null && Buffer.byteLength(controlSocket) > MAX_SOCKET_PATH_BYTES && this.#ok(['control-socket'])) {
      this.#error(['control-socket'], `expected a path of at most ${MAX_SOCKET_PATH_BYTES} bytes (sun_path), got ${Buffer.byteLength(controlSocket)} bytes`)
    }
    const controlGroup = this.#controlGroup(data)
    const metrics = this.#metrics(data)
    const netnsDirs = this.#netnsDirs(data)
    const entries = this.#entries(data, posix.dirname(file), netnsDirs)
    const onExit = data['on-exit'] ?? DEFAULTS.onExit
    if (this.errors.length > 0 || settleMs === null || maxSettleMs === null || bpffs === null || controlSocket === null) return null
    if (controlGroup === undefined || metrics === undefined || netnsDirs === null || entries === null) return null
    return { path: file, settleMs, maxSettleMs, bpffs, onExit: onExit as OnExit, controlSocket, controlGroup, metrics, netnsDirs, entries }
  }

  #ok(path: KeyPath): boolean {
    return !this.#rejected.has(pointer(path))
  }

  #error(path: KeyPath, message: string, at: 'value' | 'key' = 'value'): void {
    this.errors.push(this.src.errorAt(path, message, at))
  }

  #duration(data: Json, key: string, fallback: number): number | null {
    if (!(key in data)) return fallback
    const r = parseDuration(data[key])
    if (r.ok) return r.value
    if (this.#ok([key])) this.#error([key], r.error)
    return null
  }

  #absolutePath(data: Json, key: string, fallback: string): string | null {
    if (!(key in data)) return fallback
    const v = data[key]
    return typeof v === 'string' && this.#ok([key]) ? normalizePath(v) : null
  }

  /**
   * null: invalid. Normalized like bpffs (`//`, `.`, a trailing `/`), but `..` is refused rather than resolved: the
   * kernel takes `..` after following symlinks, so `/run/netns/../x` need not be `/run/x`. A directory listed twice
   * (after normalization) is an error at the second.
   */
  #netnsDirs(data: Json): string[] | null {
    const list = data['netns-dirs']
    if (list === undefined) return [...DEFAULT_NETNS_DIRS]
    if (!Array.isArray(list) || !this.#ok(['netns-dirs'])) return null
    const dirs: string[] = []
    let valid = true
    list.forEach((v: unknown, i) => {
      const path = ['netns-dirs', i]
      if (typeof v !== 'string' || !this.#ok(path)) return void (valid = false)
      if (v.split('/').includes('..')) {
        this.#error(path, `expected a path without ".." components (resolved after symlinks, it need not mean what it reads as), got ${repr(v)}`)
        return void (valid = false)
      }
      const dir = normalizePath(v)
      const first = dirs.indexOf(dir)
      if (first >= 0) {
        this.#error(path, `expected a directory not listed before, got ${repr(v)}, the directory of netns-dirs[${first}]`)
        valid = false
      }
      dirs.push(dir)
    })
    return valid ? dirs : null
  }

  /** undefined: invalid. A name must be in the group table the caller read. */
  #controlGroup(data: Json): ControlGroup | null | undefined {
    const v = data['control-group']
    if (v === undefined || v === null) return null
    if (!this.#ok(['control-group'])) return undefined
    if (typeof v === 'number') return { name: null, gid: v }
    if (typeof v !== 'string') return undefined
    const table = this.opts.groups
    if (table === undefined || !table.ok) {
      const why = table === undefined ? 'it was not read' : table.error
      this.#error(['control-group'], `cannot look up group ${repr(v)}: ${GROUP_FILE}: ${why}; give the group's number instead`)
      return undefined
    }
    const gid = table.value.get(v)
    if (gid !== undefined) return { name: v, gid }
    this.#error(
      ['control-group'],
      `expected a group in ${GROUP_FILE} or a group id, got ${repr(v)}, which ${GROUP_FILE} does not have (for a group from LDAP or another NSS source, give its number)`,
    )
    return undefined
  }

  /** undefined: invalid. */
  #metrics(data: Json): MetricsEndpoint | null | undefined {
    const v = data['metrics']
    if (v === undefined || v === null) return null
    if (typeof v !== 'string' || !this.#ok(['metrics'])) return undefined
    const r = parseHostPort(v)
    if (r.ok) return r.value
    this.#error(['metrics'], r.error)
    return undefined
  }

  /**
   * `maps:` of entry `index`, with the place of every key and value for the errors found once the map's BTF is known
   * (src/maps/declare.ts). A map listed twice cannot happen (YAML duplicate keys are errors); values the schema
   * rejected are left out, as the entry is rejected anyway.
   */
  #maps(raw: unknown, index: number, dir: string): MapDeclaration[] {
    const file = this.src.file
    if (!isRecord(raw) || !this.#ok(['attach', index, 'maps'])) return []
    const place = (path: KeyPath, which: 'value' | 'key' = 'value'): Place => {
      const { line, col } = this.src.positionOf(path, which)
      return { file, line, col, path: formatKeyPath(path) }
    }
    const out: MapDeclaration[] = []
    for (const [map, contents] of Object.entries(raw)) {
      const base = ['attach', index, 'maps', map]
      if (!this.#ok(base)) continue
      const decl: MapDeclaration = { map, at: place(base, 'key'), items: [], file: null, fileAt: null }
      const keys = Array.isArray(contents) ? contents : isRecord(contents) ? contents['keys'] : undefined
      const keysPath = Array.isArray(contents) ? base : [...base, 'keys']
      if (Array.isArray(keys)) keys.forEach((key: unknown, i) => decl.items.push({ key, at: place([...keysPath, i]) }))
      if (isRecord(contents)) {
        const entries = contents['entries']
        if (Array.isArray(entries)) {
          entries.forEach((e: unknown, i) => {
            if (!isRecord(e)) return
            const at = [...base, 'entries', i]
            decl.items.push({ key: e['key'], value: e['value'], at: place([...at, 'key']), valueAt: place([...at, 'value']) })
          })
        } else if (isRecord(entries)) {
          for (const [key, value] of Object.entries(entries)) {
            const at = [...base, 'entries', key]
            decl.items.push({ key, value, at: place(at, 'key'), valueAt: place(at) })
          }
        }
        if ('value' in contents) {
          decl.value = contents['value']
          decl.valueAt = place([...base, 'value'])
        }
        if (typeof contents['file'] === 'string') {
          decl.file = posix.resolve(dir, contents['file'])
          decl.fileAt = place([...base, 'file'])
        }
      }
      out.push(decl)
    }
    return out
  }

  /** `netnsDirs`: null when invalid (then namespace globs are checked only for syntax). */
  #entries(data: Json, dir: string, netnsDirs: readonly string[] | null): AttachEntry[] | null {
    const list = data['attach']
    if (!Array.isArray(list)) return null
    const entries: AttachEntry[] = []
    const names = new Map<string, number>()
    let valid = true
    list.forEach((raw: unknown, index) => {
      if (!isRecord(raw)) return void (valid = false)
      for (const [key, subject] of ENTRY_GLOBS) {
        const globs = raw[key]
        if (!Array.isArray(globs)) continue
        globs.forEach((g: unknown, j) => {
          const path = ['attach', index, key, j]
          if (typeof g !== 'string' || !this.#ok(path)) return
          const problem = globProblem(g, subject)
          if (problem !== null) this.#error(path, `${problem}, got ${repr(g)}`)
          else if (key === 'netns' && netnsDirs?.length === 0 && !matchesHost(g)) {
            this.#error(path, `expected a glob that matches "${HOST_NETNS}": netns-dirs is empty, so no other namespace can be managed, got ${repr(g)}`)
          }
        })
      }
      const name = typeof raw['name'] === 'string' ? raw['name'] : `attach[${index}]`
      const first = names.get(name)
      if (first !== undefined) {
        this.#error(['attach', index, ...('name' in raw ? ['name'] : [])], `expected a name not used before, got ${repr(name)}, the name of attach[${first}]`)
      } else names.set(name, index)
      const { interfaces, exclude, kinds, netns, object, program, mode } = raw
      if (!isStringArray(interfaces) || typeof object !== 'string') return void (valid = false)
      entries.push({
        index,
        name,
        interfaces: [...interfaces],
        exclude: isStringArray(exclude) ? [...exclude] : [],
        kinds: isStringArray(kinds) ? [...new Set(kinds)] : null,
        netns: isStringArray(netns) ? [...netns] : [...DEFAULT_NETNS],
        object: posix.resolve(dir, object),
        program: typeof program === 'string' ? program : null,
        mode: (mode ?? DEFAULTS.mode) as XdpEntryMode,
        replaceForeign: raw['replace-foreign'] === true,
        maps: this.#maps(raw['maps'], index, dir),
      })
    })
    return valid ? entries : null
  }

  #fromAjv(e: ErrorObject): ConfigError | null {
    const path = keyPath(this.src.data, e.instancePath)
    const parent = (e.parentSchema ?? {}) as Json
    // A key the `propertyNames` schema refused (a map name): reported once, at the key, by the keyword that failed
    // for it; ajv's summary error for the mapping as a whole says nothing more.
    if (e.keyword === 'propertyNames') return null
    if (e.propertyName !== undefined) {
      const expected = expectedOf(parent)
      return this.src.errorAt([...path, e.propertyName], `expected ${expected ?? 'another key'}, got ${repr(e.propertyName)}`, 'key')
    }
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = String((e.params as { additionalProperty: string }).additionalProperty)
        const allowed = Object.keys((parent['properties'] ?? {}) as Json)
        const guess = suggestKey(key, allowed)
        // netns beside netns-dirs at the top is a likely slip: say where an entry's key goes.
        const misplaced = path.length === 0 && key in configSchema.$defs.attachEntry.properties
        const hint = guess !== null ? ` (did you mean "${guess}"?)` : misplaced ? ` ("${key}" is a key of each attach entry)` : ''
        return this.src.errorAt([...path, key], `unknown key${hint}; expected one of ${allowed.join(', ')}`, 'key')
      }
      case 'required': {
        const key = String((e.params as { missingProperty: string }).missingProperty)
        const prop = ((parent['properties'] ?? {}) as Json)[key]
        const expected = expectedOf(prop)
        return this.src.errorAt(path, `missing required key${expected === null ? '' : `; expected ${expected}`}`, 'value', [...path, key])
      }
      case 'enum': {
        const values = Array.isArray(e.schema) ? e.schema.map(String) : []
        return this.src.errorAt(path, `expected one of ${values.join(', ')}, got ${repr(e.data)}`)
      }
      default: {
        if (path.length === 0 && e.keyword === 'type' && e.data === null) {
          return this.src.errorAt(path, `the file holds no settings; expected ${expectedOf(parent) ?? 'a mapping'}`)
        }
        const expected = expectedOf(parent)
        return this.src.errorAt(path, expected === null ? `${e.message ?? 'invalid'}, got ${repr(e.data)}` : `expected ${expected}, got ${repr(e.data)}`)
      }
    }
  }
}

/**
 * `host:port` -> {host, port}: an IPv4 address, a bracketed IPv6 address or a host name, and a port from 1 to 65535.
 */
export function parseHostPort(value: string): Result<MetricsEndpoint, string> {
  const got = `got ${JSON.stringify(value)}`
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([0-9]+)$/.exec(value)
  if (m === null) return err(`expected host:port, such as 127.0.0.1:9477 or [::1]:9477, ${got}`)
  const port = Number(m[3])
  if (!(port >= 1 && port <= 65535)) return err(`expected a port from 1 to 65535, ${got}`)
  if (m[1] !== undefined) {
    if (!isIPv6(m[1])) return err(`expected an IPv6 address in the brackets, ${got}`)
    return ok({ host: m[1], port })
  }
  const host = m[2] ?? ''
  if (isIPv4(host)) return ok({ host, port })
  if (/^[0-9.]+$/.test(host)) return err(`expected a valid IPv4 address, ${got}`)
  // RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, 1 to 63 each.
  const label = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/
  if (host.length > 253 || !host.split('.').every((l) => label.test(l)) || isIP(host) !== 0) {
    return err(`expected an IP address or a host name before the port, ${got}`)
  }
  return ok({ host, port })
}

/**
 * group(5) text -> name -> gid: `name:password:GID:members` per line. Lines that are not four fields with a
 * decimal GID (comments, NIS `+`/`-` entries) are skipped; the first line for a name wins, as getgrnam(3) finds it.
 */
export function parseGroupFile(text: string): Map<string, number> {
  const groups = new Map<string, number>()
  for (const line of text.split('\n')) {
    const f = line.split(':')
    if (f.length !== 4 || f[0] === '' || /^[+#-]/.test(f[0]!) || !/^[0-9]{1,10}$/.test(f[2]!)) continue
    const gid = Number(f[2])
    if (gid <= 4294967294 && !groups.has(f[0]!)) groups.set(f[0]!, gid)
  }
  return groups
}

/** `//`, `.` and a trailing `/` taken out; `..` resolved lexically (callers that must not have it refuse it first). */
function normalizePath(path: string): string {
  return posix.normalize(path).replace(/(.)\/$/, '$1')
}

/** The x-expected text of a schema node, following one $ref into $defs. */
function expectedOf(schema: unknown): string | null {
  if (!isRecord(schema)) return null
  const own = schema['x-expected']
  if (typeof own === 'string') return own
  if (Array.isArray(schema['enum'])) return `one of ${schema['enum'].map(String).join(', ')}`
  const ref = schema['$ref']
  if (typeof ref === 'string' && ref.startsWith('#/$defs/')) {
    const def = (configSchema.$defs as Json)[ref.slice('#/$defs/'.length)]
    return expectedOf(def)
  }
  return null
}

/** ajv's instancePath (a JSON pointer) -> key path, with array positions as numbers. */
function keyPath(data: unknown, instancePath: string): KeyPath {
  if (instancePath === '') return []
  const out: (string | number)[] = []
  let cur = data
  for (const raw of instancePath.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (Array.isArray(cur)) {
      const i = Number(seg)
      out.push(i)
      cur = cur[i]
    } else {
      out.push(seg)
      cur = isRecord(cur) ? cur[seg] : undefined
    }
  }
  return out
}

function pointer(path: KeyPath): string {
  return path.map((s) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('')
}

/** How a value shows in "got ...". */
export function repr(v: unknown): string {
  if (v === undefined) return 'nothing'
  if (v === null) return 'null (no value)'
  if (typeof v === 'string') {
    const s = JSON.stringify(v)
    return s.length > 80 ? `${s.slice(0, 76)}..."` : s
  }
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : 'a list'
  if (typeof v === 'object') return 'a mapping'
  return String(v)
}


function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string')
}

