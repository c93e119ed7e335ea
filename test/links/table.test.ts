import t from 'tap'
import { LinkTable } from '../../src/links/table.js'
import type { LinkEvent } from '../../src/links/diff.js'
import { PartialDumpError } from '../../src/rtnl/errors.js'
import type { LinkState } from '../../src/rtnl/link.js'
import { link, FakeSource } from '../helpers/link-state.js'

const show = (e: LinkEvent): string =>
  e.event === 'rename' ? `rename ${e.ifindex} ${e.oldName}->${e.name}` : `${e.event} ${e.ifindex} ${e.name}`

function record(table: LinkTable): string[] {
  const out: string[] = []
  table.on('event', (e) => out.push(show(e)))
  return out
}

const names = (table: LinkTable): string[] => table.links().map((l) => `${l.ifindex}:${l.name}`)

t.test('start merges the dump with notifications that arrived during it', async (t) => {
  const src = new FakeSource()
  src.set(link(1, 'lo', { kind: null }), false)
  src.set(link(2, 'a'), false)
  src.set(link(3, 'b'), false)
  // while the dump is in flight: a is renamed, b deleted, c created (the snapshot already taken misses all three)
  src.duringDump.push(() => {
    src.set(link(2, 'a2'))
    src.del(3)
    src.set(link(4, 'c'))
  })
  const table = new LinkTable(src)
  const events = record(table)
  await table.start()
  t.same(names(table), ['1:lo', '2:a2', '4:c'])
  // the start-up events describe the merged state only: no add of b, no rename of a
  t.same(events, ['add 1 lo', 'add 2 a2', 'add 4 c'])
})

t.test('a link storm keeps the dump inconsistent: what it returns is used at once, its gaps wait for a full dump', async (t) => {
  // The first two attempts come back inconsistent; the walk skipped link 3, which did not change (so no
  // notification will ever tell of it).
  class StormSource extends FakeSource {
    storms = 2
    override async dumpLinks(): Promise<LinkState[]> {
      const all = await super.dumpLinks()
      if (this.storms-- > 0) throw new PartialDumpError(all.filter((l) => l.ifindex !== 3), new Error('netlink dump still inconsistent'))
      return all
    }
  }
  const src = new StormSource()
  for (const [i, n] of [[1, 'lo'], [2, 'a'], [3, 'b'], [5, 'gone']] as const) src.set(link(i, n), false)
  src.duringDump.push(() => {
    src.set(link(4, 'c')) // created during the first attempt: its notification is buffered
    src.del(5) // deleted during it: so is this one
  })
  const table = new LinkTable(src)
  const events = record(table)
  const errors: string[] = []
  table.on('error', (e) => errors.push(e.message))
  let started = false
  const start = table.start().then(() => (started = true))
  while (!events.includes('add 4 c')) await new Promise((r) => setImmediate(r))
  t.notOk(started, 'before start-up is over')
  t.same(names(table), ['1:lo', '2:a', '4:c'], 'the links the inconsistent dump did return, and the notifications of its time')
  t.same(events, ['add 1 lo', 'add 2 a', 'add 4 c'], 'link 5 came and went within the attempt: never added')
  await start
  t.same(names(table), ['1:lo', '2:a', '3:b', '4:c'], 'the full dump adds the link the walk had skipped')
  t.same(events.slice(3), ['add 3 b'])
  t.match(errors, [/^link dump failed \(1x\), retrying: netlink dump still inconsistent; meanwhile using the 3 links it did return$/])
  t.equal(src.dumps, 3)
})

t.test('healthy(): dumps failing outright 50 times in a row make it false; dumps only inconsistent do not', async (t) => {
  for (const partial of [false, true, 'empty'] as const) {
    class Failing extends FakeSource {
      fail = 60
      override async dumpLinks(): Promise<LinkState[]> {
        const all = await super.dumpLinks()
        if (this.fail-- <= 0) return all
        if (!partial) throw new Error('EIO')
        throw new PartialDumpError(partial === 'empty' ? [] : all, new Error('inconsistent'))
      }
    }
    const src = new Failing()
    src.set(link(1, 'lo'), false)
    const table = new LinkTable(src, { retryDelay: () => 0 })
    table.on('error', () => {})
    let worst = true
    const start = table.start()
    while (src.fail > 0) {
      worst &&= table.healthy()
      await new Promise((r) => setImmediate(r))
    }
    await start
    t.equal(worst, partial === true, partial === true ? 'inconsistent dumps: healthy throughout' : `${partial ? 'dumps returning nothing' : 'failed dumps'}: unhealthy before the 60th`)
    t.ok(table.healthy(), 'healthy again once a dump got through')
  }
})

