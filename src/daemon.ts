/**
 * Wiring: config -> programs -> link table -> reconciler, and the signals that drive them (SIGHUP reloads,
 * SIGTERM/SIGINT stop). Everything here is glue; each decision lives in its own module.
 */
import type { Logger } from 'pino'
import { compileMatcher, kindHints, loadConfig, type Config, type ConfigError } from './config/index.js'
import { ProgramRegistry, pinsToKeep, type ProgramLease } from './programs/registry.js'
import { ProgramLoadError } from './programs/errors.js'
import { ObjectWatch } from './programs/watch.js'
import { RtnlClient } from './rtnl/client.js'
import { LinkTable } from './links/table.js'
import { Reconciler } from './reconcile/reconciler.js'
import { buildDesire } from './reconcile/desire.js'
import { DaemonControl, controlOptions, type ProgramUse } from './control/index.js'
import { SerialJob } from './serial.js'
import { probeXdpReplace } from './rtnl/features.js'
import { logOutcome } from './log/outcomes.js'

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
  /** Called at milestones (sd_notify lives at the edge that owns it). */
  hooks?: DaemonHooks
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

interface Generation {
  config: Config
  leases: Map<number, ProgramLease>
}

export function configErrorText(errors: ConfigError[]): string {
  return errors.map((e) => e.toString()).join('\n')
}

export class Daemon {
  readonly #o: DaemonOptions
  readonly #log: Logger
  #gen!: Generation
  #registry!: ProgramRegistry
  #client!: RtnlClient
  #table!: LinkTable
  #reconciler!: Reconciler
  #watch: ObjectWatch | null = null
  readonly #reloads = new SerialJob<string, boolean>((reason) => this.#reload(reason))
  #stopped = false
  // Control socket and metrics (src/control/). Created with the daemon so that the reconciler feeds the latency
  // histogram from the first reconcile on; bound at the top of start(), serving from ready() on.
  readonly #control: DaemonControl = new DaemonControl(this)
  #reloadError: string | null = null

  constructor(o: DaemonOptions) {
    this.#o = o
    this.#log = o.log
  }

  get config(): Config {
    return this.#gen.config
  }

  get table(): LinkTable {
    return this.#table
  }

  get reconciler(): Reconciler {
    return this.#reconciler
  }

  get registry(): ProgramRegistry {
    return this.#registry
  }

  async #readConfig(): Promise<Config> {
    const r = await loadConfig(this.#o.configPath, { insecurePaths: this.#o.insecurePaths })
    if (!r.ok) throw new StartupError(configErrorText(r.error), EX_CONFIG)
    for (const h of kindHints(r.value)) {
      this.#log.warn({ entry: r.value.entries[h.index]!.name, linkKind: h.kind, suggestion: h.suggestion }, h.message)
    }
    return r.value
  }

