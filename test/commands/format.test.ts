import t from 'tap'
import { eventJsonIn, eventText, eventTextIn, linksTable, netnsChangeText, netnsLinksJson, netnsLinksTable, printable, siText, table, type NetnsChange } from '../../src/commands/format.js'
import { statusText, trafficText } from '../../src/commands/status.js'
import type { LinkStatusJson } from '../../src/control/protocol.js'
import { zeroCounters } from '../../src/programs/counters.js'
import { link } from '../helpers/link-state.js'

const OSC_TITLE = 'a\u001b]0;PWNED\u0007'

t.test('printable: control characters as \\xHH, backslash doubled, everything else as it is', async (t) => {
  const table: [input: string, shown: string][] = [
    ['eth0', 'eth0'],
    ['', ''],
    [OSC_TITLE, 'a\\x1b]0;PWNED\\x07'],
    ['\u001b[2J\u001b[H', '\\x1b[2J\\x1b[H'], // clear screen, cursor home
    ['a\u0000b', 'a\\x00b'],
    ['tab\there', 'tab\\x09here'],
    ['new\nline\r', 'new\\x0aline\\x0d'],
    ['\u001f', '\\x1f'],
    [' ', ' '], // U+0020: the first printable
    ['~\u007f', '~\\x7f'], // DEL
    ['\u0080\u009b\u009f', '\\x80\\x9b\\x9f'], // C1, as UTF-8 names decode them (U+009B is CSI)
    ['\u00a0é', '\u00a0é'], // U+00A0 and up are printable
    ['back\\slash', 'back\\\\slash'],
    ['\\x1b', '\\\\x1b'], // a literal "\x1b" stays distinguishable from an escaped ESC
    ['αβγ-ok', 'αβγ-ok'],
    ['\ufffd', '\ufffd'], // what invalid UTF-8 in a name decodes to
  ]
  for (const [input, shown] of table) t.equal(printable(input), shown, JSON.stringify(input))
})

t.test('every text output escapes what it prints: links, monitor events, status', async (t) => {
  const evil = link(7, OSC_TITLE, { kind: 'v\u0007eth', altNames: ['alt\u001b[31m'] })
  const text = [
    linksTable([evil]),
    eventText({ event: 'add', ifindex: 7, name: evil.name, link: evil }),
    eventText({ event: 'rename', ifindex: 7, name: evil.name, oldName: '\u009bold', link: evil, previous: evil }),
    eventText({ event: 'remove', ifindex: 7, name: evil.name, link: evil }),
    statusText({
      pid: 1,
      config: '/etc/x\u001b.yaml',
      links: [
        { netns: 'host', ifindex: 7, name: evil.name, kind: 'veth', entry: null, desiredProgId: null, attached: null, state: 'error', lastError: 'EINVAL: \u0007', traffic: null },
        { netns: 'cni-\u001b', ifindex: 7, name: evil.name, kind: 'veth', entry: null, desiredProgId: null, attached: null, state: 'unmanaged', lastError: null, traffic: { ...zeroCounters(), drop: { packets: 1, bytes: 2 } } },
      ],
      programs: [],
      counters: { attaches: 0, replaces: 0, detaches: 0, conflicts: 0, errors: {}, overruns: 0, resyncs: 1 },
    }),
    table(['A'], [['\u001b']]),
  ].join('\n')
  t.notMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, 'no control character but the newlines between lines')
  t.match(linksTable([evil]), /\n7 +a\\x1b\]0;PWNED\\x07 +v\\x07eth +down +yes +- +alt\\x1b\[31m\n$/)
  t.equal(eventText({ event: 'rename', ifindex: 7, name: evil.name, oldName: '\u009bold', link: evil, previous: evil }), 'rename     7 a\\x1b]0;PWNED\\x07 (was \\x9bold)')
})

