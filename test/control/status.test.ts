import t from 'tap'
import { buildStatus, programRows, type ProgramUse, type StatusSource } from '../../src/control/status.js'
import { encodeResponse, parseRequest, parseResponse } from '../../src/control/protocol.js'
import { newLinkRecord, type LinkRecord } from '../../src/reconcile/record.js'
import type { LoadedProgram } from '../../src/programs/registry.js'
import { zeroCounters } from '../../src/programs/counters.js'
import type { StatsReader } from '../../src/programs/read-counters.js'
import { link } from '../helpers/link-state.js'

const prog = (id: number, name = 'xdp_pass'): LoadedProgram =>
  ({
    id,
    tag: `${id}`.padStart(16, '0'),
    name,
    kernelName: name,
    fd: null,
    objectPath: `/opt/${name}.o`,
    objectHash: 'h',
    pinDirName: `0123456789abcdef-${name}`,
    pinDir: `/sys/fs/bpf/xdplinkd/0123456789abcdef-${name}`,
    pinPath: `/sys/fs/bpf/xdplinkd/0123456789abcdef-${name}/prog`,
    maps: new Map(),
    source: 'loaded',
  }) as unknown as LoadedProgram

const rec = (ifindex: number, name: string, over: Partial<LinkRecord>): LinkRecord => ({
  ...newLinkRecord(ifindex, name),
  state: 'unmanaged',
  ...over,
})

t.test('status joins the table, the records, ownership and the counters', async (t) => {
  const uses: ProgramUse[] = [
    { entry: 'web', program: prog(10) },
    { entry: 'lab', program: prog(10) },
    { entry: 'drop', program: prog(11, 'xdp_drop') },
  ]
  const src: StatusSource = {
    config: { path: '/etc/xdplinkd/config.yaml' },
    namespaces: () => [host, pod],
    registry: { ownedProgramIds: () => new Set([8]) },
    programs: () => uses,
  }
  const host = {
    name: 'host',
    inode: 4026531833,
    table: {
      links: () => [
        link(1, 'lo', { kind: null }),
        link(2, 'va', { xdp: { mode: 'generic', progId: 10, skbProgId: 10 } }),
        link(3, 'vb', { xdp: { mode: 'native', progId: 99, drvProgId: 99 } }),
        link(4, 'vc', { xdp: { mode: 'generic', progId: 8, skbProgId: 8 } }),
        link(5, 'vd'),
        link(6, 've', { xdp: { mode: 'multi', progId: null, drvProgId: 11, hwProgId: 42 } }),
        link(7, 'new'),
      ],
      stats: { overruns: 2, resyncs: 3 },
    },
    reconciler: {
      records: () => [
        rec(1, 'lo', {}),
        rec(2, 'va', { entry: 'web', desiredProgId: 10, state: 'attached' }),
        rec(3, 'vb', { entry: 'web', desiredProgId: 10, state: 'conflict' }),
        // an old program of ours (pinned by an earlier run), not replaced yet
        rec(4, 'vc', { entry: 'lab', desiredProgId: 10, state: 'error', lastError: 'EINVAL: bad' }),
        rec(5, 'vd', { entry: 'drop', desiredProgId: 11, state: 'pending', lastError: 'EBUSY' }),
        rec(6, 've', { entry: 'drop', desiredProgId: 11, state: 'attached' }),
      ],
      counters: { attaches: 4, replaces: 1, detaches: 2, conflicts: 1, errors: { EINVAL: 3 }, batches: 9, requests: 12 },
    },
  }
  const pod = {
    name: 'cni-1',
    inode: 4026532174,
    table: { links: () => [link(2, 'eth0', { xdp: { mode: 'generic', progId: 11, skbProgId: 11 } })], stats: { overruns: 0, resyncs: 1 } },
    reconciler: {
      records: () => [rec(2, 'eth0', { entry: 'drop', desiredProgId: 11, state: 'attached' })],
      counters: { attaches: 1, replaces: 0, detaches: 0, conflicts: 0, errors: { EINVAL: 1, EBUSY: 2 }, batches: 1, requests: 1 },
    },
  }
  const s = buildStatus(src)
  t.equal(s.pid, process.pid)
  t.equal(s.config, '/etc/xdplinkd/config.yaml')
  t.same(
    s.links.map((l) => [l.netns, l.ifindex, l.name, l.entry, l.desiredProgId, l.attached, l.state, l.lastError]),
    [
      ['host', 1, 'lo', null, null, null, 'unmanaged', null],
      ['host', 2, 'va', 'web', 10, { progId: 10, mode: 'generic', owner: 'ours' }, 'attached', null],
      ['host', 3, 'vb', 'web', 10, { progId: 99, mode: 'native', owner: 'foreign' }, 'conflict', null],
      ['host', 4, 'vc', 'lab', 10, { progId: 8, mode: 'generic', owner: 'ours' }, 'error', 'EINVAL: bad'],
      ['host', 5, 'vd', 'drop', 11, null, 'pending', null],
      ['host', 6, 've', 'drop', 11, { progId: 11, mode: 'native', owner: 'ours' }, 'attached', null],
      ['host', 7, 'new', null, null, null, 'pending', null],
      ['cni-1', 2, 'eth0', 'drop', 11, { progId: 11, mode: 'generic', owner: 'ours' }, 'attached', null],
    ],
    'one row per link, each with its namespace (the same ifindex in two is two links); lastError only in state error; a link without a record yet is pending',
  )
  t.same(s.links[5]!.alsoAttached, [{ progId: 42, mode: 'offload', owner: 'foreign' }], 'multi: the other modes too')
  t.notOk('alsoAttached' in s.links[1]!)
  t.same(s.programs, [
    { id: 10, tag: '0000000000000010', name: 'xdp_pass', object: '/opt/xdp_pass.o', pin: '/sys/fs/bpf/xdplinkd/0123456789abcdef-xdp_pass/prog', entries: ['web', 'lab'], linkStats: null },
    { id: 11, tag: '0000000000000011', name: 'xdp_drop', object: '/opt/xdp_drop.o', pin: '/sys/fs/bpf/xdplinkd/0123456789abcdef-xdp_drop/prog', entries: ['drop'], linkStats: null },
  ])
  t.same(
    s.links.map((l) => l.traffic),
    s.links.map(() => null),
    'programs whose objects have no per-link stats map: no counters',
  )
  t.same(s.counters, { attaches: 5, replaces: 1, detaches: 2, conflicts: 1, errors: { EINVAL: 4, EBUSY: 2 }, overruns: 2, resyncs: 4 }, 'summed over the namespaces')
  t.same(programRows([]), [])
})

