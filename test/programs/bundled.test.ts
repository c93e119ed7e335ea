/**
 * What the bundled programs in bpf/ do to packets, run in the kernel with BPF_PROG_TEST_RUN on crafted frames
 * (no interface needed), and what they count in xdp_stats and, per link, in xdp_link_stats.
 */
import t from 'tap'
import { closeSync, openSync } from 'node:fs'
import { ownNetnsIdentity, withNetns } from '../../src/ffi/netns.js'
import type { Fd } from '../../src/ffi/fd.js'
import { mapLookupElem, mapUpdateElem, numPossibleCpus, objGet, progTestRun } from '../../src/ffi/bpf-fd.js'
import { ProgramRegistry } from '../../src/programs/registry.js'
import { makeNetns, needsRoot } from '../helpers/netns.js'
import { bpftoolJson, buildObjects, tempBpffs } from '../helpers/bpf.js'

// enum xdp_action (<linux/bpf.h>)
const XDP_DROP = 1
const XDP_PASS = 2
// <linux/if_ether.h>
const ETH_P_IP = 0x0800
const ETH_P_IPV6 = 0x86dd
const ETH_P_ARP = 0x0806
const ETH_P_8021Q = 0x8100
const ETH_P_8021AD = 0x88a8

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff])
const MACS = Buffer.from('02000000000102000000000200', 'hex').subarray(0, 12)

function eth(type: number, ...rest: Buffer[]): Buffer {
  return Buffer.concat([MACS, u16(type), ...rest])
}
function vlan(vid: number, inner: number): Buffer {
  return Buffer.concat([u16(vid & 0xfff), u16(inner)])
}
function ipv4(src: string, payload = Buffer.alloc(8)): Buffer {
  const h = Buffer.alloc(20)
  h[0] = 0x45
  h.writeUInt16BE(20 + payload.length, 2)
  h[8] = 64
  h[9] = 17
  Buffer.from(src.split('.').map(Number)).copy(h, 12)
  Buffer.from([10, 0, 0, 1]).copy(h, 16)
  return Buffer.concat([h, payload])
}
function ipv6Addr(a: string): Buffer {
  const [head = '', tail = ''] = a.split('::')
  const hs = head ? head.split(':') : []
  const ts = tail ? tail.split(':') : []
  const groups = [...hs, ...Array<string>(8 - hs.length - ts.length).fill('0'), ...ts]
  return Buffer.concat(groups.map((g) => u16(parseInt(g, 16))))
}
function ipv6(src: string, payload = Buffer.alloc(8)): Buffer {
  const h = Buffer.alloc(40)
  h[0] = 0x60
  h.writeUInt16BE(payload.length, 4)
  h[6] = 17
  h[7] = 64
  ipv6Addr(src).copy(h, 8)
  ipv6Addr('fd00::1').copy(h, 24)
  return Buffer.concat([h, payload])
}
function lpmKey(prefixlen: number, addr: Buffer): Buffer {
  const k = Buffer.alloc(4 + addr.length)
  k.writeUInt32LE(prefixlen, 0) // host order, as the kernel's struct bpf_lpm_trie_key (x86-64/arm64: LE)
  addr.copy(k, 4)
  return k
}

/** Sum over CPUs of xdp_stats[action]: {packets, bytes}. Per-CPU values are 8-byte aligned, one per possible CPU. */
function stats(map: Fd, action: number): { packets: number; bytes: number } {
  const cpus = numPossibleCpus()
  const key = Buffer.alloc(4)
  key.writeUInt32LE(action)
  const v = Buffer.alloc(16 * cpus)
  if (!mapLookupElem(map, key, v)) return { packets: 0, bytes: 0 }
  let packets = 0n
  let bytes = 0n
  for (let i = 0; i < cpus; i++) {
    packets += v.readBigUInt64LE(i * 16)
    bytes += v.readBigUInt64LE(i * 16 + 8)
  }
  return { packets: Number(packets), bytes: Number(bytes) }
}

