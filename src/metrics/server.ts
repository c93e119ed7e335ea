/**
 * The /metrics endpoint over node:http, on the configured host:port only, and next to it the health endpoints a
 * Kubernetes probe asks: /healthz (liveness: the process answers and its netlink sockets are open) and /readyz
 * (readiness: the first full reconcile is done and no link table is stuck resyncing), 200 or 503 with a line that
 * says why. Anything else is 404 (405 for another method than GET/HEAD).
 *
 * A few clients that connect and say nothing, or send their headers a byte at a time, must not starve the scraper
 * of the 32 connections. Every limit is well under Prometheus' default scrape interval (15 s) and timeout (10 s):
 * - a connection quiet for IDLE_TIMEOUT_MS is closed (socket inactivity: Node's headersTimeout counts only from a
 *   request's first byte, so it never ends a connection that sends nothing);
 * - a request's headers must be complete HEADERS_TIMEOUT_MS after its first byte, the whole request within
 *   REQUEST_TIMEOUT_MS, however slowly it trickles in (Node checks both every CHECK_INTERVAL_MS);
 * - a kept-alive connection idle after a response is closed after KEEP_ALIVE_TIMEOUT_MS;
 * - a connection over the cap closes the longest-idle connection that has no request in progress instead of being
 *   refused, so a scraper gets in even while others hold every slot; only when all 32 are serving is it refused.
 */
import { createServer, type Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Logger } from 'pino'

export interface MetricsText {
  readonly contentType: string
  text(): Promise<string>
}

export const IDLE_TIMEOUT_MS = 3_000
export const HEADERS_TIMEOUT_MS = 3_000
export const REQUEST_TIMEOUT_MS = 5_000
export const KEEP_ALIVE_TIMEOUT_MS = 2_000
export const CHECK_INTERVAL_MS = 500

/** One probe's answer: whether it passes, and the line that says why. */
export interface HealthAnswer {
  ok: boolean
  text: string
}

export interface HealthSource {
  live(): HealthAnswer
  ready(): HealthAnswer
}

export interface MetricsServerOptions {
  host: string
  port: number
  metrics: MetricsText
  /** /healthz and /readyz; without it they are 404. */
  health?: HealthSource
  /** Default 32: scrapers are few. */
  maxConnections?: number
  /** The limits above, for tests. */
  idleTimeoutMs?: number
  headersTimeoutMs?: number
  log?: Pick<Logger, 'warn'>
}

export class MetricsServer {
  readonly #server: Server
  #closed = false

  private constructor(server: Server) {
    this.#server = server
  }

  /** Resolves once listening; rejects with the listen error (EADDRINUSE, EADDRNOTAVAIL, EAFNOSUPPORT...). */
  static async listen(o: MetricsServerOptions): Promise<MetricsServer> {
    const headersTimeout = o.headersTimeoutMs ?? HEADERS_TIMEOUT_MS
    const server = createServer(
      {
        headersTimeout,
        requestTimeout: Math.max(REQUEST_TIMEOUT_MS, headersTimeout),
        keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
        connectionsCheckingInterval: Math.min(CHECK_INTERVAL_MS, headersTimeout),
      },
      (req, res) => {
        const path = (req.url ?? '').split('?')[0]
        const probe = path === '/healthz' ? o.health?.live : path === '/readyz' ? o.health?.ready : undefined
        if (path !== '/metrics' && !probe) {
          res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`not found: try /metrics${o.health ? ', /healthz or /readyz' : ''}\n`)
          return
        }
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n')
          return
        }
        if (probe) {
          // Synchronous and cheap (flags and counters the daemon keeps): a probe is answered at once, during a
          // storm of link notifications too, as soon as the event loop gets to it.
          let a: HealthAnswer
          try {
            a = probe()
          } catch (e) {
            a = { ok: false, text: `the check failed: ${(e as Error).message}` }
          }
          const body = `${a.text}\n`
          res.writeHead(a.ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
          res.end(req.method === 'HEAD' ? undefined : body)
          return
        }
        o.metrics.text().then(
          (body) => {
            res.writeHead(200, { 'content-type': o.metrics.contentType, 'content-length': Buffer.byteLength(body) })
            res.end(req.method === 'HEAD' ? undefined : body)
          },
          (e: unknown) => {
            res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`collecting metrics failed: ${(e as Error).message}\n`)
          },
        )
      },
    )
    // Socket inactivity; with no 'timeout' listener Node destroys the socket (lib/_http_server.js socketOnTimeout).
    server.timeout = o.idleTimeoutMs ?? IDLE_TIMEOUT_MS
    trackConnections(server, o.maxConnections ?? 32)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host: o.host, port: o.port, exclusive: true }, () => {
        server.off('error', reject)
        // Later errors (EMFILE on accept, say) cost a scrape, never the daemon.
        server.on('error', (e) => o.log?.warn({ err: e }, `metrics endpoint: ${e.message}`))
        resolve()
      })
    })
    return new MetricsServer(server)
  }

  /** The bound address (the port when 0 was asked). */
  address(): { host: string; port: number } {
    const a = this.#server.address()
    if (a === null || typeof a === 'string') throw new Error('metrics server is not listening')
    return { host: a.address, port: a.port }
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve()
    this.#closed = true
    this.#server.closeAllConnections()
    return new Promise((resolve) => this.#server.close(() => resolve()))
  }
}

/**
 * The connection cap, by eviction: Node's own maxConnections would refuse the newcomer, the scraper included,
 * while idle clients keep their slots. Connections are kept in the order they last became idle.
 */
function trackConnections(server: Server, max: number): void {
  const busy = new Map<Socket, boolean>()
  server.on('connection', (s: Socket) => {
    // An idle keep-alive socket must not keep the process from exiting on stop.
    s.unref()
    if (busy.size >= max) {
      const idle = [...busy].find(([, b]) => !b)?.[0]
      if (idle === undefined) return void s.destroy()
      idle.destroy()
      busy.delete(idle)
    }
    busy.set(s, false)
    s.on('close', () => busy.delete(s))
  })
  server.on('request', (req, res) => {
    const s = req.socket
    if (busy.has(s)) busy.set(s, true)
    res.on('close', () => {
      if (!busy.delete(s) || s.destroyed) return
      busy.set(s, false) // to the end: the longest idle are first
    })
  })
}
