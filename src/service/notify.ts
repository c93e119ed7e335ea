/**
 * The service manager's side channel, sd_notify(3), without libsystemd: newline-separated VAR=VALUE assignments in
 * one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET. Without $NOTIFY_SOCKET (not started by systemd, or
 * Type= is not notify) every call is a no-op that returns false, as sd_notify returns 0.
 *
 * The unit sets NotifyAccess=main (systemd.service(5)): only messages from the main PID count, so the daemon's
 * children inheriting $NOTIFY_SOCKET cannot confuse the manager, and this module does not unset it.
 */
import type { Fd } from '../ffi/fd.js'
import { clockMonotonicUsec, sendDatagram, sockaddrUn, unixDatagramSocket } from '../ffi/unix.js'

export interface NotifierOptions {
  /** Where NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are read; process.env by default. */
  env?: NodeJS.ProcessEnv
  /** Our PID as compared with WATCHDOG_PID; process.pid by default. */
  pid?: number
}

/** Assignment values end at a newline (sd_notify(3)); one in a free-form STATUS would start a bogus assignment. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ')
}

export class Notifier {
  /** The $NOTIFY_SOCKET address (a path or an @abstract name), or null when there is none. */
  readonly address: string | null
  readonly #sockaddr: Buffer | null
  readonly #watchdogUsec: number | null
  #fd: Fd | null = null
  #closed = false

  /**
   * Reads the environment once. Throws RangeError for a $NOTIFY_SOCKET this implementation cannot use (not an
   * absolute path or @name: systemd 254+ may also pass `vsock:` addresses, for a VM's manager, which we do not speak).
   */
  constructor(opts: NotifierOptions = {}) {
    const env = opts.env ?? process.env
    const socket = env.NOTIFY_SOCKET
    this.address = socket ? socket : null
    this.#sockaddr = this.address === null ? null : sockaddrUn(this.address)
    this.#watchdogUsec = watchdogUsec(env, opts.pid ?? process.pid)
  }

  /** Whether messages go anywhere. */
  get enabled(): boolean {
    return this.#sockaddr !== null && !this.#closed
  }

  /**
   * Sends assignments (`READY=1`, ...) as one datagram. Returns false when there is no $NOTIFY_SOCKET or after
   * close(); throws SyscallError when the send fails (the manager is gone: ECONNREFUSED/ENOENT).
   */
  notify(...assignments: string[]): boolean {
    if (!this.#sockaddr || this.#closed) return false
    // One socket for the whole run instead of one per call as libsystemd does: the watchdog pings every few
    // seconds for the daemon's lifetime. Blocking, like sd_notify: PID 1 drains its queue promptly.
    this.#fd ??= unixDatagramSocket({ label: 'notify' })
    sendDatagram(this.#fd, Buffer.from(assignments.join('\n') + '\n', 'utf8'), this.#sockaddr)
    return true
  }

  /** Start-up (or a reload) is finished: Type=notify units become active on READY=1. */
  ready(status?: string): boolean {
    return status === undefined ? this.notify('READY=1') : this.notify('READY=1', `STATUS=${oneLine(status)}`)
  }

  /** A one-line status that `systemctl status` shows. */
  status(line: string): boolean {
    return this.notify(`STATUS=${oneLine(line)}`)
  }

  /**
   * A reload began; send ready() when it is done. systemd 253+ (Type=notify-reload) requires MONOTONIC_USEC, the
   * CLOCK_MONOTONIC time of the reload, to tell this reload from an earlier one; older managers ignore it.
   */
  reloading(status?: string): boolean {
    const lines = ['RELOADING=1', `MONOTONIC_USEC=${clockMonotonicUsec()}`]
    if (status !== undefined) lines.push(`STATUS=${oneLine(status)}`)
    return this.notify(...lines)
  }

  /** Shutdown began: the manager shows the unit as deactivating instead of waiting on a silent process. */
  stopping(status?: string): boolean {
    return status === undefined ? this.notify('STOPPING=1') : this.notify('STOPPING=1', `STATUS=${oneLine(status)}`)
  }

  /** A keep-alive for WatchdogSec= (systemd.service(5)). See startWatchdog for when to send it. */
  watchdog(): boolean {
    return this.notify('WATCHDOG=1')
  }

  /** Asks for more time for the current start-up, reload or stop (EXTEND_TIMEOUT_USEC, systemd 236+). */
  extendTimeout(ms: number): boolean {
    return this.notify(`EXTEND_TIMEOUT_USEC=${Math.max(0, Math.round(ms * 1000))}`)
  }

  /**
   * How often to send WATCHDOG=1 in ms, or null when the manager expects no pings: half of $WATCHDOG_USEC, as
   * sd_watchdog_enabled(3) recommends, and only when $WATCHDOG_PID is unset or names this process (the variables
   * may have been inherited from a parent that is the one being watched).
   */
  watchdogIntervalMs(): number | null {
    return this.#watchdogUsec === null || this.#sockaddr === null ? null : this.#watchdogUsec / 2000
  }

  /** Closes the socket; later calls send nothing. */
  close(): void {
    this.#closed = true
    this.#fd?.close()
    this.#fd = null
  }
}

/** $WATCHDOG_USEC when it is meant for `pid` (sd_watchdog_enabled(3)), else null. */
function watchdogUsec(env: NodeJS.ProcessEnv, pid: number): number | null {
  const usec = env.WATCHDOG_USEC
  if (!usec || !/^[0-9]+$/.test(usec)) return null
  const n = Number(usec)
  if (!Number.isSafeInteger(n) || n <= 0) return null
  const forPid = env.WATCHDOG_PID
  if (forPid !== undefined && forPid !== '' && forPid !== String(pid)) return null
  return n
}

export interface WatchdogOptions {
  /**
   * The liveness check, called before each ping: true sends WATCHDOG=1, false (or a throw) withholds it. Withheld
   * long enough (WatchdogSec=), systemd kills the daemon with SIGABRT and Restart=on-failure starts a new one.
   */
  alive: () => boolean
  /** Told each time a ping is withheld, with the exception when alive() threw. */
  onWithheld?: (error?: unknown) => void
  /** Told when sending a ping failed. */
  onError?: (error: unknown) => void
}

export interface Watchdog {
  readonly intervalMs: number
  /** Pings sent so far. */
  readonly pings: number
  stop(): void
}

/**
 * Sends WATCHDOG=1 every watchdogIntervalMs() while `alive()` holds: first at once, then on an unref'd interval
 * (a blocked event loop sends nothing, which is the point). A failed check only skips that ping: pings resume if
 * the check recovers before WatchdogSec= runs out, since a short stall is not worth a restart. Null when the
 * manager expects no pings (no WatchdogSec=, or no $NOTIFY_SOCKET).
 */
export function startWatchdog(notifier: Notifier, opts: WatchdogOptions): Watchdog | null {
  const intervalMs = notifier.watchdogIntervalMs()
  if (intervalMs === null) return null
  let pings = 0
  const tick = (): void => {
    let ok: boolean
    try {
      ok = opts.alive()
    } catch (e) {
      opts.onWithheld?.(e)
      return
    }
    if (!ok) {
      opts.onWithheld?.()
      return
    }
    try {
      if (notifier.watchdog()) pings++
    } catch (e) {
      opts.onError?.(e)
    }
  }
  tick()
  const timer = setInterval(tick, Math.max(1, Math.floor(intervalMs)))
  timer.unref()
  return {
    intervalMs,
    get pings() {
      return pings
    },
    stop() {
      clearInterval(timer)
    },
  }
}
