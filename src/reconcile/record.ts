/**
 * One link's record and its transitions: what the reconciler knows about a link beyond what the kernel reports
 * (its status, the entry that manages it, whether native XDP is worth trying, its failures), and what happened to it
 * as typed outcome events. Pure: every transition takes a record and returns the next one with its outcomes; no
 * I/O, no timers, no log text (the daemon turns outcomes into log lines, metrics and journald fields:
 * src/log/outcomes.ts).
 *
 *   decide(record, link, desired)       plan the link (plan.ts); its status before anything is sent
 *   succeeded(record, action)           the kernel carried the action out
 *   failed(record, action, failure)     it did not: fall back to generic, read the link again, or back off
 */
import { ERRNO } from '../ffi/errno.js'
import type { LinkState } from '../rtnl/link.js'
import type { XdpMode } from '../rtnl/xdp.js'
import { failureReason, type LinkFailure } from './failure.js'
import { plan, type Action, type Desired } from './plan.js'

export type LinkStatus = 'attached' | 'pending' | 'conflict' | 'error' | 'unmanaged'

export interface LinkRecord {
  readonly ifindex: number
  readonly name: string
  readonly entry: string | null
  readonly desiredProgId: number | null
  readonly state: LinkStatus
  /** The last failure's reason (`EBUSY: ...`), kept while the link is in error. */
  readonly lastError: string | null
  /**
   * Whether a native attach is worth trying here (`auto` uses generic otherwise): `unsupported`, the driver has no
   * native XDP (EOPNOTSUPP); `refused`, it refused this link's configuration (an MTU, queues: NATIVE_REFUSED),
   * which may change.
   */
  readonly native: 'try' | 'unsupported' | 'refused'
  /** The foreign program last reported as a conflict (reported once, not on every event). */
  readonly conflictProgId: number | null
  /** Failures in a row; the backoff grows with them. */
  readonly failures: number
  /** When the next attempt is due after a failure (the clock's ms), null when none is. */
  readonly retryAt: number | null
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
    retryAt: null,
  }
}

/** The link an outcome is about, as logs name it. */
export interface LinkRef {
  ifindex: number
  name: string
  entry: string | null
}

/** What happened to a link. */
export type LinkOutcome =
  | { kind: 'attached'; link: LinkRef; progId: number; mode: XdpMode }
  | { kind: 'replaced'; link: LinkRef; progId: number; oldProgId: number; mode: XdpMode; foreign: boolean }
  /** Detached in one mode, attached in another (the config's mode changed): not atomic. */
  | { kind: 'remoded'; link: LinkRef; progId: number; oldProgId: number; from: XdpMode; mode: XdpMode }
  | { kind: 'detached'; link: LinkRef; progId: number; mode: XdpMode }
  /** Succeeded after `failures` failed attempts (comes before the success's own outcome). */
  | { kind: 'recovered'; link: LinkRef; failures: number }
  /** A program we do not own runs where ours should: left alone. Reported once per foreign program. */
  | { kind: 'conflict'; link: LinkRef; foreignProgId: number; mode: XdpMode }
  /** `mode: auto` uses generic here: the driver has no native XDP, or refused it as the link is set up. */
  | { kind: 'fallback'; link: LinkRef; native: 'unsupported' | 'refused'; failure: LinkFailure }
  /**
   * In error, retried after `retryInMs`. `repeated`: the same reason as the failure before (a log shows the first of
   * a run, not every one).
   */
  | { kind: 'failed'; link: LinkRef; action: Action['kind']; failure: LinkFailure; failures: number; retryInMs: number; repeated: boolean }

export interface Transition {
  record: LinkRecord
  outcomes: LinkOutcome[]
}

function ref(r: LinkRecord): LinkRef {
  return { ifindex: r.ifindex, name: r.name, entry: r.entry }
}

/**
 * Plans a link: the action for the kernel, and the link's status meanwhile (`pending` until a request is answered;
 * `attached`, `unmanaged` or `conflict` when nothing is to be sent). `desired` is the matching entry's program, null
 * when no entry matches.
 */
export function decide(r: LinkRecord, link: LinkState, desired: Desired | null, isOurs: (progId: number) => boolean): Transition & { action: Action } {
  // Refused for its configuration, then the program it got in generic mode went away (detached by hand once the MTU
  // was fixed, say): native may work now. Not while falling back (state pending), or it would go round.
  const native = r.native === 'refused' && r.state === 'attached' && !link.xdp ? 'try' : r.native
  const action = plan({ desired, xdp: link.xdp, isOurs, nativeUnsupported: native !== 'try' })
  const next: LinkRecord = { ...r, name: link.name, entry: desired?.entry ?? null, desiredProgId: desired?.progId ?? null, native }
  if (!desired) {
    return { action, outcomes: [], record: { ...next, state: action.kind === 'none' ? 'unmanaged' : next.state, conflictProgId: null } }
  }
  switch (action.kind) {
    case 'none':
      // Our program runs as wanted (attached by us, by an earlier run, or after a failure by someone's hand).
      return { action, outcomes: [], record: { ...next, state: 'attached', conflictProgId: null } }
    case 'conflict': {
      const record: LinkRecord = { ...next, state: 'conflict', conflictProgId: action.foreignProgId }
      const seen = r.conflictProgId === action.foreignProgId
      return { action, record, outcomes: seen ? [] : [{ kind: 'conflict', link: ref(record), foreignProgId: action.foreignProgId, mode: action.mode }] }
    }
    default:
      return { action, outcomes: [], record: { ...next, state: 'pending' } }
  }
}

