import { posix } from 'node:path'
import { compileMatcher, entryLabel, HOST_NETNS, kindHints, loadConfig, namesOtherNamespaces, netnsMatches, type AttachEntry, type Config, type ControlGroup } from '../config/index.js'
import { groupText } from '../control/peer.js'
import { printable } from './format.js'
import { EX_CONFIG, EX_DATAERR, configErrorText } from '../daemon.js'
import { ProgramLoadError } from '../programs/errors.js'
import { loadForCheck, type CheckedProgram } from '../programs/kernel.js'
import type { LinkState } from '../rtnl/link.js'
import { NetnsStuckError } from '../ffi/netns.js'
import { CommandNetns, dumpLinksIn } from './namespaces.js'
import { walkOptions } from '../config/secure-path.js'
import type { ConfigError } from '../config/errors.js'
import type { MapSpec } from '../maps/btf.js'
import { prepareContents, type MapBackend, type ProgramMaps } from '../maps/contents.js'
import { readListFile } from '../maps/listfile.js'
import { ok, type Result } from '../result.js'

export interface CheckOptions {
  configPath: string
  insecurePaths: boolean
  json: boolean
  out?: NodeJS.WritableStream
  err?: NodeJS.WritableStream
  /** The links to match, in the namespace check runs in, named host (default: one dump of this namespace). */
  links?: () => Promise<LinkState[]>
  /** Loads one entry's program and lets it go (default: the kernel, programs/kernel.ts loadForCheck). */
  load?: (objectPath: string, programName?: string) => Promise<CheckedProgram>
  /**
   * The namespaces of `netns-dirs` and the links of those an entry is for, asked only when an entry names a
   * namespace other than host. Default: lookAtNamespaces, when `links` is not given; a caller that gives this
   * namespace's links and not this sees no other namespace (nothing else is read).
   */
  namespaces?: (config: Config) => Promise<NamespacesSeen>
}

/** A namespace of `netns-dirs` as check saw it. */
export interface SeenNamespace {
  name: string
  /** `net:[inode]`; null for a file that could not be used as a namespace (see `error`). */
  id: string | null
  /** The files that bind it. */
  paths: string[]
  /** Its links; null when they were not read: no entry is for it, or `error`. */
  links: LinkState[] | null
  /** Why its links could not be read: it could not be entered (EPERM without CAP_SYS_ADMIN), say. */
  error?: string
}

export interface NamespacesSeen {
  /** The namespace check runs in, named host: its id and the files that bind it, if any. */
  host: { id: string | null; paths: string[] }
  /** Every other namespace found, and every file named for an entry that could not be used. */
  others: SeenNamespace[]
  /** Directories not looked at, files ignored (another namespace has their name): also on stderr. */
  warnings: string[]
}

/** A link of a namespace with the entry that would get it. */
export interface CheckNetnsLinkJson {
  ifindex: number
  name: string
  /** The entry's name (as `entries[].entry`) and index; null: no entry matches it. */
  entry: string | null
  index: number | null
}

/** One namespace of the per-namespace view: host first (the same links as the top-level fields), then by name. */
export interface CheckNetnsJson {
  name: string
  id: string | null
  paths: string[]
  /** Whether some entry's `netns` matches its name: the daemon manages only those. */
  wanted: boolean
  /** Every link with the entry that would get it; null when they were not read (not wanted, or `error`). */
  links: CheckNetnsLinkJson[] | null
  error?: string
}

export interface CheckLinkJson {
  ifindex: number
  name: string
}

export interface CheckEntryJson {
  entry: string
  index: number
  object: string
  /** The program picked (null: none could be, see `error`). */
  program: string | null
  tag: string | null
  verifiedInsns: number | null
  mode: AttachEntry['mode']
  /** The entry's `netns` globs: the namespaces it is for, by name (`host`: the daemon's own). */
  netns: string[]
  /** Links of this namespace (matched as `host`) the entry would get; none when its `netns` does not match `host`. */
  links: CheckLinkJson[]
  /** Why the object did not load (absent when it did). */
  error?: string
  /** Its declared map contents, as many entries as each map would hold (absent without `maps:`). */
  maps?: { map: string; entries: number }[]
}

