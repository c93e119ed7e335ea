import t from 'tap'
import { BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_LRU_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_HASH } from '../../src/maps/map-types.js'
import {
  LINK_STATS_KEY_SIZE,
  LINK_STATS_VALUE_SIZE,
  XDP_ACTIONS,
  attributeCounters,
  checkStatsMap,
  decodeEntry,
  zeroCounters,
  type ActionCounters,
  type CountedLink,
  type LinkCountersEntry,
} from '../../src/programs/counters.js'

// enum bpf_map_type (<linux/bpf.h>)
const BPF_MAP_TYPE_ARRAY = 2
const BPF_MAP_TYPE_PERCPU_ARRAY = 6

t.test('the sizes are those of bpf/xdp_stats.h', async (t) => {
  t.equal(LINK_STATS_KEY_SIZE, 8, 'struct xdp_link_key {__u32 netns; __u32 ifindex;}')
  t.equal(LINK_STATS_VALUE_SIZE, 80, 'struct xdp_link_stats: 5 x {__u64 packets; __u64 bytes;}')
  t.same(XDP_ACTIONS, ['aborted', 'drop', 'pass', 'tx', 'redirect'], 'enum xdp_action, in value order')
})

t.test('checkStatsMap: a hash of the convention key and value sizes, per CPU or not', async (t) => {
  const table: [what: string, type: number, keySize: number, valueSize: number, want: { perCpu: boolean } | RegExp][] = [
    ['the bundled programs', BPF_MAP_TYPE_LRU_PERCPU_HASH, 8, 80, { perCpu: true }],
    ['a per-CPU hash', BPF_MAP_TYPE_PERCPU_HASH, 8, 80, { perCpu: true }],
    ['a plain hash (atomic adds)', BPF_MAP_TYPE_HASH, 8, 80, { perCpu: false }],
    ['an LRU hash', BPF_MAP_TYPE_LRU_HASH, 8, 80, { perCpu: false }],
    ['the per-program totals', BPF_MAP_TYPE_PERCPU_ARRAY, 4, 16, /map type 6, not a hash .*; key of 4 bytes, not 8 .*; value of 16 bytes, not 80/],
    ['an array of the right sizes', BPF_MAP_TYPE_ARRAY, 8, 80, /^xdp_link_stats does not follow the stats-map convention: map type 2, not a hash \(hash, percpu_hash, lru_hash, lru_percpu_hash\)$/],
    ['a key without the namespace', BPF_MAP_TYPE_PERCPU_HASH, 4, 80, /: key of 4 bytes, not 8 \(\{__u32 netns; __u32 ifindex;\}\)$/],
    ['packets only', BPF_MAP_TYPE_PERCPU_HASH, 8, 40, /: value of 40 bytes, not 80 \(\{__u64 packets; __u64 bytes;\} for each of 5 actions\)$/],
  ]
  for (const [what, type, keySize, valueSize, want] of table) {
    const r = checkStatsMap({ type, keySize, valueSize })
    if (want instanceof RegExp) t.match(r, { ok: false, error: want }, what)
    else t.same(r, { ok: true, value: want }, what)
  }
})

/** A key and a value as bpf_map_lookup_elem gives them: `perCpu[cpu][action] = [packets, bytes]`. */
function raw(netns: number, ifindex: number, perCpu: [number, number][][]): [Buffer, Buffer] {
  const key = Buffer.alloc(8)
  key.writeUInt32LE(netns, 0)
  key.writeUInt32LE(ifindex, 4)
  const value = Buffer.alloc(80 * perCpu.length)
  perCpu.forEach((actions, cpu) =>
    actions.forEach(([p, b], i) => {
      value.writeBigUInt64LE(BigInt(p), cpu * 80 + i * 16)
      value.writeBigUInt64LE(BigInt(b), cpu * 80 + i * 16 + 8)
    }),
  )
  return [key, value]
}

const counters = (over: Partial<ActionCounters>): ActionCounters => ({ ...zeroCounters(), ...over })

