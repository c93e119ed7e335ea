/**
 * Declared map contents with real packets: xdp_blocklist on one end of a veth pair, the sender in another namespace
 * with addresses inside and outside the declared prefixes (IPv4 and IPv6). A reload that adds or removes a prefix
 * changes the map in place (the same program, its pinned maps), and a sender inside an unchanged prefix runs
 * throughout the reload and never gets through; a list file changed on disk applies without a SIGHUP; a restart
 * over the pinned maps writes no entry (counted with strace).
 */
import t from 'tap'
import type { Test } from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { chmodSync, mkdirSync, readFileSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeNetns, needsRoot, waitFor, type Netns } from '../helpers/netns.js'
import { startDaemon, workdir, xdpOf, type Running } from '../helpers/daemon.js'
import { bpftoolJson } from '../helpers/bpf.js'

/** The daemon's namespace `a` holds vb (10.198.0.1, fd98::1); the sender `b` holds pb with .2, .3 and fd98::2, ::3. */
function pair(t: Parameters<typeof makeNetns>[0]): { a: Netns; b: Netns } {
  const a = makeNetns(t, 'xdpma')
  const b = makeNetns(t, 'xdpmb')
  a.ip('link', 'add', 'vb', 'type', 'veth', 'peer', 'name', 'pb', 'netns', b.name)
  a.ip('addr', 'add', '10.198.0.1/24', 'dev', 'vb')
  a.ip('-6', 'addr', 'add', 'fd98::1/64', 'dev', 'vb', 'nodad')
  for (const x of ['10.198.0.2/24', '10.198.0.3/24']) b.ip('addr', 'add', x, 'dev', 'pb')
  for (const x of ['fd98::2/64', 'fd98::3/64']) b.ip('-6', 'addr', 'add', x, 'dev', 'pb', 'nodad')
  a.ip('link', 'set', 'vb', 'up')
  b.ip('link', 'set', 'pb', 'up')
  return { a, b }
}

/** Whether a ping from `from` (an address of b) to `to` gets an answer: 3 tries, 1 s each. */
function reaches(b: Netns, from: string, to: string): boolean {
  try {
    b.exec('ping', ['-c', '3', '-i', '0.2', '-W', '1', '-I', from, to])
    return true
  } catch {
    return false
  }
}

function blocklistConfig(bpffs: string, obj: string, v4: string[], v6: string[]): string {
  const list = (xs: string[]) => `[${xs.join(', ')}]`
  return `settle: 10ms\nbpffs: ${bpffs}\nattach:\n  - interfaces: [vb]\n    object: ${obj}\n    mode: generic\n    maps:\n      blocklist_v4: ${list(v4)}\n      blocklist_v6: ${list(v6)}\n`
}

/** The keys of a pinned LPM map as bpftool decodes them (with the map's BTF): "prefixlen:addr bytes". */
function keysOf(pin: string): string[] {
  type Dumped = { formatted?: { key: { prefixlen: number; addr: number[] } } }
  return bpftoolJson<Dumped[]>('map', 'dump', 'pinned', pin)
    .map((e) => `${e.formatted!.key.prefixlen}:${e.formatted!.key.addr.join('.')}`)
    .sort()
}

const mapsDir = (bpffs: string): string => join(bpffs, readdirSync(bpffs).find((n) => n.endsWith('-xdp_blocklist'))!, 'maps')

async function reloaded(d: Running, n: number): Promise<void> {
  await d.waitLog(() => d.logs().filter((r) => r.action === 'reload').length >= n, `reload ${n}`)
}

/** xdp_blocklist on vb with blocklist_v4 from a list file. */
const listConfig = (bpffs: string, obj: string, file: string): string =>
  `settle: 10ms\nbpffs: ${bpffs}\nattach:\n  - interfaces: [vb]\n    object: ${obj}\n    mode: generic\n    maps:\n      blocklist_v4: { file: ${file} }\n`

/** `change` lists 10.198.0.2: the daemon reloads by itself (no SIGHUP), and that sender's pings are dropped. */
async function listChangeDrops(t: Test, d: Running, b: Netns, change: () => void, what: string): Promise<void> {
  change()
  await reloaded(d, 1)
  t.match(d.logs().find((r) => r.action === 'reload'), { reason: 'object or list file changed' })
  t.notOk(reaches(b, '10.198.0.2', '10.198.0.1'), what)
  t.equal(await d.stop('SIGTERM'), 0)
}

