import t from 'tap'
import { AttributeEncoder } from '../../src/netlink/attributes.js'
import { NLMSG_DONE } from '../../src/netlink/constants.js'
import { parseMessages, type NetlinkMessage } from '../../src/netlink/message.js'
import {
  AF_BRIDGE,
  IFF_BROADCAST,
  IFF_LOOPBACK,
  IFF_LOWER_UP,
  IFF_MULTICAST,
  IFF_RUNNING,
  IFF_UP,
  IFLA_ADDRESS,
  IFLA_IFNAME,
  IFLA_INFO_DATA,
  IFLA_LINKINFO,
  IFLA_MASTER,
  IFLA_MTU,
  IFLA_OPERSTATE,
  IFLA_XDP,
  IFLA_XDP_PROG_ID,
  RTM_DELLINK,
  RTM_NEWLINK,
} from '../../src/rtnl/constants.js'
import { decodeLink, encodeGetLink, encodeGetLinkDump, type LinkState } from '../../src/rtnl/link.js'
import { encodeIfinfomsg } from '../../src/rtnl/xdp.js'
import { hex, kernel, replies, reply, requestPayload } from '../fixtures/netlink/kernel.js'

const h = (b: Buffer): string => b.toString('hex')

function messages(bufs: Buffer[]): NetlinkMessage[] {
  return bufs.flatMap((b) => {
    const r = parseMessages(b)
    if (!r.ok) throw r.error
    return r.value
  })
}

function decoded(m: NetlinkMessage): LinkState {
  const r = decodeLink(m)
  if (!r.ok) throw r.error
  return r.value
}

const ETHER_UP = IFF_UP | IFF_BROADCAST | IFF_RUNNING | IFF_MULTICAST | IFF_LOWER_UP

t.test('encodeGetLinkDump / encodeGetLink: golden payloads, as sent to the kernel in the captures', async (t) => {
  const dump = encodeGetLinkDump()
  // ifinfomsg all zero (AF_UNSPEC, no index: strict checking refuses anything else), IFLA_EXT_MASK = SKIP_STATS
  t.equal(h(dump), '00000000' + '00000000' + '00000000' + '00000000' + '08001d00' + '08000000')
  t.equal(h(dump), h(requestPayload('dump')), 'the dump request of the capture')
  const one = encodeGetLink(7)
  if (!one.ok) throw one.error
  t.equal(h(one.value), '00000000' + '07000000' + '00000000' + '00000000' + '08001d00' + '08000000')
  t.equal(h(one.value), h(requestPayload('getlink_xa0')), 'the RTM_GETLINK of the capture')
  for (const bad of [0, -1, 1.5, 2 ** 31, NaN]) {
    const r = encodeGetLink(bad)
    t.match(r, { ok: false, error: { name: 'RangeError', message: `RTM_GETLINK: invalid ifindex ${bad}` } }, `ifindex ${bad}: an error value`)
  }
})