export interface CheckJson {
  ok: boolean
  config: string
  /** The control socket, and the `control-group:` whose members may use it besides root (null: root only). */
  control: { socket: string; group: ControlGroup | null }
  /** `netns-dirs`: where namespace files are named (empty: only `host` can be managed). */
  netnsDirs: string[]
  entries: CheckEntryJson[]
  /** Links of this namespace that no entry matches. */
  unmatched: number
  /**
   * What is allowed but looks wrong (config/kinds.ts: a kind one letter from a known one; a directory of
   * `netns-dirs` not looked at, a namespace file ignored); also on stderr.
   */
  warnings: string[]
  /**
   * Per network namespace, which links would get which entry's program; present only when an entry names a
   * namespace other than host (then the files of `netns-dirs` are looked at once), absent otherwise.
   */
  namespaces?: CheckNetnsJson[]
}

/**
 * `xdplinkd check`: validates the config, loads every entry's program (the verifier included) and lets it go, and
 * shows which links of this namespace each entry would get. Attaches nothing and pins nothing: the programs are
 * loaded without pins and closed (programs/kernel.ts loadForCheck), so no bpffs is needed. Exit status: 0, 78
 * (EX_CONFIG) for a config error, 65 (EX_DATAERR) when an object fails to load; every problem goes to stderr.
 */
export async function checkCommand(o: CheckOptions): Promise<number> {
  const out = o.out ?? process.stdout
  const errOut = o.err ?? process.stderr

  const r = await loadConfig(o.configPath, { insecurePaths: o.insecurePaths })
  if (!r.ok) {
    errOut.write(configErrorText(r.error) + '\n')
    if (o.json) out.write(JSON.stringify({ ok: false, errors: r.error }) + '\n')
    return EX_CONFIG
  }
  const config = r.value

  // Every entry, not just up to the first failure; one load per object and program however many entries share it.
  // The object is read under the daemon's rules (programs/objects.ts: path checks, O_NOFOLLOW, fstat, size limit).
  const load = o.load ?? ((path: string, program?: string) => loadForCheck(path, program, { insecurePaths: o.insecurePaths }))
  const loaded = new Map<string, CheckedProgram | ProgramLoadError>()
  const results: (CheckedProgram | ProgramLoadError)[] = []
  for (const e of config.entries) {
    const key = `${e.object}\0${e.program ?? ''}`
    let res = loaded.get(key)
    if (res === undefined) {
      try {
        res = await load(e.object, e.program ?? undefined)
      } catch (err) {
        if (!(err instanceof ProgramLoadError)) throw err
        res = err
      }
      loaded.set(key, res)
    }
    results.push(res)
  }

  // Declared map contents, typed by the maps' BTF as the object has it: errors are config errors (78).
  const maps = await checkMaps(config, results, o.insecurePaths)
  if (!maps.ok) {
    errOut.write(configErrorText(maps.error) + '\n')
    if (o.json) out.write(JSON.stringify({ ok: false, errors: maps.error }) + '\n')
    return EX_CONFIG
  }

  const links = (await (o.links ?? (() => dumpLinksIn()))()).sort((a, b) => a.ifindex - b.ifindex)
  const plan = planLinks(config, links)
  const look = o.namespaces ?? (o.links ? null : (c: Config) => lookAtNamespaces(c, o.insecurePaths))
  const seen = namesOtherNamespaces(config) && look ? await look(config) : null

  const entries: CheckEntryJson[] = config.entries.map((e, i) => {
    const res = results[i]!
    const failed = res instanceof ProgramLoadError
    const json: CheckEntryJson = {
      entry: e.name,
      index: e.index,
      object: e.object,
      program: failed ? (res.program ?? e.program) : res.name,
      tag: failed ? null : res.tag,
      verifiedInsns: failed ? null : res.verifiedInsns,
      mode: e.mode,
      netns: e.netns,
      links: plan.byEntry[i]!.map((l) => ({ ifindex: l.ifindex, name: l.name })),
    }
    if (failed) json.error = res.message
    const declared = maps.value.get(e.index)
    if (declared) json.maps = declared
    return json
  })
  const failures = entries.filter((e) => e.error !== undefined)
  for (const f of failures) errOut.write(`${entryLabel(config.entries[f.index]!)}: ${f.error}\n`)
  const warnings = [...kindHints(config).map((h) => h.message), ...(seen?.warnings ?? [])]
  for (const w of warnings) errOut.write(`warning: ${printable(w)}\n`)

  const result: CheckJson = {
    ok: failures.length === 0,
    config: config.path,
    control: { socket: config.controlSocket, group: config.controlGroup },
    netnsDirs: config.netnsDirs,
    entries,
    unmatched: plan.unmatched.length,
    warnings,
  }
  if (seen) result.namespaces = namespacesJson(config, seen, links)
  out.write(o.json ? JSON.stringify(result) + '\n' : checkText(config, result, plan.unmatched))
  return failures.length > 0 ? EX_DATAERR : 0
}

