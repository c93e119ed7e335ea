/**
 * Per-key debounce with a deadline: a key is due once it has been quiet for `settleMs`, and at the latest
 * `maxSettleMs` after its first change, so a link that never stops flapping is still reconciled.
 *
 * One timer serves every key (10,000 links must not mean 10,000 timers); keys that fall due together are handed over
 * as one batch, which the reconciler turns into one batched netlink request.
 */
export interface Clock {
  now(): number
  setTimer(ms: number, fn: () => void): { cancel(): void }
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const h = setTimeout(fn, Math.max(0, ms))
    return { cancel: () => clearTimeout(h) }
  },
}

interface Entry {
  first: number
  last: number
}

export class Debouncer<K> {
  #pending = new Map<K, Entry>()
  #timer: { cancel(): void; at: number } | null = null

  constructor(
    private readonly opts: { settleMs: number; maxSettleMs: number; clock?: Clock },
    private readonly onDue: (keys: K[]) => void,
  ) {}

  get clock(): Clock {
    return this.opts.clock ?? realClock
  }

  get size(): number {
    return this.#pending.size
  }

  has(key: K): boolean {
    return this.#pending.has(key)
  }

  /** Records a change of `key`. `delayMs` overrides the settle time for this touch (0: as soon as possible). */
  touch(key: K, delayMs?: number): void {
    const now = this.clock.now()
    let e = this.#pending.get(key)
    if (e) e.last = delayMs === undefined ? now : Math.min(e.last, now - this.opts.settleMs + delayMs)
    else {
      e = { first: now, last: delayMs === undefined ? now : now - this.opts.settleMs + delayMs }
      this.#pending.set(key, e)
    }
    // Only this key moved: the timer needs re-arming only if it is due before the timer fires. A touch costs O(1);
    // the full scan runs once per firing, so a start-up over n links is O(n), not O(n^2).
    const due = this.#due(e)
    if (!this.#timer || due < this.#timer.at) this.#set(due)
  }

  /** Forgets a key (its link is gone). */
  cancel(key: K): void {
    this.#pending.delete(key)
  }

  /** Settings changed (a reload): applies from the next arm. */
  configure(settleMs: number, maxSettleMs: number): void {
    this.opts.settleMs = settleMs
    this.opts.maxSettleMs = maxSettleMs
    this.#arm(true)
  }

  #due(e: Entry): number {
    return Math.min(e.last + this.opts.settleMs, e.first + this.opts.maxSettleMs)
  }

  #arm(force = false): void {
    let next = Infinity
    for (const e of this.#pending.values()) next = Math.min(next, this.#due(e))
    if (next === Infinity) {
      this.#timer?.cancel()
      this.#timer = null
      return
    }
    if (this.#timer && !force && this.#timer.at <= next) return
    this.#set(next)
  }

  #set(at: number): void {
    this.#timer?.cancel()
    const t = this.clock.setTimer(at - this.clock.now(), () => this.#fire())
    this.#timer = { cancel: () => t.cancel(), at }
  }

  #fire(): void {
    this.#timer = null
    const now = this.clock.now()
    const due: K[] = []
    // Keys due a little later come along (up to a quarter of settle, 0.5 to 5 ms): timers fire with some jitter,
    // and keys touched in one burst (a dump's worth of links, a batch of new veths) are touched over a few
    // milliseconds; each straggler would otherwise cost its own timer, batch and datagram.
    const slack = Math.min(5, Math.max(0.5, this.opts.settleMs / 4))
    for (const [k, e] of this.#pending) if (this.#due(e) <= now + slack) due.push(k)
    for (const k of due) this.#pending.delete(k)
    this.#arm()
    if (due.length > 0) this.onDue(due)
  }

  /** Stops the timer; pending keys are dropped. */
  stop(): void {
    this.#timer?.cancel()
    this.#timer = null
    this.#pending.clear()
  }
}
