/**
 * The live table of every link in the namespace, keyed by ifindex (never by name: names change, and an index is
 * reused only after its link is gone).
 *
 * Start-up and resync follow one procedure: notifications are already subscribed, so while a dump runs they are
 * buffered; the dump's snapshot is then brought up to date by replaying the buffer in arrival order (every
 * notification carries the link's whole state, so the last one wins), and the result is compared with the table as
 * it was. The differences become ordinary events. An overrun (ENOBUFS: notifications were lost) runs the same
 * procedure again, and so does one that happens during a resync.
 */
import { EventEmitter } from 'node:events'
import type { LinkNotification, LinkSource } from '../rtnl/client.js'
import { PartialDumpError } from '../rtnl/errors.js'
import type { LinkState } from '../rtnl/link.js'
import { linkEvents, tableEvents, type LinkEvent } from './diff.js'

export interface LinkTableEvents {
  add: [Extract<LinkEvent, { event: 'add' }>]
  change: [Extract<LinkEvent, { event: 'change' }>]
  rename: [Extract<LinkEvent, { event: 'rename' }>]
  remove: [Extract<LinkEvent, { event: 'remove' }>]
  /** Every event above, in order, for consumers that want one stream. */
  event: [LinkEvent]
  /** A resync finished; `reason` says why it ran, `events` how many differences it found. */
  resync: [{ reason: 'start' | 'overrun'; events: number; links: number; durationMs: number }]
  error: [Error]
}

export class LinkTable extends EventEmitter<LinkTableEvents> {
  readonly #source: LinkSource
  #links = new Map<number, LinkState>()
  /** Notifications that arrived while a dump was running; null when none is. */
  #buffer: LinkNotification[] | null = null
  #lostDuringSync = false
  #syncing: Promise<void> | null = null
  #started = false
  #starting: Promise<void> | null = null
  #syncFailures = 0
  readonly stats = { notifications: 0, overruns: 0, resyncs: 0 }

  readonly #retryDelay: (failures: number) => number

