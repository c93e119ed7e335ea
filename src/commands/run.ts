import { dirname } from 'node:path'
import type { Logger } from 'pino'
import type { Config } from '../config/index.js'
import { Daemon, StartupError, summaryText, type DaemonHooks, type Summary } from '../daemon.js'
import { codeCacheReport } from '../launch/state.js'
import { createLogger } from '../log/logger.js'
import { Notifier, startWatchdog } from '../service/notify.js'

export interface RunOptions {
  configPath: string
  logLevel: string
  insecurePaths: boolean
  /** Receive buffer of the subscribed netlink socket, bytes (RtnlClient's default when absent). */
  rcvbuf?: number
  /** --watch-config: reload when the config file changes. */
  watchConfig?: boolean
  log?: Logger
  notifier?: Notifier
  /** Exit this long after stopping even if a handle is still open (EXIT_GRACE_MS); null: never force an exit. */
  exitGraceMs?: number | null
}

/**
 * `xdplinkd run`: the daemon in the foreground. SIGHUP reloads; SIGTERM or SIGINT stops it (exit 0). A config error
 * exits 78, an object that fails to load 65, anything else 1. Under systemd it speaks sd_notify (READY=1 only after
 * the first full reconcile, STATUS=, RELOADING=1, STOPPING=1, WATCHDOG=1) and logs to the journal with fields.
 */
export async function runCommand(o: RunOptions): Promise<number> {
  const log = o.log ?? createLogger({ level: o.logLevel })
  logCodeCache(log)
  const notifier = o.notifier ?? new Notifier()
  const status = (s: Summary): string => summaryText(s)
  // A manager that cannot be told must not take the daemon down with it.
  const tell = (fn: () => unknown): void => {
    try {
      fn()
    } catch (e) {
      log.warn({ err: e }, `sd_notify failed: ${(e as Error).message}`)
    }
  }
  let daemon: Daemon | null = null
  // Once the config in force is known: after start-up, and after each reload that was accepted.
  const unchecked = (): void => {
    if (o.insecurePaths && daemon) log.warn(insecurePathsFields(daemon.config), insecurePathsWarning(daemon.config))
  }
  const hooks: DaemonHooks = {
    ready: (s) => {
      unchecked()
      tell(() => notifier.ready(status(s)))
    },
    changed: (s) => tell(() => notifier.status(status(s))),
    reloading: () => tell(() => notifier.reloading('reloading')),
    // READY=1 after a reload whether or not it was accepted: the daemon runs on, on the old config if need be.
    reloaded: (ok, s) => {
      if (ok) unchecked()
      tell(() => notifier.ready(`${ok ? '' : 'reload rejected; '}${status(s)}`))
    },
    stopping: () => tell(() => notifier.stopping('stopping')),
  }
  // A SIGTERM before the daemon exists aborts its opening (Daemon.open closes what it made); after, it stops it. A
  // SIGHUP before it exists is carried out once it has started.
  const opening = new AbortController()
  let stopping: Promise<void> | null = null
  let hupWhileOpening = false
  let watchdog: ReturnType<typeof startWatchdog> = null
  const done = new Promise<void>((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      log.info({ signal: sig }, `${sig}: stopping`)
      watchdog?.stop()
      if (stopping) return
      if (daemon) stopping = daemon.stop().then(resolve)
      else {
        hooks.stopping?.()
        opening.abort()
        stopping = Promise.resolve().then(resolve)
      }
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
    process.on('SIGHUP', () => {
      if (daemon) void daemon.reload('SIGHUP')
      else hupWhileOpening = true
    })
  })
  try {
    daemon = await Daemon.open({ configPath: o.configPath, insecurePaths: o.insecurePaths, rcvbuf: o.rcvbuf, watchConfig: o.watchConfig, log, hooks }, {}, opening.signal)
    if (daemon && !stopping) await daemon.start()
  } catch (e) {
    await daemon?.stop().catch(() => {})
    if (e instanceof StartupError) log.fatal({ exitCode: e.exitCode }, e.message)
    throw e
  }
  if (!daemon) log.info('stopped')
  // Not once stopping (a SIGTERM during start-up): its timer would keep the stopped daemon alive.
  else if (!stopping) {
    const d = daemon
    watchdog = startWatchdog(notifier, {
      alive: () => d.alive(),
      onWithheld: () => log.warn('watchdog ping withheld: the netlink receive path is not healthy'),
      onError: (e) => log.warn({ err: e }, `sd_notify failed: ${(e as Error).message}`),
    })
    if (hupWhileOpening) void d.reload('SIGHUP')
  }
  await done
  notifier.close()
  const grace = o.exitGraceMs === undefined ? EXIT_GRACE_MS : o.exitGraceMs
  if (grace !== null) exitEvenIfHeld(log, grace)
  return 0
}

/** What --insecure-paths left unchecked, for the journal: the config file, the objects, the socket's directory. */
export function insecurePathsFields(c: Pick<Config, 'path' | 'entries' | 'controlSocket' | 'bpffs'>): {
  config: string
  objects: string[]
  controlSocketDir: string
  bpffs: string
} {
  return { config: c.path, objects: [...new Set(c.entries.map((e) => e.object))], controlSocketDir: dirname(c.controlSocket), bpffs: c.bpffs }
}

/**
 * One line naming everything whose owner and mode --insecure-paths let through unchecked (config/load.ts and
 * control/server.ts check them otherwise): anyone who can write one of them, or a directory on the way, can
 * change what the daemon loads into the kernel as root or answer its CLI.
 */
export function insecurePathsWarning(c: Pick<Config, 'path' | 'entries' | 'controlSocket' | 'bpffs'>): string {
  const f = insecurePathsFields(c)
  const objects = f.objects.length === 0 ? 'no objects' : `${f.objects.length === 1 ? 'the object' : 'the objects'} ${f.objects.join(', ')}`
  return (
    `--insecure-paths: not checked who owns and may write the config file ${f.config}, ${objects}, the control socket's ` +
    `directory ${f.controlSocketDir} and the pin directory ${f.bpffs} with its pins, nor the directories and symlinks on ` +
    'their way (development only)'
  )
}

/** How long a stopped daemon waits by default for the event loop to empty before it exits anyway. */
export const EXIT_GRACE_MS = 2000

/**
 * The process ends when nothing is left in the event loop. A handle left open by mistake after stop() would keep
 * it running until systemd's TimeoutStopSec and a SIGKILL; this timer (unref'd: it keeps nothing alive itself)
 * exits after `ms` instead, and names what was still open so that the mistake gets fixed.
 */
function exitEvenIfHeld(log: Logger, ms: number): void {
  setTimeout(() => {
    log.warn({ handles: process.getActiveResourcesInfo() }, `still running ${ms} ms after stopping: exiting anyway`)
    process.exit()
  }, ms).unref()
}

/**
 * Whether the launcher started the bundle from V8's code cache (launch/bundle.ts). Not from it, start-up takes
 * ~35-45 ms more: worth a line when it was not meant so (node upgraded since the build, the file gone or damaged).
 */
function logCodeCache(log: Logger): void {
  const r = codeCacheReport()
  if (!r) return
  if (r.used) log.debug({ path: r.path }, `started from V8's code cache ${r.path}`)
  else if (process.env.XDPLINKD_CODE_CACHE === 'off') log.debug({ path: r.path }, `code cache ${r.path}: ${r.why}`)
  else log.info({ path: r.path, why: r.why }, `code cache ${r.path} not used: ${r.why}; start-up is slower (npm run build makes a new one)`)
}
