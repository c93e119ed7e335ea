import t, { type Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, makeNetns, needsRoot, waitFor, type Netns } from '../helpers/netns.js'
import { cliIn, startDaemon } from '../helpers/daemon.js'
import { tempBpffs } from '../helpers/bpf.js'
import { samples } from '../helpers/exposition.js'

/** Scrapes from inside the namespace: the daemon listens on the namespace's own loopback. */
function scrape(ns: Netns, path = '/metrics'): { code: number; body: string } {
  const out = ns.exec('curl', ['-sS', '-o', '-', '-w', '\n%{http_code}', `http://127.0.0.1:9477${path}`])
  const i = out.lastIndexOf('\n')
  return { code: Number(out.slice(i + 1)), body: out.slice(0, i) }
}

/** A namespace, a directory for the config (and the control socket) and a private bpffs. */
function setup(t: Test) {
  const ns = makeNetns(t)
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-metrics-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return { ns, dir, bpffs: tempBpffs(t), cfg: join(dir, 'config.yaml') }
}

t.test('metrics over loopback inside the namespace, after a known sequence of link changes', { skip: needsRoot }, async (t) => {
  const { ns, dir, bpffs, cfg } = setup(t)
  writeFileSync(
    cfg,
    `settle: 10ms\nmax-settle: 200ms\nbpffs: ${bpffs}\ncontrol-socket: ${dir}/control.sock\nmetrics: 127.0.0.1:9477\n` +
      `attach:\n  - interfaces: ["v*"]\n    object: ${ROOT}bpf/xdp_pass.o\n    mode: generic\n`,
    { mode: 0o644 },
  )
  const d = await startDaemon(ns, cfg)
  t.teardown(() => d.stop('SIGKILL'))

  let s = samples(scrape(ns).body)
  t.equal(s.get('xdplinkd_attaches_total{netns="host"}'), 0, 'nothing attached yet')
  t.equal(s.get('xdplinkd_links{netns="host",state="unmanaged"}'), 1, 'lo')
  t.equal(s.get('xdplinkd_programs_loaded'), 1)

  // three matching veths (and their three non-matching peers)
  for (const i of [1, 2, 3]) ns.ip('link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', `p${i}`)
  await waitFor(() => samples(scrape(ns).body).get('xdplinkd_links{netns="host",state="attached"}') === 3, 'three links attached')
  s = samples(scrape(ns).body)
  t.equal(s.get('xdplinkd_attaches_total{netns="host"}'), 3)
  t.equal(s.get('xdplinkd_links{netns="host",state="attached"}'), 3)
  t.equal(s.get('xdplinkd_links{netns="host",state="unmanaged"}'), 4, 'lo and the three peers')
  for (const st of ['pending', 'conflict', 'error']) t.equal(s.get(`xdplinkd_links{netns="host",state="${st}"}`), 0, st)
  t.equal(s.get('xdplinkd_replaces_total{netns="host"}'), 0)
  t.equal(s.get('xdplinkd_detaches_total{netns="host"}'), 0)
  t.equal(s.get('xdplinkd_conflicts_total{netns="host"}'), 0)
  t.equal(s.get('xdplinkd_netlink_overruns_total{netns="host"}'), 0)
  t.ok((s.get('xdplinkd_resyncs_total{netns="host"}') ?? 0) >= 1)
  t.ok((s.get('xdplinkd_reconcile_latency_seconds_count') ?? 0) >= 3, 'a latency per attach at least')
  t.notOk([...s.keys()].some((k) => k.startsWith('xdplinkd_errors_total{netns="host",')), 'no errors')

  // one leaves the pattern (rename): detached; one is deleted: gone from the gauge
  ns.ip('link', 'set', 'v3', 'name', 'x3')
  ns.ip('link', 'del', 'v2')
  await waitFor(() => samples(scrape(ns).body).get('xdplinkd_links{netns="host",state="attached"}') === 1, 'one link left attached')
  await waitFor(() => samples(scrape(ns).body).get('xdplinkd_detaches_total{netns="host"}') === 1, 'the renamed link detached')
  s = samples(scrape(ns).body)
  t.equal(s.get('xdplinkd_attaches_total{netns="host"}'), 3)
  t.equal(s.get('xdplinkd_links{netns="host",state="unmanaged"}'), 4, 'lo, p1, p3 and x3 (deleting v2 took p2 with it)')

  t.equal(scrape(ns, '/').code, 404)
  t.equal(scrape(ns, '/other').code, 404)
  t.match(scrape(ns).body, /# TYPE xdplinkd_reconcile_latency_seconds histogram/)
})

t.test('a metrics endpoint off loopback is warned about at start and at a reload that moves it there', { skip: needsRoot }, async (t) => {
  const { ns, dir, bpffs, cfg } = setup(t)
  const socket = join(dir, 'control.sock')
  const config = (metrics: string): void =>
    writeFileSync(cfg, `bpffs: ${bpffs}\ncontrol-socket: ${socket}\nmetrics: "${metrics}"\nattach: []\n`, { mode: 0o644 })
  const warnings = (d: Awaited<ReturnType<typeof startDaemon>>): string[] =>
    d.logs().filter((l) => l.level === 40 && typeof l.msg === 'string' && l.msg.includes('not on loopback')).map((l) => l.msg as string)

  config('0.0.0.0:9477') // every address of this (private) namespace
  const d = await startDaemon(ns, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  t.same(warnings(d), [
    'metrics endpoint http://0.0.0.0:9477/metrics is not on loopback: whoever can reach 0.0.0.0 over the network can read it (link names, program ids, counters); prefer 127.0.0.1 or ::1 and a scraper on this host, or a firewall',
  ])
  let reloads = 0
  const reload = async (): Promise<void> => {
    const r = cliIn(ns, 'reload', '--socket', socket)
    t.equal(r.status, 0, r.stderr)
    reloads++
    // (spawnSync held this process: the daemon's log lines are read from here on)
    await waitFor(() => d.logs().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('reloaded')).length === reloads, 'the reload logged')
  }
  config('127.0.0.1:9478')
  await reload()
  config('[::1]:9479')
  await reload()
  t.equal(warnings(d).length, 1, 'no warning for loopback')
  config('[::]:9480')
  await reload()
  t.equal(warnings(d).length, 2, 'one more for [::]')
  t.match(warnings(d)[1], /^metrics endpoint http:\/\/\[::\]:9480\/metrics is not on loopback/)
  await reload()
  t.equal(warnings(d).length, 2, 'not again at a reload that leaves it where it is')
})