  /** `retryDelay`: the pause before dump attempt n+1 after n failures (tests shorten it). */
  constructor(source: LinkSource, opts: { retryDelay?: (failures: number) => number } = {}) {
    super()
    this.#source = source
    this.#retryDelay = opts.retryDelay ?? ((n) => Math.min(1000, 10 * 2 ** Math.min(n, 7)))
    source.on('link', (n) => this.#onNotification(n))
    source.on('overrun', () => this.#onOverrun())
  }

  /**
   * Loads the table (dump merged with concurrent notifications). Resolves once it is complete. Called again, it
   * returns the first call's promise: the daemon starts the dump early, while its programs load, and the namespace's
   * unit waits for the same one (daemon.ts, Daemon.open).
   */
  start(): Promise<void> {
    this.#started = true
    return (this.#starting ??= this.#sync('start'))
  }

  get size(): number {
    return this.#links.size
  }

  get(ifindex: number): LinkState | undefined {
    return this.#links.get(ifindex)
  }

  /** Links sorted by ifindex. */
  links(): LinkState[] {
    return [...this.#links.values()].sort((a, b) => a.ifindex - b.ifindex)
  }

  /**
   * Records the XDP state our own successful RTM_SETLINK just set. The kernel announces an XDP change only for a link
   * that is up (do_setlink -> netdev_state_change, which notifies only with IFF_UP), so for a link that is down the
   * table would otherwise keep believing nothing is attached. No event is emitted: nothing changed that the
   * reconciler does not already know. A later notification or resync overrides it with the kernel's own word.
   */
  noteXdp(ifindex: number, xdp: LinkState['xdp']): void {
    const l = this.#links.get(ifindex)
    if (l) this.#links.set(ifindex, { ...l, xdp })
  }

  /**
   * False while a resync has been failing for a while: dumps that fail outright. Dumps that only come back
   * inconsistent (a link storm) do not count: the table is kept up to date from them and from the notifications,
   * and a restart (what a withheld watchdog ping leads to) would meet the same storm.
   */
  healthy(): boolean {
    return this.#syncFailures < 50
  }

  /** Resolves when no resync is running. */
  async settled(): Promise<void> {
    while (this.#syncing) await this.#syncing
  }

  #onNotification(n: LinkNotification): void {
    this.stats.notifications++
    if (this.#buffer) {
      this.#buffer.push(n)
      return
    }
    if (!this.#started) return
    const prev = this.#links.get(n.link.ifindex)
    const next = n.type === 'new' ? n.link : undefined
    if (next) this.#links.set(next.ifindex, next)
    else this.#links.delete(n.link.ifindex)
    this.#emitAll(linkEvents(prev, next))
  }

  #onOverrun(): void {
    this.stats.overruns++
    if (!this.#started) return
    if (this.#buffer) {
      // Lost while a dump was running: that resync's result cannot be trusted; run it again.
      this.#lostDuringSync = true
      return
    }
    void this.#sync('overrun').catch((e: unknown) => this.emit('error', e instanceof Error ? e : new Error(String(e))))
  }

  async #sync(reason: 'start' | 'overrun'): Promise<void> {
    if (this.#syncing) {
      this.#lostDuringSync = true
      return this.#syncing
    }
    this.#syncing = this.#runSync(reason)
    try {
      await this.#syncing
    } finally {
      this.#syncing = null
    }
  }

  async #runSync(reason: 'start' | 'overrun'): Promise<void> {
    const t0 = performance.now()
    let next: Map<number, LinkState>
    let failures = 0
    this.#syncFailures = 0
    for (;;) {
      this.#lostDuringSync = false
      this.#buffer = []
      let dumped: LinkState[]
      try {
        dumped = await this.#source.dumpLinks()
      } catch (e) {
        // Closed under the dump (a stop during start-up, or a start-up that failed meanwhile): nothing to retry, and
        // a retry timer would keep the process alive.
        if (this.#source.connected === false) {
          this.#buffer = null
          throw e
        }
        // During a link storm the kernel may keep marking dumps inconsistent (NLM_F_DUMP_INTR). Never give up: a
        // table that stopped syncing would miss links for good. Back off a little and dump again.
        const partial = e instanceof PartialDumpError ? this.#provisional(e.links) : 0
        this.#buffer = null
        failures++
        // An attempt that returned links kept the table current; one that returned nothing (every attempt lost to
        // ENOBUFS, say) did not.
        if (partial === 0) this.#syncFailures++
        if (failures === 1 || failures % 10 === 0) {
          const meanwhile = partial > 0 ? `; meanwhile using the ${partial} links it did return` : ''
          this.emit('error', new Error(`link dump failed (${failures}x), retrying: ${(e as Error).message}${meanwhile}`))
        }
        await new Promise((r) => setTimeout(r, this.#retryDelay(failures)))
        continue
      }
      next = this.#merged(new Map(), dumped)
      this.#buffer = null
      if (!this.#lostDuringSync) break
    }
    this.#syncFailures = 0
    this.stats.resyncs++
    const events = this.#replace(next)
    this.emit('resync', { reason, events: events.length, links: next.size, durationMs: performance.now() - t0 })
  }

  /** `dumped` laid over `base` (a copy), then the notifications buffered while it was being dumped. */
  #merged(base: ReadonlyMap<number, LinkState>, dumped: readonly LinkState[]): Map<number, LinkState> {
    const next = new Map(base)
    for (const l of dumped) next.set(l.ifindex, l)
    for (const n of this.#buffer ?? []) {
      if (n.type === 'new') next.set(n.link.ifindex, n.link)
      else next.delete(n.link.ifindex)
    }
    return next
  }

  /** Makes `next` the table and emits how it differs from the one before. */
  #replace(next: Map<number, LinkState>): LinkEvent[] {
    const events = tableEvents(this.#links, next)
    this.#links = next
    this.#emitAll(events)
    return events
  }

  /**
   * What an inconsistent dump did return, taken for what it is while the dump is redone: every link in it exists and
   * is as shown, so it is added or updated (and gets its program) now, not once a storm is over; nothing is removed
   * for being absent from it (it is laid over the table as it is). The next consistent dump corrects the rest.
   * Returns how many links it held.
   */
  #provisional(links: readonly LinkState[]): number {
    this.#replace(this.#merged(this.#links, links))
    return links.length
  }

  #emitAll(events: LinkEvent[]): void {
    for (const e of events) {
      switch (e.event) {
        case 'add':
          this.emit('add', e)
          break
        case 'change':
          this.emit('change', e)
          break
        case 'rename':
          this.emit('rename', e)
          break
        case 'remove':
          this.emit('remove', e)
          break
      }
      this.emit('event', e)
    }
  }
}
