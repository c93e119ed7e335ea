import t from 'tap'
import { register as globalRegistry } from 'prom-client'
import { DaemonMetrics, type MetricsSource } from '../../src/metrics/metrics.js'
import { MetricsServer } from '../../src/metrics/server.js'
import type { LinkRecord } from '../../src/reconcile/record.js'
import type { ReconcilerCounters } from '../../src/reconcile/reconciler.js'
import { zeroCounters } from '../../src/programs/counters.js'
import { link } from '../helpers/link-state.js'
import { samples } from '../helpers/exposition.js'

const rec = (ifindex: number, state: LinkRecord['state']): LinkRecord =>
  ({ ifindex, name: `l${ifindex}`, state }) as LinkRecord

function fakeSource() {
  const counters: ReconcilerCounters = { attaches: 0, replaces: 0, detaches: 0, conflicts: 0, errors: {}, batches: 0, requests: 0 }
  const stats = { overruns: 0, resyncs: 1 }
  const src = {
    links: [link(1, 'lo'), link(2, 'va'), link(3, 'vb'), link(4, 'vc')],
    records: [rec(1, 'unmanaged'), rec(2, 'attached'), rec(3, 'error')],
    progIds: [5, 5, 6],
  }
  const source: MetricsSource = {
    namespaces: () => [{ name: 'host', inode: 4026531833, table: { links: () => src.links, stats }, reconciler: { records: () => src.records, counters } }],
    programs: () => src.progIds.map((id) => ({ program: { id, maps: new Map<string, string>() } })),
  }
  return { source, counters, stats, src }
}

t.test('the metrics follow the daemon counters when scraped, in a registry of their own', async (t) => {
  const f = fakeSource()
  const m = new DaemonMetrics(() => f.source)
  let s = samples(await m.text())
  t.equal(s.get('xdplinkd_links{netns="host",state="attached"}'), 1)
  t.equal(s.get('xdplinkd_links{netns="host",state="error"}'), 1)
  t.equal(s.get('xdplinkd_links{netns="host",state="unmanaged"}'), 1)
  t.equal(s.get('xdplinkd_links{netns="host",state="pending"}'), 1, 'a link without a record is pending')
  t.equal(s.get('xdplinkd_links{netns="host",state="conflict"}'), 0, 'every state is reported, zeros included')
  t.equal(s.get('xdplinkd_attaches_total{netns="host"}'), 0)
  t.equal(s.get('xdplinkd_resyncs_total{netns="host"}'), 1)
  t.equal(s.get('xdplinkd_programs_loaded'), 2, 'distinct programs')
  t.notOk([...s.keys()].some((k) => k.startsWith('xdplinkd_errors_total')), 'no error series before an error')

  f.counters.attaches = 3
  f.counters.replaces = 1
  f.counters.detaches = 2
  f.counters.conflicts = 4
  f.counters.errors.EBUSY = 2
  f.counters.errors.EOPNOTSUPP = 1
  f.stats.overruns = 5
  f.stats.resyncs = 6
  f.src.records.push(rec(4, 'conflict'))
  m.observeLatency(30)
  m.observeLatency(700)
  s = samples(await m.text())
  t.equal(s.get('xdplinkd_attaches_total{netns="host"}'), 3)
  t.equal(s.get('xdplinkd_replaces_total{netns="host"}'), 1)
  t.equal(s.get('xdplinkd_detaches_total{netns="host"}'), 2)
  t.equal(s.get('xdplinkd_conflicts_total{netns="host"}'), 4)
  t.equal(s.get('xdplinkd_errors_total{netns="host",code="EBUSY"}'), 2)
  t.equal(s.get('xdplinkd_errors_total{netns="host",code="EOPNOTSUPP"}'), 1)
  t.equal(s.get('xdplinkd_netlink_overruns_total{netns="host"}'), 5)
  t.equal(s.get('xdplinkd_resyncs_total{netns="host"}'), 6)
  t.equal(s.get('xdplinkd_links{netns="host",state="pending"}'), 0)
  t.equal(s.get('xdplinkd_links{netns="host",state="conflict"}'), 1)
  t.equal(s.get('xdplinkd_reconcile_latency_seconds_count'), 2)
  t.equal(s.get('xdplinkd_reconcile_latency_seconds_sum'), 0.73)
  t.equal(s.get('xdplinkd_reconcile_latency_seconds_bucket{le="0.05"}'), 1)
  t.equal(s.get('xdplinkd_reconcile_latency_seconds_bucket{le="1"}'), 2)
  // scraping twice does not add the totals up again
  s = samples(await m.text())
  t.equal(s.get('xdplinkd_attaches_total{netns="host"}'), 3)

  t.equal((await globalRegistry.metrics()).includes('xdplinkd_'), false, 'nothing in the global registry')
  // two daemons in one process (tests) do not clash over metric names
  t.doesNotThrow(() => new DaemonMetrics(() => null))
})

t.test('before start the collectors report no namespace and no programs', async (t) => {
  const m = new DaemonMetrics(() => null)
  const s = samples(await m.text())
  t.equal(s.get('xdplinkd_programs_loaded'), 0)
  t.notOk([...s.keys()].some((k) => k.startsWith('xdplinkd_attaches_total')), 'no counter series without a namespace')
  t.notOk([...s.keys()].some((k) => k.startsWith('xdplinkd_links{')), 'no link states without links')
})

