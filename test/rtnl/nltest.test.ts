/**
 * The fake rtnetlink kernel (test/helpers/nltest.ts) against the real one: its encodings decode to the same links
 * as the captured traffic of Linux 6.18, its answers to the captured requests are the kernel's byte for byte, and
 * (as root) the same requests get the same errno, extended-ack text and notifications from both. Then RtnlClient and
 * LinkTable driven through it, without root.
 */
import t from 'tap'
import { NLMSG_ERROR } from '../../src/netlink/constants.js'
import { parseErrorMessage, parseMessages, type NetlinkMessage } from '../../src/netlink/message.js'
import {
  IFF_UP,
  IFLA_EXT_MASK,
  IFLA_IFNAME,
  IFLA_OPERSTATE,
  IFLA_XDP,
  IFLA_XDP_ATTACHED,
  IFLA_XDP_EXPECTED_FD,
  IFLA_XDP_FD,
  IFLA_XDP_FLAGS,
  RTM_DELLINK,
  RTM_GETLINK,
  RTM_NEWLINK,
  RTM_SETLINK,
  XDP_FLAGS_DRV_MODE,
  XDP_FLAGS_HW_MODE,
  XDP_FLAGS_REPLACE,
  XDP_FLAGS_SKB_MODE,
  XDP_FLAGS_UPDATE_IF_NOEXIST,
} from '../../src/rtnl/constants.js'
import { RtnlClient } from '../../src/rtnl/client.js'
import { PartialDumpError } from '../../src/rtnl/errors.js'
import { decodeLink, type LinkState } from '../../src/rtnl/link.js'
import { LinkTable } from '../../src/links/table.js'
import { join } from 'node:path'
import { ERRNO } from '../../src/ffi/errno.js'
import { kernel as captured, replies, request } from '../fixtures/netlink/kernel.js'
import { buildObjects, nodeCommand, ROOT } from '../helpers/bpf.js'
import { makeNetns, needsRoot } from '../helpers/netns.js'
import { FakeRtnl } from '../helpers/nltest.js'
import { runSteps, type Outcome, type Step, type StepAttr, type StepEnv } from '../helpers/rtnl-steps.js'

function messages(bufs: Buffer[]): NetlinkMessage[] {
  return bufs.flatMap((b) => {
    const r = parseMessages(b)
    if (!r.ok) throw r.error
    return r.value
  })
}

function links(bufs: Buffer[], type = RTM_NEWLINK): LinkState[] {
  return messages(bufs)
    .filter((m) => m.type === type && m.payload[0] === 0)
    .map((m) => {
      const d = decodeLink(m)
      if (!d.ok) throw d.error
      return d.value
    })
}

/** The namespace capture.py built, as the fake's links (the flags of a bridge waiting on STP are given). */
function capturedNamespace(): FakeRtnl {
  const { ifindex: ix, progId, nativeProgId } = captured
  // capture.py attaches with descriptors 7 and 9, both of the generic program
  const k = new FakeRtnl({ programs: { 7: progId, 9: progId } })
  k.setUp(ix.lo, true)
  k.add({ name: 'br0', kind: 'bridge', ifindex: ix.br0, address: '02:00:00:00:00:03', up: true, flags: 0x11003, operState: 'down' })
  k.addVeth(
    'veth0',
    'veth1',
    { ifindex: ix.veth0, address: '02:00:00:00:00:01', mtu: 9000, altNames: ['uplink-alt', 'wan'], up: true, xdp: { skb: progId } },
    { ifindex: ix.veth1, address: '02:00:00:00:00:02', up: true, master: ix.br0 },
  )
  k.add({ name: 'mv0', kind: 'macvlan', ifindex: ix.mv0, address: '02:00:00:00:00:04' })
  k.addVeth('xa0', 'xa1', { ifindex: ix.xa0, address: '02:00:00:00:00:05', up: true }, { ifindex: ix.xa1, address: '02:00:00:00:00:06', xdp: { drv: nativeProgId } })
  return k
}

