/**
 * The endpoint under clients that hold connections: silent ones, slow ones, and more of them than the cap. A scrape
 * must be answered within Prometheus' default scrape timeout (10 s) whatever they do.
 */
import t, { type Test } from 'tap'
import { request } from 'node:http'
import { createConnection, type Socket } from 'node:net'
import { MetricsServer, type MetricsServerOptions } from '../../src/metrics/server.js'
import { waitFor } from '../helpers/netns.js'

const SCRAPE_TIMEOUT_MS = 10_000

/** A metrics source whose answers can be held back, to keep requests in progress. */
function source() {
  let release: () => void = () => {}
  let held: Promise<void> | null = null
  const m = {
    asked: 0,
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    async text() {
      m.asked++
      if (held) await held
      return 'xdplinkd_up 1\n'
    },
    hold() {
      held = new Promise((r) => (release = r))
    },
    release() {
      held = null
      release()
    },
  }
  return m
}

async function serve(t: Test, o: Partial<MetricsServerOptions> = {}) {
  const metrics = source()
  const srv = await MetricsServer.listen({ host: '127.0.0.1', port: 0, metrics, ...o })
  t.teardown(() => srv.close())
  return { srv, metrics, port: srv.address().port }
}

/** Connections that connect and then say nothing (or what `send` says). */
async function hold(port: number, n: number, send?: string): Promise<{ sockets: Socket[]; closed: Set<Socket> }> {
  const closed = new Set<Socket>()
  const sockets = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<Socket>((resolve, reject) => {
        const s = createConnection(port, '127.0.0.1')
        s.on('error', () => {})
        s.on('close', () => closed.add(s))
        s.once('connect', () => {
          if (send) s.write(send)
          resolve(s)
        })
        s.once('error', reject)
      }),
    ),
  )
  return { sockets, closed }
}

/** GET /metrics (or `path`) on a fresh connection, failing after the scrape timeout. */
function scrape(port: number, path = '/metrics', method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false, timeout: SCRAPE_TIMEOUT_MS }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => (body += d.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${SCRAPE_TIMEOUT_MS} ms`)))
    req.on('error', reject)
    req.end()
  })
}

/** Waits for a condition, for at most the scrape timeout. */
const until = (pred: () => boolean, what: string): Promise<void> => waitFor(pred, what, SCRAPE_TIMEOUT_MS, 10)

t.test('32 silent connections: a scrape is still answered, and the longest idle makes room', async (t) => {
  const { port } = await serve(t)
  const { sockets, closed } = await hold(port, 32)
  t.teardown(() => sockets.forEach((s) => s.destroy()))
  t.same(await scrape(port), { status: 200, body: 'xdplinkd_up 1\n' })
  await until(() => closed.has(sockets[0]!), 'the oldest idle connection closed')
  t.equal(closed.size, 1, 'only one made room')
  t.same(await scrape(port), { status: 200, body: 'xdplinkd_up 1\n' }, 'and again')
})

t.test('a connection that sends nothing is closed after the idle timeout; one that trickles its headers too', async (t) => {
  const { port } = await serve(t, { idleTimeoutMs: 300, headersTimeoutMs: 400 })
  const silent = await hold(port, 1)
  const trickle = await hold(port, 1, 'GET /metrics HTTP/1.1\r\n')
  const s = trickle.sockets[0]!
  let sent = 0
  const timer = setInterval(() => {
    if (!s.destroyed) s.write('X-Slow: 1\r\n')
    sent++
  }, 50) // always active: only the headers timeout can end it
  t.teardown(() => clearInterval(timer))
  await until(() => silent.closed.size === 1, 'the silent connection closed by the server')
  await until(() => trickle.closed.size === 1, 'the trickling connection closed by the server')
  clearInterval(timer)
  t.pass(`both closed; the trickler got ${sent} header lines in, never the end of its headers`)
  t.same(await scrape(port), { status: 200, body: 'xdplinkd_up 1\n' })
})

t.test('over the cap with every connection serving a request: the newcomer is refused, none in progress is cut', async (t) => {
  const { port, metrics } = await serve(t, { maxConnections: 2 })
  metrics.hold()
  const first = scrape(port)
  const second = scrape(port)
  await until(() => metrics.asked === 2, 'both requests at the server, waiting for the text')
  await t.rejects(scrape(port), /socket hang up|ECONNRESET/, 'a third is refused while both are in progress')
  metrics.release()
  t.same(await first, { status: 200, body: 'xdplinkd_up 1\n' })
  t.same(await second, { status: 200, body: 'xdplinkd_up 1\n' })
  t.same(await scrape(port), { status: 200, body: 'xdplinkd_up 1\n' }, 'room again')
})

t.test('/healthz and /readyz: 200 or 503 with the line that says why; 404 without a health source', async (t) => {
  const state = { live: { ok: true, text: 'alive: netlink open in 1 network namespace' }, ready: { ok: false, text: 'not ready: starting' } }
  const { port } = await serve(t, { health: { live: () => state.live, ready: () => state.ready } })
  t.same(await scrape(port, '/healthz'), { status: 200, body: 'alive: netlink open in 1 network namespace\n' })
  t.same(await scrape(port, '/readyz'), { status: 503, body: 'not ready: starting\n' })
  state.ready = { ok: true, text: 'ready' }
  t.same(await scrape(port, '/readyz?verbose'), { status: 200, body: 'ready\n' }, 'a query string is ignored')
  t.same(await scrape(port, '/readyz', 'HEAD'), { status: 200, body: '' })
  t.equal((await scrape(port, '/healthz', 'POST')).status, 405)
  state.live = { ok: false, text: 'netlink socket closed in host' }
  t.same(await scrape(port, '/healthz'), { status: 503, body: 'netlink socket closed in host\n' })
  const thrown = await serve(t, {
    health: {
      live: () => {
        throw new Error('boom')
      },
      ready: () => state.ready,
    },
  })
  t.same(await scrape(thrown.port, '/healthz'), { status: 503, body: 'the check failed: boom\n' }, 'a check that throws fails the probe, not the daemon')
  const bare = await serve(t)
  t.same(await scrape(bare.port, '/healthz'), { status: 404, body: 'not found: try /metrics\n' })
})
