/**
 * inspectPinnedMap over pinned kernel maps (bpf_map_create, no program): what the kernel says of each, counts walked
 * up to the limit, arrays counted by max_entries, a declared map compared with its declaration, and the maps it
 * cannot count or open reported, not thrown.
 */
import { join } from 'node:path'
import t from 'tap'
import { mapCreate, mapInfo, mapUpdateElem, objPin } from '../../src/ffi/bpf-fd.js'
import type { DeclaredMap } from '../../src/maps/contents.js'
import { inspectPinnedMap } from '../../src/maps/inspect.js'
import { BPF_F_NO_PREALLOC, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LPM_TRIE, BPF_MAP_TYPE_QUEUE } from '../../src/maps/map-types.js'
import { tempBpffs } from '../helpers/bpf.js'
import { isRoot, needsRoot } from '../helpers/netns.js'

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n)
  return b
}
/** 10.0.i.0/24 as an IPv4 LPM key. */
const prefix = (i: number): Buffer => Buffer.concat([u32(24), Buffer.from([10, 0, i, 0])])

function declared(pin: string, keys: Buffer[], valueSize: number): DeclaredMap {
  const keySize = keys[0]?.length ?? 4
  const contents = { keySize, valueSize, count: keys.length, keys: Buffer.concat(keys), values: Buffer.alloc(keys.length * valueSize, 1) }
  return { pin, map: 'm', entries: ['block'], count: keys.length, keySize, valueSize, contents }
}

t.test('kernel', { skip: needsRoot }, async (t) => {
  const bpffs = tempBpffs(t)
  const pinned = (type: number, name: string, keySize: number, valueSize: number, max: number, flags = 0) => {
    const fd = mapCreate(type, name, keySize, valueSize, max, flags)
    t.teardown(() => fd.close())
    const pin = join(bpffs, name)
    objPin(fd, pin)
    return { fd, pin, id: mapInfo(fd).id }
  }

  const hash = pinned(BPF_MAP_TYPE_HASH, 'xdpl_h', 4, 8, 100)
  for (let i = 0; i < 7; i++) mapUpdateElem(hash.fd, u32(i), Buffer.alloc(8))
  t.same(
    inspectPinnedMap(hash.pin, undefined, 1000),
    { ok: true, value: { info: { id: hash.id, type: BPF_MAP_TYPE_HASH, name: 'xdpl_h', keySize: 4, valueSize: 8, maxEntries: 100, flags: 0 }, count: 7, countExact: true } },
    'a hash map: what the kernel says, and its keys counted',
  )
  t.match(inspectPinnedMap(hash.pin, undefined, 5), { ok: true, value: { count: 5, countExact: false } }, 'past the limit: a lower bound')
  t.match(inspectPinnedMap(hash.pin, undefined, 7), { ok: true, value: { count: 7, countExact: true } }, 'exactly the limit: exact')

  const array = pinned(BPF_MAP_TYPE_ARRAY, 'xdpl_a', 4, 4, 300)
  t.match(inspectPinnedMap(array.pin, undefined, 10), { ok: true, value: { count: 300, countExact: true } }, 'an array: max_entries, whatever the limit')

  const lpm = pinned(BPF_MAP_TYPE_LPM_TRIE, 'xdpl_l', 8, 1, 100, BPF_F_NO_PREALLOC)
  const keys = [0, 1, 2].map(prefix)
  for (const k of keys) mapUpdateElem(lpm.fd, k, Buffer.from([1]))
  t.match(
    inspectPinnedMap(lpm.pin, declared(lpm.pin, keys, 1), 1000),
    { ok: true, value: { count: 3, countExact: true, comparison: { ok: true, value: { complete: true, read: 3, missing: 0, changed: 0, extra: 0 } } } },
    'a declared map that holds its declaration',
  )
  t.match(
    inspectPinnedMap(lpm.pin, declared(lpm.pin, keys, 1), 2),
    { ok: true, value: { count: 3, countExact: true, comparison: { ok: true, value: { complete: true, extra: 0 } } } },
    'a declared map is read up to its declared count at least, whatever the limit',
  )
  mapUpdateElem(lpm.fd, prefix(9), Buffer.from([1]))
  mapUpdateElem(lpm.fd, prefix(1), Buffer.from([2]))
  t.match(
    inspectPinnedMap(lpm.pin, declared(lpm.pin, keys, 1), 1000),
    { ok: true, value: { count: 4, comparison: { ok: true, value: { complete: true, missing: 0, changed: 1, extra: 1 } } } },
    'one changed, one added by someone else',
  )
  t.match(
    inspectPinnedMap(lpm.pin, declared(lpm.pin, keys, 1), 2),
    { ok: true, value: { count: 4, countExact: false, comparison: { ok: true, value: { complete: false, read: 4 } } } },
    'holding more than the limit and the declaration: read no further, not compared, the count a lower bound',
  )
  t.match(
    inspectPinnedMap(lpm.pin, { ...declared(lpm.pin, keys, 1), valueSize: 2 }, 1000),
    { ok: true, value: { count: 4, countExact: true, comparison: { ok: false, error: "the map's key and value are 8 and 1 bytes, the declaration's 8 and 2" } } },
    'a declaration of other sizes: not compared, still counted',
  )

  const queue = pinned(BPF_MAP_TYPE_QUEUE, 'xdpl_q', 0, 4, 8)
  t.match(inspectPinnedMap(queue.pin, undefined, 1000), { ok: true, value: { count: null, countProblem: /^cannot walk its keys: / } }, 'no keys to walk: said so')
  t.match(inspectPinnedMap(join(bpffs, 'gone'), undefined, 1000), { ok: false, error: /^cannot open .*gone: .*ENOENT/ }, 'no pin: said so')
})

t.test('without root nothing here runs', { skip: isRoot ? 'root' : false }, async (t) => {
  t.pass('skipped: needs root')
})
