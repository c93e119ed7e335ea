/** top's arithmetic (commands/rates.ts): rates from two samples, counter resets, links coming and going, the order. */
import t from 'tap'
import { linkRates, rateRows, sampleOf, sortRates, type LinkRate, type SampledLink, type TrafficSample } from '../../src/commands/rates.js'
import type { LinkStatusJson } from '../../src/control/protocol.js'
import { zeroCounters, type ActionCounters } from '../../src/programs/counters.js'

/** Counters with `pass` and `drop` as given (packets; bytes 100 a packet), the rest zero. */
function counters(pass: number, drop = 0): ActionCounters {
  return { ...zeroCounters(), pass: { packets: pass, bytes: pass * 100 }, drop: { packets: drop, bytes: drop * 100 } }
}
const link = (name: string, traffic: ActionCounters, over: Partial<SampledLink> = {}): SampledLink => ({ netns: 'host', ifindex: name.length, name, progId: 7, traffic, ...over })
const sample = (at: number, ...links: SampledLink[]): TrafficSample => ({ at, links })

/** A rate as [name, pass packets/s, drop packets/s, reset], or [name, null] without one. */
function brief(r: LinkRate): [string, number | null, number?, boolean?] {
  return r.actions ? [r.name, r.actions.pass.packets, r.actions.drop.packets, r.reset] : [r.name, null]
}

t.test('linkRates: a table of two samples each', async (t) => {
  const cases: [what: string, prev: TrafficSample | null, next: TrafficSample, want: ReturnType<typeof brief>[]][] = [
    ['the first sample: no rates yet', null, sample(1000, link('eth0', counters(5))), [['eth0', null]]],
    ['one second: the increase', sample(0, link('eth0', counters(5, 1))), sample(1000, link('eth0', counters(15, 3))), [['eth0', 10, 2, false]]],
    ['half a second: twice the increase', sample(0, link('eth0', counters(5))), sample(500, link('eth0', counters(15))), [['eth0', 20, 0, false]]],
    ['a quiet link: zeros', sample(0, link('eth0', counters(5))), sample(2000, link('eth0', counters(5))), [['eth0', 0, 0, false]]],
    // The program was replaced (new maps from zero), or the LRU map evicted the entry: counted from zero.
    ['a counter went down: from the new value, never negative', sample(0, link('eth0', counters(500, 9))), sample(1000, link('eth0', counters(3, 9))), [['eth0', 3, 9, true]]],
    ['bytes alone went down: a reset too', sample(0, link('eth0', { ...counters(5), tx: { packets: 1, bytes: 900 } })), sample(1000, link('eth0', { ...counters(6), tx: { packets: 1, bytes: 60 } })), [['eth0', 6, 0, true]]],
    ['another program counts the link now: from its value', sample(0, link('eth0', counters(5))), sample(1000, link('eth0', counters(8), { progId: 8 })), [['eth0', 8, 0, true]]],
    [
      'a link that appeared: no rate yet; one that went: not shown',
      sample(0, link('eth0', counters(5)), link('gone', counters(1), { ifindex: 9 })),
      sample(1000, link('eth0', counters(6)), link('veth1', counters(90))),
      [
        ['eth0', 1, 0, false],
        ['veth1', null],
      ],
    ],
    [
      'the same ifindex in two namespaces: two links',
      sample(0, link('eth0', counters(0)), link('eth0', counters(0), { netns: 'pod-1' })),
      sample(1000, link('eth0', counters(1)), link('eth0', counters(4), { netns: 'pod-1' })),
      [
        ['eth0', 4, 0, false],
        ['eth0', 1, 0, false],
      ],
    ],
  ]
  for (const [what, prev, next, want] of cases) {
    const r = linkRates(prev, next)
    t.same(r.ok ? r.value.map(brief) : r.error, want, what)
  }
  const r = linkRates(sample(0, link('eth0', counters(5, 1))), sample(2000, link('eth0', counters(15, 3))))
  t.same(r.ok && r.value[0], {
    netns: 'host',
    ifindex: 4,
    name: 'eth0',
    actions: { aborted: { packets: 0, bytes: 0 }, drop: { packets: 1, bytes: 100 }, pass: { packets: 5, bytes: 500 }, tx: { packets: 0, bytes: 0 }, redirect: { packets: 0, bytes: 0 } },
    total: { packets: 6, bytes: 600 },
    reset: false,
  }, 'bytes too, and the total over the actions')
})

