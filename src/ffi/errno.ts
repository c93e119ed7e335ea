import { constants } from 'node:os'

/**
 * Names Linux gives a second spelling of the same number (include/uapi/asm-generic/errno.h): EWOULDBLOCK is EAGAIN,
 * EDEADLOCK is EDEADLK, and ENOTSUP is EOPNOTSUPP (glibc's <bits/errno.h>). Node's table lists ENOTSUP before
 * EOPNOTSUPP, so taking the first name per number would make 95 `ENOTSUP` while the kernel, strerror and every man
 * page say EOPNOTSUPP. The aliases are never chosen as a number's name.
 */
const ALIASES = new Set(['EWOULDBLOCK', 'EDEADLOCK', 'ENOTSUP'])

/**
 * ENOTSUPP (524), one of the kernel-internal numbers of include/linux/errno.h that are "never seen by user
 * programs" but are: the bpf() syscall answers a command a map type lacks with it (kernel/bpf/syscall.c,
 * BPF_DO_BATCH), and it is not EOPNOTSUPP (95). No libc or Node table has it.
 */
export const ENOTSUPP = 524

// Node already carries the platform's errno table (name -> number); invert it once for names.
const byNumber = new Map<number, string>([[ENOTSUPP, 'ENOTSUPP']])
for (const [name, value] of Object.entries(constants.errno)) {
  if (!ALIASES.has(name) && !byNumber.has(value)) byNumber.set(value, name)
}

/**
 * The canonical symbolic name of an errno value (`105` -> `ENOBUFS`, `95` -> `EOPNOTSUPP`), or `E<n>` for one Node
 * does not know. For messages and logs: code compares errno numbers (ERRNO.EOPNOTSUPP), never these names.
 */
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
