/** walkKeys over the kernel's maps: every key once, bounded by a limit that tells a map of exactly that many apart. */
import t from 'tap'
import { mapCreate, mapUpdateElem } from '../../src/ffi/bpf-fd.js'
import { BPF_MAP_TYPE_HASH } from '../../src/maps/map-types.js'
import { walkKeys } from '../../src/maps/walk.js'
import { isRoot, needsRoot } from '../helpers/netns.js'

t.test('kernel', { skip: needsRoot }, async (t) => {
  const fd = mapCreate(BPF_MAP_TYPE_HASH, 'xdpl_walk', 4, 1, 64)
  t.teardown(() => fd.close())
  t.same(walkKeys(fd, 4, 64), { keys: new Map(), complete: true }, 'an empty map')
  const key = (i: number): Buffer => Buffer.from([i, 0, 0, 0])
  for (let i = 0; i < 10; i++) mapUpdateElem(fd, key(i), Buffer.from([1]))

  const all = walkKeys(fd, 4, 64)
  t.equal(all.complete, true)
  t.same([...all.keys.keys()].sort(), Array.from({ length: 10 }, (_, i) => key(i).toString('hex')).sort(), 'every key once, by hex')
  t.same([...all.keys].every(([hex, k]) => k.toString('hex') === hex), true, 'with its bytes')

  const cases: [limit: number, size: number, complete: boolean][] = [
    [10, 10, true], // exactly the limit: one more call says there are no more
    [11, 10, true],
    [9, 9, false],
    [1, 1, false],
    [0, 0, false],
  ]
  for (const [limit, size, complete] of cases) {
    const w = walkKeys(fd, 4, 64, limit)
    t.same([w.keys.size, w.complete], [size, complete], `limit ${limit}: ${size} keys, complete ${complete}`)
  }
  // max_entries bounds the steps of a walk: a map said to hold fewer stops there, as one that kept changing.
  t.same(walkKeys(fd, 4, 2).complete, false, 'steps past twice max_entries: not complete')
})

t.test('without root nothing here runs', { skip: isRoot ? 'root' : false }, async (t) => {
  t.pass('skipped: needs root')
})
