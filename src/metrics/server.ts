/**
 * The /metrics endpoint over node:http, on the configured host:port only. Anything but GET/HEAD /metrics is 404
 * (405 for another method on /metrics). Timeouts and a connection cap keep a stuck scraper from holding sockets.
 */
import { createServer, type Server } from 'node:http'
import type { Logger } from 'pino'

export interface MetricsText {
  readonly contentType: string
  text(): Promise<string>
}

export interface MetricsServerOptions {
  host: string
  port: number
  metrics: MetricsText
  /** Default 32: scrapers are few. */
  maxConnections?: number
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
    const server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000 }, (req, res) => {
      const path = (req.url ?? '').split('?')[0]
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics\n')
        return
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n')
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
    })
    server.maxConnections = o.maxConnections ?? 32
    // An idle keep-alive socket must not keep the process from exiting on stop.
    server.on('connection', (s) => s.unref())
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
