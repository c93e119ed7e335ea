/**
 * The reconciler: joins the link table, the config and the loaded programs. Every link event marks the link dirty;
 * the debouncer hands over the links that have settled, in batches; each is planned (plan.ts) against the table's
 * view of the kernel, and the resulting RTM_SETLINK requests go out batched, many per datagram, their acks matched
 * by sequence number. Links whose desired program is already attached cost nothing.
 */
import { release } from 'node:os'
import type { Logger } from 'pino'
import type { LinkTable } from '../links/table.js'
import type { LinkState } from '../rtnl/link.js'
import type { RequestResult } from '../netlink/socket.js'
import { NetlinkError } from '../netlink/errors.js'
import { ERRNO } from '../ffi/errno.js'
import {
  XDP_FLAGS_DRV_MODE,
  XDP_FLAGS_HW_MODE,
  XDP_FLAGS_REPLACE,
  XDP_FLAGS_SKB_MODE,
  XDP_FLAGS_UPDATE_IF_NOEXIST,
} from '../rtnl/constants.js'
import type { XdpSetRequest, XdpState } from '../rtnl/xdp.js'
import { Debouncer, realClock, type Clock } from './debounce.js'
import { plan, observed, type Action, type AttachedMode, type Desired, type Mode } from './plan.js'

/** What the reconciler needs to send: one result per request, in order (RtnlClient implements it). */
export interface XdpSetter {
  /** `withPrevious`: keep this request in one window with the one before it (NetlinkSocket Request). */
  setXdp(reqs: { ifindex: number; req: XdpSetRequest; withPrevious?: boolean }[]): Promise<RequestResult[]>
  getLink(ifindex: number): Promise<LinkState | null>
  dumpLinks(): Promise<LinkState[]>
}

/** Links planned and sent together: one request window of NetlinkSocket (MAX_IN_FLIGHT). */
const RUN_CHUNK = 128

/** Above this many links to read again, one dump is cheaper than one RTM_GETLINK each. */
const REREAD_BY_DUMP = 16

/** A config entry as the reconciler sees it, with its program already loaded. */
export interface Target {
  entry: string
  progId: number
  /** Descriptor of the loaded program, for IFLA_XDP_FD. */
  fd: number
  mode: Mode
  replaceForeign: boolean
}

/** The programs side: which program a link wants, whether an id is ours, a descriptor for an attached id. */
export interface Desire {
  /** The target for a link, or null when no entry matches (the link is unmanaged). */
  targetFor(link: LinkState): Target | null
  /** Whether a program id is ours (pinned under our bpffs). */
  isOurs(progId: number): boolean
  /**
   * A descriptor for an attached program, for IFLA_XDP_EXPECTED_FD. Returns it with a function to release it
   * (descriptors opened by id must be closed after the request). Null when the program is gone.
   */
  fdForProgId(progId: number): { fd: number; release(): void } | null
}

export type LinkStatus = 'attached' | 'pending' | 'conflict' | 'error' | 'unmanaged'

/**
 * How a native attach says the link cannot run XDP natively as it is set up now: no ndo_bpf at all (EOPNOTSUPP, in
 * net/core/dev.c dev_xdp_attach), or a driver refusing its current configuration. drivers/net/veth.c veth_xdp_set
 * answers ERANGE "Peer MTU is too large to set XDP" (a jumbo-MTU veth; seen on 6.18); NIC drivers refuse an MTU,
 * LRO or too few queues for XDP's TX rings with EINVAL, ENOMEM or ENOSPC. `mode: auto` then uses generic mode on
 * that link rather than leave it without its program; a failure that is not about native mode fails there too.
 */
const NATIVE_REFUSED: ReadonlySet<number> = new Set([ERRNO.EOPNOTSUPP, ERRNO.ERANGE, ERRNO.EINVAL, ERRNO.ENOMEM, ERRNO.ENOSPC])

