/**
 * /healthz and /readyz of a running daemon, asked from inside its namespace by a poller that asks as fast as it can:
 * not ready before the first full reconcile is done (alive all along), ready after it, and both still answering 200
 * while a storm of link changes overruns a small netlink receive buffer and keeps the table resyncing.
 */
import t from 'tap'
import { makeNetns, needsRoot, waitFor, type Netns } from '../helpers/netns.js'
import { spawnDaemon, workdir } from '../helpers/daemon.js'

/** A node process in `ns` asking both endpoints in turn until killed: one JSON line per answer. */
function poller(ns: Netns, port: number) {
  const script = `
    const http = require('node:http')
    const ask = (path) => new Promise((r) => {
      const t0 = Date.now()
      const req = http.get({ host: '127.0.0.1', port: ${port}, path, agent: false }, (res) => {
        let body = ''
        res.on('data', (d) => (body += d))
        res.on('end', () => r({ path, status: res.statusCode, body: body.trim(), ms: Date.now() - t0, at: Date.now() }))
      })
      req.on('error', (e) => r({ path, error: e.code, at: Date.now() }))
    })
    ;(async () => { for (;;) { for (const p of ['/healthz', '/readyz']) process.stdout.write(JSON.stringify(await ask(p)) + '\\n'); await new Promise((r) => setTimeout(r, 2)) } })()
  `
  const child = ns.spawn('node', ['-e', script])
  const answers: { path: string; status?: number; body?: string; ms?: number; error?: string; at: number }[] = []
  let rest = ''
  child.stdout!.on('data', (d: Buffer) => {
    const parts = (rest + d.toString()).split('\n')
    rest = parts.pop()!
    for (const l of parts) if (l) answers.push(JSON.parse(l))
  })
  return { answers, stop: () => child.kill('SIGKILL') }
}

t.test('not ready until the first reconcile, ready after, alive throughout; both answer through a netlink storm', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t, 'xdplhz')
  // Enough links that the first reconcile takes a while.
  ns.exec('ip', ['-batch', '-'], { input: Array.from({ length: 300 }, (_, i) => `link add h${i} type veth peer name g${i}\n`).join('') })
  const w = workdir(t)
  const port = 19000 + (process.pid % 1000)
  const cfg = w.config(`settle: 10ms\nbpffs: ${w.bpffs}\nmetrics: 127.0.0.1:${port}\nattach:\n  - interfaces: ["h*"]\n    object: ${w.object('xdp_pass')}\n    mode: generic\n`)
  const p = poller(ns, port)
  t.teardown(p.stop)
  const d = spawnDaemon(ns, cfg, ['--rcvbuf', '4096'])
  t.teardown(() => d.stop('SIGKILL'))
  const started = await d.waitLog((r) => typeof r.msg === 'string' && r.msg.startsWith('started:'), 'the daemon to start', 60000)
  const startedAt = Number(started.time)
  await waitFor(() => p.answers.some((a) => a.path === '/readyz' && a.status === 200 && a.at > startedAt), 'readyz 200 after start')

  const early = p.answers.filter((a) => a.status !== undefined && a.at < startedAt)
  t.ok(early.some((a) => a.path === '/readyz' && a.status === 503 && a.body === 'not ready: starting (the first full reconcile is not done)'), 'not ready while starting')
  t.ok(early.filter((a) => a.path === '/healthz').every((a) => a.status === 200), 'alive while starting')
  const after = p.answers.find((a) => a.path === '/readyz' && a.status === 200)!
  t.match(after.body, /^ready: 1 network namespace, 300 links attached$/)

  // A storm: links made and deleted as fast as ip can, against a 4 KiB receive buffer.
  const mark = p.answers.length
  for (let round = 0; round < 5; round++) {
    ns.exec('ip', ['-batch', '-'], { input: Array.from({ length: 200 }, (_, i) => `link add s${i} type veth peer name r${i}\n`).join('') })
    ns.exec('ip', ['-batch', '-'], { input: Array.from({ length: 200 }, (_, i) => `link del s${i}\n`).join('') })
  }
  await waitFor(() => p.answers.length > mark + 20, 'answers during and after the storm')
  const during = p.answers.slice(mark).filter((a) => a.status !== undefined)
  t.ok(d.logs().some((r) => typeof r.msg === 'string' && r.msg.startsWith('netlink overrun')), 'the storm overran the receive buffer (the table resynced)')
  t.same([...new Set(during.map((a) => a.status))], [200], 'both endpoints answered 200 throughout')
  t.ok(during.every((a) => (a.ms ?? 0) < 2000), `every answer within 2 s (slowest ${Math.max(...during.map((a) => a.ms ?? 0))} ms)`)
  t.same(p.answers.filter((a) => a.error !== undefined && a.at > startedAt), [], 'no connection refused once started')
})
