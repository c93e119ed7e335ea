/**
 * syncMap against the kernel's maps (made with bpf_map_create, no program needed): each kind filled from empty,
 * synced again with nothing to do, changed by 1%, shrunk, emptied; the contents checked with `bpftool map dump`,
 * the work with the report, and, in a second process under strace, the bpf() commands themselves: a restart over a
 * map that holds its declaration only reads, a 1% change writes only the changed entries, every update comes before
 * any delete.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { BPF_F_NO_PREALLOC, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LPM_TRIE, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_QUEUE } from '../../src/maps/map-types.js'
import {
  mapCreate,
  mapDeleteElem,
  mapInfo,
  mapUpdateElem,
  numPossibleCpus,
  objPin,
} from '../../src/ffi/bpf-fd.js'
import { ERRNO } from '../../src/ffi/errno.js'
import type { Fd } from '../../src/ffi/fd.js'
import { compareMap, syncMap, type SyncReport, type SyncSpec } from '../../src/maps/sync.js'
import { bpftool, bpftoolJson, nodeCommand, ROOT, tempBpffs } from '../helpers/bpf.js'
import { isRoot, needsRoot } from '../helpers/netns.js'

type Declared = Map<string, Buffer>

interface Kind {
  spec: SyncSpec
  flags: number
  /** Whether a value is per CPU. */
  perCpu: boolean
  array: boolean
  /** The i-th key of the declarations, hex. */
  key(i: number): string
}

const u32 = (n: number): string => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n)
  return b.toString('hex')
}
/** An IPv4 struct bpf_lpm_trie_key, canonical (no bits past prefixlen): even i a /24, odd i a /32. */
const lpmKey = (i: number): string => {
  const b = Buffer.alloc(8)
  b.writeUInt32LE(i % 2 ? 32 : 24)
  b.writeUInt32BE(i % 2 ? (0xc0a80000 | i) >>> 0 : (0x0a000000 | (i << 8)) >>> 0, 4)
  return b.toString('hex')
}

const MAX = 1000
const arrayKey = (i: number): string => u32(((i * 2) % MAX) + Math.floor((i * 2) / MAX))
const KINDS: Kind[] = [
  { spec: { name: 'xdpl_hash', type: BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 8, maxEntries: MAX }, flags: 0, perCpu: false, array: false, key: (i) => u32(i * 7 + 3) },
  // Every other index declared, the others zero: the even ones first, then the odd ones.
  { spec: { name: 'xdpl_array', type: BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 8, maxEntries: MAX }, flags: 0, perCpu: false, array: true, key: arrayKey },
  // value_size 4 and 12: per CPU, slots of 8 and 16 bytes (round_up(value_size, 8)).
  { spec: { name: 'xdpl_pc_hash', type: BPF_MAP_TYPE_PERCPU_HASH, keySize: 4, valueSize: 4, maxEntries: MAX }, flags: 0, perCpu: true, array: false, key: (i) => u32(i * 7 + 3) },
  { spec: { name: 'xdpl_pc_array', type: BPF_MAP_TYPE_PERCPU_ARRAY, keySize: 4, valueSize: 12, maxEntries: MAX }, flags: 0, perCpu: true, array: true, key: arrayKey },
  { spec: { name: 'xdpl_lpm', type: BPF_MAP_TYPE_LPM_TRIE, keySize: 8, valueSize: 4, maxEntries: MAX }, flags: BPF_F_NO_PREALLOC, perCpu: false, array: false, key: lpmKey },
]

/** A value of `size` bytes for key i in generation `gen`, never all zero (zero is what an undeclared index holds). */
function value(size: number, i: number, gen: number): Buffer {
  return Buffer.from(Array.from({ length: size }, (_, j) => ((i * 31 + gen * 7 + j) % 255) + 1))
}

