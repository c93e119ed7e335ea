/**
 * The map batch calls against the kernel: which map types have them (the answer src/maps/sync.ts learns per type),
 * the lookup walk's token (a u32 bucket index for a hash map, the last key for the generic walk), ENOENT at the end
 * with the last elements counted, ENOSPC for a bucket larger than the batch, and a write batch's `count` when it
 * was refused before any element.
 */
import t from 'tap'
import { BPF_F_NO_PREALLOC, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LPM_TRIE, BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_LRU_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_PERCPU_HASH } from '../../src/maps/map-types.js'
import {
  mapCreate,
  mapDeleteBatch,
  mapLookupBatch,
  mapUpdateBatch,
  mapUpdateElem,
  numPossibleCpus,
} from '../../src/ffi/bpf-fd.js'
import { ENOTSUPP, ERRNO } from '../../src/ffi/errno.js'
import { needsRoot } from '../helpers/netns.js'

const u32 = (n: number, size = 4): Buffer => {
  const b = Buffer.alloc(size)
  b.writeUInt32LE(n)
  return b
}

t.test('kernel', { skip: needsRoot }, async (t) => {
  t.test('which map types have which batch commands (Linux 6.18: all but an array delete)', async (t) => {
    const cpus = numPossibleCpus()
    const types: [string, number, number, number, boolean][] = [
      ['hash', BPF_MAP_TYPE_HASH, 4, 0, false],
      ['array', BPF_MAP_TYPE_ARRAY, 4, 0, false],
      ['percpu_hash', BPF_MAP_TYPE_PERCPU_HASH, 4, 0, true],
      ['percpu_array', BPF_MAP_TYPE_PERCPU_ARRAY, 4, 0, true],
      ['lru_hash', BPF_MAP_TYPE_LRU_HASH, 4, 0, false],
      ['lru_percpu_hash', BPF_MAP_TYPE_LRU_PERCPU_HASH, 4, 0, true],
      // struct bpf_lpm_trie_key: u32 prefixlen, then 4 bytes of IPv4 address (10.0.0.0/8).
      ['lpm_trie', BPF_MAP_TYPE_LPM_TRIE, 8, BPF_F_NO_PREALLOC, false],
    ]
    for (const [name, type, keySize, flags, perCpu] of types) {
      const fd = mapCreate(type, `xdpl_${name}`, keySize, 4, 8, flags)
      t.teardown(() => fd.close())
      const key = keySize === 8 ? Buffer.from('080000000a000000', 'hex') : u32(1)
      const vs = perCpu ? 8 * cpus : 4
      t.same(mapUpdateBatch(fd, key, Buffer.alloc(vs, 1), 1), { count: 1, error: null }, `${name}: update batch`)
      const l = mapLookupBatch(fd, null, Buffer.alloc(Math.max(4, keySize)), Buffer.alloc(8 * keySize), Buffer.alloc(8 * vs), 8)
      t.equal(l.count, type === BPF_MAP_TYPE_ARRAY || type === BPF_MAP_TYPE_PERCPU_ARRAY ? 8 : 1, `${name}: lookup batch`)
      const d = mapDeleteBatch(fd, key, 1)
      if (type === BPF_MAP_TYPE_ARRAY || type === BPF_MAP_TYPE_PERCPU_ARRAY) {
        // kernel/bpf/arraymap.c has no map_delete_batch: BPF_DO_BATCH answers ENOTSUPP, count never written back.
        t.equal(d.error?.errno, ENOTSUPP, `${name}: no delete batch (ENOTSUPP, 524)`)
        t.equal(d.error?.code, 'ENOTSUPP')
        t.equal(d.count, 0, `${name}: the refused batch did nothing`)
      } else {
        t.same(d, { count: 1, error: null }, `${name}: delete batch`)
      }
    }
  })

  t.test('the generic walk (an LPM trie): the token is the last key read; ENOENT ends it with the rest counted', async (t) => {
    const fd = mapCreate(BPF_MAP_TYPE_LPM_TRIE, 'xdpl_lpm_walk', 8, 4, 8, BPF_F_NO_PREALLOC)
    t.teardown(() => fd.close())
    const keys = ['180000000a000100', '180000000a000200', '180000000a000300'].map((h) => Buffer.from(h, 'hex'))
    for (const [i, k] of keys.entries()) mapUpdateElem(fd, k, u32(i))
    const token = Buffer.alloc(8)
    const k1 = Buffer.alloc(16)
    const a = mapLookupBatch(fd, null, token, k1, Buffer.alloc(8), 2)
    t.same(a, { count: 2, error: null }, 'two of three')
    t.same(token, k1.subarray(8, 16), 'out_batch is the second key')
    const k2 = Buffer.alloc(16)
    const b = mapLookupBatch(fd, token, token, k2, Buffer.alloc(8), 2)
    t.equal(b.count, 1, 'the last one')
    t.equal(b.error?.errno, ERRNO.ENOENT, 'and ENOENT: the end')
    const read = [k1.subarray(0, 8), k1.subarray(8, 16), k2.subarray(0, 8)].map((k) => k.toString('hex')).sort()
    t.same(read, keys.map((k) => k.toString('hex')).sort(), 'every key once')
  })

  t.test('a hash map: the token is a u32 bucket index; a bucket larger than the batch is ENOSPC', async (t) => {
    // Keys of 8 bytes: a token the kernel writes as a key would overwrite the last 4 bytes too.
    const fd = mapCreate(BPF_MAP_TYPE_HASH, 'xdpl_hash_walk', 8, 4, 64, 0)
    t.teardown(() => fd.close())
    // 64 keys in 64 buckets (n_buckets = roundup_pow_of_two(max_entries)): some bucket holds two.
    for (let i = 0; i < 64; i++) mapUpdateElem(fd, u32(i, 8), u32(i))
    const token = Buffer.alloc(8, 0xff)
    const seen = new Set<string>()
    let enospc = 0
    let count = 1
    let started = false
    for (let calls = 0; calls < 1000; calls++) {
      const keys = Buffer.alloc(8 * count)
      const a = mapLookupBatch(fd, started ? token : null, token, keys, Buffer.alloc(4 * count), count)
      if (a.error?.errno === ERRNO.ENOSPC) {
        t.equal(a.count, 0, 'ENOSPC: nothing read')
        enospc++
        count *= 2
        continue
      }
      t.equal(token.readUInt32LE(4), 0xffffffff, 'the token is 4 bytes')
      for (let i = 0; i < a.count; i++) seen.add(keys.toString('hex', 8 * i, 8 * i + 8))
      if (a.error) {
        t.equal(a.error.errno, ERRNO.ENOENT, 'the end is ENOENT')
        break
      }
      started = true
    }
    t.ok(enospc > 0, `a bucket did not fit (${enospc} ENOSPC)`)
    t.equal(seen.size, 64, 'every key read')
  })
})
