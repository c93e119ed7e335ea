import type { Clock } from '../../src/reconcile/debounce.js'

/** A clock the test moves by hand: timers fire in order of their time as `advance` passes it. */
export class FakeClock implements Clock {
  t = 0
  timers: { at: number; fn: () => void; dead: boolean }[] = []
  now() {
    return this.t
  }
  setTimer(ms: number, fn: () => void) {
    const timer = { at: this.t + ms, fn, dead: false }
    this.timers.push(timer)
    return { cancel: () => void (timer.dead = true) }
  }
  advance(ms: number) {
    const end = this.t + ms
    for (;;) {
      const next = this.timers.filter((x) => !x.dead && x.at <= end).sort((a, b) => a.at - b.at)[0]
      if (!next) break
      this.t = next.at
      next.dead = true
      next.fn()
    }
    this.t = end
  }
  live() {
    return this.timers.filter((x) => !x.dead).length
  }
}