function declare(kind: Kind, indices: Iterable<number>, gen = 0, over: Record<number, number> = {}): Declared {
  return new Map([...indices].map((i) => [kind.key(i), value(kind.spec.valueSize, i, over[i] ?? gen)]))
}
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i)

function create(t: Test, kind: Kind): Fd {
  const { type, name, keySize, valueSize, maxEntries } = kind.spec
  const fd = mapCreate(type, name, keySize, valueSize, maxEntries, kind.flags)
  t.teardown(() => fd.close())
  return fd
}

interface DumpEntry {
  key: string[]
  value?: string[]
  values?: { cpu: number; value: string[] }[]
}
const hex = (bytes: string[]): string => bytes.map((b) => b.slice(2)).join('')

/**
 * What bpftool says the map holds, as {key: value} in hex (per-CPU: the CPUs' values joined by '/'), against the
 * declaration (an array: every undeclared index zero).
 */
function checkDump(t: Test, fd: Fd, kind: Kind, declared: Declared, what: string): void {
  const dump = bpftoolJson<DumpEntry[]>('map', 'dump', 'id', String(mapInfo(fd).id))
  const got = Object.fromEntries(
    dump.map((e) => [hex(e.key), e.values ? e.values.map((v) => hex(v.value)).join('/') : hex(e.value!)]),
  )
  const cpus = kind.perCpu ? numPossibleCpus() : 1
  const want: Record<string, string> = {}
  if (kind.array) for (let i = 0; i < kind.spec.maxEntries; i++) want[u32(i)] = Array(cpus).fill('00'.repeat(kind.spec.valueSize)).join('/')
  for (const [k, v] of declared) want[k] = Array(cpus).fill(v.toString('hex')).join('/')
  t.same(got, want, `${what}: bpftool map dump shows the declaration`)
}

function sync(t: Test, fd: Fd, kind: Kind, declared: Declared): SyncReport {
  const r = syncMap(fd, kind.spec, declared)
  if (!r.ok) throw new Error(r.error.message)
  return r.value
}

/** A map of `kind` with `maxEntries`, synced to hold `declared`; the kind with that size. */
function filled(t: Test, of: Kind, maxEntries: number, declared: Declared): { fd: Fd; kind: Kind } {
  const kind = { ...of, spec: { ...of.spec, maxEntries } }
  const fd = create(t, kind)
  sync(t, fd, kind, declared)
  return { fd, kind }
}

const writes = (r: Pick<SyncReport, 'calls'>): number => r.calls.update + r.calls.updateBatch + r.calls.delete + r.calls.deleteBatch

