/**
 * The daemon's outward-facing services: the control socket (status, maps, reload) and the optional Prometheus
 * endpoint.
 *
 * Daemon.open() makes one and start() binds both listeners as its first act after reading the config: a second
 * daemon pointed at the same socket gives up before it loads or attaches anything, and a port in use is reported
 * before links are touched. The reconciler feeds the latency histogram from the first reconcile on. Until
 * ready(daemon) (first reconcile done, just before the daemon reports ready to systemd) requests are answered
 * "starting" and the metrics are empty.
 */
import type { Logger } from 'pino'
import type { Config, ControlGroup, MetricsEndpoint } from '../config/index.js'
import type { DaemonMetrics, MetricsSource } from '../metrics/metrics.js'
import type { HealthAnswer, HealthSource, MetricsServer } from '../metrics/server.js'
import type { ControlRequest, ControlResponse } from './protocol.js'
import { isLoopback } from '../metrics/loopback.js'
import { allowedText, type AccessPolicy } from './peer.js'
import { ControlServer, ControlStartError, daemonUids } from './server.js'
import { buildMaps, type MapsSource } from './maps.js'
import { buildStatus, type ProgramUse, type StatusSource } from './status.js'

export { ControlStartError } from './server.js'
export type { ProgramUse } from './status.js'

/** What the services need from the daemon. */
export interface ControlledDaemon extends StatusSource, MapsSource, MetricsSource {
  programs(): ProgramUse[]
  /** /healthz and /readyz once started (metrics/server.ts HealthSource). */
  health(): { live: HealthAnswer; ready: HealthAnswer }
  reload(reason?: string): Promise<boolean>
  /** Why the last reload was rejected (null after an accepted one). */
  readonly lastReloadError: string | null
}

export interface ControlStartOptions {
  socketPath: string
  /** `control-group:`: who besides root may ask (default none). */
  group?: ControlGroup | null
  metrics: MetricsEndpoint | null
  /** --insecure-paths: the socket's directory is not checked either. */
  insecurePaths?: boolean
  log: Logger
}

/** The options for a config (the daemon's start and reload). */
export function controlOptions(config: Config, insecurePaths: boolean | undefined, log: Logger): ControlStartOptions {
  return { socketPath: config.controlSocket, group: config.controlGroup, metrics: config.metrics, insecurePaths, log }
}

function accessOf(o: ControlStartOptions): AccessPolicy {
  return { uids: daemonUids(), group: o.group ?? null }
}

/** `host:port`, `[v6]:port`, or null. */
function endpointText(e: MetricsEndpoint | null): string | null {
  if (!e) return null
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`
}

/** The metrics name links, programs and counts: say so when anyone on the network may read them. */
function warnIfReachable(e: MetricsEndpoint, log: Logger): void {
  if (isLoopback(e.host)) return
  const where = endpointText(e)
  log.warn(
    { metrics: where },
    `metrics endpoint http://${where}/metrics is not on loopback: whoever can reach ${e.host} over the network can read it ` +
      '(link names, program ids, counters); prefer 127.0.0.1 or ::1 and a scraper on this host, or a firewall',
  )
}

export class DaemonControl {
  /** Null without a `metrics:` endpoint: prom-client (20-25 ms to load) is loaded only when one is configured. */
  metrics: DaemonMetrics | null = null
  /** Set by ready(): what status, maps, reload and the metrics read. Null while the daemon starts. */
  #daemon: ControlledDaemon | null = null
  #socket: ControlServer | null = null
  #socketPath: string | null = null
  #access: AccessPolicy | null = null
  #http: MetricsServer | null = null
  #endpoint: MetricsEndpoint | null = null


  /** For the Reconciler's onLatency option; nothing to do without a metrics endpoint. */
  observeLatency(ms: number): void {
    this.metrics?.observeLatency(ms)
  }

  /**
   * Binds the control socket, then the metrics endpoint. Throws ControlStartError (exit status 73) when either
   * cannot be had; whatever was bound is closed again first.
   */
  async start(o: ControlStartOptions): Promise<void> {
    const log = o.log.child({ component: 'control' })
    const access = accessOf(o)
    this.#socket = await ControlServer.listen({ path: o.socketPath, handler: this, log, access, insecurePaths: o.insecurePaths })
    this.#socketPath = o.socketPath
    this.#access = access
    log.info({ path: o.socketPath }, `control socket at ${o.socketPath} (${allowedText(access)} may ask)`)
    if (!o.metrics) return
    try {
      this.#http = await this.#serveMetrics(o.metrics, log)
    } catch (e) {
      await this.close()
      throw e
    }
    this.#endpoint = o.metrics
    const where = endpointText(o.metrics)
    log.info({ metrics: where }, `metrics at http://${where}/metrics`)
    warnIfReachable(o.metrics, log)
  }