t.test('encodings: the fake dumps and gets the captured namespace as the links the kernel sent', async (t) => {
  const k = capturedNamespace()
  const kernelDump = links(replies('dump'))
  t.equal(kernelDump.length, 7, 'seven links in the capture')
  t.strictSame(links(k.transact(request('dump'))), kernelDump, 'the captured dump request: the same links, in the same order')
  t.strictSame(links(k.transact(request('getlink_xa0'))), links(replies('getlink_xa0')), 'the captured RTM_GETLINK of xa0')
  t.strictSame(k.links(), kernelDump, 'FakeRtnl.links()')
  // the capture's RTM_DELLINK of mv0
  const notes: Buffer[] = []
  const ep = k.endpoint({ groups: 1 })
  ep.watch(() => undefined)
  k.remove(captured.ifindex.mv0)
  for (let b = Buffer.alloc(65536), n = ep.recv(b); n > 0; n = ep.recv(b)) notes.push(Buffer.from(b.subarray(0, n)))
  t.strictSame(links(notes, RTM_DELLINK), links(replies('dellink_mv0'), RTM_DELLINK), 'the RTM_DELLINK of a removed link')
})

t.test('answers: the captured RTM_SETLINK requests, in order, get the captured acks byte for byte', async (t) => {
  const k = capturedNamespace()
  const port = (name: string): number => messages(replies(name))[0]!.pid
  for (const name of ['attach_skb', 'attach_again', 'attach_drv_capped', 'attach_drv_full', 'replace_drv', 'bad_mtu', 'detach_skb', 'detach_noflags']) {
    // attach_drv_full went through a socket without NETLINK_CAP_ACK (the whole request is echoed)
    const got = k.transact(request(name), { portId: port(name), capAck: name !== 'attach_drv_full' })
    const want = replies(name)
    t.equal(got.map((b) => b.toString('hex')).join(' '), want.map((b) => b.toString('hex')).join(' '), name)
    const [m] = messages(got)
    const e = m && m.type === NLMSG_ERROR ? parseErrorMessage(m) : null
    const w = parseErrorMessage(messages(want)[0]!)
    if (e?.ok && w.ok) t.same([e.value?.errno, e.value?.extAck], [w.value?.errno, w.value?.extAck], `${name}: ${w.value ? `${w.value.code} ${w.value.extAck ?? ''}` : 'ack'}`)
  }
  t.same(k.unmodelled, [], 'nothing unmodelled')
})

const P = { pass: 501, drop: 502 }
const xdp = (fd: string | number, flags = 0, expected?: string): StepAttr[] => [
  ['nest', IFLA_XDP, [['fd', IFLA_XDP_FD, fd], ...(flags ? [['u32', IFLA_XDP_FLAGS, flags] as StepAttr] : []), ...(expected ? [['fd', IFLA_XDP_EXPECTED_FD, expected] as StepAttr] : [])]],
]
const get = (name: string, dev: string | number, attrs: StepAttr[] = []): Step => ({ name, type: RTM_GETLINK, dev, attrs })
const set = (name: string, dev: string | number, attrs: StepAttr[]): Step => ({ name, type: RTM_SETLINK, dev, attrs })
const { SKB, DRV, HW, NOEXIST, REPLACE } = { SKB: XDP_FLAGS_SKB_MODE, DRV: XDP_FLAGS_DRV_MODE, HW: XDP_FLAGS_HW_MODE, NOEXIST: XDP_FLAGS_UPDATE_IF_NOEXIST, REPLACE: XDP_FLAGS_REPLACE }