t.test('kernel', { skip: needsRoot }, async (t) => {
  const N = 500
  for (const kind of KINDS) {
    t.test(kind.spec.name, async (t) => {
      const fd = create(t, kind)
      const all = range(0, N)

      let declared = declare(kind, all)
      let r = sync(t, fd, kind, declared)
      t.match(r, { added: N, updated: 0, removed: 0, unchanged: 0 }, 'into an empty map: every entry added')
      t.match(r.calls, { updateBatch: 1, update: 0, deleteBatch: 0, delete: 0 }, 'in one update batch')
      checkDump(t, fd, kind, declared, 'added')

      r = sync(t, fd, kind, declared)
      t.match(r, { added: 0, updated: 0, removed: 0, unchanged: N }, 'again: nothing to do')
      t.equal(writes(r), 0, 'nothing written')
      t.equal(r.calls.getNextKey + r.calls.lookup, 0, 'read in batches')

      // 1%: every 100th entry gets a new value.
      const changed = all.filter((i) => i % 100 === 0)
      declared = declare(kind, all, 0, Object.fromEntries(changed.map((i) => [i, 1])))
      r = sync(t, fd, kind, declared)
      t.match(r, { added: 0, updated: changed.length, removed: 0, unchanged: N - changed.length }, '1% changed')
      t.match(r.calls, { updateBatch: 1, update: 0, deleteBatch: 0, delete: 0 })
      checkDump(t, fd, kind, declared, '1% changed')

      // The last 10% go, 10 new ones come.
      const kept = range(0, N - N / 10)
      declared = declare(kind, [...kept, ...range(N, N + 10)], 0, Object.fromEntries(changed.map((i) => [i, 1])))
      r = sync(t, fd, kind, declared)
      t.match(r, { added: 10, updated: 0, removed: N / 10, unchanged: kept.length }, '10% removed, 10 added')
      // An array's removals are zero writes, in the same batch as the additions.
      t.match(r.calls, kind.array ? { updateBatch: 1, deleteBatch: 0 } : { updateBatch: 1, deleteBatch: 1 })
      checkDump(t, fd, kind, declared, 'removed')

      r = sync(t, fd, kind, new Map())
      t.match(r, { added: 0, updated: 0, removed: declared.size, unchanged: 0 }, 'an empty declaration empties it')
      checkDump(t, fd, kind, new Map(), 'emptied')
    })

    t.test(`${kind.spec.name}, one element at a time`, async (t) => {
      const fd = create(t, kind)
      const opts = { batch: false }
      const all = range(0, N)
      const keys = kind.array ? kind.spec.maxEntries : N
      let declared = declare(kind, all)
      let r = syncMap(fd, kind.spec, declared, opts)
      t.match(r, { ok: true, value: { added: N, calls: { update: N, updateBatch: 0, lookupBatch: 0 } } }, 'added, one update each')
      checkDump(t, fd, kind, declared, 'added')

      r = syncMap(fd, kind.spec, declared, opts)
      // get_next_key once per key and once more for ENOENT; an array has every index.
      t.match(r, { ok: true, value: { unchanged: N, calls: { getNextKey: keys + 1, lookup: keys } } }, 'again: reads only')
      if (r.ok) t.equal(writes(r.value), 0, 'nothing written')

      const changed = all.filter((i) => i % 100 === 0)
      declared = declare(kind, all.slice(0, N - 5), 0, Object.fromEntries(changed.map((i) => [i, 1])))
      r = syncMap(fd, kind.spec, declared, opts)
      t.match(r, { ok: true, value: { updated: changed.length, removed: 5 } })
      // An array's removals are zero writes.
      const want = kind.array ? { update: changed.length + 5, delete: 0 } : { update: changed.length, delete: 5 }
      t.match(r, { ok: true, value: { calls: { ...want, updateBatch: 0, deleteBatch: 0 } } }, 'one call per entry changed')
      checkDump(t, fd, kind, declared, 'changed and removed')
    })
  }

  t.test('per-CPU: an entry whose CPUs differ counts as changed, and gets the value on every CPU', async (t) => {
    const kind = KINDS.find((k) => k.spec.type === BPF_MAP_TYPE_PERCPU_HASH)!
    const cpus = numPossibleCpus()
    t.ok(cpus >= 2, `${cpus} possible CPUs`)
    const fd = create(t, kind)
    const declared = declare(kind, range(0, 3))
    sync(t, fd, kind, declared)
    const k1 = kind.key(1)
    const slots = Buffer.alloc(8 * cpus)
    for (let c = 0; c < cpus; c++) declared.get(k1)!.copy(slots, c * 8)
    slots.writeUInt32LE(0xdead, 8 * (cpus - 1))
    mapUpdateElem(fd, Buffer.from(k1, 'hex'), slots)
    const r = sync(t, fd, kind, declared)
    t.match(r, { updated: 1, unchanged: 2 })
    checkDump(t, fd, kind, declared, 'CPUs made equal')
  })

  t.test('lpm: a prefix held with bits past its length set is the declared prefix', async (t) => {
    const kind = KINDS.find((k) => k.spec.type === BPF_MAP_TYPE_LPM_TRIE)!
    const fd = create(t, kind)
    const declared = new Map([[lpmKey(0), value(4, 0, 0)]]) // 10.0.0.0/24
    const loose = Buffer.from(lpmKey(0), 'hex')
    loose[7] = 1 // 10.0.0.1/24
    mapUpdateElem(fd, loose, value(4, 0, 0))
    let r = sync(t, fd, kind, declared)
    t.match(r, { added: 0, updated: 0, removed: 0, unchanged: 1 }, 'the same value: nothing written')
    t.equal(writes(r), 0)
    declared.set(lpmKey(0), value(4, 0, 1))
    r = sync(t, fd, kind, declared)
    t.match(r, { updated: 1, removed: 0 }, 'a new value replaces the node, nothing is deleted')
    checkDump(t, fd, kind, declared, 'replaced')
  })

  t.test('a hash map full of undeclared entries: additions wait for the deletes', async (t) => {
    for (const of of KINDS.filter((k) => !k.array)) {
      const { fd, kind } = filled(t, of, 16, declare(of, range(0, 16)))
      const declared = declare(kind, range(16, 32))
      const r = syncMap(fd, kind.spec, declared)
      t.ok(r.ok, `${kind.spec.name}: ${r.ok ? 'synced' : r.error.message}`)
      if (r.ok) {
        t.match(r.value, { added: 16, removed: 16 }, `${kind.spec.name}: every one added after the deletes`)
        // The first addition finds no room: one failed batch, the deletes, one batch of all the additions.
        t.match(r.value.calls, { updateBatch: 2, deleteBatch: 1, update: 0, delete: 0 }, `${kind.spec.name}: no call per entry`)
      }
      checkDump(t, fd, kind, declared, kind.spec.name)
    }
  })

  t.test('more declared than max_entries: refused before any write', async (t) => {
    const before = declare(KINDS[0]!, range(0, 4))
    const { fd, kind } = filled(t, KINDS[0]!, 8, before)
    const r = syncMap(fd, kind.spec, declare(kind, range(0, 9)))
    t.match(r, { ok: false, error: { map: 'xdpl_hash', op: 'plan', message: 'map xdpl_hash: declares 9 entries; the map holds at most 8 (max_entries)' } })
    if (!r.ok) t.equal(writes(r.error.done), 0, 'nothing written')
    checkDump(t, fd, kind, before, 'as it was')
  })

  t.test('a write the kernel refuses names the map, the key and the errno', async (t) => {
    const { fd, kind } = filled(t, KINDS[0]!, 8, declare(KINDS[0]!, range(0, 2)))
    // BPF_MAP_FREEZE: the syscall side may no longer write (kernel/bpf/syscall.c, map_update_elem: EPERM).
    bpftool('map', 'freeze', 'id', String(mapInfo(fd).id))
    const r = syncMap(fd, kind.spec, declare(kind, range(0, 2), 1))
    t.match(r, { ok: false, error: { map: 'xdpl_hash', op: 'update', key: kind.key(0), errno: ERRNO.EPERM, code: 'EPERM' } })
    if (!r.ok) t.match(r.error.message, `map xdpl_hash: update of key ${kind.key(0)}: bpf_map_update_batch: EPERM`)
  })

  t.test('a map type whose contents cannot be declared', async (t) => {
    const spec = { name: 'xdpl_queue', type: BPF_MAP_TYPE_QUEUE, keySize: 0, valueSize: 4, maxEntries: 4 }
    const fd = mapCreate(spec.type, spec.name, 0, 4, 4)
    t.teardown(() => fd.close())
    t.match(syncMap(fd, spec, new Map()), { ok: false, error: { op: 'plan', message: 'map xdpl_queue: contents cannot be declared for map type 22' } })
  })

  t.test('a hash bucket larger than the batch: ENOSPC, asked again with more room', async (t) => {
    // 64 keys in 64 buckets: some bucket holds two (all apart is 64!/64^64).
    const declared = declare(KINDS[0]!, range(0, 64))
    const { fd, kind } = filled(t, KINDS[0]!, 64, declared)
    const r = syncMap(fd, kind.spec, declared, { batchCount: 1 })
    t.match(r, { ok: true, value: { unchanged: 64, added: 0, removed: 0 } }, 'every entry read')
  })
})