export interface LinkRecord {
  ifindex: number
  name: string
  entry: string | null
  desiredProgId: number | null
  state: LinkStatus
  lastError: string | null
  /**
   * Whether a native attach is worth trying here (`auto` uses generic otherwise): `unsupported`, the driver has no
   * native XDP (EOPNOTSUPP); `refused`, it refused this link's configuration (an MTU, queues: NATIVE_REFUSED),
   * which may change.
   */
  native: 'try' | 'unsupported' | 'refused'
  /** The foreign program last reported as a conflict (reported once, not on every event). */
  conflictProgId: number | null
  failures: number
  retry: ReturnType<typeof setTimeout> | null
  /** When the link was first seen dirty in this round, for the latency histogram. */
  dirtySince: number | null
}

/** Reconciler.tally(): how many records, how many with an entry, and how many in each state. */
export type LinkTally = { links: number; managed: number } & Record<LinkStatus, number>

/** A link's record before anything was planned for it. */
export function newLinkRecord(ifindex: number, name: string): LinkRecord {
  return {
    ifindex,
    name,
    entry: null,
    desiredProgId: null,
    state: 'pending',
    lastError: null,
    native: 'try',
    conflictProgId: null,
    failures: 0,
    retry: null,
    dirtySince: null,
  }
}

export interface ReconcilerCounters {
  attaches: number
  replaces: number
  detaches: number
  conflicts: number
  errors: Record<string, number>
  batches: number
  requests: number
}

export interface ReconcilerOptions {
  table: LinkTable
  setter: XdpSetter
  desire: Desire
  log: Logger
  settleMs: number
  maxSettleMs: number
  clock?: Clock
  /** Kernel release string, for features (XDP_FLAGS_REPLACE needs >= 5.7). Default: os.release(). */
  kernelRelease?: string
  /** Called with the latency from first change to done, in ms, for each link action. */
  onLatency?: (ms: number) => void
  /** Called each time the reconciler falls idle (all due links planned and answered). */
  onIdle?: () => void
}

const BACKOFF_MIN_MS = 1000
const BACKOFF_MAX_MS = 60_000
/** EBUSY/EEXIST/ENOBUFS re-read and re-plan right away, this many rounds deep, before backing off. */
const MAX_QUICK_RETRIES = 3

export const MODE_FLAG: Record<AttachedMode, number> = {
  native: XDP_FLAGS_DRV_MODE,
  generic: XDP_FLAGS_SKB_MODE,
  offload: XDP_FLAGS_HW_MODE,
}

/** XDP_FLAGS_REPLACE and IFLA_XDP_EXPECTED_FD arrived in Linux 5.7 (commit 92234c8f15c8, "xdp: Support atomic replacement of XDP interface"). */
export function supportsReplace(kernelRelease: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease)
  if (!m) return true
  const [maj, min] = [Number(m[1]), Number(m[2])]
  return maj > 5 || (maj === 5 && min >= 7)
}

interface Wire {
  ifindex: number
  req: XdpSetRequest
  action: Action
  release: () => void
  step: 'only' | 'detach' | 'attach'
  /** The entry's mode is `auto`: native may fall back to generic. */
  auto: boolean
}

/** The IFLA_XDP the kernel reports after attaching `progId` in one mode (net/core/rtnetlink.c rtnl_xdp_fill). */
function xdpState(progId: number, mode: AttachedMode): XdpState {
  const key = mode === 'native' ? 'drvProgId' : mode === 'generic' ? 'skbProgId' : 'hwProgId'
  return { mode, progId, [key]: progId }
}

export class Reconciler {
  readonly #o: ReconcilerOptions
  readonly #debounce: Debouncer<number>
  readonly #records = new Map<number, LinkRecord>()
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
    this.#replace = supportsReplace(o.kernelRelease ?? release())
    if (!this.#replace) {
      o.log.warn({ kernel: o.kernelRelease ?? release() }, 'kernel older than 5.7: no XDP_FLAGS_REPLACE, program swaps are not atomic')
    }
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

