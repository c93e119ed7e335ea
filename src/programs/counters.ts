/**
 * Per-link counters of XDP programs: the stats-map convention (bpf/xdp_stats.h; docs/reference.md, "Per-link
 * counters"), what a map's entries say, and which link each belongs to. Pure: the bytes are read by
 * read-counters.ts; malformed input gives an error value, never an exception.
 *
 * The convention: a map named `xdp_link_stats`, a hash (BPF_MAP_TYPE_HASH, PERCPU_HASH, LRU_HASH or
 * LRU_PERCPU_HASH), key `struct {__u32 netns; __u32 ifindex;}` (8 bytes: the inode number of the link's network
 * namespace, 0 when unknown, and its ifindex), value `struct xdp_stats_rec action[5]` (80 bytes: {__u64 packets;
 * __u64 bytes;} per enum xdp_action value, XDP_ABORTED first), host byte order. A program whose object has a map of
 * that name and shape gets per-link counters; any other gets none.
 */
import { BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_LRU_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_HASH, isPerCpu, mapTypeName } from '../maps/map-types.js'
import { err, ok, type Result } from '../result.js'

/** The map types the convention allows: the hashes. */
const HASH_TYPES = [BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_LRU_PERCPU_HASH]

/** The map's name in the object, as pinned under `<pin dir>/maps/`. */
export const LINK_STATS_MAP = 'xdp_link_stats'

/** enum xdp_action (<linux/bpf.h>), in value order: XDP_ABORTED = 0 ... XDP_REDIRECT = 4; the names are the metrics' `action` label. */
export const XDP_ACTIONS = ['aborted', 'drop', 'pass', 'tx', 'redirect'] as const
export type XdpAction = (typeof XDP_ACTIONS)[number]

/** sizeof(struct xdp_link_key) */
export const LINK_STATS_KEY_SIZE = 8
/** sizeof(struct xdp_stats_rec) */
const REC_SIZE = 16
/** sizeof(struct xdp_link_stats) */
export const LINK_STATS_VALUE_SIZE = XDP_ACTIONS.length * REC_SIZE

export interface PacketsBytes {
  packets: number
  bytes: number
}
export type ActionCounters = Record<XdpAction, PacketsBytes>

/** One entry of a stats map: what a program counted on one link. */
export interface LinkCountersEntry {
  /** Inode number of the link's network namespace (nsfs st_ino); 0 where the program could not tell. */
  netns: number
  ifindex: number
  actions: ActionCounters
}

/** What the kernel says of a map, as far as the convention looks (ffi/bpf-fd.ts MapInfo has these). */
export interface StatsMapShape {
  type: number
  keySize: number
  valueSize: number
}

/**
 * Whether a map follows the convention; its values are per CPU or not. The error says what differs, for an operator
 * whose object means to follow it.
 */
export function checkStatsMap(m: StatsMapShape): Result<{ perCpu: boolean }, string> {
  const problems: string[] = []
  if (!HASH_TYPES.includes(m.type)) problems.push(`map type ${m.type}, not a hash (${HASH_TYPES.map(mapTypeName).join(', ')})`)
  if (m.keySize !== LINK_STATS_KEY_SIZE) problems.push(`key of ${m.keySize} bytes, not ${LINK_STATS_KEY_SIZE} ({__u32 netns; __u32 ifindex;})`)
  if (m.valueSize !== LINK_STATS_VALUE_SIZE) {
    problems.push(`value of ${m.valueSize} bytes, not ${LINK_STATS_VALUE_SIZE} ({__u64 packets; __u64 bytes;} for each of ${XDP_ACTIONS.length} actions)`)
  }
  if (problems.length) return err(`${LINK_STATS_MAP} does not follow the stats-map convention: ${problems.join('; ')}`)
  return ok({ perCpu: isPerCpu(m.type) })
}

