/**
 * NetnsUnit without root: two fake kernels stand for two network namespaces (test/helpers/nltest.ts), each with a
 * link of the same ifindex and name. Each unit plans its own namespace's links with what it was handed, and an
 * overrun in one namespace re-dumps that namespace only.
 */
import { pino } from 'pino'
import t from 'tap'
import { NetnsUnit } from '../../src/netns/unit.js'
import type { Desire, Target } from '../../src/reconcile/desire.js'
import type { ReconcilerEvent } from '../../src/reconcile/reconciler.js'
import { RtnlClient } from '../../src/rtnl/client.js'
import { FakeRtnl } from '../helpers/nltest.js'
import { waitFor } from '../helpers/netns.js'

/** Every veth gets `progId` (fd 100 + id), generic mode; our programs are `ours`. */
function desire(progId: number, ours: number[]): Desire {
  const target: Target = { entry: `p${progId}`, progId, fd: 100 + progId, mode: 'generic', replaceForeign: false }
  return {
    targetFor: (l) => (l.kind === 'veth' ? target : null),
    isOurs: (id) => ours.includes(id),
    fdForProgId: (id) => ({ fd: 100 + id, release() {} }),
  }
}

function unit(t: { teardown(fn: () => void): void }, progId: number) {
  const kernel = new FakeRtnl({ programs: { [100 + progId]: progId } })
  kernel.addVeth('va', 'vb')
  const events: ReconcilerEvent[] = []
  const u = new NetnsUnit({
    client: new RtnlClient({ open: kernel.open }),
    log: pino({ level: 'silent' }),
    desire: desire(progId, [progId]),
    settleMs: 1,
    maxSettleMs: 10,
    replaceSupported: true,
    report: (e) => void events.push(e),
  })
  t.teardown(() => u.close())
  return { kernel, u, events }
}

const attached = (events: ReconcilerEvent[]) =>
  events.flatMap((e) => (e.kind === 'attached' ? [e.link.name] : []))

t.test('two namespaces, the same ifindex and name: each unit attaches its own program in its own namespace', async (t) => {
  const a = unit(t, 7)
  const b = unit(t, 8)
  t.equal(a.kernel.indexOf('va'), b.kernel.indexOf('va'), 'the same ifindex in both')
  await Promise.all([a.u.start(), b.u.start()])
  t.match([a.kernel.link(a.kernel.indexOf('va'))?.xdp, b.kernel.link(b.kernel.indexOf('va'))?.xdp], [
    { mode: 'generic', progId: 7 },
    { mode: 'generic', progId: 8 },
  ])
  t.same(attached(a.events).sort(), ['va', 'vb'])
  t.same(attached(b.events).sort(), ['va', 'vb'])
  t.ok(a.u.alive() && b.u.alive())
})

t.test('an overrun re-dumps and replans only the namespace it happened in', async (t) => {
  const a = unit(t, 7)
  const b = unit(t, 8)
  await Promise.all([a.u.start(), b.u.start()])
  const resyncs = [a.u.table.stats.resyncs, b.u.table.stats.resyncs]
  // Lost meanwhile: a link that appeared in A while its notifications overflowed.
  a.kernel.overrun(() => a.kernel.addVeth('vc', 'vd'))
  await waitFor(() => a.kernel.link(a.kernel.indexOf('vc'))?.xdp?.progId === 7, 'vc attached after the re-dump')
  t.equal(a.u.table.stats.resyncs, resyncs[0]! + 1, 'A re-dumped')
  t.equal(b.u.table.stats.resyncs, resyncs[1], 'B did not')
  t.equal(b.u.table.size, 3, 'B still sees lo, va, vb')
})

t.test('close() stops the unit: its connections close and it is no longer alive', async (t) => {
  const a = unit(t, 7)
  await a.u.start()
  a.u.close()
  t.notOk(a.u.alive(), 'not alive')
  t.notOk(a.u.client.connected, 'its connections are closed')
})