  /** New config or programs: every link is planned again at once. */
  setDesire(desire: Desire, settleMs = this.#o.settleMs, maxSettleMs = this.#o.maxSettleMs): void {
    this.#desire = desire
    this.#debounce.configure(settleMs, maxSettleMs)
    for (const r of this.#records.values()) r.conflictProgId = null
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

  #record(l: LinkState): LinkRecord {
    let r = this.#records.get(l.ifindex)
    if (!r) {
      r = newLinkRecord(l.ifindex, l.name)
      this.#records.set(l.ifindex, r)
    }
    r.name = l.name
    return r
  }

  #dirty(ifindex: number, delayMs?: number): void {
    if (this.#stopped) return
    const l = this.#o.table.get(ifindex)
    if (!l) return
    const r = this.#record(l)
    r.dirtySince ??= this.#clock.now()
    if (this.#inflight.has(ifindex)) {
      this.#again.add(ifindex)
      return
    }
    this.#debounce.touch(ifindex, delayMs)
  }

  #forget(ifindex: number): void {
    this.#debounce.cancel(ifindex)
    const r = this.#records.get(ifindex)
    if (r?.retry) clearTimeout(r.retry)
    this.#records.delete(ifindex)
    this.#again.delete(ifindex)
    this.#checkIdle()
  }

