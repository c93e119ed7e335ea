import { constants } from 'node:os'

// Node already carries the platform's errno table (name -> number); invert it once for names.
const byNumber = new Map<number, string>()
for (const [name, value] of Object.entries(constants.errno)) {
  // EWOULDBLOCK == EAGAIN and EDEADLOCK == EDEADLK on Linux: keep the first, canonical spelling.
  if (!byNumber.has(value)) byNumber.set(value, name)
}

/** The symbolic name of an errno value (`105` -> `ENOBUFS`), or `E<n>` for one Node does not know. */
export function errnoName(errno: number): string {
  return byNumber.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`
}

export const ERRNO = constants.errno

/** A failed system call: carries the errno and its name, like Node's own `SystemError`. */
export class SyscallError extends Error {
  readonly errno: number
  readonly code: string
  readonly syscall: string
  constructor(syscall: string, errno: number, detail?: string) {
    const code = errnoName(errno)
    super(`${syscall}: ${code}${detail ? ` (${detail})` : ''}`)
    this.name = 'SyscallError'
    this.errno = Math.abs(errno)
    this.code = code
    this.syscall = syscall
  }
}