t.test('decodeLink: every link of a real dump', async (t) => {
  const all = messages(replies('dump')).filter((m) => m.type === RTM_NEWLINK)
  const { ifindex, progId, nativeProgId } = kernel
  const want: LinkState[] = [
    {
      ifindex: ifindex.lo,
      name: 'lo',
      flags: IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP,
      up: true,
      running: true,
      operState: 'unknown',
      kind: null,
      altNames: [],
      master: null,
      xdp: null,
      mtu: 65536,
      address: '00:00:00:00:00:00',
    },
    {
      ifindex: ifindex.veth1,
      name: 'veth1',
      flags: ETHER_UP,
      up: true,
      running: true,
      operState: 'up',
      kind: 'veth',
      altNames: [],
      master: ifindex.br0,
      xdp: null,
      mtu: 1500,
      address: '02:00:00:00:00:02',
    },
    {
      ifindex: ifindex.veth0,
      name: 'veth0',
      flags: ETHER_UP,
      up: true,
      running: true,
      operState: 'up',
      kind: 'veth',
      altNames: ['uplink-alt', 'wan'],
      master: null,
      xdp: { mode: 'generic', progId, skbProgId: progId },
      mtu: 9000,
      address: '02:00:00:00:00:01',
    },
    {
      ifindex: ifindex.br0,
      name: 'br0',
      flags: IFF_UP | IFF_BROADCAST | IFF_MULTICAST | IFF_LOWER_UP,
      up: true,
      running: false,
      operState: 'down',
      kind: 'bridge',
      altNames: [],
      master: null,
      xdp: null,
      mtu: 1500,
      address: '02:00:00:00:00:03',
    },
    {
      ifindex: ifindex.mv0,
      name: 'mv0',
      flags: IFF_BROADCAST | IFF_MULTICAST,
      up: false,
      running: false,
      operState: 'down',
      kind: 'macvlan',
      altNames: [],
      master: null,
      xdp: null,
      mtu: 1500,
      address: '02:00:00:00:00:04',
    },
    {
      ifindex: ifindex.xa1,
      name: 'xa1',
      flags: IFF_BROADCAST | IFF_MULTICAST,
      up: false,
      running: false,
      operState: 'down',
      kind: 'veth',
      altNames: [],
      master: null,
      xdp: { mode: 'native', progId: nativeProgId, drvProgId: nativeProgId },
      mtu: 1500,
      address: '02:00:00:00:00:06',
    },
    {
      ifindex: ifindex.xa0,
      name: 'xa0',
      flags: IFF_UP | IFF_BROADCAST | IFF_MULTICAST,
      up: true,
      running: false,
      operState: 'lowerlayerdown',
      kind: 'veth',
      altNames: [],
      master: null,
      xdp: null,
      mtu: 1500,
      address: '02:00:00:00:00:05',
    },
  ]
  t.equal(all.length, want.length)
  all.forEach((m, i) => t.same(decoded(m), want[i], String(want[i]?.name)))
  const single = messages([reply('getlink_xa0')])
  t.same(single.map(decoded), [want[6]], 'RTM_GETLINK for one link: the same state')
})

t.test('decodeLink: notifications', async (t) => {
  // `ip link del mv0`: an RTM_DELLINK for it, and RTM_NEWLINKs for the links around it (notifications carry stats)
  const del = messages(replies('dellink_mv0'))
  const gone = del.filter((m) => m.type === RTM_DELLINK).map(decoded)
  t.same(
    gone.map((l) => [l.ifindex, l.name, l.kind]),
    [[kernel.ifindex.mv0, 'mv0', 'macvlan']],
  )
  const veth0 = del.filter((m) => m.type === RTM_NEWLINK).map(decoded).find((l) => l.name === 'veth0')
  t.same(veth0?.xdp, { mode: 'generic', progId: kernel.progId, skbProgId: kernel.progId }, 'the lower link, XDP included')
  t.same(veth0?.altNames, ['uplink-alt', 'wan'])

  // `ip link set veth1 nomaster`: the bridge's own AF_BRIDGE messages come with the AF_UNSPEC ones
  const port = messages(replies('port_nomaster'))
  const families = port.map((m) => m.payload[0])
  t.ok(families.includes(AF_BRIDGE), 'the capture holds AF_BRIDGE messages')
  for (const m of port) {
    const r = decodeLink(m)
    if (m.payload[0] === AF_BRIDGE) {
      t.notOk(r.ok, `AF_BRIDGE ${m.type === RTM_DELLINK ? 'RTM_DELLINK' : 'RTM_NEWLINK'} refused`)
      if (!r.ok) t.match(r.error.message, /ifi_family 7 is not AF_UNSPEC/)
    } else t.ok(r.ok, 'AF_UNSPEC decoded')
  }
  const veth1 = port.filter((m) => m.payload[0] !== AF_BRIDGE).map(decoded).filter((l) => l.name === 'veth1')
  t.same(
    veth1.map((l) => l.master),
    [kernel.ifindex.br0, null],
    'leaves the bridge',
  )
})

function link(attrs: (e: AttributeEncoder) => AttributeEncoder, type = RTM_NEWLINK, ifindex = 9): NetlinkMessage {
  return { type, flags: 0, seq: 0, pid: 0, payload: Buffer.concat([encodeIfinfomsg(ifindex), attrs(new AttributeEncoder()).encode()]) }
}