  /**
   * The registry mounted a bpffs for the pins. At start that is routine (under `ip netns exec` or PrivateMounts= the
   * mount lives only as long as the daemon's mount namespace). Later it means the bpffs was unmounted under us: the
   * pins made before are gone, so a restarted daemon would see the programs still attached from them as foreign.
   */
  #bpffsMounted(where: string, again: boolean): void {
    if (!again) {
      this.#log.info({ path: where }, `mounted a BPF filesystem at ${where} for the pins`)
      return
    }
    this.#log.warn(
      { path: where },
      `${this.#registry.bpffsDir} was no longer on a BPF filesystem (unmounted?): mounted a new one at ${where}; ` +
        'the pins made before are gone, and a restarted daemon will treat programs attached from them as foreign',
    )
  }

  /** One line per entry whose program is new to the daemon: all at start; at a reload, those not in use before. */
  #logPrograms(gen: Generation, before?: Generation): void {
    const old = new Set([...(before?.leases.values() ?? [])].map((l) => l.id))
    for (const [i, l] of gen.leases) {
      if (old.has(l.id)) continue
      this.#log.info(
        { entry: gen.config.entries[i]!.name, progId: l.id, tag: l.tag, program: l.name, source: l.source, pin: l.pinDir },
        `${l.source === 'pinned' ? 'reusing pinned' : 'loaded'} program ${l.name} (id ${l.id}) from ${l.objectPath}`,
      )
    }
  }

  /** Loads (or finds pinned) every entry's program; one load per object content and program. */
  async #acquireAll(config: Config, registry: ProgramRegistry): Promise<Map<number, ProgramLease>> {
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

  #desire(gen: Generation, match = compileMatcher(gen.config)) {
    const owned = this.#registry.ownedPrograms()
    return buildDesire({
      match,
      programs: gen.leases,
      owned: new Set(owned.keys()),
      openById: this.#registry.opener(owned),
    })
  }

  async start(): Promise<void> {
    const config = await this.#readConfig()
    // The control socket and metrics listener are bound first: a second daemon on the same socket gives up here,
    // before it loads or attaches anything. Requests are answered "starting" until ready() below.
    await this.#control
      .start(controlOptions(config, this.#o.insecurePaths, this.#log))
      .catch((e: Error & { exitCode?: number }) => {
        throw new StartupError(e.message, e.exitCode ?? 1)
      })
    // A SIGTERM while start-up waits (here, on the dump, on the first reconcile) runs stop() on what exists so far.
    // Start-up then sets up nothing more and announces nothing: a listener bound after stop() closed the control
    // server, or a watchdog started after it, would keep a stopped daemon alive.
    if (this.#stopped) return this.#control.close()
    this.#registry = new ProgramRegistry({
      bpffsDir: config.bpffs,
      insecurePaths: this.#o.insecurePaths,
      log: this.#log,
      onBpffsMount: (where, again) => this.#bpffsMounted(where, again),
    })
    const t0 = performance.now()
    const leases = await this.#acquireAll(config, this.#registry)
    this.#gen = { config, leases }
    this.#logPrograms(this.#gen)
    this.#log.debug({ ms: Math.round(performance.now() - t0) }, 'programs ready')

    this.#client = new RtnlClient({ rcvbuf: this.#o.rcvbuf })
    this.#client.on('error', (e) => this.#log.warn({ err: e }, `netlink: ${e.message}`))
    this.#table = new LinkTable(this.#client)
    this.#table.on('error', (e) => this.#log.error({ err: e }, `link table: ${e.message}`))
    const replaceSupported = await this.#probeReplace(this.#client)
    if (this.#stopped) return
    this.#reconciler = new Reconciler({
      table: this.#table,
      setter: this.#client,
      desire: this.#desire(this.#gen),
      replaceSupported,
      report: (e) => logOutcome(this.#log, e),
      settleMs: config.settleMs,
      maxSettleMs: config.maxSettleMs,
      onLatency: (ms) => this.#control.observeLatency(ms),
      onIdle: () => this.#changed(),
    })
    this.#table.on('resync', (r) => {
      if (r.reason !== 'overrun') return
      this.#log.warn({ differences: r.events, links: r.links }, `netlink overrun: notifications were lost; re-dumped ${r.links} links, ${r.events} differences`)
      this.#reconciler.reconcileAll()
    })
    try {
      await this.#table.start()
    } catch (e) {
      if (this.#stopped) return // the dump was cut off by stop() closing the socket: not a start-up failure
      throw e
    }
    if (this.#stopped) return
    this.#reconciler.reconcileAll()
    await this.#reconciler.idle()
    if (this.#stopped) return
    // Pins of an earlier config that nothing uses any more (and that no link still runs) go now, not at the first
    // reload.
    this.#prune()
    this.#watchObjects()
    // Before ready: once systemd reports the service up, `xdplinkd status` answers.
    this.#control.ready()
    const s = this.summary()
    this.#log.info({ ...s }, `started: ${summaryText(s)}`)
    this.#o.hooks?.ready?.(s)
  }

  /** Whether the kernel has XDP_FLAGS_REPLACE, from its answer (rtnl/features.ts); assumed where it will not say. */
  async #probeReplace(client: RtnlClient): Promise<boolean> {
    const r = await probeXdpReplace(client)
    if (!r.ok) {
      this.#log.warn({ err: r.error }, `cannot tell whether the kernel has XDP_FLAGS_REPLACE (${r.error.message}); assuming it does`)
      return true
    }
    if (!r.value) this.#log.warn('this kernel has no XDP_FLAGS_REPLACE (Linux < 5.7): program swaps are not atomic')
    return r.value
  }

  #lastSummary = ''
  #statusTimer: ReturnType<typeof setTimeout> | null = null

  /**
   * Tells the hooks (sd_notify STATUS=) when the summary changed, at most every STATUS_INTERVAL_MS. Called whenever
   * the reconciler falls idle, which a burst of deletions makes once per link (each RTM_DELLINK forgets one), and a
   * summary counts every link: taken on every call, 1,000 links deleted at once cost O(n^2).
   */
  #changed(): void {
    if (!this.#gen || !this.#o.hooks?.changed || this.#statusTimer) return
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
   * sockets open, and the table not stuck in a resync.
   */
  alive(): boolean {
    if (this.#stopped || !this.#client) return false
    return !this.#client.requests.closed && this.#client.events !== null && !this.#client.events.closed && this.#table.healthy()
  }

  summary(): Summary {
    const t = this.#reconciler.tally()
    return {
      links: this.#table.size,
      managed: t.managed,
      attached: t.attached,
      pending: t.pending,
      conflicts: t.conflict,
      errors: t.error,
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
    if (this.#stopped) return false
    this.#o.hooks?.reloading?.()
    let gen: Generation
    let rebound: Awaited<ReturnType<DaemonControl['rebind']>> | null = null
    try {
      const config = await this.#readConfig()
      // The pin directory holds what the running programs are pinned as: it changes only at a restart. Say so
      // rather than let an edited value look applied.
      const old = this.#gen.config
      if (config.bpffs !== old.bpffs) {
        this.#log.warn(
          { key: 'bpffs', configured: config.bpffs, inForce: old.bpffs },
          `bpffs changed to ${config.bpffs}: takes effect after a restart; ${old.bpffs} stays in force`,
        )
      }
      config.bpffs = old.bpffs
      // A moved control socket or metrics endpoint is bound before anything else changes: if it cannot be had,
      // the whole new config is rejected.
      rebound = await this.#control.rebind(controlOptions(config, this.#o.insecurePaths, this.#log))
      gen = { config, leases: await this.#acquireAll(config, this.#registry) }
    } catch (e) {
      await rebound?.abort()
      const msg = e instanceof Error ? e.message : String(e)
      this.#reloadError = msg
      this.#log.error({ reason, action: 'reload' }, `reload rejected, the previous config stays in force:\n${msg}`)
      this.#o.hooks?.reloaded?.(false, this.summary())
      return false
    }
    const old = this.#gen
    this.#gen = gen
    this.#reloadError = null
    rebound.commit()
    this.#logPrograms(gen, old)
    this.#reconciler.setDesire(this.#desire(gen), gen.config.settleMs, gen.config.maxSettleMs)
    await this.#reconciler.idle()
    // Old programs are released only once every link has been moved off them (the replaces above are done).
    for (const l of old.leases.values()) l.release()
    this.#prune()
    this.#watchObjects()
    const s = this.summary()
    this.#log.info({ ...s, reason, action: 'reload' }, `reloaded (${reason}): ${summaryText(s)}`)
    this.#o.hooks?.reloaded?.(true, s)
    return true
  }

  /** Removes pins that no entry uses and that no link still runs (a link in error may still run an old one). */
  #prune(): void {
    const r = this.#registry.prune(pinsToKeep(this.#gen.leases.values(), this.#table.links(), this.#registry.ownedPrograms()))
    if (r.removed.length) this.#log.info({ removed: r.removed }, `removed ${r.removed.length} unused pins`)
    for (const f of r.failed) this.#log.warn({ dir: f.dir }, `could not remove pin ${f.dir}: ${f.error.message}`)
  }

  /** Object files rebuilt under the config in force reload it (programs/watch.ts). */
  #watchObjects(): void {
    this.#watch ??= new ObjectWatch({ objects: this.#registry.objects, log: this.#log, onChange: () => void this.reload('object file changed') })
    this.#watch.follow(this.#gen.config.entries, this.#gen.leases)
  }

  /** Stops. With `on-exit: detach`, first detaches our programs (and only ours). */
  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    this.#o.hooks?.stopping?.()
    await this.#control.close()
    this.#watch?.close()
    if (this.#statusTimer) clearTimeout(this.#statusTimer)
    if (this.#reconciler && this.#gen?.config.onExit === 'detach') {
      this.#reconciler.setDesire(this.#desire(this.#gen, () => null))
      await this.#reconciler.idle()
      this.#log.info({ action: 'detach' }, 'on-exit detach: our programs are detached')
    }
    this.#reconciler?.stop()
    this.#client?.close()
    this.#registry?.close()
    this.#log.info('stopped')
  }

  // ---- read by the control socket and the metrics (src/control/) ----------------------------------------------

  /** The programs the config in force uses, one per entry (entries with the same object and program share one). */
  programs(): ProgramUse[] {
    if (!this.#gen) return []
    return [...this.#gen.leases].map(([i, program]) => ({ entry: this.#gen.config.entries[i]!.name, program }))
  }

  /** Why the last reload was rejected; null after an accepted one. */
  get lastReloadError(): string | null {
    return this.#reloadError
  }

  get control(): DaemonControl {
    return this.#control
  }
}

export function summaryText(s: Summary): string {
  return `${s.links} links, ${s.managed} managed, ${s.attached} attached, ${s.pending} pending, ${s.conflicts} conflicts, ${s.errors} errors, ${s.programs} programs`
}
