/**
 * ProgramRegistry against the real kernel and libbpf: each bundled program loads, a verifier rejection says why,
 * an ambiguous object lists its programs, sharing gives one program and one descriptor, and prune removes only
 * our stale pins. Everything is pinned in a private bpffs mounted under a temporary directory.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import t from 'tap'
import { bpfFdKind, objGet, objPin, progInfo } from '../../src/ffi/bpf-fd.js'
import { ProgramRegistry } from '../../src/programs/registry.js'
import { needsRoot, makeNetns } from '../helpers/netns.js'
import { BUNDLED, bpftoolJson, buildObjects, tempBpffs, catchLoad } from '../helpers/bpf.js'

t.test('kernel', { skip: needsRoot }, async (t) => {
  const objs = buildObjects(t)

  t.test('each bundled program loads, is pinned, and reads back', async (t) => {
    const bpffs = tempBpffs(t)
    const r = new ProgramRegistry({ bpffsDir: join(bpffs, 'xdplinkd') })
    t.teardown(() => r.close())
    for (const name of BUNDLED) {
      const p = await r.acquire(objs.bundled(name))
      t.equal(p.name, name)
      t.equal(p.kernelName, name)
      t.equal(p.source, 'loaded')
      t.match(p.tag, /^[0-9a-f]{16}$/)
      t.ok(p.id > 0)
      t.equal(bpfFdKind(p.fd), 'prog')
      t.ok(existsSync(p.pinPath), p.pinPath)
      const expectMaps = name === 'xdp_blocklist' ? ['blocklist_v4', 'blocklist_v6', 'xdp_link_stats', 'xdp_stats'] : ['xdp_link_stats', 'xdp_stats']
      t.same([...p.maps.keys()].sort(), expectMaps)
      for (const path of p.maps.values()) t.ok(existsSync(path), path)
      // bpftool agrees on what was pinned
      const shown = bpftoolJson<{ id: number; tag: string; name: string; type: string }>('prog', 'show', 'pinned', p.pinPath)
      t.match(shown, { id: p.id, tag: p.tag, name, type: 'xdp' })
    }
    t.equal(r.bpffsMount, null, 'the directory was on a bpffs already')
  })

  t.test('a verifier rejection carries the verifier reason and a short log', async (t) => {
    const bpffs = tempBpffs(t)
    const r = new ProgramRegistry({ bpffsDir: bpffs })
    t.teardown(() => r.close())
    const e = await catchLoad(() => r.acquire(objs.fixture('xdp_bad')))
    t.equal(e.stage, 'load')
    t.equal(e.code, 'EACCES')
    t.equal(e.program, 'xdp_bad')
    t.match(e.message, /rejected by the verifier: invalid access to packet.*R1 offset is outside of the packet/)
    t.match(e.verifierReason, /invalid access to packet/)
    t.ok(e.log.some((l) => l.includes('BEGIN PROG LOAD LOG')))
    t.ok(e.log.length <= 50)
    t.same(r.prune(new Set()).removed, [], 'a failed load leaves no directory behind')
  })

  t.test('a long verifier log (hundreds of KiB) is cut to its tail, reason intact', async (t) => {
    const bpffs = tempBpffs(t)
    const r = new ProgramRegistry({ bpffsDir: bpffs, logLines: 20 })
    t.teardown(() => r.close())
    const e = await catchLoad(() => r.acquire(objs.fixture('xdp_big_bad')))
    t.match(e.verifierReason, /R1 offset is outside of the packet/)
    t.equal(e.log.length, 20)
    t.match(e.log.join('\n'), /processed \d+ insns/)
    t.ok(JSON.stringify(e).length < 16 * 1024, 'the error stays small')
  })

  t.test('two XDP programs and no name: the error lists both, not the tc one', async (t) => {
    const bpffs = tempBpffs(t)
    const r = new ProgramRegistry({ bpffsDir: bpffs })
    t.teardown(() => r.close())
    const e = await catchLoad(() => r.acquire(objs.fixture('xdp_two')))
    t.equal(e.stage, 'select')
    t.same(e.candidates, ['xdp_first', 'xdp_second'])
    t.match(e.message, /xdp_first, xdp_second/)
    t.notMatch(e.message, /tc_other/)
    const named = await r.acquire(objs.fixture('xdp_two'), 'xdp_second')
    t.equal(named.kernelName, 'xdp_second')
    const tc = await catchLoad(() => r.acquire(objs.fixture('xdp_two'), 'tc_other'))
    t.match(tc.message, /sched_cls/)
    const missing = await catchLoad(() => r.acquire(objs.fixture('xdp_two'), 'nope'))
    t.match(missing.message, /no such program.*xdp_first/)
  })

  t.test('the only XDP program is chosen, and only it is loaded', async (t) => {
    const bpffs = tempBpffs(t)
    const r = new ProgramRegistry({ bpffsDir: bpffs })
    t.teardown(() => r.close())
    const p = await r.acquire(objs.fixture('xdp_with_tc'))
    t.equal(p.name, 'xdp_only')
    const progs = bpftoolJson<{ name?: string }[]>('prog', 'show')
    t.notOk(progs.some((q) => q.name === 'tc_before'), 'the tc program was not loaded')
  })

  t.test('the same object acquired twice (and under another path) is one program, one descriptor', async (t) => {
    const bpffs = tempBpffs(t)
    const r = new ProgramRegistry({ bpffsDir: bpffs })
    t.teardown(() => r.close())
    const copy = join(objs.dir, 'copy-of-pass.o')
    writeFileSync(copy, readFileSync(objs.bundled('xdp_pass')))
    const a = await r.acquire(objs.bundled('xdp_pass'))
    const b = await r.acquire(objs.bundled('xdp_pass'), 'xdp_pass')
    const c = await r.acquire(copy)
    t.equal(a.id, b.id)
    t.equal(a.id, c.id)
    t.equal(a.fd, b.fd)
    t.equal(a.fd, c.fd)
    t.equal(r.size, 1)
    a.release()
    b.release()
    t.notOk(c.fd.closed)
    c.release()
    t.ok(c.fd.closed)
    // the pin keeps it alive: a new acquire finds the same program
    const d = await r.acquire(objs.bundled('xdp_pass'))
    t.equal(d.id, a.id)
    t.equal(d.source, 'pinned')
    d.release()
  })

  t.test('prune removes only our stale pins', async (t) => {
    const bpffs = tempBpffs(t)
    const dir = join(bpffs, 'xdplinkd')
    const r = new ProgramRegistry({ bpffsDir: dir })
    t.teardown(() => r.close())
    const pass = await r.acquire(objs.bundled('xdp_pass'))
    const drop = await r.acquire(objs.bundled('xdp_drop'))
    const block = await r.acquire(objs.bundled('xdp_blocklist'))
    drop.release()
    block.release()
    // Not ours: another tool's pin and directory in the same bpffs, and a look-alike outside our pattern.
    mkdirSync(join(dir, 'someone-else'))
    const foreign = objGet(pass.pinPath)
    objPin(foreign, join(dir, 'someone-else', 'prog'))
    objPin(foreign, join(bpffs, 'outside'))
    foreign.close()

    t.same(r.ownedProgramIds(), new Set([pass.id, drop.id, block.id]))
    const res = r.prune(new Set([block.pinDirName]))
    t.same(res.removed, [drop.pinDirName])
    t.same(res.kept.sort(), [pass.pinDirName, block.pinDirName].sort())
    t.notOk(existsSync(join(dir, drop.pinDirName)))
    t.ok(existsSync(block.pinPath))
    t.ok(existsSync(join(dir, 'someone-else', 'prog')))
    t.ok(existsSync(join(bpffs, 'outside')))
    t.notOk(r.isOurs(drop.id), 'unpinned: no longer ours')
    t.ok(r.isOurs(block.id))
    t.ok(r.isOurs(pass.id))

    // in use beats keep: pass is held, so even an empty keep set leaves it
    t.same(r.prune(new Set()).removed, [block.pinDirName])
    t.ok(existsSync(pass.pinPath))
  })

  t.test('a map pinned where ours goes but defined differently: a clear error, the pin left alone', async (t) => {
    const bpffs = tempBpffs(t)
    const r = new ProgramRegistry({ bpffsDir: bpffs })
    t.teardown(() => r.close())
    // Find where xdp_blocklist's maps go, then put xdp_two's ARRAY map there under blocklist_v4's name.
    const block = await r.acquire(objs.bundled('xdp_blocklist'))
    const v4 = block.maps.get('blocklist_v4')!
    block.release()
    t.same(r.prune(new Set()).removed, [block.pinDirName])
    const two = await r.acquire(objs.fixture('xdp_two'), 'xdp_first')
    mkdirSync(dirname(v4), { recursive: true })
    const foreign = objGet(two.maps.get('two_hits')!)
    objPin(foreign, v4)
    foreign.close()

    const e = await catchLoad(() => r.acquire(objs.bundled('xdp_blocklist')))
    t.equal(e.stage, 'load')
    t.equal(e.code, 'EINVAL')
    t.match(e.message, /couldn't reuse pinned map at '.*blocklist_v4': parameter mismatch/)
    t.match(e.hint, /does not match the object's definition/)
    t.ok(existsSync(v4), 'the pin it could not use is still there')
    t.notOk(existsSync(join(dirname(v4), 'xdp_stats')), 'maps libbpf pinned before failing were unpinned again')
  })

  t.test('a pinned program can be attached by ip(8) and is recognised as ours', async (t) => {
    const bpffs = tempBpffs(t)
    const r = new ProgramRegistry({ bpffsDir: bpffs })
    t.teardown(() => r.close())
    const p = await r.acquire(objs.bundled('xdp_pass'))
    const ns = makeNetns(t)
    ns.ip('link', 'add', 'xv0', 'type', 'veth', 'peer', 'name', 'xv1')
    ns.ip('link', 'set', 'dev', 'xv0', 'xdpgeneric', 'pinned', p.pinPath)
    const [link] = ns.ipJson<{ xdp?: { prog?: { id: number } } }[]>('link', 'show', 'dev', 'xv0')
    t.equal(link?.xdp?.prog?.id, p.id)
    t.ok(r.isOurs(p.id))
    t.equal(progInfo(p.fd).id, p.id)
  })
})