/** One bpf() call as strace printed it: the command, the batch's `count` asked for, the return. */
interface Traced {
  cmd: string
  count: number | null
  ret: string
}

/** Runs test/helpers/map-sync.ts under `strace -e trace=bpf`: its answer and the bpf() calls it made, in order. */
function tracedSync(t: Test, pin: string, spec: SyncSpec, declared: Declared): { report: SyncReport; calls: Traced[] } {
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-strace-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec))
  writeFileSync(join(dir, 'declared.json'), JSON.stringify(Object.fromEntries([...declared].map(([k, v]) => [k, v.toString('hex')]))))
  const [node, argv] = nodeCommand(join(ROOT, 'test/helpers/map-sync.ts'), [pin, join(dir, 'spec.json'), join(dir, 'declared.json')])
  const out = join(dir, 'strace.txt')
  const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=bpf', '-o', out, node, ...argv], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TS_NODE_TRANSPILE_ONLY: '1' },
    timeout: 60_000,
  })
  if (r.status !== 0) throw new Error(`strace node map-sync.ts exited ${r.status}:\n${r.stdout}\n${r.stderr}`)
  const answer = JSON.parse(r.stdout) as { ok: true; value: SyncReport } | { ok: false; error: { message: string } }
  if (!answer.ok) throw new Error(answer.error.message)
  const calls: Traced[] = []
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const m = /bpf\((BPF_[A-Z_]+), (.*)\) = (.*)$/.exec(line)
    if (!m) continue
    const count = /batch=\{[^}]*?count=(\d+)/.exec(m[2]!)
    calls.push({ cmd: m[1]!, count: count ? Number(count[1]) : null, ret: m[3]! })
  }
  return { report: answer.value, calls }
}