/** Every rule of the fake, in an order where each step starts from what the ones before left. */
const STEPS: Step[] = [
  get('getlink of a link', 'va'),
  get('getlink of a missing link', 99999),
  get('getlink without an index or a name', 0),
  get('getlink by name', 0, [['string', IFLA_IFNAME, 'vc']]),
  set('setlink of a missing link', 99999, xdp('pass', SKB)),
  set('attach generic on a link that is up', 'va', xdp('pass', SKB | NOEXIST)),
  set('attach again with UPDATE_IF_NOEXIST', 'va', xdp('pass', SKB | NOEXIST)),
  set('native over generic', 'va', xdp('pass', DRV)),
  set('replace, expecting another descriptor of the same program', 'va', xdp('drop', SKB | REPLACE, 'pass2')),
  set('replace, expecting a program that is not there', 'va', xdp('pass', SKB | REPLACE, 'pass')),
  set('replace without an expected descriptor', 'va', xdp('pass', SKB | REPLACE)),
  set('IFLA_XDP_ATTACHED in a request', 'va', [['nest', IFLA_XDP, [['fd', IFLA_XDP_FD, 'pass'], ['u8', IFLA_XDP_ATTACHED, 1]]]]),
  set('a flag bit outside XDP_FLAGS_MASK', 'va', xdp('pass', 1 << 6)),
  set('two mode flags', 'va', xdp('pass', SKB | DRV)),
  set('a descriptor that is no program', 'va', xdp(987, SKB)),
  set('a short IFLA_XDP_FD', 'va', [['nest', IFLA_XDP, [['raw', IFLA_XDP_FD, '0100']]]]),
  set('a short IFLA_EXT_MASK', 'va', [['raw', IFLA_EXT_MASK, '0100']]),
  set('an empty IFLA_OPERSTATE', 'va', [['raw', IFLA_OPERSTATE, '']]),
  set('IFLA_XDP without IFLA_XDP_FD', 'va', [['nest', IFLA_XDP, [['u32', IFLA_XDP_FLAGS, SKB]]]]),
  set('detach generic', 'va', xdp(-1, SKB)),
  set('detach where nothing is attached', 'va', xdp(-1, SKB)),
  set('attach generic on a link that is down', 'vc', xdp('pass', SKB | NOEXIST)),
  set('no mode flag on a veth means native', 'vc', xdp('drop')),
  set('detach generic on a link that is down', 'vc', xdp(-1, SKB)),
  set('attach native', 'vc', xdp('pass', DRV | NOEXIST)),
  set('generic over native', 'vc', xdp('drop', SKB)),
  set('replace native', 'vc', xdp('drop', DRV | REPLACE, 'pass2')),
  set('detach without a mode flag: native here', 'vc', xdp(-1)),
  set('native on a bridge', 'br0', xdp('pass', DRV)),
  set('no mode flag on a bridge means generic', 'br0', xdp('pass')),
  set('a port of a bridge that has a program', 'vp', xdp('drop', SKB)),
  set('detach the bridge', 'br0', xdp(-1, SKB)),
  set('offload on a veth', 'va', xdp('pass', HW)),
  set('offload on a bridge', 'br0', xdp('pass', HW)),
  set('native on a veth whose peer has a jumbo MTU', 'vj', xdp('pass', DRV)),
  set('attach native on a link that is up', 'va', xdp('pass', DRV | NOEXIST)),
  set('detach native on a link that is up', 'va', xdp(-1, DRV)),
  set('attach native with both ends up', 'ua', xdp('pass', DRV | NOEXIST)),
  set('replace native with both ends up', 'ua', xdp('drop', DRV | REPLACE, 'pass2')),
  set('detach native with both ends up', 'ua', xdp(-1, DRV)),
  // va's peer is down: no carrier changes, whose notifications linkwatch sends later, at a time of its own
  { name: 'down through ifi_change', type: RTM_SETLINK, dev: 'va', ifiFlags: 0, ifiChange: IFF_UP },
  { name: 'up through ifi_change', type: RTM_SETLINK, dev: 'va', ifiFlags: IFF_UP, ifiChange: IFF_UP },
]

/** The namespace the steps run in, made with `ip` in the kernel; `programs` are attached to h1 and h2 there. */
function fakeNamespace(): { k: FakeRtnl; env: StepEnv } {
  const k = new FakeRtnl({ programs: { 7: P.pass, 8: P.pass, 9: P.drop, 10: P.drop } })
  k.addVeth('va', 'vb', { up: true })
  k.addVeth('vc', 'vd')
  const br0 = k.add({ name: 'br0', kind: 'bridge', up: true, carrier: false })
  k.addVeth('vp', 'vq', { master: br0 })
  k.addVeth('vj', 'vk', { nativeRefusal: { errno: ERRNO.ERANGE, extAck: 'veth: Peer MTU is too large to set XDP' } }, { mtu: 9000 })
  k.addVeth('ua', 'ub', { up: true }, { up: true })
  k.addVeth('h1', 'h2', { xdp: { skb: P.pass } }, { xdp: { skb: P.drop } })
  const ifindex = Object.fromEntries(k.links().map((l) => [l.name, l.ifindex]))
  return { k, env: { ifindex, fds: { pass: 7, pass2: 8, drop: 9, drop2: 10 } } }
}

