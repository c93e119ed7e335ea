/**
 * Running the real daemon for kernel tests: `xdplinkd run` inside a private namespace, with its config, objects and
 * a private bpffs in a temporary directory, its pino lines collected, and helpers to read what the kernel says.
 */
import { execFileSync, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import type { StatusJson } from '../../src/control/protocol.js'
import { buildObjects, tempBpffs, type Objects } from '../helpers/bpf.js'
import { CLI, lines, makeNetns, waitFor, type Netns } from './netns.js'

export interface Workdir {
  dir: string
  bpffs: string
  objects: Objects
  /** Copies a built object into the workdir (where the daemon's config points), returns its path. */
  object(name: 'xdp_pass' | 'xdp_drop' | 'xdp_blocklist', as?: string): string
  /** Compiles C source into an object in the workdir. */
  compile(source: string, as: string): string
  /**
   * Writes the config file (root-owned, 0644, in a 0700 temp dir: passes the strict path checks), with a
   * control socket in the workdir unless the YAML names one.
   */
  config(yaml: string): string
  configPath: string
}

export function workdir(t: Test): Workdir {
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-daemon-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bpffs = tempBpffs(t)
  const objects = buildObjects(t)
  const configPath = join(dir, 'config.yaml')
  return {
    dir,
    bpffs,
    objects,
    configPath,
    object(name, as = `${name}.o`) {
      const p = join(dir, as)
      // a rename over the old file, like a build that writes elsewhere and moves the result in place
      const tmp = `${p}.tmp`
      copyFileSync(objects.bundled(name), tmp)
      chmodSync(tmp, 0o644)
      execFileSync('mv', ['-f', tmp, p])
      return p
    },
    compile(source, as) {
      const c = join(dir, `${as}.c`)
      writeFileSync(c, source)
      const p = join(dir, as)
      const tmp = `${p}.tmp`
      execFileSync('clang', ['-O2', '-g', '-target', 'bpf', '-I/usr/include/x86_64-linux-gnu', '-c', c, '-o', tmp])
      chmodSync(tmp, 0o644)
      execFileSync('mv', ['-f', tmp, p])
      return p
    },
    config(yaml) {
      // each test's daemon gets its own control socket: tests run in parallel
      if (!/^control-socket:/m.test(yaml)) yaml = `${yaml.replace(/\n*$/, '\n')}control-socket: ${join(dir, 'control.sock')}\n`
      writeFileSync(configPath, yaml, { mode: 0o644 })
      return configPath
    },
  }
}

export interface Running {
  child: ChildProcess
  /** Parsed pino records so far. */
  logs(): Record<string, unknown>[]
  stderr: string[]
  waitLog(pred: (r: Record<string, unknown>) => boolean, what: string, timeoutMs?: number): Promise<Record<string, unknown>>
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
  exited: Promise<number | null>
}

/** `xdplinkd run` started and left to it: for a test that acts before start-up is over. */
export function spawnDaemon(ns: Netns, configPath: string, extra: string[] = [], env: Record<string, string> = {}, wrapper: string[] = []): Running {
  // JOURNAL_STREAM is dropped: a test run under systemd must not send the daemon's records to the real journal
  const { JOURNAL_STREAM: _, ...base } = process.env
  // A wrapper (setpriv, say) execs node in its place: the child's pid stays the daemon's.
  const argv = [...wrapper, 'node', CLI, 'run', '--config', configPath, '--log-level', 'debug', ...extra]
  const child = ns.spawn(argv[0]!, argv.slice(1), { env: { ...base, ...env } })
  const out = lines(child.stdout!)
  const stderr = lines(child.stderr!)
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)))
  const logs = (): Record<string, unknown>[] =>
    out.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>]
      } catch {
        return []
      }
    })
  const run: Running = {
    child,
    logs,
    stderr,
    exited,
    async waitLog(pred, what, timeoutMs = 20000) {
      let found: Record<string, unknown> | undefined
      await waitFor(() => {
        if (child.exitCode !== null) throw new Error(`daemon exited (${child.exitCode}) while waiting for ${what}: ${out.join('\n')}\n${stderr.join('\n')}`)
        found = logs().find(pred)
        return found !== undefined
      }, what, timeoutMs)
      return found!
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal)
      return exited
    },
  }
  return run
}

/** `xdplinkd run`, once it has logged `started:` (every link reconciled). */
export async function startDaemon(ns: Netns, configPath: string, extra: string[] = [], env: Record<string, string> = {}, wrapper: string[] = []): Promise<Running> {
  const run = spawnDaemon(ns, configPath, extra, env, wrapper)
  await run.waitLog((r) => typeof r.msg === 'string' && r.msg.startsWith('started:'), 'the daemon to start')
  return run
}

export interface Attached {
  mode: 'native' | 'generic' | 'offload'
  id: number
}

/** A daemon managing va (of the pair va/wa) with xdp_pass from the workdir: the program id it attached as `old`. */
export async function oneManagedLink(t: Test) {
  const ns = makeNetns(t)
  const w = workdir(t)
  const obj = w.object('xdp_pass')
  ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'wa')
  const d = await startDaemon(ns, w.config(`settle: 10ms\nbpffs: ${w.bpffs}\nattach:\n  - interfaces: ["v*"]\n    object: ${obj}\n    mode: generic\n`))
  t.teardown(() => d.stop('SIGKILL'))
  return { ns, w, obj, d, old: xdpOf(ns, 'va')!.id }
}

/** What `ip -j -d link show` says runs on a link (null: nothing). */
export function xdpOf(ns: Netns, dev: string): Attached | null {
  const [l] = ns.ipJson<{ xdp?: { mode: number; prog?: { id: number } } }[]>('-d', 'link', 'show', 'dev', dev)
  if (!l?.xdp?.prog) return null
  return { mode: ({ 1: 'native', 2: 'generic', 3: 'offload' } as const)[l.xdp.mode as 1 | 2 | 3], id: l.xdp.prog.id }
}

export function actions(r: Running, action?: string): Record<string, unknown>[] {
  return r.logs().filter((l) => l.action !== undefined && (action === undefined || l.action === action))
}

/** The built CLI, run inside the namespace; never throws (read status, stdout and stderr). */
export function cliIn(ns: Netns, ...args: string[]): SpawnSyncReturns<string> {
  return spawnSync('ip', ['netns', 'exec', ns.name, process.execPath, CLI, ...args], { encoding: 'utf8' })
}

/** `xdplinkd status --json` of the daemon behind `socket`; throws when it does not answer. */
export function statusOf(ns: Netns, socket: string): StatusJson {
  const r = cliIn(ns, 'status', '--json', '--socket', socket)
  if (r.status !== 0) throw new Error(`status exited ${r.status}: ${r.stderr}`)
  return JSON.parse(r.stdout) as StatusJson
}
