/**
 * The network namespaces other than the daemon's own that it manages: which ones, and the life of each.
 *
 * A namespace is managed while a file in a watched directory binds it (watch.ts) and some entry's `netns` matches
 * its name: it gets a unit (unit.ts) whose connections are opened inside it. One that no entry names costs no socket
 * (and is not held alive by one). One that an entry comes to name (a reload, a rename) is managed from then on; one
 * that no entry names any more has our programs detached first, as a link that leaves the config has, and is then
 * released. One whose file goes is released quietly: its requests in flight are cut off (not errors), its sockets
 * closed, so that the kernel can free it (a netlink socket holds its namespace alive).
 *
 * The daemon decides what each namespace wants and how a unit is made; this module decides when.
 */
import type { Logger } from 'pino'
import { NetnsStuckError } from '../ffi/netns.js'
import type { Clock } from '../reconcile/debounce.js'
import type { Desire } from '../reconcile/desire.js'
import { ignoredText, type Namespace, type NetnsEvent } from './registry.js'
import type { NamespaceView, NetnsUnit } from './unit.js'
import { NetnsWatch } from './watch.js'

/** What the config in force asks of the namespaces, and how their units are made. */
export interface NamespacePolicy {
  /** The directories of namespace files; null: no entry names another namespace, so none is watched. */
  dirs: readonly string[] | null
  /** Whether some entry is for the namespace of this name. */
  wanted(name: string): boolean
  /** What the links of the namespace of this name should run. */
  desire(name: string): Desire
  /** A desire that matches no link: ours are detached. */
  none(): Desire
}

export interface ManagedNamespacesOptions {
  log: Logger
  insecurePaths?: boolean | undefined
  clock?: Clock | undefined
  /**
   * Makes a namespace's unit, its connections opened inside the namespace `nsFd` names, planning with `desire`;
   * `name` is asked at each line it logs (a rename changes it). Throws when the connections cannot be opened.
   */
  unit(nsFd: number, name: () => string, log: Logger, desire: Desire): NetnsUnit
  /** Something a summary counts changed (a namespace released). */
  changed(): void
  /**
   * A namespace was let go (its file went, no entry names it, its directory is no longer watched): `inode` is its
   * nsfs inode number, which the kernel gives the next namespace once this one is freed.
   */
  released?(inode: number): void
}

/** A managed namespace: its unit and its first reconcile. */
interface Managed {
  ns: Namespace
  unit: NetnsUnit
  started: Promise<void>
  /** No entry is for it any more: our programs are being detached, then it is released. */
  retiring: boolean
}

export class ManagedNamespaces {
  readonly #o: ManagedNamespacesOptions
  /** By namespace id (`net:[inode]`). */
  readonly #managed = new Map<string, Managed>()
  #watch: NetnsWatch | null = null
  #dirs = ''
  /** Set by the first follow(), before anything is watched. */
  #policy: NamespacePolicy | null = null
  #closed = false

  constructor(o: ManagedNamespacesOptions) {
    this.#o = o
  }

