/**
 * Per-link counters with real packets: two pod-like namespaces, each with an `eth0` (ifindex 2 in both) given one
 * xdp_pass program by the daemon (generic in one, native in the other), and pings into each. Judged three ways: the
 * map itself (`bpftool map dump`), `status` (JSON and text) and the metrics.
 *
 * The counters see every packet that arrives on a link, so the test leaves nothing but the pings to arrive: IPv6 is
 * off in every namespace (no neighbour or router solicitations, no MLD reports) and both ends know each other's
 * MAC address (permanent neighbour entries: no ARP). An echo request is then the only packet eth0 receives, and its
 * 98 bytes (Ethernet 14, IPv4 20, ICMP 8, ping's default 56 bytes of data) are all in the linear part XDP counts.
 */
import t from 'tap'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { makeNetns, needsRoot, waitFor, type Netns } from '../helpers/netns.js'
import { netnsDir } from '../helpers/mounts.js'
import { cliIn, startDaemon, statusOf, workdir, xdpOf } from '../helpers/daemon.js'
import { bpftoolJson } from '../helpers/bpf.js'
import { samples } from '../helpers/exposition.js'

const ECHO_BYTES = 14 + 20 + 8 + 56

function noIpv6(ns: Netns): void {
  for (const c of ['all', 'default']) ns.exec('sysctl', ['-q', '-w', `net.ipv6.conf.${c}.disable_ipv6=1`])
}

const macOf = (ns: Netns, dev: string): string => ns.ipJson<{ address: string }[]>('link', 'show', 'dev', dev)[0]!.address

/**
 * A pod's eth0, made inside the pod with its peer `hostEnd` in `host`: the first link after lo, ifindex 2 in every
 * pod (a link moved in from the host would keep the host's ifindex). Static neighbours on both ends.
 */
function pod(host: Netns, p: Netns, hostEnd: string, net: string): void {
  p.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', hostEnd, 'netns', host.name)
  p.ip('addr', 'add', `${net}.2/24`, 'dev', 'eth0')
  host.ip('addr', 'add', `${net}.1/24`, 'dev', hostEnd)
  host.ip('neigh', 'add', `${net}.2`, 'lladdr', macOf(p, 'eth0'), 'dev', hostEnd, 'nud', 'permanent')
  p.ip('neigh', 'add', `${net}.1`, 'lladdr', macOf(host, hostEnd), 'dev', 'eth0', 'nud', 'permanent')
  p.ip('link', 'set', 'eth0', 'up')
  host.ip('link', 'set', hostEnd, 'up')
}

const inodeOf = (ns: Netns): number => Number(ns.exec('stat', ['-L', '-c', '%i', '/proc/self/ns/net']).trim())

type Dumped = { formatted: { key: { netns: number; ifindex: number }; values: { value: { action: { packets: number; bytes: number }[] } }[] } }

/** The map as bpftool decodes it (with its BTF): per "netns/ifindex", per action index, summed over CPUs. */
function dumpLinkStats(pin: string): Map<string, { packets: number; bytes: number }[]> {
  const out = new Map<string, { packets: number; bytes: number }[]>()
  for (const { formatted: f } of bpftoolJson<Dumped[]>('map', 'dump', 'pinned', pin)) {
    const sum = [0, 1, 2, 3, 4].map(() => ({ packets: 0, bytes: 0 }))
    for (const v of f.values) v.value.action.forEach((a, i) => ((sum[i]!.packets += a.packets), (sum[i]!.bytes += a.bytes)))
    out.set(`${f.key.netns}/${f.key.ifindex}`, sum)
  }
  return out
}

const XDP_PASS = 2