t.test('status: one table per network namespace once there is more than the daemon own; one without a heading before', async (t) => {
  const row = (netns: string, ifindex: number, name: string) =>
    ({ netns, ifindex, name, kind: 'veth', entry: null, desiredProgId: null, attached: null, state: 'unmanaged', lastError: null, traffic: null }) as const
  const status = (links: ReturnType<typeof row>[]) =>
    statusText({ pid: 1, config: '/c.yaml', links, programs: [], counters: { attaches: 0, replaces: 0, detaches: 0, conflicts: 0, errors: {}, overruns: 0, resyncs: 1 } })
  t.notMatch(status([row('host', 1, 'lo')]), /network namespace/, 'only the daemon own: as before namespaces')
  const text = status([row('host', 1, 'lo'), row('host', 2, 'va'), row('cni-1', 1, 'lo'), row('cni-1', 2, 'eth0')])
  t.match(text, /network namespace host: 2 links\nIFINDEX +NAME.*\n1 +lo .*\n2 +va .*\n\nnetwork namespace cni-1: 2 links\nIFINDEX +NAME.*\n1 +lo .*\n2 +eth0 /)
})

t.test("status: what each link's program counted, a row per action; the programs that keep per-link counters", async (t) => {
  const row = (netns: string, name: string, traffic: LinkStatusJson['traffic']): LinkStatusJson => ({
    netns,
    ifindex: 2,
    name,
    kind: 'veth',
    entry: 'e',
    desiredProgId: 10,
    attached: { progId: 10, mode: 'generic', owner: 'ours' },
    state: 'attached',
    lastError: null,
    traffic,
  })
  const links = [
    row('host', 'va', { ...zeroCounters(), drop: { packets: 3, bytes: 180 }, pass: { packets: 12, bytes: 1008 } }),
    row('host', 'vb', null),
    row('pod-1', 'eth0', zeroCounters()),
    row('pod-2', 'eth0', { ...zeroCounters(), redirect: { packets: 1, bytes: 64 } }),
  ]
  t.equal(
    trafficText(links),
    [
      'NETNS  NAME  ACTION    PACKETS  BYTES',
      'host   va    drop      3        180',
      'host   va    pass      12       1008',
      'pod-1  eth0  -         0        0',
      'pod-2  eth0  redirect  1        64',
      '',
    ].join('\n'),
    'actions in enum xdp_action order; a link counted but quiet as -; a link without counters left out',
  )
  t.equal(trafficText([row('host', 'vb', null)]), 'no per-link counters: no link runs a program that keeps them\n')
  const text = statusText({
    pid: 1,
    config: '/c.yaml',
    links,
    programs: [
      { id: 10, tag: 't', name: 'xdp_pass', object: '/o', pin: '/p', entries: ['e'], linkStats: '/p/maps/xdp_link_stats' },
      { id: 11, tag: 't', name: 'xdp_odd', object: '/o2', pin: '/p2', entries: ['f'], linkStats: null, linkStatsProblem: 'key of 4 bytes' },
      { id: 12, tag: 't', name: 'xdp_none', object: '/o3', pin: '/p3', entries: ['g'], linkStats: null },
    ],
    counters: { attaches: 0, replaces: 0, detaches: 0, conflicts: 0, errors: {}, overruns: 0, resyncs: 1 },
  })
  t.match(text, /\n\nNETNS +NAME +ACTION +PACKETS +BYTES\nhost +va +drop +3 +180\n/, 'after the links')
  t.match(text, /\nID +TAG +NAME +ENTRIES +OBJECT +PIN +COUNTERS\n10 .* \/p +per link\n11 .* \/p2 +none: key of 4 bytes\n12 .* \/p3 +-\n/)
})