  /**
   * Follows the config in force (start-up, reload): starts or stops watching, manages and releases namespaces, and
   * gives every managed one its new desire. Resolves when the namespaces present have had their first reconcile.
   */
  async follow(policy: NamespacePolicy, settleMs?: number, maxSettleMs?: number): Promise<void> {
    this.#policy = policy
    for (const m of this.#managed.values()) {
      if (!m.retiring) m.unit.reconciler.setDesire(policy.desire(m.ns.name), settleMs, maxSettleMs)
    }
    const dirs = JSON.stringify(policy.dirs)
    if (this.#watch && dirs !== this.#dirs) {
      this.#watch.close()
      this.#watch = null
      // No entry names another namespace any more: ours are detached from each first, as from one that no entry
      // names. Other directories: what the old ones bound is let go, as if its files went.
      for (const id of [...this.#managed.keys()]) {
        if (policy.dirs === null) this.#retire(id, policy)
        else this.#release(id, 'namespaces are no longer watched')
      }
    }
    if (this.#watch) this.#sync()
    if (policy.dirs === null || this.#watch || this.#closed) return
    const watch = new NetnsWatch({ dirs: policy.dirs, insecurePaths: this.#o.insecurePaths, log: this.#o.log, clock: this.#o.clock })
    this.#watch = watch
    this.#dirs = dirs
    watch.on('netns', (e) => this.#on(e))
    // The files present are looked at before start() resolves: their namespaces are managed by then.
    const status = await watch.start()
    for (const d of status) if (d.state.kind === 'watching') this.#o.log.info({ dir: d.dir }, `watching ${d.dir} for network namespaces`)
    await Promise.all([...this.#managed.values()].map((m) => m.started))
  }

  units(): NetnsUnit[] {
    return [...this.#managed.values()].map((m) => m.unit)
  }

  /** Each managed namespace's unit with its name. */
  named(): { name: string; unit: NetnsUnit }[] {
    return [...this.#managed.values()].map((m) => ({ name: m.ns.name, unit: m.unit }))
  }

  views(): NamespaceView[] {
    return [...this.#managed.values()].map((m) => m.unit.view(m.ns.name, m.ns.identity.ino))
  }

  /** Detaches ours from every managed namespace's links (on-exit: detach); resolves when all are answered. */
  async detachAll(): Promise<void> {
    const policy = this.#policy
    if (!policy) return
    for (const m of this.#managed.values()) m.unit.reconciler.setDesire(policy.none())
    await Promise.all(this.units().map((u) => u.reconciler.idle()))
  }

  /** Stops watching; no namespace comes or goes from here on. The units stay until close(). */
  stopWatching(): void {
    this.#closed = true
    this.#watch?.close()
    this.#watch = null
  }

  /** Closes every unit and the watch. */
  close(): void {
    this.stopWatching()
    for (const m of this.#managed.values()) m.unit.close()
    this.#managed.clear()
  }

  #on(e: NetnsEvent): void {
    if (this.#closed) return
    switch (e.kind) {
      // One namespace at a time: a full #sync per event would be O(n^2) over a start-up that finds 1,000 of them.
      case 'added':
        this.#consider(e.namespace)
        return
      case 'renamed': {
        const m = this.#managed.get(e.namespace.id)
        if (m) {
          m.ns = e.namespace
          if (e.namespace.name !== e.was.name) {
            this.#o.log.info({ netns: e.namespace.name, was: e.was.name }, `network namespace ${e.was.name} is now named ${e.namespace.name}`)
            if (!m.retiring && this.#policy) m.unit.reconciler.setDesire(this.#policy.desire(e.namespace.name))
          }
        }
        this.#consider(e.namespace)
        return
      }
      case 'removed':
        this.#release(e.namespace.id, 'its file is gone')
        return
      case 'ignored':
        this.#o.log.warn({ path: e.file.path, netns: e.file.name }, ignoredText(e.file))
    }
  }

  /** Manages exactly the namespaces present that some entry is for (a new policy). */
  #sync(): void {
    if (!this.#watch || this.#closed) return
    const present = new Set<string>()
    for (const ns of this.#watch.namespaces()) {
      present.add(ns.id)
      this.#consider(ns)
    }
    for (const id of [...this.#managed.keys()]) if (!present.has(id)) this.#release(id, 'its file is gone')
  }

  /** Manages one namespace if an entry is for it, else retires it. */
  #consider(ns: Namespace): void {
    const policy = this.#policy
    if (ns.host || this.#closed || !policy) return
    if (policy.wanted(ns.name)) this.#manage(ns, policy)
    else this.#retire(ns.id, policy)
  }

  /** Detaches ours from a namespace's links, then releases it. */
  #retire(id: string, policy: NamespacePolicy): void {
    const m = this.#managed.get(id)
    if (!m || m.retiring) return
    m.retiring = true
    m.unit.reconciler.setDesire(policy.none())
    void m.unit.reconciler.idle().then(() => {
      if (this.#managed.get(id) === m) this.#release(id, 'no entry is for it')
    })
  }

  /** Opens a namespace's connections and plans its links. */
  #manage(ns: Namespace, policy: NamespacePolicy): void {
    const had = this.#managed.get(ns.id)
    if (had) {
      if (had.retiring) {
        // An entry names it again before it was released: plan with the config in force again.
        had.retiring = false
        had.unit.reconciler.setDesire(policy.desire(had.ns.name))
      }
      return
    }
    const fd = this.#watch?.fdOf(ns.id)
    if (!fd) return
    const log = this.#o.log.child({ netns: ns.name })
    let unit: NetnsUnit
    try {
      // Its name as the watch last reported it (a rename updates #managed).
      unit = this.#o.unit(fd.raw, () => this.#managed.get(ns.id)?.ns.name ?? ns.name, log, policy.desire(ns.name))
    } catch (e) {
      if (e instanceof NetnsStuckError) throw e
      log.warn({ err: e }, `cannot open netlink in network namespace ${ns.name}: ${(e as Error).message}`)
      return
    }
    const m: Managed = { ns, unit, started: Promise.resolve(), retiring: false }
    this.#managed.set(ns.id, m)
    log.info({ netnsId: ns.id, paths: ns.paths }, `managing network namespace ${ns.name}`)
    m.started = unit.start(() => this.#closed || this.#managed.get(ns.id) !== m).catch((e: Error) => {
      // Gone while its links were being dumped (its connections closed under the dump): nothing to say.
      if (this.#managed.get(ns.id) !== m) return
      log.warn({ err: e }, `network namespace ${ns.name}: ${e.message}`)
    })
  }

  /** Forgets a namespace quietly. */
  #release(id: string, why: string): void {
    const m = this.#managed.get(id)
    if (!m) return
    this.#managed.delete(id)
    m.unit.close()
    this.#o.log.info({ netns: m.ns.name, netnsId: id, links: m.unit.table.size }, `network namespace ${m.ns.name} released: ${why}`)
    this.#o.released?.(m.ns.identity.ino)
    this.#o.changed()
  }
}