t.test('two links in two namespaces, one program, the same ifindex: each counts its own pings, in the map, status and metrics', { skip: needsRoot }, async (t) => {
  const host = makeNetns(t, 'xdplh')
  const p1 = makeNetns(t, 'xdplp')
  const p2 = makeNetns(t, 'xdplp')
  for (const ns of [host, p1, p2]) noIpv6(ns)
  const w = workdir(t)
  const nd = netnsDir(t)
  const obj = w.object('xdp_pass')
  const entry = (netns: string, mode: string) => `  - interfaces: [eth0]\n    netns: ["${netns}"]\n    object: ${obj}\n    mode: ${mode}\n`
  const cfg = w.config(
    `settle: 10ms\nbpffs: ${w.bpffs}\nnetns-dirs: [${nd.dir}]\nmetrics: 127.0.0.1:9477\nattach:\n${entry('pod-1', 'generic')}${entry('pod-2', 'native')}`,
  )
  const d = await startDaemon(host, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  const f1 = nd.bind(p1.name, 'pod-1')
  nd.bind(p2.name, 'pod-2')
  await d.waitLog((l) => l.msg === 'managing network namespace pod-1', 'pod-1 managed')
  await d.waitLog((l) => l.msg === 'managing network namespace pod-2', 'pod-2 managed')
  pod(host, p1, 'h1', '10.203.1')
  pod(host, p2, 'h2', '10.203.2')
  await waitFor(() => xdpOf(p1, 'eth0')?.mode === 'generic' && xdpOf(p2, 'eth0')?.mode === 'native', 'both eth0 to carry the program')
  const progId = xdpOf(p1, 'eth0')!.id
  t.equal(xdpOf(p2, 'eth0')!.id, progId, 'one program for both')
  const [l1] = p1.ipJson<{ ifindex: number }[]>('link', 'show', 'dev', 'eth0')
  const [l2] = p2.ipJson<{ ifindex: number }[]>('link', 'show', 'dev', 'eth0')
  t.equal(l1!.ifindex, 2)
  t.equal(l2!.ifindex, 2, 'the same ifindex in both namespaces')

  const n1 = 3
  const n2 = 5
  host.exec('ping', ['-c', String(n1), '-i', '0.2', '-W', '1', '10.203.1.2'])
  host.exec('ping', ['-c', String(n2), '-i', '0.2', '-W', '1', '10.203.2.2'])
  const want = (n: number) => ({ packets: n, bytes: n * ECHO_BYTES })

  // the map, as bpftool reads it
  const pinDir = readdirSync(w.bpffs).find((n) => n.endsWith('-xdp_pass'))!
  const pin = join(w.bpffs, pinDir, 'maps', 'xdp_link_stats')
  const dump = dumpLinkStats(pin)
  const key = (ns: Netns) => `${inodeOf(ns)}/${l1!.ifindex}`
  t.same([...dump.keys()].sort(), [key(p1), key(p2)].sort(), 'one entry per link, keyed by its namespace inode and ifindex')
  t.same(dump.get(key(p1))![XDP_PASS], want(n1), 'pod-1 eth0 (generic): its pings, passed')
  t.same(dump.get(key(p2))![XDP_PASS], want(n2), 'pod-2 eth0 (native): its pings, passed')
  for (const k of dump.keys()) t.same(dump.get(k)!.filter((_, i) => i !== XDP_PASS), [0, 0, 0, 0].map(() => ({ packets: 0, bytes: 0 })), `${k}: nothing else`)

  // status
  const socket = join(w.dir, 'control.sock')
  const s = statusOf(host, socket)
  const eth0 = (netns: string) => s.links.find((l) => l.netns === netns && l.name === 'eth0')!
  t.match(eth0('pod-1').traffic, { pass: want(n1), drop: { packets: 0, bytes: 0 }, aborted: { packets: 0 } })
  t.match(eth0('pod-2').traffic, { pass: want(n2), drop: { packets: 0, bytes: 0 } })
  t.equal(s.links.find((l) => l.netns === 'host' && l.name === 'h1')!.traffic, null, 'a link without the program: no counters')
  t.match(s.programs, [{ id: progId, linkStats: pin, entries: ['attach[0]', 'attach[1]'] }])
  const text = cliIn(host, 'status', '--socket', socket)
  t.equal(text.status, 0, text.stderr)
  t.match(text.stdout, new RegExp(`\\npod-1 +eth0 +pass +${n1} +${n1 * ECHO_BYTES}\\npod-2 +eth0 +pass +${n2} +${n2 * ECHO_BYTES}\\n`))

  // metrics, scraped from inside the daemon's namespace
  const m = samples(host.exec('curl', ['-sS', 'http://127.0.0.1:9477/metrics']))
  t.equal(m.get('xdplinkd_xdp_packets_total{netns="pod-1",ifname="eth0",action="pass"}'), n1)
  t.equal(m.get('xdplinkd_xdp_bytes_total{netns="pod-1",ifname="eth0",action="pass"}'), n1 * ECHO_BYTES)
  t.equal(m.get('xdplinkd_xdp_packets_total{netns="pod-2",ifname="eth0",action="pass"}'), n2)
  t.equal(m.get('xdplinkd_xdp_bytes_total{netns="pod-2",ifname="eth0",action="pass"}'), n2 * ECHO_BYTES)
  t.same(
    [...m.keys()].filter((k) => k.startsWith('xdplinkd_xdp_packets_total')).sort(),
    ['xdplinkd_xdp_packets_total{netns="pod-1",ifname="eth0",action="pass"}', 'xdplinkd_xdp_packets_total{netns="pod-2",ifname="eth0",action="pass"}'],
    'no other series',
  )

  // more pings into one: only its counter moves
  host.exec('ping', ['-c', '2', '-i', '0.2', '-W', '1', '10.203.1.2'])
  const again = statusOf(host, socket)
  t.same(again.links.find((l) => l.netns === 'pod-1' && l.name === 'eth0')!.traffic!.pass, want(n1 + 2))
  t.same(again.links.find((l) => l.netns === 'pod-2' && l.name === 'eth0')!.traffic!.pass, want(n2))

  // pod-1's file goes: the namespace is released, and its entry with it (its inode goes to the next namespace made)
  nd.unbindAndRemove(f1)
  await d.waitLog((l) => l.msg === 'network namespace pod-1 released: its file is gone', 'pod-1 released')
  t.same([...dumpLinkStats(pin).keys()], [key(p2)], "pod-1's entry removed, pod-2's kept")
  t.notOk(
    d.logs().some((l) => (l.level as number) >= 40),
    'no warning or error lines',
  )
})