/** The kernel carried the action out. */
export function succeeded(r: LinkRecord, action: Action): Transition {
  const outcomes: LinkOutcome[] = []
  if (r.failures > 0) outcomes.push({ kind: 'recovered', link: ref(r), failures: r.failures })
  const record: LinkRecord = { ...r, failures: 0, lastError: null, retryAt: null, state: action.kind === 'detach' ? 'unmanaged' : 'attached' }
  const link = ref(r)
  switch (action.kind) {
    case 'attach':
      outcomes.push({ kind: 'attached', link, progId: action.progId, mode: action.mode })
      break
    case 'replace':
      outcomes.push({ kind: 'replaced', link, progId: action.progId, oldProgId: action.expectedProgId, mode: action.mode, foreign: action.foreign })
      break
    case 'remode':
      outcomes.push({ kind: 'remoded', link, progId: action.progId, oldProgId: action.expectedProgId, from: action.from, mode: action.mode })
      break
    case 'detach':
      outcomes.push({ kind: 'detached', link, progId: action.expectedProgId, mode: action.mode })
      break
  }
  return { record, outcomes }
}

/**
 * How a native attach says the link cannot run XDP natively as it is set up now: no ndo_bpf at all (EOPNOTSUPP, in
 * net/core/dev.c dev_xdp_attach), or a driver refusing its current configuration. drivers/net/veth.c veth_xdp_set
 * answers ERANGE "Peer MTU is too large to set XDP" (a jumbo-MTU veth; seen on 6.18); NIC drivers refuse an MTU,
 * LRO or too few queues for XDP's TX rings with EINVAL, ENOMEM or ENOSPC. `mode: auto` then uses generic mode on
 * that link rather than leave it without its program; a failure that is not about native mode fails there too.
 */
export const NATIVE_REFUSED: ReadonlySet<number> = new Set([ERRNO.EOPNOTSUPP, ERRNO.ERANGE, ERRNO.EINVAL, ERRNO.ENOMEM, ERRNO.ENOSPC])

/**
 * EBUSY/EEXIST: someone attached (or detached) in between. ENOBUFS: the ack was lost, the request may have been
 * carried out. Either way the link is read again and planned on what is there now, this many rounds deep; a link that
 * keeps changing under us falls back to the backoff.
 */
export const RACES: ReadonlySet<number> = new Set([ERRNO.EBUSY, ERRNO.EEXIST, ERRNO.ENOBUFS])
export const MAX_QUICK_RETRIES = 3

export const BACKOFF_MIN_MS = 1000
export const BACKOFF_MAX_MS = 60_000

export interface FailedContext {
  /** The entry's mode is `auto`: a refused native attach may fall back to generic. */
  auto: boolean
  /** Rounds of quick re-reads already done for this link in this run. */
  depth: number
  /** The clock's now, ms. */
  now: number
}

/**
 * What follows a failed request: `replan` at once on the table's view (fallback to generic), `reread` the link and
 * plan on what the kernel says now (a race), `gone` (ENODEV: its RTM_DELLINK will end the record), or `backoff`
 * (in error, retried at `record.retryAt`).
 */
export type FailedNext = 'replan' | 'reread' | 'gone' | 'backoff'

export function failed(r: LinkRecord, action: Action, failure: LinkFailure, ctx: FailedContext): Transition & { next: FailedNext } {
  if (failure.errno === ERRNO.ENODEV) return { record: r, outcomes: [], next: 'gone' }
  // Only `mode: auto` falls back: an entry that says `native` means it, and the link is in error instead.
  if (NATIVE_REFUSED.has(failure.errno) && ctx.auto && action.kind === 'attach' && action.mode === 'native' && r.native === 'try') {
    const native = failure.errno === ERRNO.EOPNOTSUPP ? 'unsupported' : 'refused'
    const record: LinkRecord = { ...r, native }
    return { record, outcomes: [{ kind: 'fallback', link: ref(record), native, failure }], next: 'replan' }
  }
  if (RACES.has(failure.errno) && ctx.depth < MAX_QUICK_RETRIES) return { record: r, outcomes: [], next: 'reread' }
  return { ...errored(r, action.kind, failure, ctx.now), next: 'backoff' }
}

/** In error: retried after a backoff that doubles with each failure in a row (1 s up to 60 s). */
export function errored(r: LinkRecord, action: Action['kind'], failure: LinkFailure, now: number): Transition {
  const failures = r.failures + 1
  const reason = failureReason(failure)
  const retryInMs = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (failures - 1))
  const record: LinkRecord = { ...r, failures, state: 'error', lastError: reason, retryAt: now + retryInMs }
  return {
    record,
    outcomes: [{ kind: 'failed', link: ref(record), action, failure, failures, retryInMs, repeated: r.lastError === reason }],
  }
}