export function zeroCounters(): ActionCounters {
  return Object.fromEntries(XDP_ACTIONS.map((a) => [a, { packets: 0, bytes: 0 }])) as ActionCounters
}

/**
 * One entry from its key and value as bpf_map_lookup_elem gave them: a per-CPU value is `cpus` slots of the value
 * size rounded up to 8 bytes (kernel/bpf/syscall.c, bpf_map_value_size), summed here; other maps have one slot.
 * Host byte order (little-endian on every architecture xdplinkd runs on: x86-64, arm64).
 */
export function decodeEntry(key: Buffer, value: Buffer, cpus: number): Result<LinkCountersEntry, string> {
  if (key.length !== LINK_STATS_KEY_SIZE) return err(`key of ${key.length} bytes, not ${LINK_STATS_KEY_SIZE}`)
  if (!Number.isInteger(cpus) || cpus < 1) return err(`${cpus} CPUs`)
  const slot = Math.ceil(LINK_STATS_VALUE_SIZE / 8) * 8
  if (value.length !== slot * cpus) return err(`value of ${value.length} bytes, not ${cpus} x ${slot}`)
  const actions = zeroCounters()
  XDP_ACTIONS.forEach((a, i) => {
    let packets = 0n
    let bytes = 0n
    for (let cpu = 0; cpu < cpus; cpu++) {
      const at = cpu * slot + i * REC_SIZE
      packets += value.readBigUInt64LE(at)
      bytes += value.readBigUInt64LE(at + 8)
    }
    // Exact up to 2^53 (9 PB of bytes); beyond that a double loses the last digits, which no rate notices.
    actions[a] = { packets: Number(packets), bytes: Number(bytes) }
  })
  return ok({ netns: key.readUInt32LE(0), ifindex: key.readUInt32LE(4), actions })
}

/** A link as attribution sees it: where it is and which program runs on it (the one the kernel runs first). */
export interface CountedLink {
  /** Inode number of its network namespace. */
  netns: number
  ifindex: number
  /** The program attached (native before generic before offload); null when none. */
  progId: number | null
}

/**
 * Each link's counters, in the order given: the entry of its namespace and ifindex in the stats map of the program
 * it runs. `stats` has the entries of each program whose map follows the convention; a link running any other
 * program (none, a foreign one, one without such a map) gets null. A link running such a program with no entry has
 * not received a packet since its entry was made, or its entry was evicted: zeros.
 *
 * Entries with netns 0 come from a kernel where the program cannot learn the namespace (bpf/xdp_stats.h: before
 * Linux 6.2): there every link of that ifindex shares one entry, so it is given to a link only where it is the one
 * link with that ifindex running that program; otherwise each of them gets null (not zeros: the packets were
 * counted, only not told apart).
 */
export function attributeCounters(links: readonly CountedLink[], stats: ReadonlyMap<number, readonly LinkCountersEntry[]>): (ActionCounters | null)[] {
  const byKey = new Map<number, Map<string, ActionCounters>>()
  for (const [progId, entries] of stats) {
    const m = new Map<string, ActionCounters>()
    for (const e of entries) m.set(`${e.netns}/${e.ifindex}`, e.actions)
    byKey.set(progId, m)
  }
  // How many links run each program on each ifindex, for the entries without a namespace.
  const sharing = new Map<string, number>()
  for (const l of links) {
    if (l.progId === null) continue
    const k = `${l.progId}/${l.ifindex}`
    sharing.set(k, (sharing.get(k) ?? 0) + 1)
  }
  return links.map((l) => {
    const entries = l.progId === null ? undefined : byKey.get(l.progId)
    if (!entries) return null
    const exact = entries.get(`${l.netns}/${l.ifindex}`)
    if (exact) return exact
    const unnamed = entries.get(`0/${l.ifindex}`)
    if (unnamed) return sharing.get(`${l.progId}/${l.ifindex}`) === 1 ? unnamed : null
    return zeroCounters()
  })
}