t.test('start(): one dump for every caller; a dump failing on a closed source is not retried', async (t) => {
  let dumps = 0
  class Counting extends FakeSource {
    override async dumpLinks(): Promise<LinkState[]> {
      dumps++
      return super.dumpLinks()
    }
  }
  const src = new Counting()
  src.set(link(1, 'lo'), false)
  const table = new LinkTable(src)
  const first = table.start()
  t.equal(table.start(), first, 'a second start() is the first one (the daemon starts the dump early, its unit waits for it)')
  await first
  t.equal(dumps, 1)

  // Closed under the dump (a stop during start-up): start() rejects, and no retry timer keeps the process alive.
  class Closing extends FakeSource {
    connected = true
    calls = 0
    override async dumpLinks(): Promise<LinkState[]> {
      this.calls++
      this.connected = false
      throw new Error('netlink socket closed')
    }
  }
  const closing = new Closing()
  const t2 = new LinkTable(closing, { retryDelay: () => 0 })
  const errors: Error[] = []
  t2.on('error', (e) => errors.push(e))
  await t.rejects(t2.start(), /netlink socket closed/)
  await new Promise((r) => setTimeout(r, 20))
  t.equal(closing.calls, 1, 'dumped once')
  t.same(errors, [], 'no "retrying" error')
})

t.test('a notification older than the snapshot is followed by the newer one: last wins', async (t) => {
  const src = new FakeSource()
  src.set(link(2, 'a', { operState: 'up' }), false)
  const table = new LinkTable(src)
  src.duringDump.push(() => {
    // both notifications queued during the dump; the second is the state the dump would have seen
    src.emit('link', { type: 'new', link: link(2, 'a', { operState: 'down' }) })
    src.emit('link', { type: 'new', link: link(2, 'a', { operState: 'up' }) })
  })
  await table.start()
  t.equal(table.get(2)?.operState, 'up')
})

t.test('live notifications: add, change, rename, delete, re-create under the same name', async (t) => {
  const src = new FakeSource()
  const table = new LinkTable(src)
  await table.start()
  const events = record(table)
  const changes: string[][] = []
  table.on('change', (e) => changes.push(e.changed))
  src.set(link(7, 'v0'))
  src.set(link(7, 'v0', { operState: 'up', running: true }))
  src.set(link(7, 'v1', { operState: 'up', running: true }))
  src.del(7)
  src.set(link(8, 'v1'))
  // a late RTM_DELLINK for an index already gone (duplicate) changes nothing
  src.emit('link', { type: 'del', link: link(7, 'v1') })
  t.same(events, ['add 7 v0', 'change 7 v0', 'rename 7 v0->v1', 'remove 7 v1', 'add 8 v1'])
  t.same(changes, [['running', 'operState']])
  t.same(names(table), ['8:v1'])
})

t.test('overrun: re-dump and report what changed while notifications were lost', async (t) => {
  const src = new FakeSource()
  src.set(link(2, 'keep'), false)
  src.set(link(3, 'gone'), false)
  src.set(link(4, 'old'), false)
  const table = new LinkTable(src)
  await table.start()
  const events = record(table)
  // lost notifications: 3 deleted, 4 renamed, 5 created, 2 came up
  src.del(3, false)
  src.set(link(4, 'new'), false)
  src.set(link(5, 'born'), false)
  src.set(link(2, 'keep', { operState: 'up' }), false)
  const resynced = new Promise((r) => table.once('resync', r))
  src.emit('overrun')
  t.match(await resynced, { reason: 'overrun', events: 4, links: 3 })
  t.same(events, ['remove 3 gone', 'change 2 keep', 'rename 4 old->new', 'add 5 born'])
  t.same(names(table), ['2:keep', '4:new', '5:born'])
})

t.test('an overrun during a resync runs it again', async (t) => {
  const src = new FakeSource()
  src.set(link(2, 'a'), false)
  const table = new LinkTable(src)
  await table.start()
  src.duringDump.push(() => {
    src.set(link(6, 'lost'), false)
    src.emit('overrun')
  })
  const resynced = new Promise((r) => table.once('resync', r))
  src.emit('overrun')
  await resynced
  t.equal(src.dumps, 3, 'start, the interrupted resync, and its redo')
  t.same(names(table), ['2:a', '6:lost'])
})

t.test('notifications before start are ignored (the dump covers them)', async (t) => {
  const src = new FakeSource()
  const table = new LinkTable(src)
  const events = record(table)
  src.set(link(9, 'early'))
  await table.start()
  t.same(events, ['add 9 early'])
})