t.test('the same requests to the fake and to the kernel: the same errno, extended ack and notifications', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const objects = buildObjects(t)
  for (const cmd of [
    'link add va type veth peer name vb',
    'link set va up',
    'link add vc type veth peer name vd',
    'link add br0 type bridge',
    'link set br0 up',
    'link add vp type veth peer name vq',
    'link set vp master br0',
    'link add vj type veth peer name vk',
    'link set vk mtu 9000',
    'link add ua type veth peer name ub',
    'link set ua up',
    'link set ub up',
    'link add h1 type veth peer name h2',
  ]) ns.ip(...cmd.split(' '))
  ns.ip('link', 'set', 'dev', 'h1', 'xdpgeneric', 'obj', objects.bundled('xdp_pass'), 'sec', 'xdp')
  ns.ip('link', 'set', 'dev', 'h2', 'xdpgeneric', 'obj', objects.bundled('xdp_drop'), 'sec', 'xdp')
  const shown = ns.ipJson<{ ifname: string; ifindex: number; xdp?: { prog: { id: number } } }[]>('-d', 'link', 'show')
  const ifindex = Object.fromEntries(shown.map((l) => [l.ifname, l.ifindex]))
  const id = (n: string): number => shown.find((l) => l.ifname === n)!.xdp!.prog.id
  const [node, argv] = nodeCommand(join(ROOT, 'test/helpers/rtnl-steps.ts'), [JSON.stringify({ steps: STEPS, ifindex, programs: { pass: id('h1'), drop: id('h2') } })])
  const fromKernel = JSON.parse(ns.exec(node, argv)) as Outcome[]

  const { k, env } = fakeNamespace()
  const fromFake = await runSteps(k.open, STEPS, env)
  t.same(k.unmodelled, [], 'nothing unmodelled')
  for (let i = 0; i < STEPS.length; i++) t.strictSame(fromFake[i], fromKernel[i], STEPS[i]!.name)
})

// ---- RtnlClient and LinkTable through the fake, without root ------------------------------------------------------

