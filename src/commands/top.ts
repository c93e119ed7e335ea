/**
 * `xdplinkd top`: the per-link counters as rates, refreshed every interval, busiest link first, like top and
 * bpftop. Each sample is a `status` request over the control socket (the daemon reads its maps when asked, and only
 * then); the rates come from two consecutive samples (rates.ts).
 *
 * On a terminal the table is redrawn in place on the alternate screen until `q`, Ctrl-C or SIGINT/SIGTERM, and the
 * terminal is given back as it was (main screen, cursor, line mode). Anywhere else (a pipe, a file, a journal) each
 * sample is one block of plain lines with its time, so a log reads as a history.
 */
import { performance } from 'node:perf_hooks'
import { askDaemon } from '../control/client.js'
import type { StatusJson } from '../control/protocol.js'
import { linkRates, rateRows, sampleOf, type LinkRate } from './rates.js'
import { printable, siText, table } from './format.js'
import { isStatus } from './status.js'

/** What top draws on: a terminal has isTTY, columns and rows, and says when they change ('resize'). */
export type TopOutput = NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number }

/** Where `q` comes from: a terminal in raw mode (node:tty ReadStream). */
export type TopInput = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?(raw: boolean): unknown }

export interface TopOptions {
  socket: string
  /** Time between samples. */
  intervalMs: number
  /** Stop after this many tables (each from two samples: `count` + 1 requests); absent: until stopped. */
  count?: number
  out?: TopOutput
  err?: NodeJS.WritableStream
  input?: TopInput
  /** One status answer (the daemon's over the control socket by default); the signal cancels it. */
  status?: (signal: AbortSignal) => Promise<StatusJson>
  /** Monotonic milliseconds (performance.now by default). */
  now?: () => number
  /** The wall-clock time shown with each table (local time on a terminal, ISO 8601 in UTC elsewhere by default). */
  clock?: (terminal: boolean) => string
  /** Stops top when it resolves (SIGINT, SIGTERM, and SIGHUP on a terminal, by default). */
  stop?: Promise<unknown>
}

/** What one table shows. */
export interface TopFrame {
  clock: string
  intervalMs: number
  /** Milliseconds between the two samples the rates come from; null for the first sample (no rates yet). */
  spanMs: number | null
  rates: LinkRate[]
  /** Links whose program keeps no per-link counters (not shown). */
  without: number
  /** Why the last sample failed, while the table shows the one before (terminal only). */
  error?: string
}

const secondsText = (ms: number): string => `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : ms < 1000 ? 2 : 1)} s`

/**
 * A table's lines, without escapes: a heading line, then the rates (a NETNS column once a link of another
 * namespace than host is shown). Pure.
 */
export function topLines(f: TopFrame, terminal: boolean): string[] {
  const links = `${f.rates.length} ${f.rates.length === 1 ? 'link' : 'links'} with per-link counters` + (f.without > 0 ? ` (${f.without} without)` : '')
  const span = f.spanMs === null ? 'first sample, rates from the next' : `rates over ${(f.spanMs / 1000).toFixed(2)} s`
  const keys = terminal ? `, every ${secondsText(f.intervalMs)}; q to quit` : ''
  const lines = [`${f.clock}  ${links}, ${span}${keys}`]
  if (f.error !== undefined) lines.push(`xdplinkd: ${printable(f.error)}`)
  if (f.rates.length === 0) return [...lines, 'no per-link counters: no link runs a program that keeps them']
  const rows = rateRows(f.rates)
  const netns = rows.some((r) => r.netns !== 'host')
  const num = (n: number | null): string => (n === null ? '-' : siText(n))
  const body = table(
    [...(netns ? ['NETNS'] : []), 'NAME', 'ACTION', 'PKT/S', 'BYTES/S'],
    rows.map((r) => [...(netns ? [r.netns] : []), r.name, r.action ?? '-', num(r.packets), num(r.bytes)]),
  )
  return [...lines, ...body.trimEnd().split('\n')]
}

/**
 * One screen of a terminal `columns` wide and `rows` high: from the top left corner, each line cut to the width and
 * cleared to its end, the lines that do not fit left out (said on the last line), the rest of the screen cleared.
 * Pure.
 */
export function topScreen(lines: readonly string[], columns: number, rows: number): string {
  const width = Math.max(1, columns)
  // The last row stays empty: a line written there would scroll the screen on some terminals.
  const room = Math.max(1, rows - 1)
  let shown = lines.slice(0, room)
  if (lines.length > room) shown = [...lines.slice(0, room - 1), `... ${lines.length - room + 1} more lines`]
  return '\x1b[H' + shown.map((l) => [...l].slice(0, width).join('') + '\x1b[K').join('\n') + '\n\x1b[J'
}

/** Enter the alternate screen and hide the cursor; and the way back. */
const ENTER = '\x1b[?1049h\x1b[?25l'
const LEAVE = '\x1b[?25h\x1b[?1049l'

function localClock(): string {
  const d = new Date()
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':')
}

