/**
 * Wiring: config -> programs -> link table -> reconciler, and the life of the whole: open, start, reload, stop.
 * Each decision lives in its own module; what is here is which part is made when, and what the daemon tells.
 *
 *   Daemon.open()    reads the config, binds the control socket (a second daemon gives up here), loads the programs,
 *                    opens netlink and probes the kernel; then constructs the Daemon from those parts, which only
 *                    stores and connects them. A stop (SIGTERM) during open() closes what was made so far.
 *   start()          dumps the links, reconciles all of them once, prunes old pins, watches the objects, serves.
 *   reload()         one self-contained step: a new config and its programs are prepared whole, then swapped in; a
 *                    config or object that fails leaves everything as it was.
 *   stop()           with `on-exit: detach` detaches our programs first; closes everything.
 *
 * Its dependencies on the kernel (netlink connections, the programs' backend) and the clock can be injected
 * (DaemonDeps), so the wiring runs in a unit test without root (test/daemon/unit.test.ts, over test/helpers/nltest.ts).
 */
import type { Logger } from 'pino'
import { HOST_NETNS, compileMatcher, kindHints, loadConfig, namesOtherNamespaces, netnsMatches, type Config, type ConfigError } from './config/index.js'
import { DaemonControl, controlOptions, type ProgramUse } from './control/index.js'
import type { LinkTable } from './links/table.js'
import { logOutcome } from './log/outcomes.js'
import type { NetlinkError } from './netlink/errors.js'
import type { OpenNetlink } from './netlink/socket.js'
import { ManagedNamespaces, type NamespacePolicy } from './netns/managed.js'
import { NetnsUnit, type NamespaceView } from './netns/unit.js'
import { ProgramLoadError } from './programs/errors.js'
import { forgetNamespaceCounters } from './programs/read-counters.js'
import { ProgramRegistry, pinsToKeep, type ProgramBackend, type ProgramLease } from './programs/registry.js'
import { ObjectWatch } from './programs/watch.js'
import { ConfigWatch } from './config/watch.js'
import type { Clock } from './reconcile/debounce.js'
import { buildDesire, type Desire } from './reconcile/desire.js'
import type { Reconciler } from './reconcile/reconciler.js'
import { RtnlClient } from './rtnl/client.js'
import { probeXdpReplace } from './rtnl/features.js'
import type { Result } from './result.js'
import { SerialJob } from './serial.js'
import type { HealthAnswer } from './metrics/server.js'
import { walkOptions } from './config/secure-path.js'
import { applyContents, declaredMaps, prepareContents, type DeclaredMap, type MapBackend, type SyncReport } from './maps/contents.js'
import { kernelMapBackend } from './maps/kernel.js'

/** sd_notify STATUS= follows the summary at most this often (it is for `systemctl status`, read by people). */
const STATUS_INTERVAL_MS = 100

/** sysexits(3): the config is wrong / an object failed to load. */
export const EX_CONFIG = 78
export const EX_DATAERR = 65

export class StartupError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message)
    this.name = 'StartupError'
  }
}

export interface DaemonOptions {
  configPath: string
  insecurePaths?: boolean
  log: Logger
  /** Netlink receive buffer for notifications. */
  rcvbuf?: number
  /** Reload when the config file changes (config/watch.ts: a ConfigMap volume's swap, an edit), as on SIGHUP. */
  watchConfig?: boolean
  /** Called at milestones (sd_notify lives at the edge that owns it). */
  hooks?: DaemonHooks
}

/** What the daemon reaches the kernel through; the kernel itself unless a test says otherwise. */
export interface DaemonDeps {
  /** Opens each netlink connection (test/helpers/nltest.ts has a fake kernel). */
  netlink?: OpenNetlink
  /** The programs' I/O: libbpf, the bpffs, object files (test/programs has a fake). */
  programs?: ProgramBackend
  /** The debouncer's clock. */
  clock?: Clock
  /** Declared map contents: opening pinned maps, writing them, reading list files (the kernel's by default). */
  maps?: MapBackend
}

export interface DaemonHooks {
  ready?(summary: Summary): void
  reloading?(): void
  reloaded?(ok: boolean, summary: Summary): void
  stopping?(): void
  changed?(summary: Summary): void
}

