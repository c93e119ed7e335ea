/**
 * Reading the per-link counters of the programs in use (counters.ts says what the bytes mean) and giving each link
 * of each namespace its own. Read when asked (a `status` request, a metrics scrape), never on a timer: an idle
 * daemon does no work for them.
 *
 * A map is walked with BPF_MAP_GET_NEXT_KEY and read with BPF_MAP_LOOKUP_ELEM, two bpf(2) calls per entry: the
 * entries are links that saw traffic (at most the map's max_entries, 4096 for the bundled programs), and they are
 * read only when someone looks.
 */
import type { Fd } from '../ffi/fd.js'
import { SyscallError } from '../ffi/errno.js'
import { mapDeleteElem, mapInfo, mapLookupElem, numPossibleCpus, objGet } from '../ffi/bpf-fd.js'
import { walkKeys } from '../maps/walk.js'
import type { NamespaceView } from '../netns/unit.js'
import { err, ok, type Result } from '../result.js'
import { xdpPrograms } from '../rtnl/xdp.js'
import {
  LINK_STATS_KEY_SIZE,
  LINK_STATS_MAP,
  LINK_STATS_VALUE_SIZE,
  attributeCounters,
  checkStatsMap,
  decodeEntry,
  type ActionCounters,
  type LinkCountersEntry,
} from './counters.js'

/** What a program's stats map gave. */
export type StatsRead =
  /** The object has no map of the convention's name: no per-link counters. */
  | { kind: 'none' }
  | { kind: 'entries'; entries: LinkCountersEntry[] }
  /** A map of that name that does not follow the convention, or could not be read: why. */
  | { kind: 'problem'; reason: string }

/** Reads one stats map from its pin (`pin` undefined: the object has none). */
export type StatsReader = (pin: string | undefined) => StatsRead

/** Every key of a stats map, once each (maps/walk.ts: an evicted key may restart the walk). */
function keysOf(fd: Fd, maxEntries: number): Buffer[] {
  return [...walkKeys(fd, LINK_STATS_KEY_SIZE, maxEntries).keys.values()]
}

/** Why a pinned map gave nothing: it does not follow the convention, or a bpf(2) call failed. */
interface MapProblem {
  kind: 'shape' | 'io'
  reason: string
}

/** Opens a pinned map and gives it to `fn` when it follows the convention (counters.ts checkStatsMap). */
function withStatsMap<T>(pin: string, fn: (fd: Fd, maxEntries: number, perCpu: boolean) => T): Result<T, MapProblem> {
  let fd: Fd
  try {
    fd = objGet(pin)
  } catch (e) {
    return err({ kind: 'io', reason: `cannot open ${pin}: ${(e as Error).message}` })
  }
  try {
    const info = mapInfo(fd)
    const shape = checkStatsMap(info)
    if (!shape.ok) return err({ kind: 'shape', reason: shape.error })
    return ok(fn(fd, info.maxEntries, shape.value.perCpu))
  } catch (e) {
    if (e instanceof SyscallError) return err({ kind: 'io', reason: `cannot read ${pin}: ${e.message}` })
    throw e
  } finally {
    fd.close()
  }
}

/** The kernel's: opens the pin, checks the map's shape, reads every entry. */
export function readLinkStats(pin: string | undefined): StatsRead {
  if (pin === undefined) return { kind: 'none' }
  const r = withStatsMap(pin, (fd, maxEntries, perCpu) => {
    const cpus = perCpu ? numPossibleCpus() : 1
    const value = Buffer.alloc(Math.ceil(LINK_STATS_VALUE_SIZE / 8) * 8 * cpus)
    const entries: LinkCountersEntry[] = []
    for (const key of keysOf(fd, maxEntries)) {
      if (!mapLookupElem(fd, key, value)) continue // evicted since the walk
      const e = decodeEntry(key, value, cpus)
      if (e.ok) entries.push(e.value)
    }
    return entries
  })
  return r.ok ? { kind: 'entries', entries: r.value } : { kind: 'problem', reason: r.error.reason }
}

/**
 * Removes the entries of the namespace of inode `inode` from the stats map of each program (maps that do not follow
 * the convention are left alone). For when a namespace is let go: the kernel gives a freed namespace's inode number
 * to the next one made (fs/proc/generic.c, proc_alloc_inum: the lowest free number), and a pod's eth0 has the
 * same ifindex as the last pod's, so the next pod's link would take up the entry and its counts. Returns what it
 * could not do.
 */
export function forgetNamespaceCounters(programs: readonly CountedProgram[], inode: number): string[] {
  const problems: string[] = []
  for (const pin of new Set(programs.flatMap((p) => p.maps.get(LINK_STATS_MAP) ?? []))) {
    const r = withStatsMap(pin, (fd, maxEntries) => {
      // Collected first: deleting the key a walk stands on restarts the walk.
      for (const k of keysOf(fd, maxEntries)) if (k.readUInt32LE(0) === inode) mapDeleteElem(fd, k)
    })
    if (!r.ok && r.error.kind === 'io') problems.push(r.error.reason)
  }
  return problems
}

/** A program in use, as far as its counters go. */
export interface CountedProgram {
  id: number
  /** Map name -> pin path (LoadedProgram.maps). */
  maps: ReadonlyMap<string, string>
}

/** Per namespace view, per ifindex: the link's counters, null when none are known (counters.ts attributeCounters). */
export type LinkTraffic = Map<NamespaceView, Map<number, ActionCounters | null>>

export interface TrafficRead {
  links: LinkTraffic
  /** By program id: what its stats map gave (every program once, however many entries use it). */
  programs: Map<number, StatsRead>
}

/** Reads the stats map of every program once and gives each link of `views` its counters. */
export function readTraffic(views: readonly NamespaceView[], programs: readonly CountedProgram[], read: StatsReader = readLinkStats): TrafficRead {
  const reads = new Map<number, StatsRead>()
  for (const p of programs) if (!reads.has(p.id)) reads.set(p.id, read(p.maps.get(LINK_STATS_MAP)))
  const stats = new Map<number, LinkCountersEntry[]>()
  for (const [id, r] of reads) if (r.kind === 'entries') stats.set(id, r.entries)
  const all = views.flatMap((v) => v.table.links().map((l) => ({ v, ifindex: l.ifindex, netns: v.inode, progId: xdpPrograms(l.xdp)[0]?.progId ?? null })))
  const counters = attributeCounters(all, stats)
  const links: LinkTraffic = new Map(views.map((v) => [v, new Map()]))
  all.forEach((l, i) => links.get(l.v)!.set(l.ifindex, counters[i]!))
  return { links, programs: reads }
}
