/**
 * The namespace watch: finds the namespace files of the watched directories (/run/netns for ip netns, containerd and
 * CRI-O; /run/docker/netns for Docker) as they come and go, without polling, and reports the namespaces they make
 * (registry.ts) as events.
 *
 * inotify (fs.watch, one watch per directory) says when an entry appears, goes or is renamed. It says nothing of
 * mounts, and a namespace file is a bind mount: `ip netns add` creates an empty file, then mounts the namespace on it
 * (iproute2 ip/ipnetns.c netns_add), Docker and the CNI plugins likewise. A file seen while it is still a plain file
 * is looked at again after 5 ms, doubling to 1 s, for 10 s; then one warning names it, and it is looked at again only
 * when it is created again. Nothing else runs on a timer. libuv drops inotify's queue overflow (IN_Q_OVERFLOW names
 * no watch, and uv__inotify_read skips what it cannot match), so changes beyond fs.inotify.max_queued_events (16384)
 * queued before the loop reads them would go unseen.
 *
 * A file is opened once (O_RDONLY, O_NOFOLLOW: a symlink is refused, not followed; O_NONBLOCK: a FIFO cannot hang
 * the open; O_CLOEXEC from libuv) and judged on that descriptor: nsfs (fstatfs), a network namespace
 * (NS_GET_NSTYPE). What is kept is a descriptor of the same namespace that holds no mount (ffi/netns.ts
 * reopenNetns: with one opened through the bind mount, a plain umount of it fails with EBUSY), and its identity is
 * fstat's. One descriptor per namespace is kept while a file binds it, and closed when the last one goes or at
 * close(), so the kernel can free the namespace; the daemon's own namespace needs none. NetnsStuckError from the
 * reopen is not caught: it is fatal.
 *
 * A directory is judged by the path rules before it is watched (config/secure-path.ts walkPath, `want: 'dir'`):
 * whoever may write it may bind any namespace there, or swap a namespace's file for another. A refused directory is
 * a warning and is not watched; the caller decides whether that is fatal (start() says). A directory that does not
 * exist yet is waited for by watching its nearest existing ancestor for the next component; one that is removed or
 * moved away releases its namespaces and is waited for again.
 */
import { EventEmitter } from 'node:events'
import { constants, fstatSync, openSync, readdirSync, statSync, watch, type FSWatcher } from 'node:fs'
import { posix } from 'node:path'
import { ERRNO, SyscallError } from '../ffi/errno.js'
import { Fd } from '../ffi/fd.js'
import { CLONE_NEWNET } from '../ffi/libc.js'
import { NetnsStuckError, isNsfs, nsType, ownNetnsIdentity, reopenNetns } from '../ffi/netns.js'
import { OVERRIDE_HINT } from '../config/permissions.js'
import { walkOptions, walkPath, type PathFinding } from '../config/secure-path.js'
import { DEFAULT_NETNS_DIRS } from '../config/types.js'
import { realClock, type Clock } from '../reconcile/debounce.js'
import type { Result } from '../result.js'
import {
  boundNamespaces,
  namespaceId,
  newRegistry,
  observe,
  type Change,
  type Namespace,
  type NetnsEvent,
  type NsIdentity,
  type RegistryState,
} from './registry.js'


/** How a file that is not (yet) a namespace is looked at again. */
export interface RetryPolicy {
  firstMs: number
  maxMs: number
  /** After this long the file gets one warning and is left alone until it is created again. */
  giveUpMs: number
}

export const DEFAULT_RETRY: RetryPolicy = { firstMs: 5, maxMs: 1000, giveUpMs: 10_000 }

export interface NetnsWatchLog {
  warn(fields: Record<string, unknown>, message: string): void
}

export interface NetnsWatchOptions {
  /** The directories of namespace files (the config's `netns-dirs`); its default when absent. */
  dirs?: readonly string[]
  /** --insecure-paths: the directories' owners and modes are not judged (the default checkDir). */
  insecurePaths?: boolean
  log: NetnsWatchLog
  /**
   * Judges a directory before it is watched: its real path, or what is wrong. Default: walkPath with the path rules
   * of this process (`want: 'dir'`). A finding with code ENOENT (and nothing unsafe) means "not there yet".
   */
  checkDir?: (dir: string) => Promise<Result<string, PathFinding[]>>
  clock?: Clock
  retry?: Partial<RetryPolicy>
  /** The daemon's own namespace; the thread's (ffi/netns.ts ownNetnsIdentity) by default. */
  host?: NsIdentity
}