export interface Summary {
  links: number
  managed: number
  attached: number
  pending: number
  conflicts: number
  errors: number
  programs: number
}

/** A config and the programs its entries use (by entry index): what a reload replaces as one. */
interface Generation {
  config: Config
  leases: Map<number, ProgramLease>
  /** The list files of its declared map contents -> the version read (for the watch). */
  lists: Map<string, string>
  /** Its declared map contents as written, by pin path (for the `maps` view). */
  declared: Map<string, DeclaredMap>
}

/** What Daemon.open() makes; the constructor stores it. */
interface DaemonParts {
  o: DaemonOptions
  deps: DaemonDeps
  control: DaemonControl
  registry: ProgramRegistry
  gen: Generation
  client: RtnlClient
  /** The client's table, its dump started (Daemon.open). */
  table: LinkTable
  replaceSupported: boolean
}

export function configErrorText(errors: ConfigError[]): string {
  return errors.map((e) => e.toString()).join('\n')
}

/** Reads and validates the config; warns of `kinds:` that look mistyped. Throws StartupError (78). */
async function readConfig(o: DaemonOptions): Promise<Config> {
  const r = await loadConfig(o.configPath, { insecurePaths: o.insecurePaths })
  if (!r.ok) throw new StartupError(configErrorText(r.error), EX_CONFIG)
  for (const h of kindHints(r.value)) {
    o.log.warn({ entry: r.value.entries[h.index]!.name, linkKind: h.kind, suggestion: h.suggestion }, h.message)
  }
  return r.value
}

/** Loads (or finds pinned) every entry's program; one load per object content and program. Throws StartupError. */
async function acquireAll(config: Config, registry: ProgramRegistry): Promise<Map<number, ProgramLease>> {
  const leases = new Map<number, ProgramLease>()
  try {
    for (const e of config.entries) {
      try {
        leases.set(e.index, await registry.acquire(e.object, e.program ?? undefined))
      } catch (err) {
        // An untrusted path (the bpffs directory, say) is a setup to fix, like an unsafe config path: 78.
        if (err instanceof ProgramLoadError) throw new StartupError(`${e.name}: ${err.message}`, err.unsafe ? EX_CONFIG : EX_DATAERR)
        throw err
      }
    }
    return leases
  } catch (err) {
    for (const l of leases.values()) l.release()
    throw err
  }
}

/**
 * Writes the declared contents of a generation's maps (src/maps/contents.ts), all of them checked before any is
 * written. Before the generation's programs are attached anywhere: a new program starts with its block list full,
 * and an edited list changes in place (its program is the one in force). Returns the list files read, by version.
 * Throws StartupError: 78 for contents that do not fit the maps' types, 65 for a map the kernel would not write.
 */
async function fillMaps(
  config: Config,
  leases: ReadonlyMap<number, ProgramLease>,
  backend: MapBackend,
  o: DaemonOptions,
): Promise<Pick<Generation, 'lists' | 'declared'>> {
  if (!config.entries.some((e) => e.maps.length > 0)) return { lists: new Map(), declared: new Map() }
  const prepared = await prepareContents(config.entries, leases, backend, walkOptions({ insecurePaths: o.insecurePaths }))
  if (!prepared.ok) throw new StartupError(configErrorText(prepared.error), EX_CONFIG)
  try {
    const applied = applyContents(prepared.value)
    const label = (a: (typeof applied)[number]): string => `map ${a.map.map} of program ${a.map.program.name}`
    for (const a of applied) {
      const fields = { map: a.map.map, program: a.map.program.name, pinDir: a.map.program.pinDirName }
      // A map the kernel would not write is said once, in the StartupError below (the start-up's last line, or the
      // reload's `reload rejected`).
      if (a.error) continue
      if (a.report && a.report.added + a.report.updated + a.report.removed > 0) {
        o.log.info({ ...fields, ...a.report, action: 'map' }, `${label(a)}: ${reportText(a.report)}`)
      } else o.log.debug({ ...fields, ...a.report }, `${label(a)}: holds what is declared`)
    }
    const failed = applied.filter((a) => a.error)
    if (failed.length > 0) throw new StartupError(failed.map((a) => `${label(a)}: ${a.error!.message}`).join('\n'), EX_DATAERR)
    return { lists: prepared.value.files, declared: declaredMaps(prepared.value) }
  } finally {
    prepared.value.close()
  }
}