t.test('declared prefixes drop, others pass; a SIGHUP adds and removes prefixes in place, never letting an unchanged one through', { skip: needsRoot }, async (t) => {
  const { a, b } = pair(t)
  const w = workdir(t)
  const obj = w.object('xdp_blocklist')
  const cfg = w.config(blocklistConfig(w.bpffs, obj, ['10.198.0.3/32'], ['fd98::3/128']))
  const d = await startDaemon(a, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  const prog = xdpOf(a, 'vb')
  t.equal(prog?.mode, 'generic', 'attached')
  const maps = mapsDir(w.bpffs)
  t.same(keysOf(join(maps, 'blocklist_v4')), ['32:10.198.0.3'], 'the map holds the declared prefix (bpftool)')
  t.match(d.logs().find((r) => r.action === 'map' && r.map === 'blocklist_v4'), { added: 1, removed: 0 }, 'and says so')

  t.ok(reaches(b, '10.198.0.2', '10.198.0.1'), 'IPv4 outside the prefixes passes')
  t.notOk(reaches(b, '10.198.0.3', '10.198.0.1'), 'IPv4 inside drops')
  t.ok(reaches(b, 'fd98::2', 'fd98::1'), 'IPv6 outside passes')
  t.notOk(reaches(b, 'fd98::3', 'fd98::1'), 'IPv6 inside drops')

  // .3 stays blocked throughout; .2 is added, fd98::3 removed. A sender from .3 runs across the reload.
  const sender = b.spawn('ping', ['-c', '300', '-i', '0.01', '-W', '1', '-I', '10.198.0.3', '10.198.0.1'])
  let out = ''
  sender.stdout!.on('data', (c: Buffer) => (out += c.toString()))
  const done = new Promise<void>((r) => sender.on('exit', () => r()))
  await new Promise((r) => setTimeout(r, 500))
  w.config(blocklistConfig(w.bpffs, obj, ['10.198.0.3/32', '10.198.0.2/32'], []))
  d.child.kill('SIGHUP')
  await reloaded(d, 1)
  await done
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out)
  t.ok(m && Number(m[1]) > 100, `the sender ran through the reload (${m?.[1]} sent)`)
  t.equal(m?.[2], '0', 'not one packet of the unchanged prefix got through')
  t.equal(xdpOf(a, 'vb')?.id, prog?.id, 'the same program: the map changed in place')
  t.notOk(reaches(b, '10.198.0.2', '10.198.0.1'), 'the added prefix drops')
  t.ok(reaches(b, 'fd98::3', 'fd98::1'), 'the removed prefix passes')
  t.same(keysOf(join(maps, 'blocklist_v4')), ['32:10.198.0.2', '32:10.198.0.3'])
  t.same(keysOf(join(maps, 'blocklist_v6')), [])

  // A bad prefix rejects the reload whole: the contents in force stay.
  w.config(blocklistConfig(w.bpffs, obj, ['10.198.0.3/33'], []))
  d.child.kill('SIGHUP')
  await d.waitLog((r) => typeof r.msg === 'string' && r.msg.startsWith('reload rejected'), 'the rejection')
  const rejected = d.logs().find((r) => typeof r.msg === 'string' && r.msg.startsWith('reload rejected'))!
  t.match(rejected.msg, /config\.yaml:\d+:\d+: attach\[0\]\.maps\.blocklist_v4\[0\]: /, 'located')
  t.same(keysOf(join(maps, 'blocklist_v4')), ['32:10.198.0.2', '32:10.198.0.3'], 'unchanged')
})