t.test('bundled programs', { skip: needsRoot }, async (t) => {
  const objs = buildObjects(t)
  const bpffs = tempBpffs(t)
  const r = new ProgramRegistry({ bpffsDir: bpffs })
  t.teardown(() => r.close())
  const opened: Fd[] = []
  t.teardown(() => opened.forEach((f) => f.close()))
  const mapOf = (p: { maps: ReadonlyMap<string, string> }, name: string): Fd => {
    const path = p.maps.get(name)
    if (!path) throw new Error(`no map ${name}`)
    const fd = objGet(path)
    opened.push(fd)
    return fd
  }
  const frame = eth(ETH_P_IP, ipv4('10.0.0.2'))

  for (const [name, action, other] of [
    ['xdp_pass', XDP_PASS, XDP_DROP],
    ['xdp_drop', XDP_DROP, XDP_PASS],
  ] as const) {
    t.test(`${name} returns ${action} for everything and counts it`, async (t) => {
      const p = await r.acquire(objs.bundled(name))
      const st = mapOf(p, 'xdp_stats')
      t.equal(progTestRun(p.fd, frame, 5).retval, action)
      t.equal(progTestRun(p.fd, eth(ETH_P_ARP, Buffer.alloc(28))).retval, action)
      t.same(stats(st, action), { packets: 6, bytes: 5 * frame.length + 14 + 28 })
      t.same(stats(st, other), { packets: 0, bytes: 0 })
    })
  }

  t.test('xdp_blocklist drops blocked sources only', async (t) => {
    const p = await r.acquire(objs.bundled('xdp_blocklist'))
    const v4 = mapOf(p, 'blocklist_v4')
    const v6 = mapOf(p, 'blocklist_v6')
    const st = mapOf(p, 'xdp_stats')
    mapUpdateElem(v4, lpmKey(24, Buffer.from([192, 168, 1, 0])), Buffer.from([1]))
    mapUpdateElem(v6, lpmKey(32, ipv6Addr('2001:db8::')), Buffer.from([1]))

    const cases: [string, Buffer, number][] = [
      ['IPv4 from a blocked /24', eth(ETH_P_IP, ipv4('192.168.1.77')), XDP_DROP],
      ['IPv4 next to it', eth(ETH_P_IP, ipv4('192.168.2.1')), XDP_PASS],
      ['IPv6 from a blocked /32', eth(ETH_P_IPV6, ipv6('2001:db8:1::5')), XDP_DROP],
      ['IPv6 next to it', eth(ETH_P_IPV6, ipv6('2001:db9::1')), XDP_PASS],
      ['802.1Q-tagged IPv4, blocked', eth(ETH_P_8021Q, vlan(10, ETH_P_IP), ipv4('192.168.1.1')), XDP_DROP],
      ['802.1ad-tagged IPv6, blocked', eth(ETH_P_8021AD, vlan(20, ETH_P_IPV6), ipv6('2001:db8::9')), XDP_DROP],
      ['802.1Q-tagged IPv4, not blocked', eth(ETH_P_8021Q, vlan(10, ETH_P_IP), ipv4('10.1.1.1')), XDP_PASS],
      // Only one tag is parsed: a QinQ frame's inner EtherType is a tag again, so it passes (documented).
      ['QinQ, blocked inside', eth(ETH_P_8021AD, vlan(1, ETH_P_8021Q), vlan(2, ETH_P_IP), ipv4('192.168.1.1')), XDP_PASS],
      ['ARP', eth(ETH_P_ARP, Buffer.alloc(28)), XDP_PASS],
      ['IPv4 cut short of its source address', eth(ETH_P_IP, ipv4('192.168.1.1').subarray(0, 15)), XDP_PASS],
      ['IPv6 cut short', eth(ETH_P_IPV6, ipv6('2001:db8::1').subarray(0, 23)), XDP_PASS],
      ['a tag and nothing after it', eth(ETH_P_8021Q, Buffer.from([0, 10])), XDP_PASS],
      ['a bare Ethernet header', eth(ETH_P_IP), XDP_PASS],
    ]
    const expected = { [XDP_PASS]: { packets: 0, bytes: 0 }, [XDP_DROP]: { packets: 0, bytes: 0 } }
    for (const [what, pkt, action] of cases) {
      t.equal(progTestRun(p.fd, pkt).retval, action, what)
      expected[action as 1 | 2].packets++
      expected[action as 1 | 2].bytes += pkt.length
    }
    t.same(stats(st, XDP_DROP), expected[XDP_DROP], 'drops counted')
    t.same(stats(st, XDP_PASS), expected[XDP_PASS], 'passes counted')

    // A /32 inside the blocked /24, removed again: longest prefix wins, and deleting it leaves the /24 in force.
    mapUpdateElem(v4, lpmKey(32, Buffer.from([10, 9, 8, 7])), Buffer.from([1]))
    t.equal(progTestRun(p.fd, eth(ETH_P_IP, ipv4('10.9.8.7'))).retval, XDP_DROP)
    t.equal(progTestRun(p.fd, eth(ETH_P_IP, ipv4('10.9.8.6'))).retval, XDP_PASS)
  })

  t.test('xdp_link_stats: one entry per (namespace inode, ifindex), counted apart', async (t) => {
    // BPF_PROG_TEST_RUN runs the program as if it arrived on loopback (ifindex 1) of the caller's namespace
    // (net/bpf/test_run.c, bpf_prog_test_run_xdp): loopback of ours, and loopback of another namespace entered
    // with setns, are two links with the same ifindex.
    // A registry of its own: the xdp_drop above counted in the shared one's maps.
    const own = new ProgramRegistry({ bpffsDir: tempBpffs(t) })
    t.teardown(() => own.close())
    const p = await own.acquire(objs.bundled('xdp_drop'))
    const other = makeNetns(t, 'xdplc')
    const nsFd = openSync(`/run/netns/${other.name}`, 'r')
    t.teardown(() => closeSync(nsFd))
    progTestRun(p.fd, frame, 3)
    withNetns(nsFd, () => progTestRun(p.fd, eth(ETH_P_ARP, Buffer.alloc(28)), 2))
    const otherIno = Number(other.exec('stat', ['-L', '-c', '%i', '/proc/self/ns/net']).trim())

    type Entry = { key: { netns: number; ifindex: number }; values: { cpu: number; value: { action: { packets: number; bytes: number }[] } }[] }
    const dump = bpftoolJson<{ formatted?: Entry }[]>('map', 'dump', 'pinned', p.maps.get('xdp_link_stats')!)
    const summed = dump
      .map((e) => e.formatted!)
      .map(({ key, values }) => ({
        key,
        drop: values.reduce((s, v) => ({ packets: s.packets + v.value.action[XDP_DROP]!.packets, bytes: s.bytes + v.value.action[XDP_DROP]!.bytes }), { packets: 0, bytes: 0 }),
        others: values.reduce((s, v) => s + v.value.action.reduce((n, a, i) => n + (i === XDP_DROP ? 0 : a.packets), 0), 0),
      }))
      .sort((a, b) => a.key.netns - b.key.netns)
    t.same(
      summed,
      [
        { key: { netns: ownNetnsIdentity().ino, ifindex: 1 }, drop: { packets: 3, bytes: 3 * frame.length }, others: 0 },
        { key: { netns: otherIno, ifindex: 1 }, drop: { packets: 2, bytes: 2 * 42 }, others: 0 },
      ].sort((a, b) => a.key.netns - b.key.netns),
      'the namespace is the nsfs inode userspace sees, and each namespace has its own entry',
    )
    t.same(stats(mapOf(p, 'xdp_stats'), XDP_DROP), { packets: 5, bytes: 3 * frame.length + 2 * 42 }, 'the program totals count both')
  })
})
