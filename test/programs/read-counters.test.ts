/**
 * Reading per-link stats maps from their pins, against the kernel: the bundled program's map after packets in two
 * namespaces (judged against `bpftool map dump`), maps of other shapes, and the attribution to the links of
 * namespace views.
 */
import t from 'tap'
import { closeSync, openSync } from 'node:fs'
import { join } from 'node:path'
import { ownNetnsIdentity, withNetns } from '../../src/ffi/netns.js'
import { progTestRun } from '../../src/ffi/bpf-fd.js'
import type { NamespaceView } from '../../src/netns/unit.js'
import { zeroCounters, type LinkCountersEntry } from '../../src/programs/counters.js'
import { forgetNamespaceCounters, readLinkStats, readTraffic } from '../../src/programs/read-counters.js'
import { ProgramRegistry } from '../../src/programs/registry.js'
import { makeNetns, needsRoot } from '../helpers/netns.js'
import { bpftool, bpftoolJson, buildObjects, tempBpffs } from '../helpers/bpf.js'
import { link } from '../helpers/link-state.js'

const frame = Buffer.concat([Buffer.from('02000000000102000000000208000000', 'hex').subarray(0, 14), Buffer.alloc(50)])

type Dumped = { formatted: { key: { netns: number; ifindex: number }; values: { value: { action: { packets: number; bytes: number }[] } }[] } }

/** bpftool's reading of the map, summed over CPUs the same way, by "netns/ifindex". */
function bpftoolEntries(pin: string): Map<string, { packets: number; bytes: number }[]> {
  const out = new Map<string, { packets: number; bytes: number }[]>()
  for (const { formatted: f } of bpftoolJson<Dumped[]>('map', 'dump', 'pinned', pin)) {
    const sum = f.values[0]!.value.action.map(() => ({ packets: 0, bytes: 0 }))
    for (const v of f.values) v.value.action.forEach((a, i) => ((sum[i]!.packets += a.packets), (sum[i]!.bytes += a.bytes)))
    out.set(`${f.key.netns}/${f.key.ifindex}`, sum)
  }
  return out
}

const view = (name: string, inode: number, links: ReturnType<typeof link>[]): NamespaceView => ({
  name,
  inode,
  table: { links: () => links, stats: { overruns: 0, resyncs: 1 } },
  reconciler: { records: () => [], counters: { attaches: 0, replaces: 0, detaches: 0, conflicts: 0, errors: {}, batches: 0, requests: 0 } },
})