t.test('linkRates: malformed samples are errors, not exceptions', async (t) => {
  const ok = sample(0, link('eth0', counters(1)))
  const bad = (traffic: unknown): SampledLink => link('eth0', traffic as ActionCounters)
  const cases: [what: string, prev: TrafficSample | null, next: TrafficSample, error: RegExp][] = [
    ['the same time', ok, sample(0, link('eth0', counters(2))), /0 ms apart/],
    ['an earlier second sample', ok, sample(-5, link('eth0', counters(2))), /-5 ms apart/],
    ['no time', ok, sample(NaN), /has no time/],
    ['a link twice', null, sample(1, link('eth0', counters(1)), link('eth0', counters(2))), /link 4 of namespace "host" twice/],
    ['a negative counter', ok, sample(1000, bad({ ...counters(1), tx: { packets: -1, bytes: 0 } })), /"eth0" has no valid tx counters/],
    ['a missing action', ok, sample(1000, bad({ pass: { packets: 1, bytes: 1 } })), /no valid aborted counters/],
    ['no counters at all', ok, sample(1000, bad(null)), /no valid aborted counters/],
    ['a malformed earlier sample', sample(0, bad({})), sample(1000), /the earlier sample/],
  ]
  for (const [what, prev, next, error] of cases) t.match(linkRates(prev, next), { ok: false, error }, what)
})

t.test('sortRates: busiest first, then bytes, links without a rate last; ties by namespace (host first) and name', async (t) => {
  const rate = (name: string, packets: number | null, bytes = 0, netns = 'host'): LinkRate => ({
    netns,
    ifindex: 1,
    name,
    actions: null,
    total: packets === null ? null : { packets, bytes },
    reset: false,
  })
  const sorted = sortRates([rate('new', null), rate('b', 0), rate('a', 0), rate('p', 0, 0, 'pod-1'), rate('c', 5, 10), rate('d', 5, 20), rate('e', 0.5), rate('h', 0, 0, 'a-pod')])
  t.same(
    sorted.map((r) => `${r.netns}/${r.name}`),
    ['host/d', 'host/c', 'host/e', 'host/a', 'host/b', 'a-pod/h', 'pod-1/p', 'host/new'],
  )
})

t.test("rateRows: a link's moving actions busiest first, a quiet link as one row of zeros, a new one without numbers", async (t) => {
  const per = (pass: number, drop: number, tx = 0): LinkRate['actions'] => ({
    ...zeroCounters(),
    pass: { packets: pass, bytes: pass * 60 },
    drop: { packets: drop, bytes: drop * 60 },
    tx: { packets: 0, bytes: tx },
  })
  const rows = rateRows([
    { netns: 'host', ifindex: 2, name: 'eth0', actions: per(3, 40), total: { packets: 43, bytes: 0 }, reset: false },
    { netns: 'host', ifindex: 3, name: 'eth1', actions: per(1, 1, 9), total: { packets: 2, bytes: 0 }, reset: false },
    { netns: 'host', ifindex: 4, name: 'eth2', actions: per(0, 0), total: { packets: 0, bytes: 0 }, reset: false },
    { netns: 'pod', ifindex: 2, name: 'eth0', actions: null, total: null, reset: false },
  ])
  t.same(
    rows.map((r) => [r.netns, r.name, r.action, r.packets, r.bytes]),
    [
      ['host', 'eth0', 'drop', 40, 2400],
      ['host', 'eth0', 'pass', 3, 180],
      ['host', 'eth1', 'drop', 1, 60], // ties: enum xdp_action order
      ['host', 'eth1', 'pass', 1, 60],
      ['host', 'eth1', 'tx', 0, 9], // bytes without packets still moved
      ['host', 'eth2', null, 0, 0],
      ['pod', 'eth0', null, null, null],
    ],
  )
})

t.test('sampleOf: the links with counters, the program they come from, and how many have none', async (t) => {
  const status = (name: string, traffic: ActionCounters | null, progId: number | null): LinkStatusJson => ({
    netns: 'host',
    ifindex: 3,
    name,
    kind: 'veth',
    entry: null,
    desiredProgId: null,
    attached: progId === null ? null : { progId, mode: 'generic', owner: 'ours' },
    state: 'attached',
    lastError: null,
    traffic,
  })
  const { sample: s, without } = sampleOf(42, [status('a', counters(1), 7), status('b', null, 7), status('c', null, null)])
  t.same(s, { at: 42, links: [{ netns: 'host', ifindex: 3, name: 'a', progId: 7, traffic: counters(1) }] })
  t.equal(without, 2)
})