/** Lets the event loop run until `cond` holds (the fake answers from setImmediate, as libuv wakes a socket). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (cond()) return
    await new Promise((r) => setImmediate(r))
  }
  throw new Error(`never happened: ${what}`)
}

const PROGS = { 21: 501, 22: 502 }

t.test('RtnlClient: dumpLinks, getLink (answered by a plain RTM_NEWLINK), setXdp with the kernel\'s refusals', async (t) => {
  const k = new FakeRtnl({ programs: PROGS })
  const [va] = k.addVeth('va', 'vb', { up: true })
  const c = new RtnlClient({ open: k.open })
  t.teardown(() => c.close())
  t.strictSame(await c.dumpLinks(), k.links(), 'the dump: lo, vb, va')
  t.strictSame(await c.getLink(va), k.link(va), 'getLink of a link that exists')
  t.equal(await c.getLink(999), null, 'getLink of a missing one: null (ENODEV)')
  const r = await c.setXdp([
    { ifindex: va, req: { fd: 21, flags: XDP_FLAGS_SKB_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST } },
    { ifindex: va, req: { fd: 22, flags: XDP_FLAGS_SKB_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST } },
    { ifindex: va, req: { fd: 22, flags: XDP_FLAGS_DRV_MODE } },
    { ifindex: 999, req: { fd: 21, flags: XDP_FLAGS_SKB_MODE } },
    { ifindex: va, req: { fd: 23, flags: XDP_FLAGS_SKB_MODE } },
  ])
  t.strictSame(
    r.map((x) => (x.ok ? 'ok' : [x.error.code, x.error.extAck ?? null])),
    ['ok', ['EBUSY', 'XDP program already attached'], ['EEXIST', "Native and generic XDP can't be active at the same time"], ['ENODEV', null], ['EBADF', null]],
    'one result per request, in order',
  )
  t.strictSame(k.link(va)!.xdp, { mode: 'generic', progId: 501, skbProgId: 501 }, 'the first attach took')
  // 300 requests: three windows of the socket (at most 128 acks queued at once)
  const many = await c.setXdp(Array.from({ length: 300 }, () => ({ ifindex: va, req: { fd: -1, flags: XDP_FLAGS_DRV_MODE } })))
  t.equal(many.filter((x) => x.ok).length, 300, 'a batch of 300 requests, all answered')
})

t.test('LinkTable over RtnlClient: the start dump, then the kernel\'s notifications as events', async (t) => {
  const k = new FakeRtnl({ programs: PROGS })
  k.addVeth('va', 'vb', { up: true })
  const c = new RtnlClient({ open: k.open })
  t.teardown(() => c.close())
  const table = new LinkTable(c)
  const events: string[] = []
  table.on('event', (e) => events.push(`${e.event} ${e.name}${e.event === 'change' ? `: ${e.changed.join(',')}` : ''}`))
  await table.start()
  t.strictSame(table.links(), k.links(), 'the table holds what the fake has')

  const [vc] = k.addVeth('vc', 'vd')
  k.setUp(vc, true)
  // our own attach: the kernel notifies it, since vc is up
  const [r] = await c.setXdp([{ ifindex: vc, req: { fd: 21, flags: XDP_FLAGS_SKB_MODE } }])
  t.ok(r!.ok, 'attached')
  k.setXdp(vc, 'skb', 0) // someone else detaches it
  k.rename(vc, 've')
  k.remove(vc)
  await until(() => events.length >= 11, 'eleven events')
  t.strictSame(
    events,
    ['add lo', 'add vb', 'add va', 'add vd', 'add vc', 'change vc: flags,up,operState', 'change vc: xdp', 'change vc: xdp', 'rename ve', 'remove ve', 'remove vd'],
    'the start, then add, up, attach, detach, rename and remove, in order',
  )
  t.strictSame(table.links(), k.links(), 'and the table is the fake again')
})

t.test('an overrun: what the lost notifications said comes back by a resync', async (t) => {
  const k = new FakeRtnl({ programs: PROGS })
  const c = new RtnlClient({ open: k.open })
  t.teardown(() => c.close())
  const table = new LinkTable(c)
  const resyncs: string[] = []
  table.on('resync', (r) => resyncs.push(r.reason))
  await table.start()
  let lost = 0
  k.overrun(() => ([lost] = k.addVeth('lost', 'lost-peer')))
  await until(() => table.get(lost) !== undefined, 'the lost link in the table')
  t.strictSame(resyncs, ['start', 'overrun'], 'one resync after the overrun')
  t.strictSame(table.links(), k.links())

  // a receive buffer too small for a burst: the fake drops what does not fit, as the kernel does
  const small = new RtnlClient({ open: k.open, rcvbuf: 2048 })
  t.teardown(() => small.close())
  let overruns = 0
  small.on('overrun', () => overruns++)
  for (let i = 0; i < 20; i++) k.addVeth(`b${i}`, `c${i}`)
  await until(() => overruns > 0, 'an overrun on the small buffer')
  t.equal(overruns, 1, 'one ENOBUFS for the burst')
})

t.test('dumps: redone when the kernel marks them inconsistent; PartialDumpError when it always does', async (t) => {
  const k = new FakeRtnl({ programs: PROGS })
  k.addVeth('va', 'vb')
  k.dumpLinksPerDatagram = 1
  const c = new RtnlClient({ open: k.open, subscribe: false })
  t.teardown(() => c.close())
  let added = 0
  // a link added while the first attempt is half read: that attempt comes back with NLM_F_DUMP_INTR
  k.beforeDumpDatagram = (n) => {
    if (n === 1 && added++ === 0) k.addVeth('mid', 'mid-peer')
  }
  const dumps = (): number => k.requests.filter((m) => m.type === RTM_GETLINK).length
  t.strictSame(await c.dumpLinks(), k.links(), 'the redone dump has every link, the one added meanwhile too')
  t.equal(dumps(), 2, 'two dump requests')

  k.beforeDumpDatagram = (n) => void (n === 1 && k.addVeth(`storm${k.links().length}`, `storm-peer${k.links().length}`))
  const e = await c.dumpLinks().then(
    () => null,
    (x: unknown) => x,
  )
  t.type(e, PartialDumpError, 'a link storm that never ends: PartialDumpError')
  t.ok((e as PartialDumpError).links.length > 0, 'with the links of the last attempt')
  t.equal(dumps(), 12, 'after ten attempts')
})

t.test('what the fake does not model is refused, and said', async (t) => {
  const k = new FakeRtnl()
  const s = k.open({})
  t.teardown(() => s.close())
  const r = await s.request({ type: RTM_NEWLINK, payload: Buffer.alloc(16) })
  t.match(r, { ok: false, error: { code: 'EOPNOTSUPP' } }, 'RTM_NEWLINK (create) is not modelled')
  t.strictSame(k.unmodelled, ['message type 16'])
})