t.test('decodeLink: sparse and odd links', async (t) => {
  t.same(decoded(link((e) => e.string(IFLA_IFNAME, 'x'))), {
    ifindex: 9,
    name: 'x',
    flags: 0,
    up: false,
    running: false,
    operState: 'unknown',
    kind: null,
    altNames: [],
    master: null,
    xdp: null,
  })
  t.equal(decoded(link((e) => e.string(IFLA_IFNAME, 'x').u8(IFLA_OPERSTATE, 9))).operState, 'unknown', 'unknown IF_OPER_ value')
  t.equal(decoded(link((e) => e.string(IFLA_IFNAME, 'x').bytes(IFLA_ADDRESS, Buffer.alloc(0)))).address, undefined)
  t.equal(decoded(link((e) => e.string(IFLA_IFNAME, 'x').bytes(IFLA_ADDRESS, hex('0a000001')))).address, '0a:00:00:01')
  t.equal(
    decoded(link((e) => e.string(IFLA_IFNAME, 'x').nested(IFLA_LINKINFO, (x) => x.flag(IFLA_INFO_DATA)))).kind,
    null,
    'IFLA_LINKINFO without IFLA_INFO_KIND',
  )
  t.equal(decoded(link((e) => e.string(IFLA_IFNAME, 'a').string(IFLA_IFNAME, 'b'))).name, 'b', 'the last duplicate wins')
})

t.test('decodeLink: malformed messages are error values', async (t) => {
  const cases: [string, NetlinkMessage, RegExp, number | undefined][] = [
    ['not a link message', { ...link((e) => e), type: NLMSG_DONE }, /type 3 is not RTM_NEWLINK/, undefined],
    ['payload shorter than ifinfomsg', { ...link((e) => e), payload: Buffer.alloc(15) }, /shorter than struct ifinfomsg/, 16],
    ['no IFLA_IFNAME', link((e) => e.u32(IFLA_MTU, 1500)), /link 9 has no IFLA_IFNAME/, 16],
    [
      'attribute beyond the message',
      { ...link((e) => e), payload: Buffer.concat([encodeIfinfomsg(9), hex('20000300 6c6f0000')]) },
      /exceeds/,
      32,
    ],
    ['IFLA_MTU as u16', link((e) => e.string(IFLA_IFNAME, 'x').u16(IFLA_MTU, 1500)), /u32 needs 4 bytes, got 2/, 40],
    ['IFLA_MASTER empty', link((e) => e.string(IFLA_IFNAME, 'x').flag(IFLA_MASTER)), /u32 needs 4 bytes, got 0/, 40],
    ['IFLA_OPERSTATE as u32', link((e) => e.u32(IFLA_OPERSTATE, 6).string(IFLA_IFNAME, 'x')), /u8 needs 1 bytes/, 32],
    [
      'IFLA_XDP without IFLA_XDP_ATTACHED',
      link((e) => e.string(IFLA_IFNAME, 'x').nested(IFLA_XDP, (x) => x.u32(IFLA_XDP_PROG_ID, 3))),
      /IFLA_XDP without IFLA_XDP_ATTACHED/,
      44,
    ],
    [
      'malformed IFLA_LINKINFO',
      link((e) => e.string(IFLA_IFNAME, 'x').bytes(IFLA_LINKINFO, hex('0200'))),
      /truncated attribute header/,
      44,
    ],
    ['AF_BRIDGE', { ...link((e) => e.string(IFLA_IFNAME, 'x')), payload: Buffer.concat([hex('07'), encodeIfinfomsg(9).subarray(1), hex('06000300 78000000')]) }, /AF_UNSPEC/, 16],
  ]
  for (const [name, m, msg, offset] of cases) {
    const r = decodeLink(m)
    t.notOk(r.ok, name)
    if (r.ok) continue
    t.match(r.error.message, msg, name)
    t.equal(r.error.offset, offset, `${name}: offset from the start of the message`)
  }
})