/**
 * Every entry's `maps:` against the maps of its program as the object describes them (CheckedProgram.maps), the
 * list files read under the daemon's rules: the daemon's own checks (maps/contents.ts prepareContents), with the
 * object's maps in place of pinned ones and nothing written. By entry index: each declared map and how many entries
 * it would hold. Entries whose object did not load are left out (their error is reported already).
 */
async function checkMaps(
  config: Config,
  results: readonly (CheckedProgram | ProgramLoadError)[],
  insecurePaths: boolean,
): Promise<Result<Map<number, { map: string; entries: number }[]>, ConfigError[]>> {
  const specs = new Map<string, MapSpec>()
  const programs = new Map<number, ProgramMaps>()
  config.entries.forEach((e, i) => {
    const res = results[i]
    if (e.maps.length === 0 || !res || res instanceof ProgramLoadError || !res.maps) return
    const id = `${e.object}\0${res.name}`
    const maps = new Map<string, string>()
    for (const m of res.maps) {
      specs.set(`${id}/${m.name}`, m)
      maps.set(m.name, `${id}/${m.name}`)
    }
    programs.set(e.index, { name: res.name, objectPath: e.object, pinDirName: id, maps })
  })
  const backend: MapBackend = {
    open: (pin) => ({
      spec: specs.get(pin)!,
      sync: () => {
        throw new Error('check writes no map')
      },
      close: () => {},
    }),
    readList: readListFile,
  }
  const prepared = await prepareContents(config.entries, programs, backend, walkOptions({ insecurePaths }))
  if (!prepared.ok) return prepared
  prepared.value.close()
  const sizes = new Map(prepared.value.maps.map((m) => [`${m.program.pinDirName}/${m.map}`, m.contents.count]))
  const out = new Map<number, { map: string; entries: number }[]>()
  for (const e of config.entries) {
    const p = programs.get(e.index)
    if (p) out.set(e.index, e.maps.map((d) => ({ map: d.map, entries: sizes.get(`${p.pinDirName}/${d.map}`) ?? 0 })))
  }
  return ok(out)
}

/**
 * The namespaces of `netns-dirs`, looked at once as the daemon would find them (netns/watch.ts: the same path rules,
 * names and merging of files that bind one namespace), and the links of those an entry is for, each dumped through
 * sockets opened inside it and closed at once. A namespace that cannot be entered is reported, not fatal.
 */
