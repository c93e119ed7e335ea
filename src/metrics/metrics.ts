/**
 * Prometheus metrics for the daemon, in a Registry of their own (the global one would mix in whatever else in the
 * process registers there). The reconciler and the link table already count everything; the counters here are
 * copied from them when scraped, so there is one source of truth and nothing to keep in step on the hot path.
 * Only the latency histogram is fed as things happen (Reconciler's onLatency). The packets and bytes of each link
 * are the programs' own per-link counters (bpf/xdp_stats.h), read from their maps when scraped.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { NamespaceView } from '../netns/unit.js'
import { XDP_ACTIONS, type PacketsBytes } from '../programs/counters.js'
import { readLinkStats, readTraffic, type CountedProgram, type StatsReader } from '../programs/read-counters.js'
import type { LinkStatus } from '../reconcile/record.js'
import type { ReconcilerCounters } from '../reconcile/reconciler.js'

export interface MetricsSource {
  /** Every managed namespace (its name is the `netns` label), the daemon's own first. */
  namespaces(): NamespaceView[]
  /** The programs the config in force uses (one per entry; shared programs repeat). */
  programs(): { program: CountedProgram }[]
}

export interface DaemonMetricsOptions {
  /** How a program's per-link stats map is read; the kernel's by default. */
  readStats?: StatsReader
}

/** One link's counted packets or bytes under one action: a sample of the xdp counters. */
interface TrafficSample {
  labels: { netns: string; ifname: string; action: string }
  counted: PacketsBytes
}

export const LINK_STATES: readonly LinkStatus[] = ['attached', 'pending', 'conflict', 'error', 'unmanaged']

/**
 * Seconds from a link's first change to done. The settle time (50 ms by default, up to max-settle, 1 s) is part of
 * it, so the buckets are dense from 10 ms to a few seconds.
 */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** Sets a counter to a total counted elsewhere (prom-client counters only go up by inc). */
function setTotal(c: Counter, v: number, labels: Record<string, string>): void {
  c.inc(labels, v)
}

export class DaemonMetrics {
  readonly registry = new Registry()
  readonly #latency: Histogram

  /** `source` returns null until the daemon has started: then the collectors report nothing. */
  constructor(source: () => MetricsSource | null, opts: DaemonMetricsOptions = {}) {
    const registers = [this.registry]
    const readStats = opts.readStats ?? readLinkStats
    // The packets and the bytes collectors run one after the other in the same turn of the event loop (prom-client's
    // Registry.metrics calls every collect() before its first await): the maps are read once per scrape.
    let traffic: TrafficSample[] | null = null
    const trafficSamples = (): TrafficSample[] => {
      if (traffic) return traffic
      const src = source()
      traffic = src ? trafficOf(src, readStats) : []
      setImmediate(() => (traffic = null))
      return traffic
    }
    const xdpTotal = (name: string, help: string, read: (c: PacketsBytes) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['netns', 'ifname', 'action'],
        registers,
        collect() {
          this.reset()
          for (const s of trafficSamples()) setTotal(this, read(s.counted), s.labels)
        },
      })
    }
    // Counters are kept per namespace and labelled with it: a namespace that goes ends its series, and no total
    // ever goes down (a sum over the namespaces present would, when one goes).
    const total = (name: string, help: string, read: (v: NamespaceView) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['netns'],
        registers,
        collect() {
          this.reset()
          for (const v of source()?.namespaces() ?? []) setTotal(this, read(v), { netns: v.name })
        },
      })
    }
    const reconciler = (v: NamespaceView): ReconcilerCounters => v.reconciler.counters

    new Gauge({
      name: 'xdplinkd_links',
      help: 'Links in each managed namespace by reconcile state (attached, pending, conflict, error, unmanaged)',
      labelNames: ['netns', 'state'],
      registers,
      collect() {
        this.reset()
        for (const v of source()?.namespaces() ?? []) {
          const byIfindex = new Map(v.reconciler.records().map((r) => [r.ifindex, r.state]))
          const n = new Map<LinkStatus, number>(LINK_STATES.map((s) => [s, 0]))
          // As in status: a link the reconciler has not looked at yet is pending.
          for (const l of v.table.links()) {
            const st = byIfindex.get(l.ifindex) ?? 'pending'
            n.set(st, (n.get(st) ?? 0) + 1)
          }
          for (const [state, count] of n) this.set({ netns: v.name, state }, count)
        }
      },
    })
    total('xdplinkd_attaches_total', 'Programs attached to a link with nothing on it (a mode change counts too)', (v) => reconciler(v).attaches)
    total('xdplinkd_replaces_total', 'Programs swapped atomically (XDP_FLAGS_REPLACE) on a link', (v) => reconciler(v).replaces)
    total('xdplinkd_detaches_total', 'Programs of ours detached from a link', (v) => reconciler(v).detaches)
    total('xdplinkd_conflicts_total', 'Times a foreign program was found where ours should run', (v) => reconciler(v).conflicts)
    new Counter({
      name: 'xdplinkd_errors_total',
      help: 'Failed RTM_SETLINK requests by errno name',
      labelNames: ['netns', 'code'],
      registers,
      collect() {
        this.reset()
        for (const v of source()?.namespaces() ?? []) {
          for (const [code, n] of Object.entries(reconciler(v).errors)) setTotal(this, n, { netns: v.name, code })
        }
      },
    })
    total('xdplinkd_netlink_overruns_total', 'Netlink notification overruns (ENOBUFS): notifications were lost', (v) => v.table.stats.overruns)
    total('xdplinkd_resyncs_total', 'Full link dumps merged into the table (start-up and after each overrun)', (v) => v.table.stats.resyncs)
    this.#latency = new Histogram({
      name: 'xdplinkd_reconcile_latency_seconds',
      help: "Time from a link's first change to its reconcile being done",
      buckets: LATENCY_BUCKETS,
      registers,
    })
    xdpTotal(
      'xdplinkd_xdp_packets_total',
      "Packets a link's program counted, by XDP action (programs with a per-link stats map: docs/reference.md)",
      (c) => c.packets,
    )
    xdpTotal('xdplinkd_xdp_bytes_total', "Bytes of the packets a link's program counted, by XDP action", (c) => c.bytes)
    new Gauge({
      name: 'xdplinkd_programs_loaded',
      help: 'Distinct programs the config in force uses',
      registers,
      collect() {
        const src = source()
        this.set(src ? new Set(src.programs().map((p) => p.program.id)).size : 0)
      },
    })
  }

  /** For the Reconciler's onLatency option (milliseconds). */
  observeLatency(ms: number): void {
    this.#latency.observe(ms / 1000)
  }

  get contentType(): string {
    return this.registry.contentType
  }

  text(): Promise<string> {
    return this.registry.metrics()
  }
}

/**
 * The samples of every link with counters: one per action it counted (a series appears with the first packet of its
 * action, as the errors' do with the first error). A link whose counters cannot be told apart, or whose program keeps
 * none, has no series.
 */
function trafficOf(src: MetricsSource, read: StatsReader): TrafficSample[] {
  const views = src.namespaces()
  const { links } = readTraffic(views, src.programs().map((u) => u.program), read)
  const out: TrafficSample[] = []
  for (const v of views) {
    const counters = links.get(v)
    for (const l of v.table.links()) {
      const c = counters?.get(l.ifindex)
      if (!c) continue
      for (const action of XDP_ACTIONS) {
        if (c[action].packets > 0 || c[action].bytes > 0) out.push({ labels: { netns: v.name, ifname: l.name, action }, counted: c[action] })
      }
    }
  }
  return out
}