t.test('decodeEntry: key fields and the per-CPU slots summed', async (t) => {
  const table: [what: string, input: [Buffer, Buffer], cpus: number, want: LinkCountersEntry | RegExp][] = [
    [
      'one CPU',
      raw(4026531833, 2, [[[0, 0], [1, 60], [3, 300]]]),
      1,
      { netns: 4026531833, ifindex: 2, actions: counters({ drop: { packets: 1, bytes: 60 }, pass: { packets: 3, bytes: 300 } }) },
    ],
    [
      'two CPUs add up, every action in its place',
      raw(7, 3, [
        [[1, 10], [2, 20], [3, 30], [4, 40], [5, 50]],
        [[10, 100], [20, 200], [30, 300], [40, 400], [50, 500]],
      ]),
      2,
      {
        netns: 7,
        ifindex: 3,
        actions: {
          aborted: { packets: 11, bytes: 110 },
          drop: { packets: 22, bytes: 220 },
          pass: { packets: 33, bytes: 330 },
          tx: { packets: 44, bytes: 440 },
          redirect: { packets: 55, bytes: 550 },
        },
      },
    ],
    ['no namespace (an older kernel)', raw(0, 2, [[], []]), 2, { netns: 0, ifindex: 2, actions: zeroCounters() }],
    ['u64 past 2^32', raw(1, 1, [[[0, 0], [0, 0], [2 ** 33, 2 ** 40]]]), 1, { netns: 1, ifindex: 1, actions: counters({ pass: { packets: 2 ** 33, bytes: 2 ** 40 } }) }],
    ['a short key', [Buffer.alloc(4), Buffer.alloc(80)], 1, /^key of 4 bytes, not 8$/],
    ['a value for fewer CPUs', [Buffer.alloc(8), Buffer.alloc(80)], 2, /^value of 80 bytes, not 2 x 80$/],
    ['no CPU', [Buffer.alloc(8), Buffer.alloc(0)], 0, /^0 CPUs$/],
  ]
  for (const [what, [key, value], cpus, want] of table) {
    const r = decodeEntry(key, value, cpus)
    if (want instanceof RegExp) t.match(r, { ok: false, error: want }, what)
    else t.same(r, { ok: true, value: want }, what)
  }
})

t.test('attributeCounters: the entry of the link namespace and ifindex, in the map of the program it runs', async (t) => {
  const HOST = 4026531833
  const POD = 4026532174
  const POD2 = 4026532239
  const a = counters({ pass: { packets: 5, bytes: 500 } })
  const b = counters({ pass: { packets: 7, bytes: 700 } })
  const c = counters({ drop: { packets: 2, bytes: 120 } })
  const link = (netns: number, ifindex: number, progId: number | null): CountedLink => ({ netns, ifindex, progId })
  const entry = (netns: number, ifindex: number, actions: ActionCounters): LinkCountersEntry => ({ netns, ifindex, actions })

  const table: [what: string, links: CountedLink[], stats: [number, LinkCountersEntry[]][], want: (ActionCounters | null)[]][] = [
    [
      'the same ifindex in two namespaces, one program: counted apart',
      [link(POD, 2, 10), link(POD2, 2, 10)],
      [[10, [entry(POD, 2, a), entry(POD2, 2, b)]]],
      [a, b],
    ],
    ['each program its own map', [link(HOST, 3, 10), link(HOST, 4, 11)], [[10, [entry(HOST, 3, a)]], [11, [entry(HOST, 4, c), entry(HOST, 3, b)]]], [a, c]],
    ['a program with counters, a link not seen yet (or evicted): zeros', [link(HOST, 5, 10)], [[10, [entry(HOST, 3, a)]]], [zeroCounters()]],
    ['no program, or one without counters: null', [link(HOST, 1, null), link(HOST, 2, 99)], [[10, [entry(HOST, 1, a), entry(HOST, 2, a)]]], [null, null]],
    ['an entry of a namespace no link is in: nobody gets it', [link(HOST, 2, 10)], [[10, [entry(POD, 2, a)]]], [zeroCounters()]],
    ['no namespace (older kernel), one link with that ifindex on the program: it', [link(POD, 2, 10), link(HOST, 2, 11)], [[10, [entry(0, 2, a)]]], [a, null]],
    ['no namespace, two links with that ifindex on the program: neither (not zeros)', [link(POD, 2, 10), link(POD2, 2, 10)], [[10, [entry(0, 2, a)]]], [null, null]],
    ['an entry with the namespace wins over one without', [link(POD, 2, 10)], [[10, [entry(0, 2, a), entry(POD, 2, b)]]], [b]],
    ['nothing', [], [], []],
  ]
  for (const [what, links, stats, want] of table) t.same(attributeCounters(links, new Map(stats)), want, what)
})
