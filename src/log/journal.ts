/**
 * pino records as journal entries over the journal's native protocol (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/):
 * one AF_UNIX datagram per record to /run/systemd/journal/socket, so that priority and context survive as fields
 * (`journalctl -p warning`, `journalctl IFNAME=eth0`, `journalctl -o verbose`) instead of being flattened into a
 * line on stdout.
 *
 * Everything is synchronous: a record is in journald's queue when pino's write returns, so nothing is lost when the
 * daemon exits right after logging (process.exit, a fatal error).
 */
import { writeSync } from 'node:fs'
import { constants } from 'node:os'
import { ERRNO, SyscallError } from '../ffi/errno.js'
import type { Fd } from '../ffi/fd.js'
import { SOL_SOCKET, SO_SNDBUF, SO_SNDBUFFORCE, setsockoptInt } from '../ffi/libc.js'
import { sealedMemfd, sendDatagram, sendDatagramWithFds, sockaddrUn, unixDatagramSocket } from '../ffi/unix.js'

export const JOURNAL_SOCKET = '/run/systemd/journal/socket'
export const DEFAULT_IDENTIFIER = 'xdplinkd'

/**
 * syslog(3) priorities for pino's levels: trace/debug 7 (debug), info 6 (info), warn 4 (warning), error 3 (err),
 * fatal 2 (crit). Custom levels fall to the nearest standard level below them.
 */
export function journalPriority(level: number): number {
  if (level >= 60) return 2
  if (level >= 50) return 3
  if (level >= 40) return 4
  if (level >= 30) return 6
  return 7
}

/** The context keys the daemon logs, by their journal names; any other key goes through journalFieldName. */
export const KNOWN_FIELDS: Readonly<Record<string, string>> = {
  ifname: 'IFNAME',
  ifindex: 'IFINDEX',
  progId: 'PROG_ID',
  action: 'ACTION',
  entry: 'ENTRY',
  mode: 'MODE',
  netns: 'NETNS',
}

/** pino's own keys: the journal has its own for each (PRIORITY, MESSAGE, the receive time, _PID, _HOSTNAME). */
const PINO_KEYS = new Set(['level', 'msg', 'time', 'pid', 'hostname', 'v'])
/** The fields we set ourselves; a context key that sanitizes to one of them gets an X_ prefix instead. */
const OWN_FIELDS = new Set(['MESSAGE', 'PRIORITY', 'SYSLOG_IDENTIFIER', 'ERRNO'])
/** journald's limit on a field name (journal_field_valid in systemd's journal-file.c). */
const FIELD_NAME_MAX = 64
/** How deep nested objects are flattened into PARENT_CHILD fields; deeper ones are stored as JSON. */
const FLATTEN_DEPTH = 3

/**
 * A journal field name for a context key: camelCase split at the humps, upper-cased, anything outside [A-Z0-9_]
 * made `_`, leading `_` and digits dropped (journald ignores names starting with `_`, which mark its trusted fields,
 * and refuses ones starting with a digit), at most 64 characters. Null when nothing usable is left.
 */
export function journalFieldName(key: string): string | null {
  const known = KNOWN_FIELDS[key]
  if (known) return known
  const name = key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toUpperCase()
    .replace(/[^A-Z0-9_]/g, '_')
    .replace(/^[_0-9]+/, '')
    .slice(0, FIELD_NAME_MAX)
  return name === '' ? null : name
}

/** An errno number from a numeric errno (netlink reports them negated) or an errno name such as 'ENOBUFS'. */
function errnoOf(errno: unknown, code: unknown): number | null {
  if (typeof errno === 'number' && Number.isInteger(errno) && errno !== 0) return Math.abs(errno)
  if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) {
    const n = (constants.errno as Record<string, number | undefined>)[code]
    if (n !== undefined) return n
  }
  return null
}

export type JournalField = readonly [name: string, value: string]

/**
 * The journal fields for one parsed pino record: PRIORITY, MESSAGE, SYSLOG_IDENTIFIER, ERRNO (numeric, from
 * `errno`/`code`, else from `err`'s), then every other key: scalars as text, objects flattened (err.stack becomes
 * ERR_STACK), arrays and deep objects as JSON. null and undefined are left out.
 */
export function recordFields(record: Record<string, unknown>, identifier = DEFAULT_IDENTIFIER): JournalField[] {
  const level = typeof record.level === 'number' ? record.level : 30
  const err = record.err !== null && typeof record.err === 'object' ? (record.err as Record<string, unknown>) : null
  const msg = typeof record.msg === 'string' ? record.msg : typeof err?.message === 'string' ? err.message : ''
  const fields: JournalField[] = [
    ['PRIORITY', String(journalPriority(level))],
    ['MESSAGE', msg],
    ['SYSLOG_IDENTIFIER', identifier],
  ]
  // errno/code become ERRNO; a code that is no errno name (a config error code, say) stays a field of its own.
  const fromErrno = errnoOf(record.errno, undefined)
  const fromCode = errnoOf(undefined, record.code)
  const errno = fromErrno ?? fromCode ?? errnoOf(err?.errno, err?.code)
  if (errno !== null) fields.push(['ERRNO', String(errno)])
  const add = (name: string, value: unknown, depth: number): void => {
    if (value === null || value === undefined) return
    if (typeof value === 'string') fields.push([name, value])
    else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') fields.push([name, String(value)])
    else if (typeof value === 'object' && !Array.isArray(value) && depth < FLATTEN_DEPTH) {
      for (const [k, v] of Object.entries(value)) {
        const sub = journalFieldName(k)
        if (sub) add(`${name}_${sub}`.slice(0, FIELD_NAME_MAX), v, depth + 1)
      }
    } else fields.push([name, JSON.stringify(value) ?? String(value)])
  }
  for (const [key, value] of Object.entries(record)) {
    if (PINO_KEYS.has(key)) continue
    if ((key === 'errno' && fromErrno !== null) || (key === 'code' && fromCode !== null)) continue
    let name = journalFieldName(key)
    if (!name) continue
    if (OWN_FIELDS.has(name)) name = `X_${name}`
    add(name, value, 0)
  }
  return fields
}