  /**
   * At a reload: binds what moved (the control socket's path, the metrics endpoint) next to what serves now, so
   * that a new config that cannot have them is rejected as a whole before anything changed. Throws
   * ControlStartError then, with whatever it bound closed again. Otherwise commit() retires the old listeners
   * (a request open on the old control socket, such as the `reload` that asked for this, is still answered there),
   * and abort() closes the new ones (the reload was rejected for another reason).
   */
  async rebind(o: ControlStartOptions): Promise<{ changes: string[]; commit(): void; abort(): Promise<void> }> {
    const log = o.log.child({ component: 'control' })
    const changes: string[] = []
    let socket: ControlServer | null = null
    let http: MetricsServer | null = null
    const moveSocket = o.socketPath !== this.#socketPath
    const moveMetrics = endpointText(o.metrics) !== endpointText(this.#endpoint)
    const access = accessOf(o)
    const newAccess = this.#access === null || allowedText(access) !== allowedText(this.#access)
    try {
      if (moveSocket) {
        socket = await ControlServer.listen({ path: o.socketPath, handler: this, log, access, insecurePaths: o.insecurePaths })
        changes.push(`control socket moved to ${o.socketPath}`)
      }
      if (newAccess) changes.push(`control socket: ${allowedText(access)} may ask now`)
      if (moveMetrics) {
        if (o.metrics) http = await this.#serveMetrics(o.metrics, log)
        changes.push(o.metrics ? `metrics moved to http://${endpointText(o.metrics)}/metrics` : 'metrics endpoint closed')
      }
    } catch (e) {
      await Promise.all([socket?.close(), http?.close()])
      throw e
    }
    return {
      changes,
      commit: () => {
        // Not awaited: the old control socket's file is gone at once, but its last connections may take up to their
        // deadline to finish.
        if (moveSocket) {
          void this.#socket?.retire()
          this.#socket = socket
          this.#socketPath = o.socketPath
        }
        this.#socket?.setAccess(access)
        this.#access = access
        if (moveMetrics) {
          void this.#http?.close()
          this.#http = http
          this.#endpoint = o.metrics
        }
        for (const c of changes) log.info({ path: this.#socketPath, metrics: endpointText(this.#endpoint) }, c)
        if (moveMetrics && o.metrics) warnIfReachable(o.metrics, log)
      },
      abort: async () => {
        await Promise.all([socket?.close(), http?.close()])
      },
    }
  }

  /** Listens on `endpoint` for /metrics (prom-client loaded the first time). Throws ControlStartError. */
  async #serveMetrics(endpoint: MetricsEndpoint, log: Logger): Promise<MetricsServer> {
    const where = endpointText(endpoint)!
    const [{ DaemonMetrics }, { MetricsServer }] = await Promise.all([import('../metrics/metrics.js'), import('../metrics/server.js')])
    // The daemon's table and reconciler exist only once it has started; until then the collectors report nothing.
    this.metrics ??= new DaemonMetrics(() => this.#daemon)
    let http: MetricsServer
    try {
      http = await MetricsServer.listen({ host: endpoint.host, port: endpoint.port, metrics: this.metrics, health: this.#health, log })
    } catch (e) {
      const err = e as NodeJS.ErrnoException
      // systemd/dropins/metrics.conf allows the IP address families; without it socket() fails like this.
      const hint = err.code === 'EAFNOSUPPORT' ? ' (IP sockets are not allowed: install systemd/dropins/metrics.conf)' : ''
      throw new ControlStartError(`cannot serve metrics on ${where}: ${err.message}${hint}`)
    }
    return http
  }

  /**
   * The probes. Until ready(): alive (the process answers; its netlink sockets are opened during start-up, which a
   * startup probe bounds) and not ready (the first full reconcile is not done).
   */
  readonly #health: HealthSource = {
    live: () => this.#daemon?.health().live ?? { ok: true, text: 'alive: starting (the first full reconcile is not done)' },
    ready: () => this.#daemon?.health().ready ?? { ok: false, text: 'not ready: starting (the first full reconcile is not done)' },
  }

  /** The daemon has its table, reconciler and programs: serve status, maps, reload and metrics from now on. */
  ready(daemon: ControlledDaemon): void {
    this.#daemon = daemon
  }

  async handle(req: ControlRequest): Promise<ControlResponse> {
    const daemon = this.#daemon
    if (!daemon) return { ok: false, error: 'xdplinkd is starting; ask again in a moment' }
    switch (req.cmd) {
      case 'status':
        return { ok: true, ...buildStatus(daemon) }
      case 'maps':
        return { ok: true, ...buildMaps(daemon) }
      case 'reload': {
        const accepted = await daemon.reload('control socket')
        if (accepted) return { ok: true, accepted: true }
        return { ok: true, accepted: false, reason: daemon.lastReloadError ?? 'rejected (the daemon is stopping?)' }
      }
    }
  }

  /** Where the metrics endpoint listens, once started (null without one). */
  metricsAddress(): { host: string; port: number } | null {
    return this.#http?.address() ?? null
  }

  async close(): Promise<void> {
    const socket = this.#socket
    const http = this.#http
    this.#socket = null
    this.#http = null
    await Promise.all([socket?.close(), http?.close()])
  }
}
