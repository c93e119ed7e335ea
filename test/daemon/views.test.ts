/**
 * The two views of issue 13 against a running daemon and real packets: xdp_blocklist with declared contents on one
 * link and xdp_pass on two others, pings into one of those.
 *
 * `maps --json` is judged against bpftool (each map's id, type, sizes and max_entries as `map show` gives them, its
 * count as the entries `map dump` lists) and against the config (which maps are managed, by whom, how many entries;
 * a map written behind the daemon's back differs until a reload writes it again). `top --count 2`, its output a pipe,
 * shows two blocks of plain lines, the pinged link passing packets every second and the quiet one at zero.
 *
 * IPv6 is off and the neighbours are static, as in counters.test.ts: the pings are all the links see.
 */
import t from 'tap'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { makeNetns, needsRoot, waitFor, type Netns } from '../helpers/netns.js'
import { cliIn, startDaemon, workdir, xdpOf } from '../helpers/daemon.js'
import { bpftool, bpftoolJson } from '../helpers/bpf.js'
import type { MapsJson } from '../../src/control/protocol.js'

function noIpv6(ns: Netns): void {
  for (const c of ['all', 'default']) ns.exec('sysctl', ['-q', '-w', `net.ipv6.conf.${c}.disable_ipv6=1`])
}
const macOf = (ns: Netns, dev: string): string => ns.ipJson<{ address: string }[]>('link', 'show', 'dev', dev)[0]!.address

/** A veth pair `dev` (in a, 10.196.N.1) and `peer` (in b, .2), up, with static neighbours on both ends. */
function pair(a: Netns, b: Netns, dev: string, peer: string, n: number): void {
  a.ip('link', 'add', dev, 'type', 'veth', 'peer', 'name', peer, 'netns', b.name)
  a.ip('addr', 'add', `10.196.${n}.1/24`, 'dev', dev)
  b.ip('addr', 'add', `10.196.${n}.2/24`, 'dev', peer)
  a.ip('neigh', 'add', `10.196.${n}.2`, 'lladdr', macOf(b, peer), 'dev', dev, 'nud', 'permanent')
  b.ip('neigh', 'add', `10.196.${n}.1`, 'lladdr', macOf(a, dev), 'dev', peer, 'nud', 'permanent')
  a.ip('link', 'set', dev, 'up')
  b.ip('link', 'set', peer, 'up')
}

/** An echo request as XDP counts it: Ethernet 14, IPv4 20, ICMP 8, ping's 56 bytes of data. */
const ECHO_BYTES = 14 + 20 + 8 + 56

/** A number as top shows it (`17.7`, `1.74k`). */
const si = (x: string): number => (x.endsWith('k') ? Number(x.slice(0, -1)) * 1000 : Number(x))

interface Shown {
  id: number
  type: string
  bytes_key: number
  bytes_value: number
  max_entries: number
}

