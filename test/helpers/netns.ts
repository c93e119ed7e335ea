/**
 * Private network namespaces for kernel tests. Every test that touches the kernel makes its own namespace, does its
 * work inside it and removes it (with every link in it) on teardown, even when the test failed.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readlinkSync } from 'node:fs'
import type { Test } from 'tap'

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

/** tap's `skip` option for kernel tests: a reason where the user is not root, false elsewhere. */
export const needsRoot: string | false = isRoot ? false : 'needs root (creates network namespaces and XDP attachments)'

export interface Netns {
  name: string
  /** Runs a command inside the namespace and returns its stdout. Throws with stderr on failure. */
  exec(cmd: string, args: string[], opts?: { input?: string }): string
  /** `ip -n NAME ...` */
  ip(...args: string[]): string
  /** `ip -n NAME -j ...` parsed. */
  ipJson<T = unknown>(...args: string[]): T
  /** Starts a long-running process inside the namespace (killed on teardown if still running). */
  spawn(cmd: string, args: string[], opts?: SpawnOptions): ChildProcess
}

/**
 * Cleanups that must run even when tap kills the test process (on its timeout it sends SIGTERM, and teardowns do not
 * run then): namespaces and mounts would outlive the run.
 */
const lastResort = new Set<() => void>()
let lastResortInstalled = false
export function onExitCleanup(fn: () => void): () => void {
  if (!lastResortInstalled) {
    lastResortInstalled = true
    process.once('exit', () => {
      for (const f of lastResort) {
        try {
          f()
        } catch {
          /* best effort */
        }
      }
    })
    process.once('SIGTERM', () => process.exit(143))
  }
  lastResort.add(fn)
  return () => void lastResort.delete(fn)
}

export function makeNetns(t: Test, prefix = 'xdpl'): Netns {
  const name = `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`
  execFileSync('ip', ['netns', 'add', name])
  const children: ChildProcess[] = []
  const killChildren = (): void => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  }
  const forget = onExitCleanup(() => {
    killChildren()
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' })
  })
  t.teardown(() => {
    killChildren()
    try {
      // Quiet: a test that deleted it itself (a namespace going is what it tests) leaves ip nothing to remove.
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' })
    } catch {
      /* already gone */
    }
    forget()
  })
  const exec = (cmd: string, args: string[], opts: { input?: string } = {}): string =>
    execFileSync('ip', ['netns', 'exec', name, cmd, ...args], {
      encoding: 'utf8',
      input: opts.input,
      stdio: ['pipe', 'pipe', 'pipe'],
      maxBuffer: 256 * 1024 * 1024,
    })
  const ns: Netns = {
    name,
    exec,
    ip: (...args) =>
      execFileSync('ip', ['-n', name, ...args], { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024 }),
    ipJson: <T>(...args: string[]) => JSON.parse(ns.ip('-j', ...args) || 'null') as T,
    spawn(cmd, args, opts = {}) {
      const c = spawn('ip', ['netns', 'exec', name, cmd, ...args], { stdio: 'pipe', ...opts })
      children.push(c)
      return c
    },
  }
  // loopback up so that a namespace behaves like a host
  ns.ip('link', 'set', 'lo', 'up')
  return ns
}

/** Absolute path of the built CLI (npm test builds before running tap). */
export const CLI = new URL('../../dist/cli.js', import.meta.url).pathname
/** Absolute path of the repository. */
export const ROOT = new URL('../../', import.meta.url).pathname

/** Resolves when `pred` holds, checking every `everyMs`; rejects with `what` after `timeoutMs`. */
export async function waitFor(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 20000, everyMs = 25): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await pred()) return
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Collects a child's output line by line. */
export function lines(stream: NodeJS.ReadableStream): string[] {
  const out: string[] = []
  let rest = ''
  stream.setEncoding('utf8')
  stream.on('data', (d: string) => {
    rest += d
    const parts = rest.split('\n')
    rest = parts.pop()!
    out.push(...parts)
  })
  return out
}

/**
 * A process in a network namespace of its own (`unshare --net sleep`), as a container runtime makes one; resolves
 * once the namespace is there (its /proc/PID/ns/net differs from ours). Killed on teardown.
 */
export async function unshareNet(t: Test): Promise<ChildProcess> {
  const child = spawn('unshare', ['--net', 'sleep', '1000'], { stdio: 'ignore' })
  t.teardown(() => void child.kill('SIGKILL'))
  const own = readlinkSync('/proc/self/ns/net')
  await waitFor(() => {
    try {
      return readlinkSync(`/proc/${child.pid}/ns/net`) !== own
    } catch {
      return false
    }
  }, 'unshare --net')
  return child
}