const isWrite = (c: Traced): boolean => /^BPF_MAP_(UPDATE|DELETE)_/.test(c.cmd)

t.test('under strace', { skip: needsRoot || (spawnSync('strace', ['-V']).status !== 0 ? 'no strace' : false) }, async (t) => {
  for (const of of KINDS.filter((k) => k.spec.type === BPF_MAP_TYPE_LPM_TRIE || k.spec.type === BPF_MAP_TYPE_HASH)) {
    t.test(of.spec.name, async (t) => {
      const all = range(0, MAX)
      const declared = declare(of, all)
      // Room for the additions: a full map would make them wait for the deletes.
      const { fd, kind } = filled(t, of, 2 * MAX, declared)
      const { spec } = kind
      const pin = join(tempBpffs(t), spec.name)
      objPin(fd, pin)

      // A restart over a map that already holds its declaration.
      let { report, calls } = tracedSync(t, pin, spec, declared)
      t.match(report, { unchanged: MAX, added: 0, updated: 0, removed: 0 })
      t.same(calls.filter(isWrite), [], 'a no-op sync writes nothing')
      t.same(
        calls.filter((c) => c.cmd !== 'BPF_OBJ_GET').map((c) => c.cmd),
        Array(report.calls.lookupBatch).fill('BPF_MAP_LOOKUP_BATCH'),
        `only the ${report.calls.lookupBatch} lookup batches the report counts`,
      )

      // 1% changed: one update batch of exactly those.
      const changed = all.filter((i) => i % 100 === 0)
      const next = declare(kind, all, 0, Object.fromEntries(changed.map((i) => [i, 1])))
      ;({ report, calls } = tracedSync(t, pin, spec, next))
      t.match(report, { updated: changed.length, unchanged: MAX - changed.length, added: 0, removed: 0 })
      t.same(calls.filter(isWrite), [{ cmd: 'BPF_MAP_UPDATE_BATCH', count: changed.length, ret: '0' }], 'one update batch of the 1% changed')
      checkDump(t, fd, kind, next, '1% changed')

      // 1% changed back, 1% removed, 1% new: every update before the first delete.
      const removed = all.filter((i) => i % 100 === 1)
      const last = declare(kind, [...all.filter((i) => i % 100 !== 1), ...range(MAX, MAX + removed.length)])
      ;({ report, calls } = tracedSync(t, pin, spec, last))
      t.match(report, { updated: changed.length, added: removed.length, removed: removed.length })
      t.same(
        calls.filter(isWrite),
        [
          { cmd: 'BPF_MAP_UPDATE_BATCH', count: changed.length + removed.length, ret: '0' },
          { cmd: 'BPF_MAP_DELETE_BATCH', count: removed.length, ret: '0' },
        ],
        'updates, then deletes',
      )
      checkDump(t, fd, kind, last, 'after the mixed change')
    })
  }
})