/** Whether the kernel has XDP_FLAGS_REPLACE, from its answer (rtnl/features.ts); assumed where it will not say. */
function replaceFromProbe(r: Result<boolean, NetlinkError>, log: Logger): boolean {
  if (!r.ok) {
    log.warn({ err: r.error }, `cannot tell whether the kernel has XDP_FLAGS_REPLACE (${r.error.message}); assuming it does`)
    return true
  }
  if (!r.value) log.warn('this kernel has no XDP_FLAGS_REPLACE (Linux < 5.7): program swaps are not atomic')
  return r.value
}

/**
 * The registry mounted a bpffs for the pins. At start that is routine (under `ip netns exec` or PrivateMounts= the
 * mount lives only as long as the daemon's mount namespace). Later it means the bpffs was unmounted under us: the
 * pins made before are gone, so a restarted daemon would see the programs still attached from them as foreign.
 */
function logBpffsMount(log: Logger, bpffsDir: string, where: string, again: boolean): void {
  if (!again) {
    log.info({ path: where }, `mounted a BPF filesystem at ${where} for the pins`)
    return
  }
  log.warn(
    { path: where },
    `${bpffsDir} was no longer on a BPF filesystem (unmounted?): mounted a new one at ${where}; ` +
      'the pins made before are gone, and a restarted daemon will treat programs attached from them as foreign',
  )
}

/** One line per entry whose program is new to the daemon: all at start; at a reload, those not in use before. */
function logPrograms(log: Logger, gen: Generation, before?: Generation): void {
  const old = new Set([...(before?.leases.values() ?? [])].map((l) => l.id))
  for (const [i, l] of gen.leases) {
    if (old.has(l.id)) continue
    log.info(
      { entry: gen.config.entries[i]!.name, progId: l.id, tag: l.tag, program: l.name, source: l.source, pin: l.pinDir },
      `${l.source === 'pinned' ? 'reusing pinned' : 'loaded'} program ${l.name} (id ${l.id}) from ${l.objectPath}`,
    )
  }
}

export class Daemon {
  readonly #o: DaemonOptions
  readonly #log: Logger
  readonly #control: DaemonControl
  readonly #registry: ProgramRegistry
  /** The daemon's own network namespace. */
  readonly #host: NetnsUnit
  /** The other namespaces an entry names, while files bind them. */
  readonly #namespaces: ManagedNamespaces
  readonly #deps: DaemonDeps
  readonly #replaceSupported: boolean
  readonly #watch: ObjectWatch
  #configWatch: ConfigWatch | null = null
  #gen: Generation
  readonly #reloads = new SerialJob<string, boolean>((reason) => this.#reload(reason))
  /** Settles when start() is over (or never ran): a reload asked for meanwhile runs after it. */
  #started: Promise<void> = Promise.resolve()
  #stopped = false
  #reloadError: string | null = null
  #lastSummary = ''
  #statusTimer: ReturnType<typeof setTimeout> | null = null

