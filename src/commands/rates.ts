/**
 * `xdplinkd top`'s arithmetic: per-link rates by XDP action from two consecutive status samples of the per-link
 * counters, and the order they are shown in. Pure: no I/O, no clock (the caller timestamps the samples), and
 * malformed samples give an error value, never an exception.
 *
 * A counter only grows while the same program counts the same link. When one went down (the link's program was
 * replaced by a new object version, whose maps start at zero; an LRU map evicted the link's entry and made it
 * again) or another program runs on the link now, the link's counters started again from zero somewhere in the
 * interval: its increase is taken to be the new value, as Prometheus' rate() does, never a negative rate. A link
 * seen for the first time has no rate yet (its counters may hold anything from before); one gone since the last
 * sample is no longer shown.
 */
import type { LinkStatusJson } from '../control/protocol.js'
import { XDP_ACTIONS, type ActionCounters, type PacketsBytes, type XdpAction } from '../programs/counters.js'
import { err, ok, type Result } from '../result.js'

/** One status answer as top keeps it: when it arrived, and the links whose program counts them. */
export interface TrafficSample {
  /** Milliseconds on a monotonic clock, when the answer arrived. */
  at: number
  links: SampledLink[]
}

export interface SampledLink {
  netns: string
  ifindex: number
  name: string
  /** The program whose map the counters come from (another program: other counters). */
  progId: number | null
  traffic: ActionCounters
}

/** The links of a status answer that have per-link counters, and how many do not. */
export function sampleOf(at: number, links: readonly LinkStatusJson[]): { sample: TrafficSample; without: number } {
  const counted = links.filter((l) => l.traffic !== null)
  return {
    sample: {
      at,
      links: counted.map((l) => ({ netns: l.netns, ifindex: l.ifindex, name: l.name, progId: l.attached?.progId ?? null, traffic: l.traffic! })),
    },
    without: links.length - counted.length,
  }
}

export interface LinkRate {
  netns: string
  ifindex: number
  name: string
  /** Packets and bytes per second by action over the interval; null for a link not in the earlier sample. */
  actions: Record<XdpAction, PacketsBytes> | null
  /** The sum over the actions; null with `actions`. */
  total: PacketsBytes | null
  /** Its counters started again from zero during the interval (see above): the rate counts from zero. */
  reset: boolean
}

const linkKey = (l: Pick<SampledLink, 'netns' | 'ifindex'>): string => `${l.netns}\u0000${l.ifindex}`

function validCount(n: unknown): boolean {
  return typeof n === 'number' && Number.isFinite(n) && n >= 0
}

function checkSample(s: TrafficSample, which: string): Result<Map<string, SampledLink>, string> {
  if (!Number.isFinite(s.at)) return err(`${which} sample has no time`)
  const byKey = new Map<string, SampledLink>()
  for (const l of s.links) {
    const k = linkKey(l)
    if (byKey.has(k)) return err(`${which} sample has link ${l.ifindex} of namespace ${JSON.stringify(l.netns)} twice`)
    for (const a of XDP_ACTIONS) {
      const c = l.traffic?.[a]
      if (!c || !validCount(c.packets) || !validCount(c.bytes)) return err(`${which} sample: link ${JSON.stringify(l.name)} has no valid ${a} counters`)
    }
    byKey.set(k, l)
  }
  return ok(byKey)
}

/** Whether `now` can follow `before` as the same counters: the same program, and no counter went down. */
function continues(before: SampledLink, now: SampledLink): boolean {
  if (before.progId !== now.progId) return false
  return XDP_ACTIONS.every((a) => now.traffic[a].packets >= before.traffic[a].packets && now.traffic[a].bytes >= before.traffic[a].bytes)
}

/**
 * The rate of every link of `next`, from `prev` (null: `next` is the first sample, so no link has a rate yet),
 * sorted for showing (sortRates). Fails when `next` is not later than `prev` or a sample is malformed.
 */
export function linkRates(prev: TrafficSample | null, next: TrafficSample): Result<LinkRate[], string> {
  const now = checkSample(next, 'the new')
  if (!now.ok) return now
  let before = new Map<string, SampledLink>()
  let seconds = 0
  if (prev) {
    const p = checkSample(prev, 'the earlier')
    if (!p.ok) return p
    before = p.value
    seconds = (next.at - prev.at) / 1000
    if (!(seconds > 0)) return err(`the samples are ${next.at - prev.at} ms apart; a rate needs a later second sample`)
  }
  const rates = [...now.value.values()].map((l): LinkRate => {
    const base = { netns: l.netns, ifindex: l.ifindex, name: l.name }
    const b = before.get(linkKey(l))
    if (!b) return { ...base, actions: null, total: null, reset: false }
    const reset = !continues(b, l)
    const total = { packets: 0, bytes: 0 }
    const actions = Object.fromEntries(
      XDP_ACTIONS.map((a) => {
        const packets = (l.traffic[a].packets - (reset ? 0 : b.traffic[a].packets)) / seconds
        const bytes = (l.traffic[a].bytes - (reset ? 0 : b.traffic[a].bytes)) / seconds
        total.packets += packets
        total.bytes += bytes
        return [a, { packets, bytes }]
      }),
    ) as Record<XdpAction, PacketsBytes>
    return { ...base, actions, total, reset }
  })
  return ok(sortRates(rates))
}

/**
 * Busiest first, as top does: by packets per second, then bytes per second; links without a rate yet last; ties by
 * namespace (host first), name and ifindex, so that quiet links keep their places from one sample to the next.
 */
export function sortRates(rates: readonly LinkRate[]): LinkRate[] {
  const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
  return [...rates].sort((a, b) => {
    if ((a.total === null) !== (b.total === null)) return a.total === null ? 1 : -1
    if (a.total && b.total) {
      if (a.total.packets !== b.total.packets) return b.total.packets - a.total.packets
      if (a.total.bytes !== b.total.bytes) return b.total.bytes - a.total.bytes
    }
    if (a.netns !== b.netns) return a.netns === 'host' ? -1 : b.netns === 'host' ? 1 : cmp(a.netns, b.netns)
    return cmp(a.name, b.name) || a.ifindex - b.ifindex
  })
}

/** A table row of top: a link's action, or the link alone (`action` null) when it is quiet or has no rate yet. */
export interface RateRow {
  netns: string
  name: string
  action: XdpAction | null
  /** Per second; null: no rate yet. */
  packets: number | null
  bytes: number | null
}

/**
 * The rows of each link in the order given: its actions that moved, busiest first (ties in enum xdp_action order);
 * a quiet link as one row of zeros; a link without a rate yet as one row without numbers.
 */
export function rateRows(rates: readonly LinkRate[]): RateRow[] {
  return rates.flatMap((r): RateRow[] => {
    const base = { netns: r.netns, name: r.name }
    if (!r.actions) return [{ ...base, action: null, packets: null, bytes: null }]
    const actions = r.actions
    const moved = XDP_ACTIONS.filter((a) => actions[a].packets > 0 || actions[a].bytes > 0).sort(
      (a, b) => actions[b].packets - actions[a].packets || actions[b].bytes - actions[a].bytes,
    )
    if (moved.length === 0) return [{ ...base, action: null, packets: 0, bytes: 0 }]
    return moved.map((a) => ({ ...base, action: a, packets: actions[a].packets, bytes: actions[a].bytes }))
  })
}