  /**
   * Plans and sends the links due, RUN_CHUNK at a time: a start-up over 10,000 links then keeps a few hundred
   * requests, wires and results alive at once, not 10,000 of each for the whole batch (which the young generation
   * would promote, all of it garbage a moment later). Every link of the run counts as in flight until its chunk has
   * planned it, so an event for it meanwhile is kept for after (#again), as for a request in flight.
   */
  async #run(ifindexes: number[], fresh = new Map<number, LinkState>(), depth = 0): Promise<void> {
    if (this.#stopped) return
    for (const ifindex of ifindexes) this.#inflight.add(ifindex)
    for (let i = 0; i < ifindexes.length; i += RUN_CHUNK) {
      await this.#runChunk(ifindexes.length > RUN_CHUNK ? ifindexes.slice(i, i + RUN_CHUNK) : ifindexes, fresh, depth)
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

  async #runChunk(ifindexes: number[], fresh: Map<number, LinkState>, depth: number): Promise<void> {
    const wires: Wire[] = []
    for (const ifindex of ifindexes) {
      this.#inflight.delete(ifindex)
      if (this.#stopped) continue
      const link = fresh.get(ifindex) ?? this.#o.table.get(ifindex)
      const r = this.#records.get(ifindex)
      if (!link || !r) continue
      const target = this.#desire.targetFor(link)
      r.entry = target?.entry ?? null
      r.desiredProgId = target?.progId ?? null
      const desired: Desired | null = target
        ? { progId: target.progId, mode: target.mode, replaceForeign: target.replaceForeign, entry: target.entry }
        : null
      // Refused for its configuration, then the program it got in generic mode went away (detached by hand once the
      // MTU was fixed, say): native may work now. Not while falling back (state pending), or it would go round.
      if (r.native === 'refused' && r.state === 'attached' && !link.xdp) r.native = 'try'
      const action = plan({ desired, xdp: link.xdp, isOurs: (id) => this.#desire.isOurs(id), nativeUnsupported: r.native !== 'try' })
      this.#settleState(r, link, action, target)
      if (action.kind === 'none' || action.kind === 'conflict') {
        this.#done(r)
        continue
      }
      const w = this.#wire(link, action, target)
      if (!w) continue
      this.#inflight.add(ifindex)
      wires.push(...w)
    }
    if (wires.length === 0) return
    this.counters.batches++
    this.counters.requests += wires.length
    let results: RequestResult[]
    try {
      // A remode's attach goes with its detach: never the detach alone if the daemon stops between two windows.
      results = await this.#o.setter.setXdp(wires.map((w) => ({ ifindex: w.ifindex, req: w.req, withPrevious: w.step === 'attach' })))
    } finally {
      for (const w of wires) w.release()
    }
    // A remode is two requests for one link; the link's outcome is its last failing step, or success.
    const outcome = new Map<number, { w: Wire; r: RequestResult }>()
    wires.forEach((w, i) => {
      const res = results[i]!
      const prev = outcome.get(w.ifindex)
      if (!prev || prev.r.ok) outcome.set(w.ifindex, { w, r: res })
    })
    const quick = new Map<number, LinkState>()
    const reread: number[] = []
    let cut = 0
    for (const [ifindex, { w, r: res }] of outcome) {
      this.#inflight.delete(ifindex)
      const rec = this.#records.get(ifindex)
      if (!rec) continue
      if (res.ok) this.#succeeded(rec, w.action)
      // Answered after stop(): what the kernel did is logged above; the rest was cut off by the daemon stopping (its
      // socket closed: ECANCELED), which is neither an error nor anything to retry.
      else if (this.#stopped) cut++
      else {
        const next = this.#failed(rec, w, res.error, depth)
        if (next === 'replan') {
          const link = this.#o.table.get(ifindex)
          if (link) quick.set(ifindex, link)
        } else if (next === 'reread') reread.push(ifindex)
      }
    }
    if (this.#stopped) {
      if (cut > 0) this.#o.log.debug({ links: cut }, `stopping: the requests for ${cut} links were cut off`)
      return
    }
    for (const [ifindex, link] of await this.#reread(reread)) {
      // What the kernel just said is newer than the table's word, which can be a notification sent before our own
      // RTM_SETLINK but read after it (notifications and acks come on different sockets): a plan on the fresh state
      // that ends in "nothing to do" would otherwise leave the table, and every later plan, on the stale one.
      this.#o.table.noteXdp(ifindex, link.xdp)
      quick.set(ifindex, link)
    }
    this.#touchAgain()
    if (quick.size > 0) await this.#run([...quick.keys()], quick, depth + 1)
  }

  /** The link's status from a plan, before anything is sent. */
  #settleState(r: LinkRecord, link: LinkState, action: Action, target: Target | null): void {
    const log = this.#o.log
    if (!target) {
      if (action.kind === 'none') r.state = 'unmanaged'
      r.conflictProgId = null
      return
    }
    if (action.kind === 'none') {
      if (r.state !== 'attached' && r.state !== 'error') r.state = 'attached'
      if (r.state === 'error' && observed(link.xdp)?.progId === target.progId) r.state = 'attached'
      r.conflictProgId = null
      return
    }
    if (action.kind === 'conflict') {
      r.state = 'conflict'
      if (r.conflictProgId !== action.foreignProgId) {
        r.conflictProgId = action.foreignProgId
        this.counters.conflicts++
        log.warn(
          { ifindex: link.ifindex, ifname: link.name, action: 'conflict', progId: action.foreignProgId, mode: action.mode, entry: target.entry },
          `${link.name}: a program xdplinkd does not own (id ${action.foreignProgId}) is attached; leaving it (set replace-foreign to take over)`,
        )
      }
      return
    }
    r.state = 'pending'
  }

  /** The netlink requests for an action, with the descriptors they need. Null when a descriptor is missing. */
  #wire(link: LinkState, action: Exclude<Action, { kind: 'none' | 'conflict' }>, target: Target | null): Wire[] | null {
    const ifindex = link.ifindex
    const noop = (): void => {}
    const expected = (id: number): { fd: number; release(): void } | null => {
      let e: { fd: number; release(): void } | null
      try {
        e = this.#desire.fdForProgId(id)
      } catch (err) {
        // Cannot open the attached program (EPERM without CAP_SYS_ADMIN for a foreign one): an error for this
        // link, retried with backoff like a refused request.
        const r = this.#records.get(ifindex)
        const error = NetlinkError.fromErrno((err as { errno?: number }).errno ?? 1, 0, (err as Error).message)
        this.counters.errors[error.code] = (this.counters.errors[error.code] ?? 0) + 1
        if (r) this.#fail(r, action, error)
        return null
      }
      if (!e) {
        // The attached program vanished between the dump and now: the link will report it; plan again then.
        this.#dirty(ifindex)
      }
      return e
    }
    const auto = target?.mode === 'auto'
    // `fd` (-1 detaches) in place of the program `expectedProgId`: atomic where the kernel can (XDP_FLAGS_REPLACE
    // with IFLA_XDP_EXPECTED_FD, Linux 5.7+), a plain set before that.
    const swap = (fd: number, expectedProgId: number, mode: AttachedMode, step: Wire['step']): Wire | null => {
      if (!this.#replace) return { ifindex, action, release: noop, step, auto, req: { fd, flags: MODE_FLAG[mode] } }
      const e = expected(expectedProgId)
      if (!e) return null
      return { ifindex, action, release: () => e.release(), step, auto, req: { fd, expectedFd: e.fd, flags: XDP_FLAGS_REPLACE | MODE_FLAG[mode] } }
    }
    // Only where nothing runs: a program someone attaches meanwhile wins (EBUSY).
    const attach = (step: Wire['step']): Wire => ({
      ifindex,
      action,
      release: noop,
      step,
      auto,
      req: { fd: target!.fd, flags: XDP_FLAGS_UPDATE_IF_NOEXIST | MODE_FLAG[action.mode] },
    })
    const one = (w: Wire | null): Wire[] | null => (w ? [w] : null)
    switch (action.kind) {
      case 'attach':
        return [attach('only')]
      case 'replace':
        if (!this.#replace) {
          this.#o.log.warn({ ifindex, ifname: link.name }, 'replacing without XDP_FLAGS_REPLACE (kernel < 5.7): the swap is not atomic')
        }
        return one(swap(target!.fd, action.expectedProgId, action.mode, 'only'))
      case 'detach':
        return one(swap(-1, action.expectedProgId, action.mode, 'only'))
      case 'remode': {
        const detach = swap(-1, action.expectedProgId, action.from, 'detach')
        return detach ? [detach, attach('attach')] : null
      }
    }
  }

  #succeeded(r: LinkRecord, action: Action): void {
    if (action.kind === 'detach') this.#o.table.noteXdp(r.ifindex, null)
    else if (action.kind !== 'none' && action.kind !== 'conflict') this.#o.table.noteXdp(r.ifindex, xdpState(action.progId, action.mode))
    const log = this.#o.log
    const ctx = { ifindex: r.ifindex, ifname: r.name, entry: r.entry }
    if (r.failures > 0) log.info({ ...ctx, action: 'recovered' }, `${r.name}: recovered after ${r.failures} failed attempts`)
    r.failures = 0
    r.lastError = null
    switch (action.kind) {
      case 'attach':
        this.counters.attaches++
        r.state = 'attached'
        log.info({ ...ctx, action: 'attach', progId: action.progId, mode: action.mode }, `${r.name}: attached program ${action.progId} (${action.mode})`)
        break
      case 'replace':
        this.counters.replaces++
        r.state = 'attached'
        log.info(
          { ...ctx, action: 'replace', progId: action.progId, mode: action.mode, oldProgId: action.expectedProgId },
          `${r.name}: replaced program ${action.expectedProgId} with ${action.progId} (${action.mode}${action.foreign ? ', foreign' : ''})`,
        )
        break
      case 'remode':
        this.counters.detaches++
        this.counters.attaches++
        r.state = 'attached'
        log.info(
          { ...ctx, action: 'attach', progId: action.progId, mode: action.mode, oldProgId: action.expectedProgId },
          `${r.name}: moved program from ${action.from} to ${action.mode} mode (detach, then attach: not atomic)`,
        )
        break
      case 'detach':
        this.counters.detaches++
        r.state = 'unmanaged'
        log.info({ ...ctx, action: 'detach', progId: action.expectedProgId, mode: action.mode }, `${r.name}: detached program ${action.expectedProgId}`)
        break
    }
    this.#done(r)
  }

  #done(r: LinkRecord): void {
    if (r.dirtySince !== null) {
      this.#o.onLatency?.(this.#clock.now() - r.dirtySince)
      r.dirtySince = null
    }
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
      this.#o.log.warn({ err: e }, `reading links again failed: ${(e as Error).message}; they are retried with backoff`)
      for (const i of ifindexes) {
        const r = this.#records.get(i)
        if (r) this.#fail(r, { kind: 'none' }, NetlinkError.fromErrno(5, 0, (e as Error).message))
      }
    }
    return out
  }

  /** What to do after a failed request: plan again on the table, read the link again first, or nothing more now. */
  #failed(r: LinkRecord, w: Wire, error: NetlinkError, depth: number): 'replan' | 'reread' | 'done' {
    const { action } = w
    const log = this.#o.log
    const ctx = { ifindex: r.ifindex, ifname: r.name, entry: r.entry }
    this.counters.errors[error.code] = (this.counters.errors[error.code] ?? 0) + 1
    if (error.errno === ERRNO.ENODEV) {
      // The link went away; its RTM_DELLINK ends its record.
      r.dirtySince = null
      return 'done'
    }
    // Only `mode: auto` falls back: an entry that says `native` means it, and the link is in error instead.
    if (NATIVE_REFUSED.has(error.errno) && w.auto && action.kind === 'attach' && action.mode === 'native' && r.native === 'try') {
      r.native = error.errno === ERRNO.EOPNOTSUPP ? 'unsupported' : 'refused'
      if (error.errno === ERRNO.EOPNOTSUPP) {
        log.info({ ...ctx, action: 'fallback', mode: 'generic' }, `${r.name}: no native XDP here (${error.extAck ?? error.code}); using generic mode`)
      } else {
        const why = error.extAck ? `${error.code}: ${error.extAck}` : error.code
        log.warn({ ...ctx, action: 'fallback', mode: 'generic', code: error.code }, `${r.name}: native XDP refused (${why}); using generic mode`)
      }
      return 'replan'
    }
    // EBUSY/EEXIST: someone attached (or detached) in between. ENOBUFS: the ack was lost, the request may have been
    // carried out. Either way, read the link again and plan on what is there now, a few rounds deep (a link that
    // keeps changing under us falls back to the backoff below).
    if ((error.errno === ERRNO.EBUSY || error.errno === ERRNO.EEXIST || error.errno === ERRNO.ENOBUFS) && depth < MAX_QUICK_RETRIES) return 'reread'
    this.#fail(r, action, error)
    return 'done'
  }

