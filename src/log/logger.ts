/**
 * The daemon's logger: one pino logger whose records go where the process runs. Under systemd with stdout connected
 * to the journal, to the journal itself over the native protocol (fields and priorities intact); on a terminal, as
 * readable lines; anywhere else, as pino's JSON lines on stdout. Every destination writes synchronously; the lines
 * of one event-loop turn are written together (coalesce.ts), and whatever is pending is written at exit.
 */
import { fstatSync } from 'node:fs'
import { createRequire } from 'node:module'
import { isatty } from 'node:tty'
import pino, { type DestinationStream, type Logger } from 'pino'
import { TurnCoalescer } from './coalesce.js'
import { DEFAULT_IDENTIFIER, JOURNAL_SOCKET, JournalStream } from './journal.js'

export type LogOutput = 'journal' | 'pretty' | 'json'

export interface LoggerOptions {
  /** pino level name ('info' by default). */
  level?: string
  /**
   * 'auto' (the default) picks by where `fd` leads: 'journal' when $JOURNAL_STREAM names it, 'pretty' on a
   * terminal, 'json' otherwise. A stream receives pino's JSON lines as they are.
   */
  destination?: 'auto' | LogOutput | DestinationStream
  /** Where $JOURNAL_STREAM is read; process.env by default. */
  env?: NodeJS.ProcessEnv
  /** The descriptor the pretty and JSON outputs write to and the journal check looks at; 1 (stdout) by default. */
  fd?: number
  /** The journal's native socket; a test points it at its own. */
  journalSocket?: string
  /** SYSLOG_IDENTIFIER; 'xdplinkd' by default. */
  identifier?: string
}

/**
 * Whether `fd` is the journal stream systemd connected it to. systemd.exec(5): $JOURNAL_STREAM holds "device:inode"
 * (decimal) of that stream socket, and only an fstat that matches both proves that `fd` was not redirected since
 * (a shell pipe in ExecStart=, or a child that inherited the variable but writes to a file). The protocol
 * document compares stderr; stdout is what we would write to instead, and under the default
 * StandardOutput=journal/StandardError=inherit both are the same socket.
 */
export function journalStreamMatches(env: NodeJS.ProcessEnv = process.env, fd = 1): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '')
  if (!m) return false
  let st
  try {
    st = fstatSync(fd, { bigint: true })
  } catch {
    return false
  }
  return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!)
}

/** The output 'auto' means for this environment and descriptor. */
export function detectOutput(env: NodeJS.ProcessEnv = process.env, fd = 1): LogOutput {
  if (journalStreamMatches(env, fd)) return 'journal'
  return isatty(fd) ? 'pretty' : 'json'
}

type PrettyFactory = (opts: Record<string, unknown>) => (input: string) => string

/**
 * pino-pretty's formatter, or null when it is not installed (it is a development dependency: a production install
 * without it prints JSON on a terminal too). Loaded on demand, synchronously, because only a terminal needs it.
 */
function loadPretty(): PrettyFactory | null {
  try {
    const mod = createRequire(import.meta.url)('pino-pretty') as { prettyFactory?: PrettyFactory }
    return mod.prettyFactory ?? null
  } catch {
    return null
  }
}

/** Readable lines, formatted in this thread and written with pino's synchronous SonicBoom (EAGAIN is retried). */
function prettyDestination(fd: number): DestinationStream | null {
  const factory = loadPretty()
  if (!factory) return null
  const format = factory({ colorize: isatty(fd), ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l' })
  const out = new TurnCoalescer(pino.destination({ dest: fd, sync: true }))
  return {
    write(line: string) {
      out.write(format(line))
    },
  }
}

/** The logger and, for the journal output, its stream (so a caller can close it or read its counters). */
export interface CreatedLogger {
  logger: Logger
  output: LogOutput | 'stream'
  journal: JournalStream | null
}

/** Like createLogger, also telling which output was chosen. */
export function createLoggerWithOutput(opts: LoggerOptions = {}): CreatedLogger {
  const fd = opts.fd ?? 1
  const level = opts.level ?? 'info'
  const dest = opts.destination ?? 'auto'
  if (typeof dest === 'object') return { logger: pino({ level }, dest), output: 'stream', journal: null }
  const output = dest === 'auto' ? detectOutput(opts.env ?? process.env, fd) : dest
  if (output === 'journal') {
    const journal = new JournalStream({
      socketPath: opts.journalSocket ?? JOURNAL_SOCKET,
      identifier: opts.identifier ?? DEFAULT_IDENTIFIER,
    })
    // pid and hostname: journald records _PID and _HOSTNAME itself, from the sender's credentials.
    return { logger: pino({ level, base: null }, journal), output, journal }
  }
  if (output === 'pretty') {
    const pretty = prettyDestination(fd)
    if (pretty) return { logger: pino({ level }, pretty), output, journal: null }
  }
  return { logger: pino({ level }, new TurnCoalescer(pino.destination({ dest: fd, sync: true }))), output: 'json', journal: null }
}

/** The daemon's logger: see LoggerOptions for where records go. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  return createLoggerWithOutput(opts).logger
}