export type DirState =
  /** Watched: its files are namespaces as they come. */
  | { kind: 'watching'; path: string }
  /** Not there yet: `ancestor` is watched for it to appear. */
  | { kind: 'waiting'; ancestor: string }
  /** Refused by the path rules, or unusable (not a directory, cannot be watched): not watched. */
  | { kind: 'refused'; reason: string }
  | { kind: 'starting' }
  | { kind: 'closed' }

export interface DirStatus {
  dir: string
  state: DirState
}

export interface NetnsWatchEvents {
  netns: [NetnsEvent]
}

/** What a look at one file found. */
type Look =
  | { kind: 'namespace'; identity: NsIdentity; fd: Fd }
  | { kind: 'pending' }
  | { kind: 'gone' }
  /** Not a namespace and never will be (a symlink, a directory, another kind of namespace): one warning. */
  | { kind: 'unusable'; reason: string }

interface Dir {
  readonly dir: string
  state: DirState
  watcher: FSWatcher | null
  /** Bumped whenever the directory is armed again: a stale arm's late answer is dropped. */
  generation: number
}

interface Retry {
  first: number
  attempt: number
  timer: { cancel(): void } | null
  gaveUp: boolean
}

export class NetnsWatch extends EventEmitter<NetnsWatchEvents> {
  readonly #o: NetnsWatchOptions
  readonly #retry: RetryPolicy
  readonly #dirs: Dir[]
  #state: RegistryState
  /** One descriptor per namespace a present file binds (not the daemon's own), by namespace id. */
  readonly #fds = new Map<string, Fd>()
  /** Files to look at in the next flush. */
  readonly #dirty = new Set<string>()
  #flushScheduled = false
  readonly #retries = new Map<string, Retry>()
  /** Files found unusable, with the reason warned of (not repeated while it stays the same). */
  readonly #unusable = new Map<string, string>()
  #closed = false

  constructor(o: NetnsWatchOptions) {
    super()
    this.#o = o
    this.#retry = { ...DEFAULT_RETRY, ...o.retry }
    this.#dirs = [...new Set(o.dirs ?? DEFAULT_NETNS_DIRS)].map((dir) => ({ dir, state: { kind: 'starting' }, watcher: null, generation: 0 }))
    this.#state = newRegistry(o.host ?? ownNetnsIdentity())
  }