  /** Any other failure: the link is in error, logged (once per distinct reason) and retried with capped backoff. */
  #fail(r: LinkRecord, action: Action, error: NetlinkError): void {
    const log = this.#o.log
    const ctx = { ifindex: r.ifindex, ifname: r.name, entry: r.entry }
    r.failures++
    r.state = 'error'
    const reason = `${error.code}${error.extAck ? `: ${error.extAck}` : ''}`
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (r.failures - 1))
    // The first failure and every change of reason are warnings; the same reason again is debug, so a link that
    // keeps failing does not flood the journal.
    const level = r.lastError === reason ? 'debug' : 'warn'
    r.lastError = reason
    log[level]({ ...ctx, action: 'error', errno: error.errno, code: error.code, kind: action.kind, retryMs: delay }, `${r.name}: ${action.kind} failed: ${reason}; retrying in ${delay} ms`)
    if (r.retry) clearTimeout(r.retry)
    r.retry = setTimeout(() => {
      r.retry = null
      this.#dirty(r.ifindex, 0)
    }, delay)
    r.retry.unref?.()
  }

  /** Stops planning; pending work is dropped, retries cancelled. */
  stop(): void {
    this.#stopped = true
    this.#debounce.stop()
    for (const r of this.#records.values()) if (r.retry) clearTimeout(r.retry)
    for (const w of this.#idle) w()
    this.#idle = []
  }
}