t.test("status: each link's packets and bytes, from the per-link stats map of the program it runs", async (t) => {
  const withMaps = (id: number, name: string): LoadedProgram => ({ ...prog(id, name), maps: new Map([['xdp_link_stats', `/pin/${id}/maps/xdp_link_stats`]]) }) as LoadedProgram
  const uses: ProgramUse[] = [
    { entry: 'pods', program: withMaps(10, 'xdp_pass') },
    { entry: 'host', program: withMaps(10, 'xdp_pass') },
    { entry: 'odd', program: withMaps(12, 'xdp_odd') },
  ]
  const attachedTo = (id: number) => ({ xdp: { mode: 'generic' as const, progId: id, skbProgId: id } })
  const view = (name: string, inode: number, links: ReturnType<typeof link>[]) => ({
    name,
    inode,
    table: { links: () => links, stats: { overruns: 0, resyncs: 1 } },
    reconciler: { records: () => [], counters: { attaches: 0, replaces: 0, detaches: 0, conflicts: 0, errors: {}, batches: 0, requests: 0 } },
  })
  const src: StatusSource = {
    config: { path: '/c.yaml' },
    namespaces: () => [
      view('host', 100, [link(1, 'lo'), link(2, 'h0', attachedTo(10)), link(3, 'h1', attachedTo(12))]),
      view('pod-1', 201, [link(2, 'eth0', attachedTo(10))]),
      view('pod-2', 202, [link(2, 'eth0', attachedTo(10))]),
    ],
    registry: { ownedProgramIds: () => new Set() },
    programs: () => uses,
  }
  const pass = (packets: number) => ({ ...zeroCounters(), pass: { packets, bytes: packets * 100 } })
  const reads: string[] = []
  const read: StatsReader = (pin) => {
    reads.push(String(pin))
    if (pin === '/pin/12/maps/xdp_link_stats') return { kind: 'problem', reason: 'xdp_link_stats does not follow the stats-map convention: key of 4 bytes, not 8' }
    return {
      kind: 'entries',
      entries: [
        { netns: 100, ifindex: 2, actions: pass(1) },
        { netns: 201, ifindex: 2, actions: pass(5) },
        { netns: 202, ifindex: 2, actions: pass(7) },
      ],
    }
  }
  const s = buildStatus(src, read)
  t.same(reads, ['/pin/10/maps/xdp_link_stats', '/pin/12/maps/xdp_link_stats'], 'each program read once, however many entries use it')
  t.same(
    s.links.map((l) => [l.netns, l.name, l.traffic?.pass.packets ?? null]),
    [
      ['host', 'lo', null],
      ['host', 'h0', 1],
      ['host', 'h1', null],
      ['pod-1', 'eth0', 5],
      ['pod-2', 'eth0', 7],
    ],
    'the same ifindex in two namespaces counted apart; no program or a map that does not serve: null',
  )
  t.same(s.links[1]!.traffic, pass(1), 'every action, zeros included')
  t.match(s.programs, [
    { id: 10, linkStats: '/pin/10/maps/xdp_link_stats' },
    { id: 12, linkStats: null, linkStatsProblem: /key of 4 bytes/ },
  ])
  t.notOk('linkStatsProblem' in s.programs[0]!)
})

t.test('protocol: requests parsed without throwing, responses one line each', async (t) => {
  t.same(parseRequest('{"cmd":"status"}'), { ok: true, value: { cmd: 'status' } })
  t.same(parseRequest(' {"cmd":"reload","extra":1} '), { ok: true, value: { cmd: 'reload' } }, 'unknown keys are ignored')
  for (const bad of ['', '{', '1', '"status"', '[]', 'null', '{"cmd":null}', '{"cmd":"toString"}', '{"cmd":"x".repeat(1e5)}']) {
    const r = parseRequest(bad)
    t.equal(r.ok, false, JSON.stringify(bad))
  }
  const long = parseRequest(JSON.stringify({ cmd: 'z'.repeat(10000) }))
  t.ok(!long.ok && long.error.length < 200, 'an error does not echo a long command back')
  const line = encodeResponse({ ok: false, error: 'a\nb' })
  t.equal(line.split('\n').length, 2, 'a newline inside a value is escaped')
  t.same(parseResponse(line.trim()), { ok: true, value: { ok: false, error: 'a\nb' } })
  t.equal(parseResponse('nope').ok, false)
  t.equal(parseResponse('{"x":1}').ok, false)
})