  /**
   * Makes every part of a daemon, in the order that keeps mistakes cheap: the config (nothing else is opened for a
   * bad one), the control socket (a second daemon gives up before it loads anything), then netlink and the programs
   * together: the links are dumped while libbpf loads the programs on a worker thread (BpfObject.loadAsync), and
   * start() plans over that dump (LinkTable.start gives it the same one). A start-up over 1,000 links: 185 -> 167.5 ms
   * (medians of 20, interleaved). Throws StartupError with the exit status. Resolves null when `signal` aborts
   * meanwhile (SIGTERM during start-up), having closed what it made.
   */
  static async open(o: DaemonOptions, deps: DaemonDeps = {}, signal?: AbortSignal): Promise<Daemon | null> {
    const log = o.log
    const config = await readConfig(o)
    const control = new DaemonControl()
    await control.start(controlOptions(config, o.insecurePaths, log)).catch((e: Error & { exitCode?: number }) => {
      throw new StartupError(e.message, e.exitCode ?? 1)
    })
    const undo: (() => void)[] = [() => void control.close()]
    const cleanup = (): null => {
      for (const u of undo.reverse()) u()
      return null
    }
    try {
      if (signal?.aborted) return cleanup()
      const client = new RtnlClient({ rcvbuf: o.rcvbuf, open: deps.netlink })
      undo.push(() => client.close())
      const table = NetnsUnit.linkTable(client, log)
      // Started once the first load is under way (its file read: reading it while the dump also wants the event loop
      // would start the load late), or after the programs if none is loaded. Awaited by start(), which also knows a
      // dump cut off by a stop (the socket closed under it); a dump that fails is retried by the table itself. The
      // probe for XDP_FLAGS_REPLACE goes first, its answer read after the load (was ~0.5 ms after it, up to 5).
      let replace: Promise<Result<boolean, NetlinkError>> | null = null
      const probe = (): Promise<Result<boolean, NetlinkError>> => {
        if (!replace) {
          replace = probeXdpReplace(client)
          replace.catch(() => {}) // a failure is met by the await below, or not at all when opening failed first
        }
        return replace
      }
      const dump = (): void => {
        void probe()
        void table.start().catch(() => {})
      }
      const registry: ProgramRegistry = new ProgramRegistry({
        bpffsDir: config.bpffs,
        backend: deps.programs,
        insecurePaths: o.insecurePaths,
        log,
        onBpffsMount: (where, again) => logBpffsMount(log, registry.bpffsDir, where, again),
        onLoading: dump,
      })
      undo.push(() => registry.close())
      const t0 = performance.now()
      const leases = await acquireAll(config, registry)
      dump()
      undo.push(() => {
        for (const l of leases.values()) l.release()
      })
      const gen: Generation = { config, leases, ...(await fillMaps(config, leases, deps.maps ?? kernelMapBackend, o)) }
      log.debug({ ms: Math.round(performance.now() - t0) }, 'programs ready')
      if (signal?.aborted) return cleanup()
      const replaceSupported = replaceFromProbe(await probe(), log)
      if (signal?.aborted) return cleanup()
      logPrograms(log, gen)
      // Made whether or not the dump is complete, on purpose: in a storm that keeps every dump inconsistent, the links a
      // partial dump returns reach the reconciler as the table's events and are attached meanwhile (test/daemon/
      // churn.test.ts). Waiting here for a complete dump (it spares 1,001 touches, ~2.5 ms of a start-up, when the
      // dump ends after the load) left them unattached until the storm was over.
      return new Daemon({ o, deps, control, registry, gen, client, table, replaceSupported })
    } catch (e) {
      cleanup()
      throw e
    }
  }