export async function lookAtNamespaces(config: Config, insecurePaths: boolean): Promise<NamespacesSeen> {
  const found = await CommandNetns.open({ dirs: config.netnsDirs, insecurePaths })
  try {
    const wanted = (name: string): boolean => config.entries.some((e) => netnsMatches(e, name))
    let host: NamespacesSeen['host'] = { id: null, paths: [] }
    const others: SeenNamespace[] = []
    for (const ns of found.namespaces()) {
      if (ns.host) {
        host = { id: ns.id, paths: [...ns.paths] }
        continue
      }
      const seen: SeenNamespace = { name: ns.name, id: ns.id, paths: [...ns.paths], links: null }
      others.push(seen)
      if (!wanted(ns.name)) continue
      try {
        const fd = found.fdOf(ns.id)
        if (fd === null) throw new Error('its descriptor is not held')
        seen.links = await dumpLinksIn(fd)
      } catch (e) {
        if (e instanceof NetnsStuckError) throw e
        seen.error = `cannot read its links: ${(e as Error).message}`
      }
    }
    const warnings: string[] = []
    for (const w of found.warnings) {
      // A file no entry is for is none of check's business, whatever it is; one an entry is for is a namespace
      // that would not be managed, and why.
      if (w.kind === 'file') {
        const name = posix.basename(w.path)
        if (wanted(name)) others.push({ name, id: null, paths: [w.path], links: null, error: w.message })
      } else warnings.push(w.message)
    }
    others.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    return { host, others, warnings }
  } finally {
    found.close()
  }
}

/** The per-namespace view: host (the links check runs among) first, then the others by name. */
export function namespacesJson(config: Config, seen: NamespacesSeen, hostLinks: readonly LinkState[]): CheckNetnsJson[] {
  const view = (name: string, links: readonly LinkState[] | null): CheckNetnsLinkJson[] | null => {
    if (links === null) return null
    const match = compileMatcher(config, name)
    return [...links]
      .sort((a, b) => a.ifindex - b.ifindex)
      .map((l) => {
        const e = match(l)
        return { ifindex: l.ifindex, name: l.name, entry: e?.name ?? null, index: e?.index ?? null }
      })
  }
  const wanted = (name: string): boolean => config.entries.some((e) => netnsMatches(e, name))
  const host: CheckNetnsJson = { name: HOST_NETNS, ...seen.host, wanted: wanted(HOST_NETNS), links: view(HOST_NETNS, hostLinks) }
  return [
    host,
    ...seen.others.map((ns) => {
      const json: CheckNetnsJson = { name: ns.name, id: ns.id, paths: ns.paths, wanted: wanted(ns.name), links: view(ns.name, ns.links) }
      if (ns.error !== undefined) json.error = ns.error
      return json
    }),
  ]
}

/**
 * Each entry's links among the links of one namespace, named `netns` (default: the one check runs in, `host`), the
 * daemon's way: the first entry for that namespace that matches a link decides (config/match.ts).
 */
export function planLinks(
  config: Config,
  links: readonly LinkState[],
  netns: string = HOST_NETNS,
): { byEntry: LinkState[][]; unmatched: LinkState[] } {
  const match = compileMatcher(config, netns)
  const byEntry: LinkState[][] = config.entries.map(() => [])
  const unmatched: LinkState[] = []
  for (const l of links) {
    const e = match(l)
    if (e === null) unmatched.push(l)
    else byEntry[e.index]!.push(l)
  }
  return { byEntry, unmatched }
}

/** Names shown for the links no entry matches; the rest are counted. */
const UNMATCHED_SHOWN = 10