t.test('per-link stats maps, read from their pins', { skip: needsRoot }, async (t) => {
  const objs = buildObjects(t)
  const bpffs = tempBpffs(t)
  const r = new ProgramRegistry({ bpffsDir: bpffs })
  t.teardown(() => r.close())
  const p = await r.acquire(objs.bundled('xdp_pass'))
  const pin = p.maps.get('xdp_link_stats')!

  t.test('the bundled map: every entry, summed over CPUs, as bpftool reads it', async (t) => {
    t.same(readLinkStats(pin), { kind: 'entries', entries: [] }, 'empty before any packet')
    // BPF_PROG_TEST_RUN counts on loopback of the caller's namespace (ifindex 1): ours, and another's entered.
    const other = makeNetns(t, 'xdplr')
    const nsFd = openSync(`/run/netns/${other.name}`, 'r')
    t.teardown(() => closeSync(nsFd))
    progTestRun(p.fd, frame, 3)
    withNetns(nsFd, () => progTestRun(p.fd, frame, 2))
    const own = ownNetnsIdentity().ino
    const otherIno = Number(other.exec('stat', ['-L', '-c', '%i', '/proc/self/ns/net']).trim())

    const read = readLinkStats(pin)
    if (read.kind !== 'entries') throw new Error(`not read: ${JSON.stringify(read)}`)
    const byKey = new Map(read.entries.map((e) => [`${e.netns}/${e.ifindex}`, e]))
    const pass = (n: number) => ({ ...zeroCounters(), pass: { packets: n, bytes: n * frame.length } })
    t.same(
      byKey,
      new Map<string, LinkCountersEntry>([
        [`${own}/1`, { netns: own, ifindex: 1, actions: pass(3) }],
        [`${otherIno}/1`, { netns: otherIno, ifindex: 1, actions: pass(2) }],
      ]),
    )
    const dumped = bpftoolEntries(pin)
    t.same(
      new Map([...byKey].map(([k, e]) => [k, Object.values(e.actions)])),
      dumped,
      'the same numbers as bpftool map dump',
    )

    // The links of two views: loopback of each namespace runs the program.
    const lo = link(1, 'lo', { kind: null, xdp: { mode: 'generic', progId: p.id, skbProgId: p.id } })
    const host = view('host', own, [lo, link(2, 'va')])
    const pod = view('pod-1', otherIno, [lo])
    const traffic = readTraffic([host, pod], [p, p])
    t.same(traffic.links.get(host), new Map([[1, pass(3)], [2, null]]), 'each link its own; a link without a program none')
    t.same(traffic.links.get(pod), new Map([[1, pass(2)]]), 'the same ifindex in another namespace, counted apart')
    t.same([...traffic.programs.keys()], [p.id], 'a program shared by two entries is read once')

    // The other namespace let go: its entries go, ours stay.
    t.same(forgetNamespaceCounters([p, p], otherIno), [])
    const left = readLinkStats(pin)
    t.same(left.kind === 'entries' && left.entries.map((e) => e.netns), [own], "only the namespace's own entries removed")
    t.same(forgetNamespaceCounters([p], otherIno), [], 'nothing left to remove: no problem either')
  })

  t.test('a map of the name but not the shape gives a reason; no map gives none', async (t) => {
    const bad = join(bpffs, 'bad')
    bpftool('map', 'create', bad, 'type', 'percpu_hash', 'key', '4', 'value', '80', 'entries', '8', 'name', 'xdp_link_stats')
    t.match(readLinkStats(bad), { kind: 'problem', reason: /^xdp_link_stats does not follow the stats-map convention: key of 4 bytes, not 8/ })
    t.match(readLinkStats(join(bpffs, 'absent')), { kind: 'problem', reason: /^cannot open .*absent: .*ENOENT/ })
    t.same(readLinkStats(undefined), { kind: 'none' })
    const traffic = readTraffic([view('host', 1, [link(2, 'va', { xdp: { mode: 'generic', progId: 5, skbProgId: 5 } })])], [{ id: 5, maps: new Map([['xdp_link_stats', bad]]) }])
    t.same([...traffic.links.values()][0], new Map([[2, null]]), 'its links get none')
    t.match(traffic.programs.get(5), { kind: 'problem' })
    t.same(forgetNamespaceCounters([{ id: 5, maps: new Map([['xdp_link_stats', bad]]) }], 1), [], 'a map of another shape is not touched, and not a problem')
    t.match(forgetNamespaceCounters([{ id: 6, maps: new Map([['xdp_link_stats', join(bpffs, 'absent')]]) }], 1), [/^cannot open .*absent/])
  })

  t.test('a plain hash of the convention (one value, not per CPU), as a foreign object may have', async (t) => {
    const plain = join(bpffs, 'plain')
    bpftool('map', 'create', plain, 'type', 'hash', 'key', '8', 'value', '80', 'entries', '8', 'name', 'xdp_link_stats')
    const value = Buffer.alloc(80)
    value.writeBigUInt64LE(4n, 16) // drop.packets
    value.writeBigUInt64LE(400n, 24) // drop.bytes
    const hex = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0'))
    bpftool('map', 'update', 'pinned', plain, 'key', 'hex', ...hex(Buffer.from([7, 0, 0, 0, 3, 0, 0, 0])), 'value', 'hex', ...hex(value))
    t.same(readLinkStats(plain), { kind: 'entries', entries: [{ netns: 7, ifindex: 3, actions: { ...zeroCounters(), drop: { packets: 4, bytes: 400 } } }] })
  })
})
