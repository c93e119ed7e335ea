import { compileMatcher, entryLabel, HOST_NETNS, kindHints, loadConfig, netnsMatches, type AttachEntry, type Config, type ControlGroup } from '../config/index.js'
import { groupText } from '../control/peer.js'
import { printable } from './format.js'
import { EX_CONFIG, EX_DATAERR, configErrorText } from '../daemon.js'
import { ProgramLoadError } from '../programs/errors.js'
import { loadForCheck, type CheckedProgram } from '../programs/kernel.js'
import type { LinkState } from '../rtnl/link.js'
import { RtnlClient } from '../rtnl/client.js'

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
  /** What is allowed but looks wrong (config/kinds.ts: a kind one letter from a known one); also on stderr. */
  warnings: string[]
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

  const links = (await (o.links ?? dumpLinks)()).sort((a, b) => a.ifindex - b.ifindex)
  const plan = planLinks(config, links)

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
    return json
  })
  const failures = entries.filter((e) => e.error !== undefined)
  for (const f of failures) errOut.write(`${entryLabel(config.entries[f.index]!)}: ${f.error}\n`)
  const warnings = kindHints(config).map((h) => h.message)
  for (const w of warnings) errOut.write(`warning: ${w}\n`)

  const result: CheckJson = {
    ok: failures.length === 0,
    config: config.path,
    control: { socket: config.controlSocket, group: config.controlGroup },
    netnsDirs: config.netnsDirs,
    entries,
    unmatched: plan.unmatched.length,
    warnings,
  }
  out.write(o.json ? JSON.stringify(result) + '\n' : checkText(config, result, plan.unmatched))
  return failures.length > 0 ? EX_DATAERR : 0
}

async function dumpLinks(): Promise<LinkState[]> {
  const client = new RtnlClient({ subscribe: false })
  try {
    return await client.dumpLinks()
  } finally {
    client.close()
  }
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
  const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`
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
    ]
    return [entryLabel(entry), ...rows.map(([k, v]) => `  ${k.padEnd(8)} ${v}`)].join('\n') + '\n'
  })
  const n = unmatched.length
  const names = unmatched.slice(0, UNMATCHED_SHOWN).map((l) => printable(l.name))
  const more = n > UNMATCHED_SHOWN ? `, and ${n - UNMATCHED_SHOWN} more` : ''
  const tail = n === 0 ? 'every link matches an entry' : `${plural(n, 'link', 'links')} matched by no entry: ${names.join(', ')}${more}`
  const attached = r.entries.reduce((s, e) => s + e.links.length, 0)
  const failed = r.entries.filter((e) => e.error !== undefined).length
  const summary = r.ok
    ? `${printable(r.config)}: ok, ${plural(r.entries.length, 'entry', 'entries')}; ${plural(attached, 'link', 'links')} would get a program (nothing attached)`
    : `${printable(r.config)}: ${failed} of ${plural(r.entries.length, 'entry', 'entries')} FAILED to load`
  const body = blocks.length > 0 ? blocks.join('\n') : 'no attach entries: xdplinkd would detach every program it attached\n'
  const group = r.control.group
  const control = group === null ? '' : `control socket ${printable(r.control.socket)}: root and members of ${groupText(group)} may ask\n`
  const dirs = r.netnsDirs.length > 0 ? r.netnsDirs.map(printable).join(', ') : `none, so only ${HOST_NETNS} can be managed`
  return `${body}\n${tail}\nnamespace files (netns-dirs): ${dirs}\n${control}${summary}\n`
}
