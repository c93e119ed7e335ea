/** The `maps` answer: programs and their maps joined with what was read of each and what the config declares. */
import t from 'tap'
import { buildMaps, mapJson, type MapsSource } from '../../src/control/maps.js'
import type { DeclaredMap } from '../../src/maps/contents.js'
import type { InspectedMap, MapInspector } from '../../src/maps/inspect.js'
import { BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_LPM_TRIE, BPF_MAP_TYPE_LRU_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY } from '../../src/maps/map-types.js'
import type { LoadedProgram } from '../../src/programs/registry.js'
import { err, ok, type Result } from '../../src/result.js'

const DIR = '/sys/fs/bpf/xdplinkd/0f8ddd9113ab36cd-xdp_blocklist'
const pin = (m: string): string => `${DIR}/maps/${m}`

const prog = (id: number, name: string, maps: string[]): LoadedProgram =>
  ({ id, tag: 'a'.repeat(16), name, objectPath: `/opt/${name}.o`, pinPath: `${DIR}/prog`, maps: new Map(maps.map((m) => [m, pin(m)])) }) as unknown as LoadedProgram

const info = (type: number, maxEntries: number) => ({ id: 7, type, name: 'x', keySize: 8, valueSize: 1, maxEntries, flags: 1 })
const declared = (count: number): DeclaredMap => ({ pin: pin('blocklist_v4'), map: 'blocklist_v4', entries: ['uplink', 'pods'], count, keySize: 8, valueSize: 1, contents: { keySize: 8, valueSize: 1, count, keys: Buffer.alloc(8 * count), values: Buffer.alloc(count) } })
const calls = { lookupBatch: 1, updateBatch: 0, deleteBatch: 0, getNextKey: 0, lookup: 0, update: 0, delete: 0 }

t.test('mapJson: each way a map can stand', async (t) => {
  const lpm = (over: Partial<InspectedMap>): Result<InspectedMap, string> => ok({ info: info(BPF_MAP_TYPE_LPM_TRIE, 65536), count: 2, countExact: true, ...over })
  const cases: [what: string, d: DeclaredMap | undefined, read: Result<InspectedMap, string>, want: object][] = [
    ['not declared: not managed', undefined, lpm({}), { type: 'lpm_trie', id: 7, keySize: 8, valueSize: 1, maxEntries: 65536, flags: 1, count: 2, countExact: true, managed: null }],
    [
      'declared and held',
      declared(2),
      lpm({ comparison: ok({ complete: true, read: 2, missing: 0, changed: 0, extra: 0, calls }) }),
      { managed: { declaredBy: ['uplink', 'pods'], declared: 2, holdsDeclared: true, missing: 0, changed: 0, extra: 0 } },
    ],
    [
      'declared, and the map differs',
      declared(2),
      lpm({ count: 3, comparison: ok({ complete: true, read: 3, missing: 1, changed: 1, extra: 2, calls }) }),
      { count: 3, managed: { declared: 2, holdsDeclared: false, missing: 1, changed: 1, extra: 2 } },
    ],
    [
      'a hash or trie read in part holds more than was declared',
      declared(2),
      lpm({ count: 100001, countExact: false, comparison: ok({ complete: false, read: 100001, calls }) }),
      { countExact: false, managed: { holdsDeclared: false, holdsProblem: 'it holds more than 100000 entries (read no further), more than the 2 declared' } },
    ],
    [
      'an array read in part cannot tell',
      declared(2),
      ok({ info: info(BPF_MAP_TYPE_ARRAY, 1 << 20), count: 1 << 20, countExact: true, comparison: ok({ complete: false, read: 100001, calls }) }),
      { type: 'array', count: 1 << 20, managed: { holdsDeclared: null, holdsProblem: 'not compared: an array of 1048576 entries, read up to 100000' } },
    ],
    ['a comparison that failed', declared(2), lpm({ comparison: err('map m: reading its contents: EPERM') }), { managed: { holdsDeclared: null, holdsProblem: 'map m: reading its contents: EPERM' } }],
    [
      'a map without keys to count',
      undefined,
      ok({ info: info(22, 8), count: null, countExact: true, countProblem: 'cannot walk its keys: EINVAL' }),
      { type: 'queue', count: null, problem: 'cannot walk its keys: EINVAL', managed: null },
    ],
    [
      'a pin that cannot be opened',
      declared(2),
      err('cannot open /x: ENOENT'),
      { id: null, type: null, count: null, countExact: false, problem: 'cannot open /x: ENOENT', managed: { declared: 2, holdsDeclared: null, holdsProblem: 'cannot open /x: ENOENT' } },
    ],
  ]
  for (const [what, d, read, want] of cases) {
    const row = mapJson('blocklist_v4', pin('blocklist_v4'), d, read, 100_000)
    t.match(row, { name: 'blocklist_v4', pin: pin('blocklist_v4'), ...want }, what)
    if (!('problem' in want)) t.notOk('problem' in row, `${what}: no problem`)
  }
})

t.test('buildMaps: each program once with its maps by name, each map read once with its declaration', async (t) => {
  const blocklist = prog(42, 'xdp_blocklist', ['xdp_stats', 'blocklist_v4', 'xdp_link_stats'])
  const src: MapsSource = {
    config: { path: '/etc/xdplinkd/config.yaml' },
    programs: () => [
      { entry: 'uplink', program: blocklist },
      { entry: 'pods', program: blocklist },
      { entry: 'lab', program: prog(41, 'xdp_pass', []) },
    ],
    declaredMaps: () => new Map([[pin('blocklist_v4'), declared(1)]]),
  }
  const asked: [string, boolean, number][] = []
  const inspect: MapInspector = (p, d, limit) => {
    asked.push([p, d !== undefined, limit])
    const type = p.endsWith('xdp_stats') ? BPF_MAP_TYPE_PERCPU_ARRAY : p.endsWith('xdp_link_stats') ? BPF_MAP_TYPE_LRU_PERCPU_HASH : BPF_MAP_TYPE_LPM_TRIE
    return ok({ info: info(type, 5), count: 1, countExact: true, ...(d ? { comparison: ok({ complete: true, read: 1, missing: 0, changed: 0, extra: 0, calls }) } : {}) })
  }
  const m = buildMaps(src, inspect, 500)
  t.same(
    asked,
    [
      [pin('blocklist_v4'), true, 500],
      [pin('xdp_link_stats'), false, 500],
      [pin('xdp_stats'), false, 500],
    ],
    'each map of the shared program read once, the declared one with its declaration',
  )
  t.match(m, {
    pid: process.pid,
    config: '/etc/xdplinkd/config.yaml',
    countLimit: 500,
    programs: [
      { id: 41, name: 'xdp_pass', object: '/opt/xdp_pass.o', entries: ['lab'], maps: [] },
      {
        id: 42,
        name: 'xdp_blocklist',
        pin: `${DIR}/prog`,
        entries: ['uplink', 'pods'],
        maps: [
          { name: 'blocklist_v4', type: 'lpm_trie', managed: { holdsDeclared: true } },
          { name: 'xdp_link_stats', type: 'lru_percpu_hash', managed: null },
          { name: 'xdp_stats', type: 'percpu_array', managed: null },
        ],
      },
    ],
  })
})
