/**
 * The daemon under test, as an operator runs it: `ip netns exec NS node dist/cli.js run --config FILE`. Its pino
 * lines are parsed as they arrive and stamped with the bench's clock on receipt (`at`, monotonic ms; `wall`, wall ms
 * with µs resolution); pino's own `time` is wall ms with ms resolution.
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { CLI, cliNodeFlags, now, track, wallMs } from './env.mjs'

export class Daemon {
  /**
   * `argv`, when given, is the whole command instead (the image's daemon: `podman start --attach NAME`); its pid is
   * then that command's, not the daemon's.
   * @param {{ns?: string, config?: string, nodeArgs?: string[], logLevel?: string, cwd?: string, argv?: string[]}} o
   */
  constructor(o) {
    this.o = o
    this.lines = []
    this.stderr = ''
    this.waiters = new Set()
    this.exit = null
  }

  start() {
    const { ns, config, logLevel = 'info', cwd } = this.o
    // As the service runs it (the file's own node flags), then XDPL_BENCH_NODE_ARGS (experiments), then the part's.
    const nodeArgs = [...cliNodeFlags(), ...(process.env.XDPL_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []), ...(this.o.nodeArgs ?? [])]
    // `ip netns exec` execs node in place: the child's pid is the daemon's.
    const argv = this.o.argv ?? ['ip', 'netns', 'exec', ns, process.execPath, ...nodeArgs, CLI, 'run', '--config', config, '--insecure-paths', '--log-level', logLevel]
    this.t0 = now()
    this.child = track(spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd, env: { ...process.env, ...this.o.env } }))
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      const at = now()
      let msg
      try {
        msg = JSON.parse(line)
      } catch {
        msg = { msg: line, unparsed: true }
      }
      const rec = { at, wall: wallMs(at), msg }
      this.lines.push(rec)
      for (const w of [...this.waiters]) w.line(rec)
    })
    this.child.stderr.on('data', (d) => (this.stderr += d))
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.exit = { code, signal }
        for (const w of [...this.waiters]) w.exit()
        resolve(this.exit)
      }),
    )
    return this
  }

  get pid() {
    return this.child.pid
  }

  /** Warnings and errors the daemon logged (pino level >= 40). */
  problems() {
    // The bench runs the daemon with --insecure-paths (its temp dirs are not root-only paths), which the daemon warns of.
    return this.lines.filter((r) => (r.msg.level ?? 0) >= 40 && !String(r.msg.msg).startsWith('--insecure-paths'))
  }

  attaches() {
    return this.lines.filter((r) => r.msg.action === 'attach')
  }

  /**
   * Resolves with the first line (from `from` on, then as they arrive) for which `pred` holds. Rejects on timeout
   * or when the daemon exits first, with its stderr and last lines.
   */
  waitFor(pred, { timeoutMs = 30000, from = 0, what = 'a log line' } = {}) {
    for (let i = from; i < this.lines.length; i++) if (pred(this.lines[i])) return Promise.resolve(this.lines[i])
    return new Promise((resolve, reject) => {
      const w = {
        line: (rec) => {
          if (pred(rec)) done(null, rec)
        },
        exit: () => done(new Error(`daemon exited (${this.exit.code ?? this.exit.signal}) while waiting for ${what}${this.tail()}`)),
      }
      const timer = setTimeout(() => done(new Error(`timed out after ${timeoutMs} ms waiting for ${what}${this.tail()}`)), timeoutMs)
      const done = (err, rec) => {
        clearTimeout(timer)
        this.waiters.delete(w)
        if (err) reject(err)
        else resolve(rec)
      }
      this.waiters.add(w)
      if (this.exit) w.exit()
    })
  }

  /** The attach line of the last of `names` to be attached, from line `from` on. */
  lastAttach(names, { from = 0, timeoutMs = 30000, what = `attach lines for ${names.length} links` } = {}) {
    const want = new Set(names)
    return this.waitFor((r) => r.msg.action === 'attach' && want.delete(r.msg.ifname) && want.size === 0, { from, timeoutMs, what })
  }

  /** The `started: ...` line (after the first full reconcile). */
  started(timeoutMs = 60000) {
    return this.waitFor((r) => typeof r.msg.msg === 'string' && r.msg.msg.startsWith('started:'), { timeoutMs, what: 'the started line' })
  }

  tail() {
    const last = this.lines.slice(-5).map((r) => JSON.stringify(r.msg))
    return `\n  stderr: ${this.stderr.trim().slice(-800) || '(empty)'}\n  last lines:\n    ${last.join('\n    ') || '(none)'}`
  }

  /** SIGTERM, then SIGKILL after `timeoutMs`. Resolves with the exit status. */
  async stop(timeoutMs = 15000) {
    if (!this.child || this.exit) return this.exit
    this.child.kill('SIGTERM')
    const t = setTimeout(() => this.exit || this.child.kill('SIGKILL'), timeoutMs)
    const e = await this.exited
    clearTimeout(t)
    return e
  }
}