/**
 * The native protocol's serialization: NAME=value\n, or, for a value containing a newline, NAME\n, its length as a
 * little-endian 64-bit integer, the value and \n (the only form that can carry a newline).
 */
export function encodeJournalEntry(fields: readonly JournalField[]): Buffer {
  const parts: Buffer[] = []
  for (const [name, value] of fields) {
    const data = Buffer.from(value, 'utf8')
    if (!data.includes(0x0a)) {
      parts.push(Buffer.from(`${name}=`, 'ascii'), data, NEWLINE)
      continue
    }
    const len = Buffer.alloc(8)
    len.writeBigUInt64LE(BigInt(data.length))
    parts.push(Buffer.from(`${name}\n`, 'ascii'), len, data, NEWLINE)
  }
  return Buffer.concat(parts)
}
const NEWLINE = Buffer.from('\n')

export interface JournalStreamOptions {
  /** The journal's socket; the default is journald's (a test points it at its own). */
  socketPath?: string
  /** SYSLOG_IDENTIFIER, which `journalctl -t` filters on. */
  identifier?: string
  /**
   * SO_SNDBUF for the socket. An AF_UNIX datagram larger than the send buffer fails with EMSGSIZE
   * (unix_dgram_sendmsg), so a large buffer keeps even long stack traces in one datagram. 8 MiB as libsystemd's
   * journal_fd uses (SNDBUF_SIZE).
   */
  sendBufferBytes?: number
  /** Where a record goes when the journal cannot take it; stderr (which systemd connects to the journal) by default. */
  fallback?: (line: string) => void
}

/**
 * A pino destination (an object with a synchronous `write(line)`) that sends each JSON record to the journal.
 *
 * A record too large for one datagram (EMSGSIZE, or ENOBUFS when the kernel cannot allocate it) is passed as a
 * sealed memfd with an empty datagram, the protocol's own answer, as libsystemd's sd_journal_sendv does: it is never
 * truncated. When the journal cannot be reached at all (no journald: ENOENT, ECONNREFUSED) or the memfd path fails
 * too, the JSON line goes to the fallback, so a record is never dropped silently.
 *
 * Sends block, like sd_journal_send(3), when journald's queue is full: a record waits rather than being lost. A
 * journald that stops reading for good therefore stalls the daemon, and then the watchdog restarts it.
 */
export class JournalStream {
  readonly #fd: Fd
  readonly #to: Buffer
  readonly #identifier: string
  readonly #fallback: (line: string) => void
  /** Records sent as datagrams, as memfds, handed to the fallback, and lost because the fallback failed too. */
  readonly stats = { datagrams: 0, memfds: 0, fallbacks: 0, lost: 0 }

  constructor(opts: JournalStreamOptions = {}) {
    this.#to = sockaddrUn(opts.socketPath ?? JOURNAL_SOCKET)
    this.#identifier = opts.identifier ?? DEFAULT_IDENTIFIER
    this.#fallback = opts.fallback ?? ((line) => writeSync(2, line))
    this.#fd = unixDatagramSocket({ label: 'journal' })
    const size = opts.sendBufferBytes ?? 8 * 1024 * 1024
    try {
      // SO_SNDBUFFORCE goes past net.core.wmem_max but needs CAP_NET_ADMIN, which the daemon has; SO_SNDBUF is
      // capped at wmem_max (socket(7)). libsystemd's fd_inc_sndbuf tries the same two.
      setsockoptInt(this.#fd.raw, SOL_SOCKET, SO_SNDBUFFORCE, size)
    } catch {
      setsockoptInt(this.#fd.raw, SOL_SOCKET, SO_SNDBUF, size)
    }
  }

  /** Takes one pino line (pino calls write once per record, with a trailing newline). */
  write(line: string): boolean {
    for (const one of line.split('\n')) if (one !== '') this.#writeRecord(one)
    return true
  }

  /** Nothing is buffered; for pino's logger.flush(). */
  flushSync(): void {}

  flush(cb?: (err?: Error) => void): void {
    cb?.()
  }

  close(): void {
    this.#fd.close()
  }

  #writeRecord(json: string): void {
    let record: Record<string, unknown>
    try {
      const parsed: unknown = JSON.parse(json)
      record = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : { msg: json }
    } catch {
      record = { msg: json }
    }
    const entry = encodeJournalEntry(recordFields(record, this.#identifier))
    try {
      this.#send(entry)
    } catch {
      try {
        this.#fallback(json + '\n')
        this.stats.fallbacks++
      } catch {
        // Nowhere left to write: throwing would turn a log call into a crash of the daemon.
        this.stats.lost++
      }
    }
  }

  #send(entry: Buffer): void {
    try {
      sendDatagram(this.#fd, entry, this.#to)
      this.stats.datagrams++
      return
    } catch (e) {
      if (!(e instanceof SyscallError && (e.errno === ERRNO.EMSGSIZE || e.errno === ERRNO.ENOBUFS))) throw e
    }
    const memfd = sealedMemfd('journal-entry', entry)
    try {
      sendDatagramWithFds(this.#fd, Buffer.alloc(0), this.#to, [memfd])
      this.stats.memfds++
    } finally {
      // journald holds its own reference once the datagram is queued.
      memfd.close()
    }
  }
}