  /** Connects the parts Daemon.open() made; opens nothing. */
  private constructor(p: DaemonParts) {
    this.#o = p.o
    this.#log = p.o.log
    this.#control = p.control
    this.#registry = p.registry
    this.#gen = p.gen
    this.#deps = p.deps
    this.#replaceSupported = p.replaceSupported
    this.#host = this.#unit(p.client, () => HOST_NETNS, this.#log, { table: p.table })
    this.#namespaces = new ManagedNamespaces({
      log: this.#log,
      insecurePaths: this.#o.insecurePaths,
      clock: p.deps.clock,
      unit: (netnsFd, name, log, desire) => this.#unit(new RtnlClient({ rcvbuf: this.#o.rcvbuf, open: p.deps.netlink, netnsFd }), name, log, { desire }),
      changed: () => this.#changed(),
      // Its per-link counters go with it: the next namespace gets its inode number (programs/read-counters.ts).
      released: (inode) => {
        for (const problem of forgetNamespaceCounters(this.programs().map((u) => u.program), inode)) this.#log.warn(`per-link counters: ${problem}`)
      },
    })
    this.#watch = new ObjectWatch({ objects: this.#registry.objects, log: this.#log, onChange: () => void this.reload('object or list file changed') })
  }

  get config(): Config {
    return this.#gen.config
  }

  get table(): LinkTable {
    return this.#host.table
  }

  get reconciler(): Reconciler {
    return this.#host.reconciler
  }

  get registry(): ProgramRegistry {
    return this.#registry
  }

  get control(): DaemonControl {
    return this.#control
  }

  /** Every managed namespace's links and records, the daemon's own first (status, metrics). */
  namespaces(): NamespaceView[] {
    return [this.#host.view(HOST_NETNS), ...this.#namespaces.views()]
  }

  /**
   * The first full reconcile: dump every link, plan all of them, wait until every answer is in; then prune pins no
   * longer used, watch the objects and serve the control socket. A stop() meanwhile (SIGTERM) ends it quietly:
   * nothing more is set up and nothing announced.
   */
  start(): Promise<void> {
    this.#started = this.#start()
    return this.#started
  }

  async #start(): Promise<void> {
    try {
      await this.#host.start(() => this.#stopped)
    } catch (e) {
      if (this.#stopped) return // the dump was cut off by stop() closing the socket: not a start-up failure
      throw e
    }
    if (this.#stopped) return
    await this.#namespaces.follow(this.#policy(this.#gen))
    if (this.#stopped) return
    // Pins of an earlier config that nothing uses any more (and that no link still runs) go now, not at the first
    // reload.
    this.#prune()
    this.#watch.follow(this.#gen.config.entries, this.#gen.leases, this.#gen.lists)
    if (this.#o.watchConfig) {
      this.#configWatch = await ConfigWatch.start({ path: this.#o.configPath, log: this.#log, onChange: () => void this.reload('config file changed') })
      if (this.#stopped) this.#configWatch.close()
    }
    // Before ready: once systemd reports the service up, `xdplinkd status` answers.
    this.#control.ready(this)
    const s = this.summary()
    this.#log.info({ ...s }, `started: ${summaryText(s)}`)
    this.#o.hooks?.ready?.(s)
  }

  /** `owned` (our programs, from the pins: a walk of the bpffs directory) is taken now unless handed in. */
  #desire(gen: Generation, match = compileMatcher(gen.config), owned = this.#registry.ownedPrograms()): Desire {
    return buildDesire({ match, programs: gen.leases, owned: new Set(owned.keys()), openById: this.#registry.opener(owned) })
  }

  /**
   * The parts for one namespace, over a client already open in it. `name` (asked each time: a namespace's primary
   * name changes when the file that gave it goes and another binds it) picks the entries for it and names it in the
   * outcome lines; `log` carries it for the unit's other lines.
   */
  #unit(client: RtnlClient, name: () => string, log: Logger, o: { desire?: Desire | undefined; table?: LinkTable } = {}): NetnsUnit {
    const { config } = this.#gen
    return new NetnsUnit({
      client,
      ...(o.table ? { table: o.table } : {}),
      log,
      desire: o.desire ?? this.#desire(this.#gen, compileMatcher(this.#gen.config, name())),
      replaceSupported: this.#replaceSupported,
      report: (e) => {
        const n = name()
        logOutcome(this.#log, e, n === HOST_NETNS ? undefined : n)
      },
      settleMs: config.settleMs,
      maxSettleMs: config.maxSettleMs,
      clock: this.#deps.clock,
      onLatency: (ms) => this.#control.observeLatency(ms),
      onIdle: () => this.#changed(),
    })
  }

  /** Every namespace's unit, the daemon's own first. */
  #units(): NetnsUnit[] {
    return [this.#host, ...this.#namespaces.units()]
  }

  /** What the config in force asks of the other namespaces (ManagedNamespaces decides when). */
  #policy(gen: Generation): NamespacePolicy {
    const { config } = gen
    // Our programs are what they are for the whole generation (they change at a reload, which makes a new policy):
    // walked once, not once per namespace (1,000 namespaces at start-up: ~175 ms of walks, bench part g).
    let owned: Map<number, string> | null = null
    const ours = (): Map<number, string> => (owned ??= this.#registry.ownedPrograms())
    return {
      dirs: namesOtherNamespaces(config) ? config.netnsDirs : null,
      wanted: (name) => config.entries.some((e) => netnsMatches(e, name)),
      desire: (name) => this.#desire(gen, compileMatcher(config, name), ours()),
      none: () => this.#desire(gen, () => null, ours()),
    }
  }

  /**
   * Tells the hooks (sd_notify STATUS=) when the summary changed, at most every STATUS_INTERVAL_MS. Called whenever
   * the reconciler falls idle, which a burst of deletions makes once per link (each RTM_DELLINK forgets one), and a
   * summary counts every link: taken on every call, 1,000 links deleted at once cost O(n^2).
   */
  #changed(): void {
    if (!this.#o.hooks?.changed || this.#statusTimer) return
    this.#statusTimer = setTimeout(() => {
      this.#statusTimer = null
      if (this.#stopped || !this.#o.hooks?.changed) return
      const s = this.summary()
      const text = summaryText(s)
      if (text === this.#lastSummary) return
      this.#lastSummary = text
      this.#o.hooks.changed(s)
    }, STATUS_INTERVAL_MS)
  }

  /**
   * For the watchdog: the event loop is alive (the caller runs on it) and the netlink receive path is intact: both
   * connections open, and the table not stuck in a resync.
   */
  alive(): boolean {
    return !this.#stopped && this.#units().every((u) => u.alive())
  }

  /**
   * The probes of the health endpoints (metrics/server.ts), asked once started. Live: every namespace's netlink
   * sockets open. Ready: live, and no link table stuck resyncing (dumps failing outright; a storm that only makes
   * dumps inconsistent keeps it ready: the table follows it). Each says which namespace fails, and why.
   */
  health(): { live: HealthAnswer; ready: HealthAnswer } {
    if (this.#stopped) {
      const stopping = { ok: false, text: 'stopping' }
      return { live: stopping, ready: stopping }
    }
    const units = [{ name: HOST_NETNS, unit: this.#host }, ...this.#namespaces.named()]
    const closed = units.filter((u) => !u.unit.client.connected).map((u) => u.name)
    const stuck = units.filter((u) => !u.unit.table.healthy()).map((u) => u.name)
    const n = `${units.length} network namespace${units.length === 1 ? '' : 's'}`
    const live = closed.length === 0 ? { ok: true, text: `alive: netlink open in ${n}` } : { ok: false, text: `netlink socket closed in ${closed.join(', ')}` }
    const ready = !live.ok
      ? { ok: false, text: `not ready: ${live.text}` }
      : stuck.length > 0
        ? { ok: false, text: `not ready: link table resync failing in ${stuck.join(', ')}` }
        : { ok: true, text: `ready: ${n}, ${this.summary().attached} links attached` }
    return { live, ready }
  }

  summary(): Summary {
    const s = { links: 0, managed: 0, attached: 0, pending: 0, conflicts: 0, errors: 0 }
    for (const u of this.#units()) {
      const t = u.reconciler.tally()
      s.links += u.table.size
      s.managed += t.managed
      s.attached += t.attached
      s.pending += t.pending
      s.conflicts += t.conflict
      s.errors += t.error
    }
    return {
      ...s,
      programs: new Set([...this.#gen.leases.values()].map((l) => l.id)).size,
    }
  }

  /**
   * Re-reads the config and the objects. A config that does not validate, or an object that does not load (the
   * verifier included), is rejected whole: the old config and programs stay in force.
   */
  reload(reason = 'SIGHUP'): Promise<boolean> {
    // One at a time; asked again meanwhile (another SIGHUP, an object rebuilt while programs are being swapped),
    // it runs once more afterwards: the reload in progress may have read the files before that change.
    return this.#reloads.run(reason)
  }

  async #reload(reason: string): Promise<boolean> {
    await this.#started.catch(() => {})
    if (this.#stopped) return false
    this.#o.hooks?.reloading?.()
    const next = await this.#prepare()
    if (!next.ok) {
      this.#reloadError = next.error
      this.#log.error({ reason, action: 'reload' }, `reload rejected, the previous config stays in force:\n${next.error}`)
      this.#o.hooks?.reloaded?.(false, this.summary())
      return false
    }
    const old = this.#gen
    this.#gen = next.gen
    this.#reloadError = null
    next.commit()
    logPrograms(this.#log, next.gen, old)
    this.#host.reconciler.setDesire(this.#desire(next.gen), next.gen.config.settleMs, next.gen.config.maxSettleMs)
    await this.#namespaces.follow(this.#policy(next.gen), next.gen.config.settleMs, next.gen.config.maxSettleMs)
    await Promise.all(this.#units().map((u) => u.reconciler.idle()))
    // Old programs are released only once every link has been moved off them (the replaces above are done).
    for (const l of old.leases.values()) l.release()
    this.#prune()
    this.#watch.follow(next.gen.config.entries, next.gen.leases, next.gen.lists)
    const s = this.summary()
    this.#log.info({ ...s, reason, action: 'reload' }, `reloaded (${reason}): ${summaryText(s)}`)
    this.#o.hooks?.reloaded?.(true, s)
    return true
  }

  /**
   * The next generation, prepared whole before anything changes: the config read and validated, a moved control
   * socket or metrics endpoint bound next to the old ones, every program loaded. `commit` retires what it replaces;
   * on any failure what was made is undone and the reason returned.
   */
  async #prepare(): Promise<{ ok: true; gen: Generation; commit(): void } | { ok: false; error: string }> {
    let rebound: Awaited<ReturnType<DaemonControl['rebind']>> | null = null
    try {
      const config = await readConfig(this.#o)
      // The pin directory holds what the running programs are pinned as: it changes only at a restart. Say so rather
      // than let an edited value look applied.
      const inForce = this.#gen.config.bpffs
      if (config.bpffs !== inForce) {
        this.#log.warn(
          { key: 'bpffs', configured: config.bpffs, inForce },
          `bpffs changed to ${config.bpffs}: takes effect after a restart; ${inForce} stays in force`,
        )
      }
      config.bpffs = inForce
      // A moved control socket or metrics endpoint is bound before anything else: if it cannot be had, the whole
      // new config is rejected.
      const r = await this.#control.rebind(controlOptions(config, this.#o.insecurePaths, this.#log))
      rebound = r
      const leases = await acquireAll(config, this.#registry)
      let filled: Pick<Generation, 'lists' | 'declared'>
      try {
        filled = await fillMaps(config, leases, this.#deps.maps ?? kernelMapBackend, this.#o)
      } catch (e) {
        for (const l of leases.values()) l.release()
        throw e
      }
      const gen = { config, leases, ...filled }
      return { ok: true, gen, commit: () => r.commit() }
    } catch (e) {
      await rebound?.abort()
      return { ok: false, error: e instanceof Error ? e.message : String(e) }
    }
  }

  /** Removes pins that no entry uses and that no link still runs (a link in error may still run an old one). */
  #prune(): void {
    const r = this.#registry.prune(() => pinsToKeep(this.#gen.leases.values(), this.#units().flatMap((u) => u.table.links()), this.#registry.ownedPrograms()))
    if (r.removed.length) this.#log.info({ removed: r.removed }, `removed ${r.removed.length} unused pins`)
    for (const f of r.failed) this.#log.warn({ dir: f.dir }, `could not remove pin ${f.dir}: ${f.error.message}`)
  }

  /** Stops. With `on-exit: detach`, first detaches our programs (and only ours). */
  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    this.#o.hooks?.stopping?.()
    await this.#control.close()
    this.#watch.close()
    this.#configWatch?.close()
    // No namespace comes or goes from here on; those managed are detached from (on-exit: detach) and closed below.
    this.#namespaces.stopWatching()
    if (this.#statusTimer) clearTimeout(this.#statusTimer)
    if (this.#gen.config.onExit === 'detach') {
      this.#host.reconciler.setDesire(this.#desire(this.#gen, () => null))
      await Promise.all([this.#host.reconciler.idle(), this.#namespaces.detachAll()])
      this.#log.info({ action: 'detach' }, 'on-exit detach: our programs are detached')
    }
    this.#host.close()
    this.#namespaces.close()
    this.#registry.close()
    this.#log.info('stopped')
  }

  // ---- read by the control socket and the metrics (src/control/) ----------------------------------------------

  /** The programs the config in force uses, one per entry (entries with the same object and program share one). */
  programs(): ProgramUse[] {
    return [...this.#gen.leases].map(([i, program]) => ({ entry: this.#gen.config.entries[i]!.name, program }))
  }

  /** The map contents the config in force declares, as written, by pin path. */
  declaredMaps(): ReadonlyMap<string, DeclaredMap> {
    return this.#gen.declared
  }

  /** Why the last reload was rejected; null after an accepted one. */
  get lastReloadError(): string | null {
    return this.#reloadError
  }
}

export function summaryText(s: Summary): string {
  return `${s.links} links, ${s.managed} managed, ${s.attached} attached, ${s.pending} pending, ${s.conflicts} conflicts, ${s.errors} errors, ${s.programs} programs`
}

function reportText(r: SyncReport): string {
  return `${r.added} added, ${r.updated} updated, ${r.removed} removed, ${r.unchanged} unchanged`
}