t.test('each namespace is a netns label; one that goes ends its series', async (t) => {
  const f = fakeSource()
  const pod = { name: 'cni-1', inode: 4026532174, table: { links: () => [link(1, 'lo'), link(2, 'eth0')], stats: { overruns: 1, resyncs: 2 } }, reconciler: { records: () => [rec(2, 'attached')], counters: { ...f.counters, attaches: 9, errors: { EBUSY: 1 } } } }
  let present = true
  const m = new DaemonMetrics(() => ({ ...f.source, namespaces: () => [...f.source.namespaces(), ...(present ? [pod] : [])] }))
  let s = samples(await m.text())
  t.equal(s.get('xdplinkd_links{netns="cni-1",state="attached"}'), 1)
  t.equal(s.get('xdplinkd_links{netns="cni-1",state="pending"}'), 1, 'lo has no record yet')
  t.equal(s.get('xdplinkd_attaches_total{netns="cni-1"}'), 9)
  t.equal(s.get('xdplinkd_attaches_total{netns="host"}'), 0)
  t.equal(s.get('xdplinkd_errors_total{netns="cni-1",code="EBUSY"}'), 1)
  t.equal(s.get('xdplinkd_resyncs_total{netns="cni-1"}'), 2)
  present = false
  s = samples(await m.text())
  t.notOk([...s.keys()].some((k) => k.includes('cni-1')), 'no series of a namespace that went')
  t.equal(s.get('xdplinkd_links{netns="host",state="attached"}'), 1)
})

t.test('packets and bytes per link and action, read from the maps when scraped and only then', async (t) => {
  const f = fakeSource()
  const pass = { mode: 'generic' as const, progId: 5, skbProgId: 5 }
  f.src.links = [link(1, 'lo'), link(2, 'va', { xdp: pass })]
  const pod = {
    name: 'cni-1',
    inode: 4026532174,
    table: { links: () => [link(2, 'eth0', { xdp: pass })], stats: { overruns: 0, resyncs: 1 } },
    reconciler: { records: () => [], counters: f.counters },
  }
  const maps = new Map([['xdp_link_stats', '/pin/5/maps/xdp_link_stats']])
  const source: MetricsSource = { namespaces: () => [...f.source.namespaces(), pod], programs: () => [{ program: { id: 5, maps } }, { program: { id: 5, maps } }] }
  let reads = 0
  let pkts = 3
  const m = new DaemonMetrics(() => source, {
    readStats: () => {
      reads++
      return {
        kind: 'entries',
        entries: [
          { netns: 4026531833, ifindex: 2, actions: { ...zeroCounters(), pass: { packets: pkts, bytes: pkts * 98 } } },
          { netns: 4026532174, ifindex: 2, actions: { ...zeroCounters(), drop: { packets: 4, bytes: 392 }, pass: { packets: 1, bytes: 60 } } },
        ],
      }
    },
  })
  t.equal(reads, 0, 'nothing read until scraped')
  let s = samples(await m.text())
  t.equal(reads, 1, 'one read per scrape for both metrics and both entries of the shared program')
  t.equal(s.get('xdplinkd_xdp_packets_total{netns="host",ifname="va",action="pass"}'), 3)
  t.equal(s.get('xdplinkd_xdp_bytes_total{netns="host",ifname="va",action="pass"}'), 294)
  t.equal(s.get('xdplinkd_xdp_packets_total{netns="cni-1",ifname="eth0",action="drop"}'), 4)
  t.equal(s.get('xdplinkd_xdp_bytes_total{netns="cni-1",ifname="eth0",action="drop"}'), 392)
  t.equal(s.get('xdplinkd_xdp_packets_total{netns="cni-1",ifname="eth0",action="pass"}'), 1)
  t.same(
    [...s.keys()].filter((k) => k.startsWith('xdplinkd_xdp_packets_total')).sort(),
    [
      'xdplinkd_xdp_packets_total{netns="cni-1",ifname="eth0",action="drop"}',
      'xdplinkd_xdp_packets_total{netns="cni-1",ifname="eth0",action="pass"}',
      'xdplinkd_xdp_packets_total{netns="host",ifname="va",action="pass"}',
    ],
    'a series per action counted; none for a link without a program (lo)',
  )
  pkts = 10
  await new Promise((r) => setImmediate(r))
  s = samples(await m.text())
  t.equal(reads, 2, 'read again at the next scrape')
  t.equal(s.get('xdplinkd_xdp_packets_total{netns="host",ifname="va",action="pass"}'), 10)
})

t.test('the endpoint serves /metrics and 404 elsewhere', async (t) => {
  const f = fakeSource()
  f.counters.attaches = 7
  const m = new DaemonMetrics(() => f.source)
  const srv = await MetricsServer.listen({ host: '127.0.0.1', port: 0, metrics: m })
  t.teardown(() => srv.close())
  const { host, port } = srv.address()
  t.equal(host, '127.0.0.1')
  const base = `http://127.0.0.1:${port}`
  const r = await fetch(`${base}/metrics`)
  t.equal(r.status, 200)
  t.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  t.equal(samples(await r.text()).get('xdplinkd_attaches_total{netns="host"}'), 7)
  t.equal((await fetch(`${base}/metrics?x=1`)).status, 200, 'a query string is fine')
  for (const p of ['/', '/metric', '/metrics/', '/favicon.ico']) {
    const x = await fetch(base + p)
    await x.text()
    t.equal(x.status, 404, p)
  }
  const post = await fetch(`${base}/metrics`, { method: 'POST' })
  t.equal(post.status, 405)
  const head = await fetch(`${base}/metrics`, { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(await head.text(), '')
})

t.test('a port in use is an error at listen', async (t) => {
  const m = new DaemonMetrics(() => null)
  const a = await MetricsServer.listen({ host: '127.0.0.1', port: 0, metrics: m })
  t.teardown(() => a.close())
  await t.rejects(MetricsServer.listen({ host: '127.0.0.1', port: a.address().port, metrics: m }), { code: 'EADDRINUSE' })
})
