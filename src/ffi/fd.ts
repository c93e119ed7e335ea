import { closeRaw } from './libc.js'

/**
 * Owns one file descriptor and closes it exactly once. The raw number stays readable until then, and reading it
 * after close throws, so a stale number can never reach a syscall where the kernel may have reused it.
 */
export class Fd {
  #fd: number
  readonly label: string

  constructor(fd: number, label = 'fd') {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`${label}: invalid file descriptor ${fd}`)
    this.#fd = fd
    this.label = label
  }

  get closed(): boolean {
    return this.#fd < 0
  }

  /** The descriptor number, for a syscall. Throws once closed. */
  get raw(): number {
    if (this.#fd < 0) throw new Error(`${this.label}: file descriptor used after close`)
    return this.#fd
  }

  /** Closes the descriptor; later calls do nothing. Returns whether this call closed it. */
  close(): boolean {
    if (this.#fd < 0) return false
    const fd = this.#fd
    this.#fd = -1
    closeRaw(fd)
    return true
  }

  [Symbol.dispose](): void {
    this.close()
  }
}
