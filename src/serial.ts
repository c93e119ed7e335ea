/**
 * An async job that runs one at a time, where a request that arrives while it runs means "run again once it is
 * done" (the run in progress may have read its inputs before the change that prompted the request). Requests during
 * one run share the one run after it. The daemon's reload is one: a SIGHUP or an object rebuilt while a reload is
 * still replacing programs must not be folded into that reload and lost.
 */
export class SerialJob<A, T> {
  #running: Promise<T> | null = null
  #next: Promise<T> | null = null
  #nextArg: A | undefined

  constructor(private readonly job: (arg: A) => Promise<T>) {}

  /** Runs the job now, or once after the run in progress; resolves with the result of the run that covers this request. */
  run(arg: A): Promise<T> {
    if (!this.#running) return this.#start(arg)
    this.#nextArg = arg
    this.#next ??= this.#running.then(
      () => this.#startNext(),
      () => this.#startNext(),
    )
    return this.#next
  }

  #startNext(): Promise<T> {
    const arg = this.#nextArg as A
    this.#next = null
    this.#nextArg = undefined
    return this.#start(arg)
  }

  #start(arg: A): Promise<T> {
    const p = this.job(arg).finally(() => {
      if (this.#running === p) this.#running = null
    })
    this.#running = p
    return p
  }
}
