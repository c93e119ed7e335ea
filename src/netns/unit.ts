/**
 * Everything the daemon runs for one network namespace: its netlink connections (RtnlClient), the link table they
 * feed and the reconciler that plans the table's links. A netlink socket belongs to the namespace it was created
 * in (docs/DESIGN.md, "Network namespaces"), so each namespace gets a unit of its own, and a link is known by its
 * unit and its ifindex: the same ifindex or name in two namespaces are two links.
 *
 * What units share is decided by the daemon and handed in: the desire (config and programs: a program fd is not
 * namespaced), whether the kernel has XDP_FLAGS_REPLACE, the clock, and where outcomes go.
 */
import type { Logger } from 'pino'
import { ownNetnsIdentity } from '../ffi/netns.js'
import { LinkTable } from '../links/table.js'
import type { Clock } from '../reconcile/debounce.js'
import type { Desire } from '../reconcile/desire.js'
import { Reconciler, type ReconcilerCounters, type ReconcilerEvent } from '../reconcile/reconciler.js'
import type { LinkRecord } from '../reconcile/record.js'
import type { LinkState } from '../rtnl/link.js'
import type { RtnlClient } from '../rtnl/client.js'

/** One network namespace's links and what the reconciler made of them, as status and the metrics read them. */
export interface NamespaceView {
  /** HOST_NETNS (`host`) for the daemon's own, else its namespace file's name. */
  readonly name: string
  /**
   * The namespace's nsfs inode number (st_ino; `net:[inode]`): what a program's per-link counters are keyed by
   * (bpf/xdp_stats.h).
   */
  readonly inode: number
  readonly table: { links(): LinkState[]; readonly stats: { readonly overruns: number; readonly resyncs: number } }
  readonly reconciler: { records(): LinkRecord[]; readonly counters: ReconcilerCounters }
}

export interface NetnsUnitOptions {
  client: RtnlClient
  /** The client's table from linkTable() (maybe started already); made here when absent. */
  table?: LinkTable
  log: Logger
  desire: Desire
  settleMs: number
  maxSettleMs: number
  replaceSupported: boolean
  clock?: Clock | undefined
  report(e: ReconcilerEvent): void
  onLatency?(ms: number): void
  onIdle?(): void
}

export class NetnsUnit {
  readonly client: RtnlClient
  readonly table: LinkTable
  readonly reconciler: Reconciler
  readonly #log: Logger

  /**
   * The table of a client's links, its errors and the client's logged: what a unit receives, made before the unit
   * when the links are to be dumped early (daemon.ts, Daemon.open: while the programs load). An 'error' event with
   * no listener would throw, so the listeners come with the table.
   */
  static linkTable(client: RtnlClient, log: Logger): LinkTable {
    client.on('error', (e) => log.warn({ err: e }, `netlink: ${e.message}`))
    const table = new LinkTable(client)
    table.on('error', (e) => log.error({ err: e }, `link table: ${e.message}`))
    return table
  }

  /** Connects the parts; opens nothing (the client is open already). */
  constructor(o: NetnsUnitOptions) {
    this.client = o.client
    this.#log = o.log
    this.table = o.table ?? NetnsUnit.linkTable(this.client, this.#log)
    this.reconciler = new Reconciler({
      table: this.table,
      setter: this.client,
      desire: o.desire,
      replaceSupported: o.replaceSupported,
      report: o.report,
      settleMs: o.settleMs,
      maxSettleMs: o.maxSettleMs,
      clock: o.clock,
      onLatency: o.onLatency,
      onIdle: o.onIdle,
    })
    // An overrun lost notifications of this namespace only: its table re-dumped, its links are planned again.
    this.table.on('resync', (r) => {
      if (r.reason !== 'overrun') return
      this.#log.warn({ differences: r.events, links: r.links }, `netlink overrun: notifications were lost; re-dumped ${r.links} links, ${r.events} differences`)
      this.reconciler.reconcileAll()
    })
  }

  /**
   * Dumps the links (or waits for the dump started before: LinkTable.start) and plans every one; resolves when every
   * answer is in. `cancelled` is asked after the dump: a daemon stopping meanwhile plans nothing more.
   */
  async start(cancelled: () => boolean = () => false): Promise<void> {
    await this.table.start()
    if (cancelled()) return
    this.reconciler.reconcileAll()
    await this.reconciler.idle()
  }

  /**
   * What status and the metrics read of it, under the namespace's name. `inode` is its nsfs inode number; by
   * default the daemon's own namespace's (the thread's: ffi/netns.ts ownNetnsIdentity), which is where a unit made
   * without a namespace descriptor has its sockets.
   */
  view(name: string, inode: number = ownNetnsIdentity().ino): NamespaceView {
    return { name, inode, table: this.table, reconciler: this.reconciler }
  }

  /** The receive path is intact: both connections open, the table not stuck in a resync. */
  alive(): boolean {
    return this.client.connected && this.table.healthy()
  }

  close(): void {
    this.reconciler.stop()
    this.client.close()
  }
}
