/**
 * Why a request for one link failed, and who said so. The kernel's extended-ack text is the kernel's words; a
 * libbpf call or a check of our own has its own text, and the two are never mixed: a log line or `status` shows
 * `EBUSY: XDP program already attached` only when the kernel said it.
 */
import { errnoName } from '../ffi/errno.js'
import type { NetlinkError } from '../netlink/errors.js'

export type LinkFailure =
  /** The kernel refused the RTM_SETLINK (NLMSG_ERROR), with its NLMSGERR_ATTR_MSG text when it gave one. */
  | { source: 'kernel'; errno: number; extAck: string | null }
  /** A bpf() call through libbpf for the request, e.g. opening the attached program for IFLA_XDP_EXPECTED_FD. */
  | { source: 'libbpf'; errno: number; message: string }
  /** Our side: the socket closed or failed, acks lost to an overrun, a request we would not send, a failed re-read. */
  | { source: 'local'; errno: number; message: string }

/** A failed request as the netlink layer reports it: the kernel's refusal, or one of our own making. */
export function netlinkFailure(e: NetlinkError): LinkFailure {
  if (e.origin === 'kernel') return { source: 'kernel', errno: e.errno, extAck: e.extAck ?? null }
  return { source: 'local', errno: e.errno, message: e.detail ?? e.message }
}

/** A thrown libbpf error (SyscallError: `errno`, message naming the call); EPERM where it carries no errno. */
export function libbpfFailure(e: unknown): LinkFailure {
  const errno = (e as { errno?: unknown }).errno
  return { source: 'libbpf', errno: typeof errno === 'number' && errno > 0 ? errno : 1, message: e instanceof Error ? e.message : String(e) }
}

/** The errno's name (`EBUSY`), for counters and log fields. */
export function failureCode(f: LinkFailure): string {
  return errnoName(f.errno)
}

/**
 * One line for logs and `status`: `EBUSY: XDP program already attached` (the kernel's text after the colon, as
 * `ip` prints it), `EPERM (libbpf: bpf_prog_get_fd_by_id: EPERM)`, `ECANCELED (netlink socket closed)`.
 */
export function failureReason(f: LinkFailure): string {
  const code = failureCode(f)
  switch (f.source) {
    case 'kernel':
      return f.extAck ? `${code}: ${f.extAck}` : code
    case 'libbpf':
      return `${code} (libbpf: ${f.message})`
    case 'local':
      return f.message ? `${code} (${f.message})` : code
  }
}