t.test('a list file changed on disk takes effect without a SIGHUP; a restart over the pinned maps writes nothing', { skip: needsRoot }, async (t) => {
  const { a, b } = pair(t)
  const w = workdir(t)
  const obj = w.object('xdp_blocklist')
  const list = join(w.dir, 'blocked.txt')
  const writeList = (text: string): void => {
    writeFileSync(`${list}.tmp`, text)
    chmodSync(`${list}.tmp`, 0o644)
    renameSync(`${list}.tmp`, list)
  }
  writeList('# blocked senders\n10.198.0.3/32\n')
  const cfg = w.config(listConfig(w.bpffs, obj, 'blocked.txt'))
  const d = await startDaemon(a, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  t.notOk(reaches(b, '10.198.0.3', '10.198.0.1'), 'the listed prefix drops')
  t.ok(reaches(b, '10.198.0.2', '10.198.0.1'), 'another passes')
  await listChangeDrops(t, d, b, () => writeList('# blocked senders\n10.198.0.3/32\n10.198.0.2/32  # added\n'), 'the added line drops, with no SIGHUP')

  // The same config again, under strace: the maps are adopted with the program, read, and not written.
  const trace = join(w.dir, 'bpf.trace')
  const again = await startDaemon(a, cfg, [], {}, ['strace', '-f', '-qq', '-e', 'trace=bpf', '-o', trace])
  t.teardown(() => again.stop('SIGKILL'))
  const pid = Number(again.logs().find((r) => typeof r.pid === 'number')!.pid)
  process.kill(pid, 'SIGTERM')
  await again.exited
  const lines = readFileSync(trace, 'utf8').split('\n')
  // The declared map is opened from its pin (BPF_OBJ_GET of <pin dir>/maps/blocklist_v4); writes are counted on the
  // descriptors that returned. Others are libbpf's own: the proof that the pinned program is the object's loads the
  // object once without pins, filling its internal .kconfig map (bpf/xdp_stats.h's LINUX_KERNEL_VERSION).
  const declaredFds = new Set(lines.filter((l) => /BPF_OBJ_GET.*maps\/blocklist_v4"/.test(l)).map((l) => /= (\d+)$/.exec(l)?.[1]))
  const calls = lines.filter((l) => /bpf\(BPF_MAP_/.test(l))
  const writes = calls.filter((l) => /BPF_MAP_(UPDATE|DELETE)/.test(l) && declaredFds.has(/map_fd=(\d+)/.exec(l)?.[1]))
  t.ok(declaredFds.size > 0, 'the declared map was opened from its pin')
  t.ok(calls.some((l) => /BPF_MAP_LOOKUP_BATCH|BPF_MAP_GET_NEXT_KEY/.test(l)), 'the declared map was read')
  t.same(writes, [], 'and not one entry written or deleted')
  t.notOk(reaches(b, '10.198.0.2', '10.198.0.1'), 'and still drops')
})

t.test('a list file in a ConfigMap volume of its own: the kubelet swapping `..data` takes effect without a SIGHUP', { skip: needsRoot }, async (t) => {
  const { a, b } = pair(t)
  const w = workdir(t)
  const obj = w.object('xdp_blocklist')
  // pkg/volume/util/atomic_writer.go: lists/blocked.txt -> ..data/blocked.txt, ..data -> a timestamped directory.
  const vol = join(w.dir, 'lists')
  mkdirSync(vol, { mode: 0o755 })
  let n = 0
  const publish = (text: string): void => {
    const ts = `..2026_12_04_${String(++n).padStart(2, '0')}`
    mkdirSync(join(vol, ts), { mode: 0o755 })
    writeFileSync(join(vol, ts, 'blocked.txt'), text, { mode: 0o644 })
    symlinkSync(ts, join(vol, '..data_tmp'))
    execFileSync('mv', ['-T', join(vol, '..data_tmp'), join(vol, '..data')])
  }
  publish('10.198.0.3/32\n')
  symlinkSync('..data/blocked.txt', join(vol, 'blocked.txt'))
  const cfg = w.config(listConfig(w.bpffs, obj, join(vol, 'blocked.txt')))
  const d = await startDaemon(a, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  t.ok(reaches(b, '10.198.0.2', '10.198.0.1'), 'not listed yet: passes')
  await listChangeDrops(t, d, b, () => publish('10.198.0.3/32\n10.198.0.2/32\n'), 'listed by the new ..data: drops')
})

t.test('a map the kernel will not write rejects the reload, said once', { skip: needsRoot }, async (t) => {
  const { a } = pair(t)
  const w = workdir(t)
  const obj = w.object('xdp_blocklist')
  const cfg = w.config(blocklistConfig(w.bpffs, obj, ['10.198.0.3/32'], []))
  const d = await startDaemon(a, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  // A frozen map takes no more writes from user space (kernel/bpf/syscall.c map_update_elem: EPERM).
  execFileSync('bpftool', ['map', 'freeze', 'pinned', join(mapsDir(w.bpffs), 'blocklist_v4')])
  writeFileSync(cfg, blocklistConfig(w.bpffs, obj, ['10.198.0.3/32', '10.198.0.2/32'], []))
  d.child.kill('SIGHUP')
  const rejected = await d.waitLog((r) => r.action === 'reload' && r.level === 50, 'the reload to be rejected')
  t.match(rejected.msg, /map blocklist_v4 of program xdp_blocklist: .*EPERM/)
  const saying = d.logs().filter((r) => Number(r.level) >= 50 && String(r.msg).includes('map blocklist_v4 of program xdp_blocklist: '))
  t.equal(saying.length, 1, 'one error line says it', { saying })
})