t.test('links of several namespaces: a NETNS column once one is not host; JSON names the namespace of every link', async (t) => {
  const lo = link(1, 'lo', { kind: null, operState: 'unknown' })
  const eth0 = link(2, 'eth0')
  t.equal(netnsLinksTable([{ netns: 'host', links: [lo, eth0] }]), linksTable([lo, eth0]), 'host alone: as without namespaces')
  t.equal(netnsLinksTable([]), linksTable([]))
  t.equal(
    netnsLinksTable([
      { netns: 'host', links: [lo] },
      { netns: 'pod-1', links: [lo, eth0] },
      { netns: 'e\u001b', links: [] },
    ]),
    [
      'NETNS  IFINDEX  NAME  KIND    STATE    UP   XDP  ALTNAMES',
      'host   1        lo    device  unknown  yes  -    -',
      'pod-1  1        lo    device  unknown  yes  -    -',
      'pod-1  2        eth0  veth    down     yes  -    -',
      '',
    ].join('\n'),
  )
  t.match(netnsLinksTable([{ netns: 'cni-\u001b]0;x\u0007', links: [eth0] }]), /\ncni-\\x1b\]0;x\\x07  2 /, 'the namespace name escaped')
  const json = netnsLinksJson([
    { netns: 'host', links: [lo] },
    { netns: 'pod-1', links: [eth0] },
  ])
  t.same(
    json.map((l) => [l.netns, l.ifindex, l.name]),
    [
      ['host', 1, 'lo'],
      ['pod-1', 2, 'eth0'],
    ],
  )
  t.same(Object.keys(json[0]!), ['netns', 'ifindex', 'name', 'kind', 'operState', 'up', 'altNames', 'xdp'], 'netns first, then the fields of links --json')
})

t.test('monitor events of a namespace: its name first; the namespace events', async (t) => {
  const eth0 = link(2, 'eth0')
  const cases: [line: string, want: string][] = [
    [eventTextIn('pod-1', { event: 'add', ifindex: 2, name: 'eth0', link: eth0 }), 'pod-1  add        2 eth0 (veth, down)'],
    [eventTextIn('host', { event: 'remove', ifindex: 2, name: 'eth0', link: eth0 }), 'host  remove     2 eth0'],
    [eventTextIn('p\u001b', { event: 'remove', ifindex: 2, name: 'eth0', link: eth0 }), 'p\\x1b  remove     2 eth0'],
  ]
  const changes: [NetnsChange, string][] = [
    [{ netns: 'pod-2', event: 'netns-add', id: 'net:[4026532281]', paths: ['/run/netns/pod-2'] }, 'pod-2  netns-add net:[4026532281] (/run/netns/pod-2)'],
    [{ netns: 'pod-2', event: 'netns-add', id: 'net:[1]', paths: ['/a/pod-2', '/b/x\u0007'] }, 'pod-2  netns-add net:[1] (/a/pod-2, /b/x\\x07)'],
    [{ netns: 'pod-3', event: 'netns-rename', oldName: 'pod-2', id: 'net:[1]' }, 'pod-3  netns-rename net:[1] (was pod-2)'],
    [{ netns: 'pod-3', event: 'netns-remove', id: 'net:[1]' }, 'pod-3  netns-remove net:[1]'],
  ]
  for (const [line, want] of [...cases, ...changes.map(([c, w]) => [netnsChangeText(c), w] as [string, string])]) t.equal(line, want)
  t.same(eventJsonIn('pod-1', { event: 'rename', ifindex: 2, name: 'e1', oldName: 'eth0', link: eth0, previous: eth0 }), {
    netns: 'pod-1',
    event: 'rename',
    ifindex: 2,
    name: 'e1',
    oldName: 'eth0',
  })
})

t.test('siText: three significant digits, an SI prefix by powers of 1000', async (t) => {
  const table: [x: number, shown: string][] = [
    [0, '0'],
    [0.2, '0.200'],
    [1 / 3600, '0.000278'], // one packet an hour
    [1, '1.00'],
    [98, '98.0'],
    [123.4, '123'],
    [999.4, '999'],
    [999.5, '1.00k'], // rounded first: never "1000"
    [1234, '1.23k'],
    [45_678, '45.7k'],
    [999_999, '1.00M'],
    [1e6, '1.00M'],
    [2.5e9, '2.50G'],
    [18_446_744_073_709_551_615, '18.4E'], // 2^64 - 1
    [-1, '?'],
    [NaN, '?'],
    [Infinity, '?'],
  ]
  for (const [x, shown] of table) t.equal(siText(x), shown, String(x))
})