  get #clock(): Clock {
    return this.#o.clock ?? realClock
  }

  /**
   * Judges and watches every directory and looks at the files in them; resolves when that is done (files still
   * being mounted are looked at again later) with each directory's state: a `refused` one is not watched. The
   * directories are taken in the order given, one after the other: a name that files in two of them have goes to
   * the first directory's (registry.ts: the oldest file names a namespace), not to whichever check finished first.
   */
  async start(): Promise<DirStatus[]> {
    for (const d of this.#dirs) await this.#arm(d)
    return this.dirs()
  }

  dirs(): DirStatus[] {
    return this.#dirs.map((d) => ({ dir: d.dir, state: d.state }))
  }

  /** Every namespace, the daemon's own (`host`) first. */
  namespaces(): Namespace[] {
    return [...this.#state.namespaces.values()]
  }

  /**
   * The descriptor of a namespace (not `host`), for withNetns; owned by the watch: valid until the namespace's
   * `removed` event has been emitted, or close().
   */
  fdOf(id: string): Fd | null {
    return this.#fds.get(id) ?? null
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    for (const d of this.#dirs) {
      this.#unwatch(d)
      d.state = { kind: 'closed' }
      d.generation++
    }
    for (const r of this.#retries.values()) r.timer?.cancel()
    this.#retries.clear()
    this.#dirty.clear()
    for (const fd of this.#fds.values()) fd.close()
    this.#fds.clear()
  }

  async #arm(d: Dir): Promise<void> {
    const generation = ++d.generation
    this.#unwatch(d)
    const checked = await (this.#o.checkDir ?? defaultCheckDir(this.#o.insecurePaths))(d.dir)
    if (this.#closed || generation !== d.generation) return
    if (!checked.ok) {
      const f = checked.error
      if (!f.some((x) => x.unsafe) && f.some((x) => x.code === 'ENOENT')) return this.#awaitDir(d)
      const unsafe = f.some((x) => x.unsafe)
      const why = f.map((x) => x.text).join('; ')
      const reason = unsafe ? `refusing to watch ${d.dir} for network namespaces: ${why}${OVERRIDE_HINT}` : `cannot watch ${d.dir} for network namespaces: ${why}`
      return this.#refuse(d, reason)
    }
    const path = checked.value
    let identity: { dev: number; ino: number }
    try {
      identity = statSync(path)
      d.watcher = watch(path, { persistent: false }, (event, name) => this.#onEvent(d, path, identity, event, name))
      d.watcher.on('error', () => this.#lost(d, path))
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return this.#awaitDir(d)
      return this.#refuse(d, `cannot watch ${d.dir} for network namespaces: ${(e as Error).message}`)
    }
    d.state = { kind: 'watching', path }
    // Listed after the watch is in place: a file made in between is seen by both, and looked at once.
    let names: string[]
    try {
      names = readdirSync(path)
    } catch {
      return this.#lost(d, path)
    }
    for (const name of names) this.#dirty.add(posix.join(path, name))
    this.#flush()
  }

  #refuse(d: Dir, reason: string): void {
    d.state = { kind: 'refused', reason }
    this.#o.log.warn({ dir: d.dir }, reason)
  }

  /** Watches the nearest existing ancestor of a directory that is not there, for its next component. */
  #awaitDir(d: Dir): void {
    let child = posix.basename(d.dir)
    let ancestor = posix.dirname(d.dir)
    while (ancestor !== '/' && !isDir(ancestor)) {
      child = posix.basename(ancestor)
      ancestor = posix.dirname(ancestor)
    }
    const generation = d.generation
    const again = (): void => {
      if (!this.#closed && generation === d.generation) void this.#arm(d)
    }
    try {
      d.watcher = watch(ancestor, { persistent: false }, (_event, name) => {
        if (name === null || name === child) again()
      })
      d.watcher.on('error', again)
    } catch (e) {
      return this.#refuse(d, `cannot wait for ${d.dir} to appear: cannot watch ${ancestor}: ${(e as Error).message}`)
    }
    d.state = { kind: 'waiting', ancestor }
    // It may have appeared between the look and the watch.
    if (isDir(posix.join(ancestor, child))) again()
  }

  #onEvent(d: Dir, path: string, identity: { dev: number; ino: number }, event: string, name: string | null): void {
    if (this.#closed) return
    // The directory deleted or moved away (libuv reports IN_DELETE_SELF and IN_MOVE_SELF under the directory's own
    // name: uv__inotify_read), or an ancestor renamed, which inotify does not tell: the path leads elsewhere now.
    let now: { dev: number; ino: number } | null = null
    try {
      now = statSync(path)
    } catch {
      /* gone */
    }
    if (!now || now.dev !== identity.dev || now.ino !== identity.ino) return this.#lost(d, path)
    if (name === null) {
      // No name (Node's typings allow it; libuv always names one): every file of the directory, present or known.
      for (const n of safeReaddir(path)) this.#dirty.add(posix.join(path, n))
      this.#markKnown(path)
      return this.#schedule()
    }
    const file = posix.join(path, name)
    // Created again (or deleted, or renamed): a file given up on, or found unusable, gets a fresh look.
    if (event === 'rename') {
      if (this.#retries.get(file)?.gaveUp) this.#retries.delete(file)
      this.#unusable.delete(file)
    }
    this.#dirty.add(file)
    this.#schedule()
  }

  /** The directory was removed or moved away: its namespaces are released, and it is waited for again. */
  #lost(d: Dir, path: string): void {
    if (this.#closed) return
    this.#unwatch(d)
    this.#markKnown(path)
    this.#flush(path)
    void this.#arm(d)
  }

  /** Every file known in the directory is to be looked at again. */
  #markKnown(path: string): void {
    for (const p of this.#state.files.keys()) if (posix.dirname(p) === path) this.#dirty.add(p)
  }

  #unwatch(d: Dir): void {
    d.watcher?.close()
    d.watcher = null
  }

  #schedule(): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    // After every event of this turn of the loop (libuv hands over all it read at once), so that the two halves of
    // a rename are one batch.
    setImmediate(() => {
      this.#flushScheduled = false
      this.#flush()
    })
  }

  /** Looks at every dirty file (those under `released` are gone whatever is there) and reports what changed. */
  #flush(released?: string): void {
    if (this.#closed || this.#dirty.size === 0) return
    const changes: Change[] = []
    const opened: { id: string; fd: Fd }[] = []
    for (const path of this.#dirty) {
      const look: Look = posix.dirname(path) === released ? { kind: 'gone' } : lookAt(path)
      this.#followUp(path, look)
      switch (look.kind) {
        case 'namespace':
          changes.push({ path, observation: { kind: 'namespace', identity: look.identity } })
          opened.push({ id: namespaceId(look.identity, this.#state.host), fd: look.fd })
          break
        case 'gone':
          changes.push({ path, observation: { kind: 'gone' } })
          break
        default:
          changes.push({ path, observation: { kind: 'pending' } })
      }
    }
    this.#dirty.clear()
    for (const { id, fd } of opened) {
      if (this.#fds.has(id) || id === namespaceId(this.#state.host, this.#state.host)) fd.close()
      else this.#fds.set(id, fd)
    }
    const { state, events } = observe(this.#state, changes)
    this.#state = state
    const bound = boundNamespaces(state)
    try {
      for (const e of events) this.emit('netns', e)
    } finally {
      for (const [id, fd] of this.#fds) {
        if (bound.has(id)) continue
        fd.close()
        this.#fds.delete(id)
      }
    }
  }

  /** Retries for a file that is not a namespace yet, a warning for one that never will be. */
  #followUp(path: string, look: Look): void {
    if (look.kind !== 'pending') {
      const r = this.#retries.get(path)
      r?.timer?.cancel()
      this.#retries.delete(path)
    }
    if (look.kind === 'gone') this.#unusable.delete(path)
    if (look.kind === 'unusable') {
      if (this.#unusable.get(path) !== look.reason) this.#o.log.warn({ path }, `${path} is not used as a network namespace: ${look.reason}`)
      this.#unusable.set(path, look.reason)
    }
    if (look.kind !== 'pending') return
    const now = this.#clock.now()
    let r = this.#retries.get(path)
    if (!r) this.#retries.set(path, (r = { first: now, attempt: 0, timer: null, gaveUp: false }))
    if (r.gaveUp || r.timer) return
    const elapsed = now - r.first
    const { firstMs, maxMs, giveUpMs } = this.#retry
    if (elapsed >= giveUpMs) {
      r.gaveUp = true
      this.#o.log.warn(
        { path },
        `${path} did not become a network namespace within ${giveUpMs} ms (nothing is mounted on it): not managed; looked at again when it is created again`,
      )
      return
    }
    const delay = Math.min(maxMs, firstMs * 2 ** r.attempt, giveUpMs - elapsed)
    r.attempt++
    const retry = r
    retry.timer = this.#clock.setTimer(delay, () => {
      retry.timer = null
      if (this.#closed) return
      this.#dirty.add(path)
      this.#flush()
    })
  }
}

function defaultCheckDir(insecurePaths: boolean | undefined): (dir: string) => Promise<Result<string, PathFinding[]>> {
  return (dir) => walkPath(dir, { ...walkOptions({ insecurePaths }), want: 'dir' })
}

/** Opens a file of a watched directory and judges the descriptor. */
function lookAt(path: string): Look {
  let raw: number
  try {
    raw = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return { kind: 'gone' }
    if (code === 'ELOOP') return { kind: 'unusable', reason: 'it is a symbolic link' }
    return { kind: 'unusable', reason: (e as Error).message }
  }
  const fd = new Fd(raw, path)
  try {
    if (!isNsfs(raw)) {
      const plain = fstatSync(raw).isFile()
      fd.close()
      return plain ? { kind: 'pending' } : { kind: 'unusable', reason: 'it is neither a namespace nor a regular file' }
    }
    if (nsType(raw) !== CLONE_NEWNET) {
      fd.close()
      return { kind: 'unusable', reason: 'it binds a namespace of another kind' }
    }
    const kept = new Fd(reopenNetns(raw), path)
    fd.close()
    const st = fstatSync(kept.raw)
    return { kind: 'namespace', identity: { dev: st.dev, ino: st.ino }, fd: kept }
  } catch (e) {
    fd.close()
    if (e instanceof NetnsStuckError) throw e
    // setns() wants CAP_SYS_ADMIN, and systemd's RestrictNamespaces=yes refuses it too: say what to change.
    if (e instanceof SyscallError && e.errno === ERRNO.EPERM) {
      return { kind: 'unusable', reason: `entering it was refused (${e.message}): xdplinkd needs CAP_SYS_ADMIN, under systemd the netns.conf drop-in` }
    }
    return { kind: 'unusable', reason: (e as Error).message }
  }
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

function safeReaddir(path: string): string[] {
  try {
    return readdirSync(path)
  } catch {
    return []
  }
}
