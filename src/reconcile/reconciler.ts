/**
 * The reconciler: scheduling around the pure per-link logic. Every link event marks the link dirty; the debouncer
 * hands over the links that have settled; each is decided (record.ts: plan.ts on the table's view of the kernel),
 * its requests built (requests.ts) and sent batched, many per datagram, their acks matched by sequence number; each
 * answer is a transition of the link's record (record.ts). What happened is reported as outcome events; the daemon
 * turns them into log lines and metrics (src/log/outcomes.ts). Links whose desired program is already attached cost
 * nothing.
 *
 * What lives here and nowhere else: which links are in flight (an event for one of them waits until its answer is
 * in, then plans it again), the rounds of quick re-reads after a race, the retry timers, and the counters.
 */
import type { LinkTable } from '../links/table.js'
import type { RequestResult } from '../netlink/socket.js'
import type { LinkState } from '../rtnl/link.js'
import { xdpStateOf } from '../rtnl/xdp.js'
import { Debouncer, realClock, type Clock } from './debounce.js'
import type { Desire, Target } from './desire.js'
import { failureCode, libbpfFailure, netlinkFailure, type LinkFailure } from './failure.js'
import { decide, errored, failed, newLinkRecord, succeeded, type LinkOutcome, type LinkRecord, type LinkTally, type Transition } from './record.js'
import { expectedProgId, requestsFor, type SendAction, type SetXdp } from './requests.js'

/** What the reconciler needs from the kernel: one result per request, in order (RtnlClient implements it). */
export interface XdpSetter {
  setXdp(reqs: SetXdp[]): Promise<RequestResult[]>
  getLink(ifindex: number): Promise<LinkState | null>
  dumpLinks(): Promise<LinkState[]>
}

/** Links planned and sent together: one request window of NetlinkSocket (MAX_IN_FLIGHT). */
const RUN_CHUNK = 128

/** Above this many links to read again, one dump is cheaper than one RTM_GETLINK each. */
const REREAD_BY_DUMP = 16

/** What the reconciler reports: an outcome for one link, or something about a run. */
export type ReconcilerEvent =
  | LinkOutcome
  /** Answered after stop(): the requests for `links` links were cut off by the closing socket (not errors). */
  | { kind: 'cut-off'; links: number }
  /** Reading links again after a race failed; they are in error and retried with backoff. */
  | { kind: 'reread-failed'; links: number; message: string }
  /** A replace sent as a plain set, on a kernel without XDP_FLAGS_REPLACE: the link runs nothing for a moment. */
  | { kind: 'not-atomic'; link: { ifindex: number; name: string } }

export interface ReconcilerCounters {
  attaches: number
  replaces: number
  detaches: number
  conflicts: number
  /** Failed requests (and descriptors that could not be opened) by errno name, retries included. */
  errors: Record<string, number>
  batches: number
  requests: number
}

export interface ReconcilerOptions {
  table: LinkTable
  setter: XdpSetter
  desire: Desire
  settleMs: number
  maxSettleMs: number
  clock?: Clock
  /** Whether the kernel has XDP_FLAGS_REPLACE (rtnl/features.ts probes it). Default true. */
  replaceSupported?: boolean
  /** Receives every outcome and event, in order. */
  report?: (e: ReconcilerEvent) => void
  /** Called with the latency from first change to done, in ms, for each link action. */
  onLatency?: (ms: number) => void
  /** Called each time the reconciler falls idle (all due links planned and answered). */
  onIdle?: () => void
}

/** A link's requests on their way, with what its answer is a transition of. */
interface Sending {
  ifindex: number
  action: SendAction
  auto: boolean
  requests: SetXdp[]
  release(): void
}

/** The counters an outcome moves. */
function count(c: ReconcilerCounters, o: LinkOutcome): void {
  switch (o.kind) {
    case 'attached':
      c.attaches++
      break
    case 'replaced':
      c.replaces++
      break
    case 'remoded':
      c.detaches++
      c.attaches++
      break
    case 'detached':
      c.detaches++
      break
    case 'conflict':
      c.conflicts++
      break
  }
}

export class Reconciler {
  readonly #o: ReconcilerOptions
  readonly #debounce: Debouncer<number>
  readonly #records = new Map<number, LinkRecord>()
  readonly #retries = new Map<number, ReturnType<typeof setTimeout>>()
  /** When each link was first seen dirty in this round, for the latency histogram. */
  readonly #dirtySince = new Map<number, number>()
  readonly #replace: boolean
  #desire: Desire
  #inflight = new Set<number>()
  #again = new Set<number>()
  #stopped = false
  #idle: (() => void)[] = []
  readonly counters: ReconcilerCounters = { attaches: 0, replaces: 0, detaches: 0, conflicts: 0, errors: {}, batches: 0, requests: 0 }

