/**
 * The `status` answer: the link table joined with the reconciler's records, the programs in use and the counters.
 * Reads what the daemon already holds; the only I/O is the ownership check (our pins under bpffs) and the programs'
 * per-link stats maps (programs/read-counters.ts), once per call.
 */
import type { Config } from '../config/index.js'
import type { NamespaceView } from '../netns/unit.js'
import { LINK_STATS_MAP, type ActionCounters } from '../programs/counters.js'
import { readLinkStats, readTraffic, type StatsRead, type StatsReader } from '../programs/read-counters.js'
import type { LoadedProgram } from '../programs/registry.js'
import { xdpPrograms, type XdpState } from '../rtnl/xdp.js'
import type { AttachedProgramJson, CountersJson, LinkStatusJson, ProgramStatusJson, StatusJson } from './protocol.js'

/** One config entry and the program loaded for it. */
export interface ProgramUse {
  entry: string
  program: LoadedProgram
}

/** What status reads; the Daemon is one. */
export interface StatusSource {
  readonly config: Pick<Config, 'path'>
  /** Every managed namespace, the daemon's own first. */
  namespaces(): NamespaceView[]
  readonly registry: { ownedProgramIds(): Set<number> }
  programs(): ProgramUse[]
}

/** Every program on a link, the one the reconciler compares first (native, generic, offload: as plan.observed()). */
function attachedPrograms(xdp: XdpState | null, isOurs: (id: number) => boolean): AttachedProgramJson[] {
  return xdpPrograms(xdp).map((p) => ({ ...p, owner: isOurs(p.progId) ? 'ours' : 'foreign' }))
}

/** The counters of every namespace, summed. */
export function counters(views: readonly NamespaceView[]): CountersJson {
  const sum: CountersJson = { attaches: 0, replaces: 0, detaches: 0, conflicts: 0, errors: {}, overruns: 0, resyncs: 0 }
  for (const { reconciler: { counters: c }, table: { stats } } of views) {
    sum.attaches += c.attaches
    sum.replaces += c.replaces
    sum.detaches += c.detaches
    sum.conflicts += c.conflicts
    for (const [code, n] of Object.entries(c.errors)) sum.errors[code] = (sum.errors[code] ?? 0) + n
    sum.overruns += stats.overruns
    sum.resyncs += stats.resyncs
  }
  return sum
}

/** What a program's stats map gave, as its row says it. */
function linkStatsOf(p: LoadedProgram, read: StatsRead | undefined): Pick<ProgramStatusJson, 'linkStats' | 'linkStatsProblem'> {
  if (read?.kind === 'entries') return { linkStats: p.maps.get(LINK_STATS_MAP) ?? null }
  if (read?.kind === 'problem') return { linkStats: null, linkStatsProblem: read.reason }
  return { linkStats: null }
}

/**
 * Programs in use, one row per program (entries that share one are listed together), by id; `reads`: what each
 * one's per-link stats map gave (none read: none known).
 */
export function programRows(uses: ProgramUse[], reads: ReadonlyMap<number, StatsRead> = new Map()): ProgramStatusJson[] {
  const byId = new Map<number, ProgramStatusJson>()
  for (const { entry, program: p } of uses) {
    const row = byId.get(p.id)
    if (row) {
      if (!row.entries.includes(entry)) row.entries.push(entry)
      continue
    }
    byId.set(p.id, { id: p.id, tag: p.tag, name: p.name, object: p.objectPath, pin: p.pinPath, entries: [entry], ...linkStatsOf(p, reads.get(p.id)) })
  }
  return [...byId.values()].sort((a, b) => a.id - b.id)
}

/** `read`: how a program's stats map is read (the kernel's by default; tests give theirs). */
export function buildStatus(src: StatusSource, read: StatsReader = readLinkStats): StatusJson {
  const uses = src.programs()
  const owned = src.registry.ownedProgramIds()
  for (const u of uses) owned.add(u.program.id)
  const isOurs = (id: number): boolean => owned.has(id)
  const views = src.namespaces()
  const traffic = readTraffic(views, uses.map((u) => u.program), read)
  const links = views.flatMap((v) => linkRows(v, isOurs, traffic.links.get(v) ?? new Map()))
  return {
    pid: process.pid,
    config: src.config.path,
    links,
    programs: programRows(uses, traffic.programs),
    counters: counters(views),
  }
}

function linkRows(v: NamespaceView, isOurs: (id: number) => boolean, traffic: ReadonlyMap<number, ActionCounters | null>): LinkStatusJson[] {
  const records = new Map(v.reconciler.records().map((r) => [r.ifindex, r]))
  return v.table.links().map((l) => {
    const r = records.get(l.ifindex)
    const [attached, ...others] = attachedPrograms(l.xdp, isOurs)
    const row: LinkStatusJson = {
      netns: v.name,
      ifindex: l.ifindex,
      name: l.name,
      kind: l.kind,
      entry: r?.entry ?? null,
      desiredProgId: r?.desiredProgId ?? null,
      attached: attached ?? null,
      // A link the reconciler has not looked at yet (it just appeared) is pending.
      state: r?.state ?? 'pending',
      lastError: r?.state === 'error' ? r.lastError : null,
      traffic: traffic.get(l.ifindex) ?? null,
    }
    if (others.length) row.alsoAttached = others
    return row
  })
}