/** A value as the kernel takes it for `kind`: one CPU's `v` on every possible CPU for a per-CPU map. */
function kernelValue(kind: Kind, v: Buffer): Buffer {
  if (!kind.perCpu) return v
  const slot = Math.ceil(kind.spec.valueSize / 8) * 8
  const out = Buffer.alloc(slot * numPossibleCpus())
  for (let at = 0; at < out.length; at += slot) v.copy(out, at)
  return out
}

t.test('compareMap: how a map stands against its declaration, read and planned, nothing written', { skip: needsRoot }, async (t) => {
  const N = 50
  for (const of of KINDS) {
    t.test(of.spec.name, async (t) => {
      const declared = declare(of, range(0, N))
      const { fd, kind } = filled(t, of, MAX, declared)
      const compare = (limit?: number) => {
        const r = compareMap(fd, kind.spec, declared, limit === undefined ? {} : { limit })
        if (!r.ok) throw new Error(r.error.message)
        return r.value
      }
      let c = compare()
      t.match(c, { complete: true, read: kind.array ? MAX : N, missing: 0, changed: 0, extra: 0 }, 'holds what is declared')
      t.equal(writes(c), 0, 'nothing written')

      // One declared entry gone (an array: its index zeroed), one with another value, one not declared.
      const key = (i: number): Buffer => Buffer.from(kind.key(i), 'hex')
      if (kind.array) mapUpdateElem(fd, key(0), kernelValue(kind, Buffer.alloc(kind.spec.valueSize)))
      else mapDeleteElem(fd, key(0))
      mapUpdateElem(fd, key(1), kernelValue(kind, value(kind.spec.valueSize, 1, 9)))
      mapUpdateElem(fd, key(N), kernelValue(kind, value(kind.spec.valueSize, N, 0)))
      c = compare()
      t.match(c, { complete: true, missing: 1, changed: 1, extra: 1 }, 'one missing, one changed, one extra')
      t.match(compare(), c, 'the same again: the comparison changed nothing')

      // A limit below what the map holds: read no further, compare nothing.
      c = compare(10)
      t.match(c, { complete: false }, 'more than the limit: not compared')
      t.ok(c.read > 10, `read past the limit (${c.read}), so it knows there are more`)
      t.ok(c.read < (kind.array ? MAX : N), 'and not the whole map')
    })
  }
  t.test('a map type whose contents cannot be declared is an error, not an exception', async (t) => {
    const fd = mapCreate(BPF_MAP_TYPE_QUEUE, 'xdpl_queue', 0, 4, 8)
    t.teardown(() => fd.close())
    const r = compareMap(fd, { name: 'xdpl_queue', type: BPF_MAP_TYPE_QUEUE, keySize: 0, valueSize: 4, maxEntries: 8 }, new Map())
    t.match(r, { ok: false, error: { map: 'xdpl_queue', op: 'plan', message: /contents cannot be declared for map type 22/ } })
  })
})

t.test('without root nothing here runs', { skip: isRoot ? 'root' : false }, async (t) => {
  t.pass('skipped: needs root')
})