  constructor(o: ReconcilerOptions) {
    this.#o = o
    this.#desire = o.desire
    this.#replace = o.replaceSupported ?? true
    this.#debounce = new Debouncer<number>({ settleMs: o.settleMs, maxSettleMs: o.maxSettleMs, clock: o.clock }, (keys) =>
      void this.#run(keys),
    )
    o.table.on('add', (e) => this.#dirty(e.ifindex))
    o.table.on('change', (e) => this.#dirty(e.ifindex))
    o.table.on('rename', (e) => this.#dirty(e.ifindex))
    o.table.on('remove', (e) => this.#forget(e.ifindex))
  }

  get #clock(): Clock {
    return this.#o.clock ?? realClock
  }

  /** Plans every link now (start-up, reload, resync). */
  reconcileAll(delayMs = 0): void {
    for (const l of this.#o.table.links()) this.#dirty(l.ifindex, delayMs)
  }

  /** New config or programs: every link is planned again at once, and conflicts are reported afresh. */
  setDesire(desire: Desire, settleMs = this.#o.settleMs, maxSettleMs = this.#o.maxSettleMs): void {
    this.#desire = desire
    this.#debounce.configure(settleMs, maxSettleMs)
    for (const r of this.#records.values()) if (r.conflictProgId !== null) this.#records.set(r.ifindex, { ...r, conflictProgId: null })
    this.reconcileAll()
  }

  records(): LinkRecord[] {
    return [...this.#records.values()].sort((a, b) => a.ifindex - b.ifindex)
  }

  /**
   * Links per state and how many an entry manages, in one pass without a copy (records() sorts one), for the
   * daemon's summary: sd_notify STATUS= and the `started:` line.
   */
  tally(): LinkTally {
    const t: LinkTally = { links: 0, managed: 0, attached: 0, pending: 0, conflict: 0, error: 0, unmanaged: 0 }
    for (const r of this.#records.values()) {
      t.links++
      if (r.entry !== null) t.managed++
      t[r.state]++
    }
    return t
  }

  /** Resolves once nothing is pending, in flight or waiting for the debouncer (retries in backoff excepted). */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve()
    return new Promise((r) => this.#idle.push(r))
  }

  #isIdle(): boolean {
    return this.#debounce.size === 0 && this.#inflight.size === 0 && this.#again.size === 0
  }

  #checkIdle(): void {
    if (!this.#isIdle()) return
    this.#o.onIdle?.()
    const waiters = this.#idle
    this.#idle = []
    for (const w of waiters) w()
  }

  #dirty(ifindex: number, delayMs?: number): void {
    if (this.#stopped) return
    const l = this.#o.table.get(ifindex)
    if (!l) return
    const r = this.#records.get(ifindex)
    this.#records.set(ifindex, r ? (r.name === l.name ? r : { ...r, name: l.name }) : newLinkRecord(ifindex, l.name))
    if (!this.#dirtySince.has(ifindex)) this.#dirtySince.set(ifindex, this.#clock.now())
    if (this.#inflight.has(ifindex)) {
      this.#again.add(ifindex)
      return
    }
    this.#debounce.touch(ifindex, delayMs)
  }

  #forget(ifindex: number): void {
    this.#debounce.cancel(ifindex)
    this.#cancelRetry(ifindex)
    this.#records.delete(ifindex)
    this.#dirtySince.delete(ifindex)
    this.#again.delete(ifindex)
    this.#checkIdle()
  }

  /**
   * A transition's record replaces the old one (unless the link went meanwhile) and its outcomes are reported. A
   * failure arms the link's retry; a success ends one still armed.
   */
  #apply(t: Transition): void {
    const ifindex = t.record.ifindex
    if (!this.#records.has(ifindex)) return
    this.#records.set(ifindex, t.record)
    for (const o of t.outcomes) {
      count(this.counters, o)
      if (o.kind === 'failed') this.#armRetry(ifindex, o.retryInMs)
      this.#o.report?.(o)
    }
    if (t.record.retryAt === null) this.#cancelRetry(ifindex)
  }

  /** The link's action is done (or nothing was to be done): its latency since it first went dirty. */
  #done(ifindex: number): void {
    const since = this.#dirtySince.get(ifindex)
    if (since === undefined) return
    this.#dirtySince.delete(ifindex)
    this.#o.onLatency?.(this.#clock.now() - since)
  }

  /**
   * Plans and sends the links due. A run goes in rounds: the links due, then those that raced (EBUSY, EEXIST, lost
   * acks: read again) or fell back to generic, planned again at once, up to MAX_QUICK_RETRIES rounds (after that
   * record.failed backs off). Each round goes RUN_CHUNK links at a time: a start-up over 10,000 links then keeps a
   * few hundred requests and results alive at once, not 10,000 of each (which the young generation would promote,
   * all of it garbage a moment later). Every link of the run counts as in flight until its chunk has planned it,
   * and between rounds, so an event for it meanwhile is kept for after (#again).
   */
  async #run(due: number[]): Promise<void> {
    if (this.#stopped) return
    for (const ifindex of due) this.#inflight.add(ifindex)
    let round = new Map<number, LinkState | null>(due.map((i) => [i, null]))
    for (let depth = 0; round.size > 0; depth++) {
      const next = new Map<number, LinkState>()
      const ifindexes = [...round.keys()]
      for (let i = 0; i < ifindexes.length; i += RUN_CHUNK) {
        const chunk = ifindexes.length > RUN_CHUNK ? ifindexes.slice(i, i + RUN_CHUNK) : ifindexes
        for (const [ifindex, link] of await this.#runChunk(chunk, round, depth)) next.set(ifindex, link)
      }
      round = next
    }
    this.#touchAgain()
    this.#checkIdle()
  }

  /** Links that changed while in flight go back to the debouncer once nothing of theirs is in flight. */
  #touchAgain(): void {
    for (const ifindex of [...this.#again]) {
      if (this.#inflight.has(ifindex)) continue
      this.#again.delete(ifindex)
      this.#debounce.touch(ifindex)
    }
  }

  /**
   * Plans one chunk, sends its requests as one batch and applies the answers. Returns the links to plan again in
   * the next round, with the state to plan them on (still in flight).
   */
  async #runChunk(ifindexes: number[], fresh: ReadonlyMap<number, LinkState | null>, depth: number): Promise<Map<number, LinkState>> {
    const sending: Sending[] = []
    for (const ifindex of ifindexes) {
      this.#inflight.delete(ifindex)
      if (this.#stopped) continue
      const link = fresh.get(ifindex) ?? this.#o.table.get(ifindex)
      const r = this.#records.get(ifindex)
      if (!link || !r) continue
      const target = this.#desire.targetFor(link)
      const desired = target && { progId: target.progId, mode: target.mode, replaceForeign: target.replaceForeign, entry: target.entry }
      const d = decide(r, link, desired, (id) => this.#desire.isOurs(id))
      this.#apply(d)
      if (d.action.kind === 'none' || d.action.kind === 'conflict') {
        this.#done(ifindex)
        continue
      }
      const s = this.#prepare(d.record, d.action, target)
      if (!s) continue
      this.#inflight.add(ifindex)
      sending.push(s)
    }
    const next = new Map<number, LinkState>()
    if (sending.length === 0) return next
    const requests = sending.flatMap((s) => s.requests)
    this.counters.batches++
    this.counters.requests += requests.length
    let results: RequestResult[]
    try {
      results = await this.#o.setter.setXdp(requests)
    } finally {
      for (const s of sending) s.release()
    }
    const reread: number[] = []
    let cut = 0
    let at = 0
    for (const s of sending) {
      // A remode is two requests for one link; the link's outcome is its first failing step, or success.
      const answers = results.slice(at, (at += s.requests.length))
      const failure = answers.find((a): a is Extract<RequestResult, { ok: false }> => !a.ok)
      this.#inflight.delete(s.ifindex)
      const rec = this.#records.get(s.ifindex)
      if (!rec) continue
      if (!failure) {
        this.#o.table.noteXdp(s.ifindex, s.action.kind === 'detach' ? null : xdpStateOf(s.action.progId, s.action.mode))
        this.#apply(succeeded(rec, s.action))
        this.#done(s.ifindex)
        continue
      }
      // Answered after stop(): the rest was cut off by the daemon stopping (its socket closed: ECANCELED), which is
      // neither an error nor anything to retry.
      if (this.#stopped) {
        cut++
        continue
      }
      const f = netlinkFailure(failure.error)
      this.#countError(f)
      const t = failed(rec, s.action, f, { auto: s.auto, depth, now: this.#clock.now() })
      this.#apply(t)
      if (t.next === 'replan') {
        const link = this.#o.table.get(s.ifindex)
        if (link) next.set(s.ifindex, link)
      } else if (t.next === 'reread') reread.push(s.ifindex)
      else if (t.next === 'gone') this.#dirtySince.delete(s.ifindex) // its RTM_DELLINK ends the record
    }
    if (this.#stopped) {
      if (cut > 0) this.#o.report?.({ kind: 'cut-off', links: cut })
      return next
    }
    for (const [ifindex, link] of await this.#reread(reread)) {
      // What the kernel just said is newer than the table's word, which can be a notification sent before our own
      // RTM_SETLINK but read after it (notifications and acks come on different sockets): a plan on the fresh state
      // that ends in "nothing to do" would otherwise leave the table, and every later plan, on the stale one.
      this.#o.table.noteXdp(ifindex, link.xdp)
      next.set(ifindex, link)
    }
    for (const ifindex of next.keys()) this.#inflight.add(ifindex)
    this.#touchAgain()
    return next
  }

  /**
   * The link's requests, with the descriptors they need resolved first: the attached program's, for
   * IFLA_XDP_EXPECTED_FD. Null when there is nothing to send now: it cannot be opened (the link is in error), or it
   * is gone (the link will report that; planned again then).
   */
  #prepare(r: LinkRecord, action: SendAction, target: Target | null): Sending | null {
    const ifindex = r.ifindex
    const expectedId = expectedProgId(action, this.#replace)
    let expected: { fd: number; release(): void } | null = null
    if (expectedId !== null) {
      try {
        expected = this.#desire.fdForProgId(expectedId)
      } catch (e) {
        // EPERM without CAP_SYS_ADMIN for a foreign program: an error for this link, retried with backoff.
        const f = libbpfFailure(e)
        this.#countError(f)
        this.#apply(errored(r, action.kind, f, this.#clock.now()))
        return null
      }
      if (!expected) {
        this.#dirty(ifindex)
        return null
      }
    }
    if (!this.#replace && action.kind === 'replace') this.#o.report?.({ kind: 'not-atomic', link: { ifindex, name: r.name } })
    const requests = requestsFor(ifindex, action, target?.fd ?? -1, expected?.fd ?? null)
    return { ifindex, action, auto: target?.mode === 'auto', requests, release: () => expected?.release() }
  }

  #countError(f: LinkFailure): void {
    const code = failureCode(f)
    this.counters.errors[code] = (this.counters.errors[code] ?? 0) + 1
  }

  /** Reads links again (after EBUSY/EEXIST/ENOBUFS): one RTM_GETLINK each for a few, one dump for many. */
  async #reread(ifindexes: number[]): Promise<Map<number, LinkState>> {
    const out = new Map<number, LinkState>()
    if (ifindexes.length === 0) return out
    try {
      if (ifindexes.length > REREAD_BY_DUMP) {
        const want = new Set(ifindexes)
        for (const l of await this.#o.setter.dumpLinks()) if (want.has(l.ifindex)) out.set(l.ifindex, l)
      } else {
        for (const i of ifindexes) {
          const l = await this.#o.setter.getLink(i)
          if (l) out.set(i, l)
        }
      }
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e)
      this.#o.report?.({ kind: 'reread-failed', links: ifindexes.length, message })
      const f: LinkFailure = { source: 'local', errno: (e as { errno?: number }).errno ?? 5 /* EIO */, message: `reading the link again failed: ${message}` }
      for (const i of ifindexes) {
        const r = this.#records.get(i)
        if (r) this.#apply(errored(r, 'none', f, this.#clock.now()))
      }
    }
    return out
  }

  #armRetry(ifindex: number, delayMs: number): void {
    this.#cancelRetry(ifindex)
    const timer = setTimeout(() => {
      this.#retries.delete(ifindex)
      this.#dirty(ifindex, 0)
    }, delayMs)
    timer.unref?.()
    this.#retries.set(ifindex, timer)
  }

  #cancelRetry(ifindex: number): void {
    const t = this.#retries.get(ifindex)
    if (t) clearTimeout(t)
    this.#retries.delete(ifindex)
  }

  /** Stops planning; pending work is dropped, retries cancelled. */
  stop(): void {
    this.#stopped = true
    this.#debounce.stop()
    for (const t of this.#retries.values()) clearTimeout(t)
    this.#retries.clear()
    for (const w of this.#idle) w()
    this.#idle = []
  }
}