t.test('maps --json agrees with bpftool and the config; top shows the pinged link passing packets', { skip: needsRoot }, async (t) => {
  const a = makeNetns(t, 'xdpva')
  const b = makeNetns(t, 'xdpvb')
  for (const ns of [a, b]) noIpv6(ns)
  pair(a, b, 'vb', 'pb', 0)
  pair(a, b, 'vp', 'pp', 1)
  pair(a, b, 'vq', 'pq', 2)
  const w = workdir(t)
  const block = w.object('xdp_blocklist')
  const pass = w.object('xdp_pass')
  const socket = join(w.dir, 'control.sock')
  const cfg = w.config(
    `settle: 10ms\nbpffs: ${w.bpffs}\nattach:\n` +
      `  - name: block\n    interfaces: [vb]\n    object: ${block}\n    mode: generic\n    maps:\n` +
      `      blocklist_v4: [10.196.0.3/32, 192.0.2.0/24]\n      blocklist_v6: [2001:db8::/32]\n` +
      `  - name: pass\n    interfaces: [vp, vq]\n    object: ${pass}\n    mode: generic\n`,
  )
  const d = await startDaemon(a, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  await waitFor(() => ['vb', 'vp', 'vq'].every((l) => xdpOf(a, l)?.mode === 'generic'), 'every link to carry its program')

  a.exec('ping', ['-c', '3', '-i', '0.2', '-W', '1', '10.196.1.2'])
  const maps = (): MapsJson => {
    const r = cliIn(a, 'maps', '--json', '--socket', socket)
    if (r.status !== 0) throw new Error(`maps exited ${r.status}: ${r.stderr}`)
    return JSON.parse(r.stdout) as MapsJson
  }
  const dumpCount = (pin: string): number => bpftoolJson<unknown[]>('map', 'dump', 'pinned', pin).length

  let m = maps()
  t.same(
    m.programs.map((p) => [p.name, p.id, p.entries, p.maps.map((x) => x.name)]),
    [
      ['xdp_blocklist', xdpOf(a, 'vb')!.id, ['block'], ['blocklist_v4', 'blocklist_v6', 'xdp_link_stats', 'xdp_stats']],
      ['xdp_pass', xdpOf(a, 'vp')!.id, ['pass'], ['xdp_link_stats', 'xdp_stats']],
    ].sort((x, y) => (x[1] as number) - (y[1] as number)),
    'each program in use, by id, with its maps by name',
  )
  const pinDir = (suffix: string) => join(w.bpffs, readdirSync(w.bpffs).find((n) => n.endsWith(suffix))!, 'maps')
  for (const p of m.programs) {
    for (const x of p.maps) {
      t.equal(x.pin, join(pinDir(`-${p.name}`), x.name), `${p.name} ${x.name}: its pin`)
      const shown = bpftoolJson<Shown>('map', 'show', 'pinned', x.pin)
      t.same(
        [x.id, x.type, x.keySize, x.valueSize, x.maxEntries],
        [shown.id, shown.type, shown.bytes_key, shown.bytes_value, shown.max_entries],
        `${p.name} ${x.name}: what bpftool map show says`,
      )
      t.same([x.count, x.countExact], [dumpCount(x.pin), true], `${p.name} ${x.name}: as many entries as bpftool map dump lists (${x.count})`)
    }
  }
  const of = (prog: string, map: string) => m.programs.find((p) => p.name === prog)!.maps.find((x) => x.name === map)!
  t.match(of('xdp_blocklist', 'blocklist_v4'), { count: 2, managed: { declaredBy: ['block'], declared: 2, holdsDeclared: true, missing: 0, changed: 0, extra: 0 } })
  t.match(of('xdp_blocklist', 'blocklist_v6'), { count: 1, managed: { declaredBy: ['block'], declared: 1, holdsDeclared: true } })
  for (const [prog, map] of [['xdp_blocklist', 'xdp_link_stats'], ['xdp_blocklist', 'xdp_stats'], ['xdp_pass', 'xdp_link_stats'], ['xdp_pass', 'xdp_stats']] as const) {
    t.equal(of(prog, map).managed, null, `${prog} ${map}: not managed`)
  }
  t.equal(of('xdp_pass', 'xdp_link_stats').count, 1, 'one link of xdp_pass saw packets: one per-link entry')
  t.equal(of('xdp_pass', 'xdp_stats').count, 5, 'an array: max_entries')

  // Written behind the daemon's back: a prefix added (10.196.9.0/24), one deleted (192.0.2.0/24).
  const v4 = of('xdp_blocklist', 'blocklist_v4').pin
  bpftool('map', 'update', 'pinned', v4, 'key', 'hex', '18', '00', '00', '00', '0a', 'c4', '09', '00', 'value', 'hex', '00')
  bpftool('map', 'delete', 'pinned', v4, 'key', 'hex', '18', '00', '00', '00', 'c0', '00', '02', '00')
  m = maps()
  t.match(of('xdp_blocklist', 'blocklist_v4'), { count: dumpCount(v4), managed: { holdsDeclared: false, missing: 1, changed: 0, extra: 1 } }, 'differs: one missing, one extra')
  const text = cliIn(a, 'maps', '--socket', socket)
  t.equal(text.status, 0, text.stderr)
  t.match(text.stdout, /\nblocklist_v4 +lpm_trie +\d+ +8 +1 +1048576 +2 +2 declared by block; differs: 1 missing, 0 changed, 1 extra\n/)
  t.match(text.stdout, /\nblocklist_v6 +lpm_trie +\d+ +20 +1 +1048576 +1 +1 declared by block; holds them\n/)
  t.match(text.stdout, /\nxdp_stats +percpu_array +\d+ +4 +16 +5 +5 +-\n/)
  const reload = cliIn(a, 'reload', '--socket', socket)
  t.equal(reload.status, 0, reload.stderr)
  m = maps()
  t.match(of('xdp_blocklist', 'blocklist_v4'), { count: 2, managed: { holdsDeclared: true, missing: 0, extra: 0 } }, 'a reload writes it again')

  // top, its stdout a pipe: pings into vp all along, none into vq.
  const pinger = b.spawn('ping', ['-c', '60', '-i', '0.05', '-W', '1', '10.196.1.1'])
  t.teardown(() => pinger.kill())
  await new Promise((r) => setTimeout(r, 300))
  const top = cliIn(a, 'top', '--count', '2', '--interval', '0.5', '--socket', socket)
  t.equal(top.status, 0, top.stderr)
  t.equal(top.stderr, '')
  const blocks = top.stdout.split('\n\n').filter((x) => x !== '')
  t.equal(blocks.length, 2, `two blocks:\n${top.stdout}`)
  for (const [i, block] of blocks.entries()) {
    const [head, columns, ...rows] = block.split('\n')
    t.match(head, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z {2}3 links with per-link counters \(\d+ without\), rates over 0\.\d\d s$/, `block ${i}: its time and span`)
    t.equal(columns, 'NAME  ACTION  PKT/S  BYTES/S', `block ${i}: one namespace, no NETNS column`)
    const rate = /^vp +pass +([\d.]+k?) +([\d.]+k?)$/.exec(rows[0] ?? '')
    t.ok(rate, `block ${i}: the busiest link first, vp passing packets (${rows[0]})`)
    const [pps, bps] = [si(rate?.[1] ?? '0'), si(rate?.[2] ?? '0')]
    t.ok(pps > 0, `block ${i}: ${pps} packets/s`)
    // Three significant digits each: the ratio is an echo request's 98 bytes within rounding.
    t.ok(Math.abs(bps / pps - ECHO_BYTES) < 2, `block ${i}: ${bps} bytes/s, ${ECHO_BYTES} bytes a packet`)
    t.match(rows.slice(1), [/^vb +- +0 +0$/, /^vq +- +0 +0$/], `block ${i}: the quiet links at zero`)
    t.equal(rows.length, 3, `block ${i}: nothing else`)
  }
  t.notOk(
    d.logs().some((l) => (l.level as number) >= 40),
    'no warning or error lines',
  )
})