function defaultStop(terminal: boolean): { stop: Promise<unknown>; dispose(): void } {
  const signals: NodeJS.Signals[] = terminal ? ['SIGINT', 'SIGTERM', 'SIGHUP'] : ['SIGINT', 'SIGTERM']
  let handler: () => void = () => {}
  const stop = new Promise<void>((resolve) => {
    handler = resolve
    for (const s of signals) process.on(s, handler)
  })
  return { stop, dispose: () => signals.forEach((s) => process.off(s, handler)) }
}

export async function topCommand(o: TopOptions): Promise<number> {
  const out = o.out ?? process.stdout
  const errOut = o.err ?? process.stderr
  const now = o.now ?? (() => performance.now())
  const terminal = out.isTTY === true
  const clock = (): string => (o.clock ? o.clock(terminal) : terminal ? localClock() : new Date().toISOString())
  const cancel = new AbortController()
  const ask = (signal: AbortSignal): Promise<StatusJson> =>
    askDaemon(o.socket, { cmd: 'status' }, isStatus, { timeoutMs: 10_000, signal, what: 'top' })
  const status = o.status ?? ask
  const signals = o.stop ? { stop: o.stop, dispose: () => {} } : defaultStop(terminal)
  let stopped = false
  const stopping = new Promise<void>((resolve) => {
    const stop = (): void => {
      stopped = true
      cancel.abort()
      resolve()
    }
    void signals.stop.then(stop)
    cancel.signal.addEventListener('abort', stop)
  })
  const finish = (): void => cancel.abort()

  // Keys only from a terminal: a pipe on stdin is someone else's input, not ours to read.
  const stdin = o.input ?? (terminal ? (process.stdin as TopInput) : undefined)
  const input = stdin?.isTTY ? stdin : undefined
  const keys = (d: Buffer | string): void => {
    // q, Q, and Ctrl-C and Ctrl-D, which raw mode delivers as bytes instead of signals.
    if (/[qQ\x03\x04]/.test(typeof d === 'string' ? d : d.toString('latin1'))) finish()
  }

  let frame: TopFrame | null = null
  const draw = (): void => {
    if (!frame) return
    const lines = topLines(frame, terminal)
    // A terminal that does not know its size says 0 columns and rows (a pty nobody sized): drawn as 80x24.
    out.write(terminal ? topScreen(lines, out.columns || 80, out.rows || 24) : lines.join('\n') + '\n\n')
  }

  try {
    // The first sample before the terminal is touched: a daemon that cannot be asked is one line and exit 1.
    const first = await Promise.race([status(cancel.signal), stopping])
    if (!first) return 0
    const firstSample = sampleOf(now(), first.links)
    let prev = firstSample.sample
    let raw = false
    // A reader that went away (`xdplinkd top | head`): stop, as at `q`.
    out.on('error', finish)
    try {
      if (terminal) {
        out.write(ENTER)
        if (input?.setRawMode) {
          input.setRawMode(true)
          raw = true
        }
        input?.on('data', keys)
        input?.resume()
        out.on('resize', draw)
        const r = linkRates(null, prev)
        frame = { clock: clock(), intervalMs: o.intervalMs, spanMs: null, rates: r.ok ? r.value : [], without: firstSample.without }
        draw()
      }
      let shown = 0
      let due = now() + o.intervalMs
      while (!stopped && (o.count === undefined || shown < o.count)) {
        await sleep(due - now(), stopping)
        if (stopped) break
        // A late tick (a slow answer, a suspended laptop) is not made up for: the next one is an interval on.
        due = Math.max(due + o.intervalMs, now() + o.intervalMs / 2)
        let answer: StatusJson | void
        try {
          answer = await Promise.race([status(cancel.signal), stopping])
        } catch (e) {
          if (stopped) break
          const message = (e as Error).message
          if (terminal && frame) {
            frame = { ...frame, clock: clock(), error: message }
            draw()
          } else errOut.write(`xdplinkd: ${message}; asking again in ${secondsText(o.intervalMs)}\n`)
          continue
        }
        if (!answer) break
        const next = sampleOf(now(), answer.links)
        const r = linkRates(prev, next.sample)
        if (!r.ok) {
          errOut.write(`xdplinkd: top: ${r.error}\n`)
          continue
        }
        frame = { clock: clock(), intervalMs: o.intervalMs, spanMs: next.sample.at - prev.at, rates: r.value, without: next.without }
        prev = next.sample
        draw()
        shown++
      }
    } finally {
      // The error listener stays: a write's EPIPE may come after the last write.
      if (terminal) {
        out.off('resize', draw)
        input?.off('data', keys)
        if (raw) input!.setRawMode!(false)
        input?.pause()
        out.write(LEAVE)
        // Stopped by --count: the last table stays on the main screen, as `top -n` leaves it.
        if (frame && o.count !== undefined && !stopped) out.write(topLines(frame, false).join('\n') + '\n')
      }
    }
    return 0
  } finally {
    cancel.abort()
    signals.dispose()
  }
}

/** Resolves after `ms`, or as soon as `stopping` does; leaves no timer behind. */
function sleep(ms: number, stopping: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, ms)))), stopping]).finally(() => clearTimeout(timer))
}