export function checkText(config: Config, r: CheckJson, unmatched: readonly LinkState[]): string {
  const blocks = r.entries.map((e) => {
    const program =
      e.error !== undefined
        ? `${e.program ?? '?'}: FAILED to load (reason on stderr)`
        : [e.program, `tag ${e.tag}`, e.verifiedInsns !== null ? `${e.verifiedInsns} insns verified` : null]
            .filter((s) => s !== null)
            .join('  ')
    const entry = config.entries[e.index]!
    const links =
      e.links.length > 0
        ? e.links.map((l) => `${printable(l.name)} (${l.ifindex})`).join(', ')
        : netnsMatches(entry, HOST_NETNS)
          ? 'none in this namespace'
          : `none: this namespace is ${HOST_NETNS}, which netns does not match`
    const rows: [string, string][] = [
      ['object', printable(e.object)],
      ['program', program],
      ['mode', e.mode],
      ['netns', e.netns.map(printable).join(', ')],
      ['links', links],
      ...(e.maps ?? []).map((m): [string, string] => ['map', `${m.map}: ${plural(m.entries, 'entry', 'entries')} declared`]),
    ]
    return [entryLabel(entry), ...rows.map(([k, v]) => `  ${k.padEnd(8)} ${v}`)].join('\n') + '\n'
  })
  const n = unmatched.length
  const tail = n === 0 ? 'every link matches an entry' : `${plural(n, 'link', 'links')} matched by no entry: ${someOf(unmatched.map((l) => printable(l.name)))}`
  // The host comes first in the per-namespace view; its links are the entries' `links`.
  const others = r.namespaces?.slice(1) ?? []
  const inHost = r.entries.reduce((s, e) => s + e.links.length, 0)
  const inOthers = others.map((ns) => (ns.links ?? []).filter((l) => l.index !== null).length)
  const attached = inOthers.reduce((s, k) => s + k, inHost)
  const spaces = inOthers.filter((k) => k > 0).length + (inHost > 0 ? 1 : 0)
  const where = r.namespaces ? ` in ${plural(spaces, 'network namespace', 'network namespaces')}` : ''
  const failed = r.entries.filter((e) => e.error !== undefined).length
  const summary = r.ok
    ? `${printable(r.config)}: ok, ${plural(r.entries.length, 'entry', 'entries')}; ${plural(attached, 'link', 'links')}${where} would get a program (nothing attached)`
    : `${printable(r.config)}: ${failed} of ${plural(r.entries.length, 'entry', 'entries')} FAILED to load`
  const body = blocks.length > 0 ? blocks.join('\n') : 'no attach entries: xdplinkd would detach every program it attached\n'
  const group = r.control.group
  const control = group === null ? '' : `control socket ${printable(r.control.socket)}: root and members of ${groupText(group)} may ask\n`
  const dirs = r.netnsDirs.length > 0 ? r.netnsDirs.map(printable).join(', ') : `none, so only ${HOST_NETNS} can be managed`
  const namespaces = r.namespaces ? `\n${namespacesText(config, others)}\n` : ''
  return `${body}\n${tail}\n${namespaces}namespace files (netns-dirs): ${dirs}\n${control}${summary}\n`
}

/** Up to UNMATCHED_SHOWN of the texts (already printable), the rest counted. */
function someOf(texts: readonly string[]): string {
  const more = texts.length > UNMATCHED_SHOWN ? `, and ${texts.length - UNMATCHED_SHOWN} more` : ''
  return texts.slice(0, UNMATCHED_SHOWN).join(', ') + more
}

/**
 * The namespaces other than host: for each one an entry is for, its links grouped by the entry that would get them
 * (in file order) and those no entry matches; one that could not be looked at, why; the others, by name only.
 */
export function namespacesText(config: Config, others: readonly CheckNetnsJson[]): string {
  const blocks: string[] = []
  const unwanted: string[] = []
  for (const ns of others) {
    if (!ns.wanted) {
      unwanted.push(ns.name)
      continue
    }
    const head = `network namespace ${printable(ns.name)}${ns.paths.length > 0 ? ` (${ns.paths.map(printable).join(', ')})` : ''}`
    if (ns.links === null) {
      blocks.push(`${head}\n  not looked at: ${printable(ns.error ?? 'its links were not read')}\n`)
      continue
    }
    const rows: [string, string][] = []
    for (const e of config.entries) {
      const mine = ns.links.filter((l) => l.index === e.index)
      if (mine.length > 0) rows.push([entryLabel(e), mine.map((l) => `${printable(l.name)} (${l.ifindex})`).join(', ')])
    }
    const none = ns.links.filter((l) => l.index === null)
    if (none.length > 0) rows.push(['no entry', someOf(none.map((l) => `${printable(l.name)} (${l.ifindex})`))])
    if (rows.length === 0) rows.push(['no entry', 'no links'])
    const width = Math.max(...rows.map(([k]) => k.length))
    blocks.push(`${head}\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n`)
  }
  if (others.length === 0) blocks.push('no network namespace found in netns-dirs\n')
  if (unwanted.length > 0) {
    const n = unwanted.length
    blocks.push(`${plural(n, 'network namespace', 'network namespaces')} no entry is for: ${someOf(unwanted.map(printable))}\n`)
  }
  return blocks.join('\n')
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`
}
