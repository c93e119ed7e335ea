/**
 * Log lines written during one turn of the event loop go out in one write at the end of that turn. A start-up over
 * 1,000 links, or a burst of new veths, logs a line per link in batches of up to 128 acks; one write(2) per line was
 * ~13 ms per 1,000 lines of the daemon's start-up (`npm run bench -- --only a --cpu-prof`: writeString).
 *
 * No line waits longer than the current turn (setImmediate runs right after the poll phase that produced it), and
 * at exit, normal or by an uncaught exception, what is pending is written synchronously ('exit' handlers run in
 * both cases), so the last lines before a crash are not lost. Only a SIGKILL or an abort can lose the current
 * turn's lines.
 */
export interface LineSink {
  write(data: string): unknown
}

const live = new Set<TurnCoalescer>()
let exitHooked = false

export class TurnCoalescer {
  #parts: string[] = []
  #scheduled = false
  readonly #out: LineSink
  readonly #schedule: (fn: () => void) => unknown

  /** `out` must write synchronously (pino.destination with sync: true). `schedule` is setImmediate; tests pass theirs. */
  constructor(out: LineSink, schedule: (fn: () => void) => unknown = setImmediate) {
    this.#out = out
    this.#schedule = schedule
    live.add(this)
    if (!exitHooked) {
      exitHooked = true
      process.on('exit', () => {
        for (const c of live) c.flush()
      })
    }
  }

  write(line: string): void {
    this.#parts.push(line)
    if (this.#scheduled) return
    this.#scheduled = true
    this.#schedule(() => this.flush())
  }

  /** Writes what is pending now (pino's logger.flush(cb) calls it with a callback). */
  flush(cb?: (err?: Error) => void): void {
    this.#scheduled = false
    if (this.#parts.length > 0) {
      const data = this.#parts.length === 1 ? this.#parts[0]! : this.#parts.join('')
      this.#parts = []
      this.#out.write(data)
    }
    cb?.()
  }

  /** Flushes and stops taking part in the exit flush. */
  close(): void {
    this.flush()
    live.delete(this)
  }
}
