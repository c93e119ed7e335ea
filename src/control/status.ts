/**
 * The `status` answer: the link table joined with the reconciler's records, the programs in use and the counters.
 * Reads what the daemon already holds; the only I/O is the ownership check (our pins under bpffs), once per call.
 */
import type { Config } from '../config/index.js'
import type { LinkRecord } from '../reconcile/record.js'
import type { ReconcilerCounters } from '../reconcile/reconciler.js'
import type { LoadedProgram } from '../programs/registry.js'
import type { LinkState } from '../rtnl/link.js'
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
  readonly table: { links(): LinkState[]; readonly stats: { readonly overruns: number; readonly resyncs: number } }
  readonly reconciler: { records(): LinkRecord[]; readonly counters: ReconcilerCounters }
  readonly registry: { ownedProgramIds(): Set<number> }
  programs(): ProgramUse[]
}

/** Every program on a link, the one the reconciler compares first (native, generic, offload: as plan.observed()). */
function attachedPrograms(xdp: XdpState | null, isOurs: (id: number) => boolean): AttachedProgramJson[] {
  return xdpPrograms(xdp).map((p) => ({ ...p, owner: isOurs(p.progId) ? 'ours' : 'foreign' }))
}

export function counters(c: ReconcilerCounters, stats: { overruns: number; resyncs: number }): CountersJson {
  return {
    attaches: c.attaches,
    replaces: c.replaces,
    detaches: c.detaches,
    conflicts: c.conflicts,
    errors: { ...c.errors },
    overruns: stats.overruns,
    resyncs: stats.resyncs,
  }
}

/** Programs in use, one row per program (entries that share one are listed together), by id. */
export function programRows(uses: ProgramUse[]): ProgramStatusJson[] {
  const byId = new Map<number, ProgramStatusJson>()
  for (const { entry, program: p } of uses) {
    const row = byId.get(p.id)
    if (row) {
      if (!row.entries.includes(entry)) row.entries.push(entry)
      continue
    }
    byId.set(p.id, { id: p.id, tag: p.tag, name: p.name, object: p.objectPath, pin: p.pinPath, entries: [entry] })
  }
  return [...byId.values()].sort((a, b) => a.id - b.id)
}

export function buildStatus(src: StatusSource): StatusJson {
  const uses = src.programs()
  const owned = src.registry.ownedProgramIds()
  for (const u of uses) owned.add(u.program.id)
  const isOurs = (id: number): boolean => owned.has(id)
  const records = new Map(src.reconciler.records().map((r) => [r.ifindex, r]))
  const links: LinkStatusJson[] = src.table.links().map((l) => {
    const r = records.get(l.ifindex)
    const [attached, ...others] = attachedPrograms(l.xdp, isOurs)
    const row: LinkStatusJson = {
      ifindex: l.ifindex,
      name: l.name,
      kind: l.kind,
      entry: r?.entry ?? null,
      desiredProgId: r?.desiredProgId ?? null,
      attached: attached ?? null,
      // A link the reconciler has not looked at yet (it just appeared) is pending.
      state: r?.state ?? 'pending',
      lastError: r?.state === 'error' ? r.lastError : null,
    }
    if (others.length) row.alsoAttached = others
    return row
  })
  return {
    pid: process.pid,
    config: src.config.path,
    links,
    programs: programRows(uses),
    counters: counters(src.reconciler.counters, src.table.stats),
  }
}
