/**
 * The registry's sharing, reading, trust, pinning and pruning logic against an in-memory backend: no root, no kernel.
 */
import { createHash } from 'node:crypto'
import { openSync } from 'node:fs'
import t from 'tap'
import { Fd } from '../../src/ffi/fd.js'
import { BPF_PROG_TYPE_XDP, BPF_XDP, type ProgramSpec } from '../../src/ffi/bpf-object.js'
import type { PinProblem } from '../../src/programs/bpffs.js'
import { ProgramLoadError } from '../../src/programs/errors.js'
import type { KernelProgram, LoadRequest } from '../../src/programs/kernel.js'
import { parsePinDirName, type PinLayout } from '../../src/programs/naming.js'
import { ProgramRegistry, pinsToKeep, type ProgramBackend } from '../../src/programs/registry.js'
import type { PathFinding } from '../../src/config/secure-path.js'

const xdp = (name: string): ProgramSpec => ({ name, sectionName: 'xdp', type: BPF_PROG_TYPE_XDP, typeName: 'xdp', expectedAttachType: BPF_XDP })
const BPF_PROG_TYPE_SCHED_CLS = 3

/** The kernel's tag of a program loaded from these bytes: the same bytes and name give the same tag. */
const tagOf = (bytes: string, name: string) => createHash('sha1').update(`${bytes}/${name}`).digest('hex').slice(0, 16)

interface FakePin {
  id: number
  tag: string
  type: number
  kernelName: string
}

/** Files are byte strings with a version (what fstat would tell apart); the ELF "contents" are a program list. */
function fakeBackend(files: Record<string, { bytes: string; programs: ProgramSpec[]; version?: string }>) {
  const pinned = new Map<string, FakePin>() // pin dir name -> what its `prog` holds
  const fds: Fd[] = []
  let nextId = 100
  const calls = { open: 0, read: 0, load: 0, openPinned: 0, inspect: 0, ensure: 0, check: 0, tagOf: 0, remove: [] as string[], unpin: [] as string[] }
  /** What the next ensureBpffs calls report, first to last: where they mounted (null: a bpffs was there). */
  const mounts: (string | null)[] = []
  /** What checkBpffsDir finds (every call). */
  let bpffsFindings: PathFinding[] = []
  /** What pinProblems finds, by pin directory name. */
  const problems = new Map<string, PinProblem[]>()
  const programsOf = (image: Buffer) => Object.values(files).find((f) => f.bytes === image.toString())!.programs
  const fd = () => {
    const f = new Fd(openSync('/dev/null', 'r'), 'fake prog')
    fds.push(f)
    return f
  }
  const kp = (p: FakePin, source: KernelProgram['source']): KernelProgram => ({ fd: fd(), id: p.id, tag: p.tag, kernelName: p.kernelName, maps: new Map(), source })
  const backend: ProgramBackend = {
    async openObject(path) {
      calls.open++
      const f = files[path]
      if (!f) throw new ProgramLoadError({ stage: 'read', objectPath: path, detail: `cannot read the object file: ${path} does not exist`, errno: 2 })
      return {
        version: f.version ?? 'v1',
        async read() {
          calls.read++
          return { bytes: Buffer.from(f.bytes), hash: createHash('sha256').update(f.bytes).digest('hex') }
        },
        async close() {},
      }
    },
    ensureBpffs() {
      calls.ensure++
      return { mounted: mounts.shift() ?? null }
    },
    async checkBpffsDir() {
      calls.check++
      return bpffsFindings
    },
    inspect(image) {
      calls.inspect++
      return programsOf(image)
    },
    pinProblems: (pin) => problems.get(pin.name) ?? [],
    openPinned(pin: PinLayout) {
      calls.openPinned++
      const p = pinned.get(pin.name)
      return p === undefined ? { kind: 'none' } : { kind: 'program', type: p.type, program: kp(p, 'pinned') }
    },
    tagOf(req) {
      calls.tagOf++
      return tagOf(req.image.toString(), req.programName!)
    },
    load(req: LoadRequest) {
      calls.load++
      if (!programsOf(req.image).some((p) => p.name === req.programName)) {
        throw new ProgramLoadError({ stage: 'select', objectPath: req.objectPath, program: req.programName, detail: 'no such program' })
      }
      const p = { id: nextId++, tag: tagOf(req.image.toString(), req.programName), type: BPF_PROG_TYPE_XDP, kernelName: req.programName.slice(0, 15) }
      pinned.set(`${req.objectHash.slice(0, 16)}-${req.programName}`, p)
      return kp(p, 'loaded')
    },
    listPinDirs: () => [...pinned.keys(), 'maps.debug'].filter((n) => parsePinDirName(n) !== null).sort(),
    pinnedProgramId: (pin) => (problems.get(pin.name)?.length ? null : (pinned.get(pin.name)?.id ?? null)),
    removePinDir(_dir, name) {
      calls.remove.push(name)
      pinned.delete(name)
      problems.delete(name)
    },
    unpinProgram(pin) {
      calls.unpin.push(pin.name)
      pinned.delete(pin.name)
      problems.delete(pin.name)
    },
    openPin: () => fd(),
    programById: (id) => (id === 4040 ? null : fd()),
  }
  return {
    backend,
    pinned,
    fds,
    calls,
    mounts,
    problems,
    setBpffsFindings: (f: PathFinding[]) => (bpffsFindings = f),
  }
}

const files = {
  '/o/pass.o': { bytes: 'pass-v1', programs: [xdp('xdp_pass')] },
  '/other/pass-copy.o': { bytes: 'pass-v1', programs: [xdp('xdp_pass')] },
  '/o/two.o': { bytes: 'two', programs: [xdp('xdp_first'), xdp('xdp_second')] },
}
const hash = (s: string) => createHash('sha256').update(s).digest('hex')
const passDir = `${hash('pass-v1').slice(0, 16)}-xdp_pass`

/** A warning sink that keeps what it is told. */
function warnings() {
  const said: { fields: Record<string, unknown>; message: string }[] = []
  return { said, warn: (fields: Record<string, unknown>, message: string) => void said.push({ fields, message }) }
}

t.test('one load per content and program, however often and from whichever path', async (t) => {
  const f = fakeBackend(files)
  const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  const a = await r.acquire('/o/pass.o')
  const b = await r.acquire('/o/pass.o', 'xdp_pass')
  const c = await r.acquire('/other/pass-copy.o')
  t.equal(f.calls.load, 1)
  t.equal(f.calls.inspect, 1, 'the unnamed choice is remembered per content')
  t.equal(f.calls.ensure, 1)
  t.equal(f.calls.check, 1, 'the bpffs directory is judged before the first pin')
  t.equal(f.calls.tagOf, 0, 'nothing was pinned: no proof needed')
  t.equal(a.id, b.id)
  t.equal(a.id, c.id)
  t.equal(a.fd, b.fd, 'one descriptor')
  t.equal(r.size, 1)
  t.equal(a.objectHash, hash('pass-v1'))
  t.equal(a.pinDirName, passDir)
  t.equal(a.pinPath, `/bpffs/x/${a.pinDirName}/prog`)
  t.equal(a.source, 'loaded')

  a.release()
  a.release() // a lease gives back one reference, once
  b.release()
  t.notOk(c.fd.closed, 'still held')
  c.release()
  t.ok(c.fd.closed, 'closed with the last lease')
  t.equal(r.size, 0)
  t.equal(f.fds.filter((x) => x.closed).length, f.fds.length)
})

t.test('many entries naming one object read it once; a touched file is read and hashed once more, nothing reloaded', async (t) => {
  const f = fakeBackend({ '/o/pass.o': { ...files['/o/pass.o'] } })
  const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  const leases = []
  for (let i = 0; i < 1001; i++) leases.push(await r.acquire('/o/pass.o', i % 2 === 0 ? 'xdp_pass' : undefined))
  t.equal(f.calls.open, 1001, 'each entry opens it (path checks, fstat)')
  t.equal(f.calls.read, 1, 'one read and hash')
  t.equal(f.calls.load, 1)
  t.equal(new Set(leases.map((l) => l.id)).size, 1)

  f.backend.openObject = ((open) => async (path, rules) => ({ ...(await open(path, rules)), version: 'v2' }))(f.backend.openObject)
  const again = await r.acquire('/o/pass.o')
  t.equal(f.calls.read, 2, 'a new version (touch): read again')
  t.equal(again.id, leases[0]!.id, 'same bytes: the same program')
  t.equal(f.calls.load, 1)
  t.equal(await r.objects.hashOf('/o/pass.o'), hash('pass-v1'))
  t.equal(f.calls.read, 2, 'hashOf of a version read before reads nothing')
  r.close()
})

t.test('an object that cannot be read: the read error, nothing else done', async (t) => {
  const f = fakeBackend(files)
  const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  await t.rejects(r.acquire('/missing.o'), { stage: 'read', code: 'ENOENT' })
  t.equal(f.calls.ensure, 0)
})

t.test('the bpffs is checked before each program not held yet; one mounted again is reported as such', async (t) => {
  const f = fakeBackend(files)
  const said: [string, boolean][] = []
  const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend, onBpffsMount: (where, again) => said.push([where, again]) })
  f.mounts.push('/bpffs/x') // nothing there at start: mounted
  const a = await r.acquire('/o/pass.o')
  t.equal(r.bpffsMount, '/bpffs/x')
  await r.acquire('/other/pass-copy.o')
  t.equal(f.calls.ensure, 1, 'a program already held needs no check')
  await r.acquire('/o/two.o', 'xdp_first') // found on a bpffs
  f.mounts.push('/bpffs/x') // unmounted under us since: mounted again
  await r.acquire('/o/two.o', 'xdp_second')
  t.equal(f.calls.ensure, 3)
  t.equal(f.calls.check, 3)
  t.same(said, [
    ['/bpffs/x', false],
    ['/bpffs/x', true],
  ])
  t.equal(r.bpffsMount, '/bpffs/x', 'the first finding stays what bpffsMount says')
  a.release()
  r.close()
})

t.test('a bpffs directory that is not safe is refused: nothing adopted, loaded or pinned', async (t) => {
  const f = fakeBackend(files)
  const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  f.setBpffsFindings([{ path: '/bpffs/x', unsafe: true, text: 'directory /bpffs/x is owned by uid 65534, not root' }])
  await t.rejects(r.acquire('/o/pass.o'), {
    name: 'ProgramLoadError',
    stage: 'bpffs',
    unsafe: true,
    message: /refusing the pin directory \/bpffs\/x \(bpffs\): directory \/bpffs\/x is owned by uid 65534, not root; it must be owned by root/,
  })
  t.equal(f.calls.openPinned + f.calls.load, 0)
  f.setBpffsFindings([{ path: '/bpffs/x', unsafe: false, text: '/bpffs/x is not a directory', code: 'ENOTDIR' }])
  await t.rejects(r.acquire('/o/pass.o'), { name: 'ProgramLoadError', stage: 'bpffs', unsafe: false })
  f.setBpffsFindings([])
  t.equal((await r.acquire('/o/pass.o')).source, 'loaded')
})

t.test('after the last release the pin is found again', async (t) => {
  const f = fakeBackend(files)
  const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  const first = await r.acquire('/o/pass.o')
  t.equal(r.heldFd(first.id), first.fd, 'a held program: its descriptor')
  t.equal(r.heldFd(first.id + 1), null, 'any other: none')
  first.release()
  t.equal(r.heldFd(first.id), null, 'released: held no more')
  const again = await r.acquire('/o/pass.o')
  t.equal(again.id, first.id)
  t.equal(again.source, 'pinned')
  t.equal(f.calls.load, 1)
  t.equal(f.calls.tagOf, 0, 'the tag of what this registry loaded itself is known')
  t.not(again.fd, first.fd)
  r.close()
  t.ok(again.fd.closed)
  again.release() // after close: harmless
  await t.rejects(r.acquire('/o/pass.o'))
})

t.test('a second registry (another process) adopts the pin once its tag is proven, once per content and program', async (t) => {
  const f = fakeBackend(files)
  const one = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  const id = (await one.acquire('/o/pass.o')).id
  one.close()
  const said = warnings()
  const two = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend, log: said })
  const again = await two.acquire('/o/pass.o')
  t.equal(again.id, id)
  t.equal(again.source, 'pinned')
  t.equal(f.calls.tagOf, 1, 'one load without a pin to learn the tag')
  t.ok(two.isOurs(id))
  t.notOk(two.isOurs(9999))
  again.release()
  await two.acquire('/o/pass.o')
  t.equal(f.calls.tagOf, 1, 'remembered')
  t.same(said.said, [])
})

t.test('a pinned program that is not provably the object\'s is unpinned and replaced, with a warning naming the pin', async (t) => {
  const right = { id: 7, tag: tagOf('pass-v1', 'xdp_pass'), type: BPF_PROG_TYPE_XDP, kernelName: 'xdp_pass' }
  const table: [why: string, planted: FakePin, reason: RegExp, proofs: number][] = [
    ['another program under the name (XDP_DROP named xdp_pass)', { ...right, tag: 'dddddddddddddddd' }, /its tag is dddddddddddddddd, the object's program has tag [0-9a-f]{16}/, 1],
    ['another name', { ...right, kernelName: 'xdp_evil' }, /it is program xdp_evil, not xdp_pass/, 0],
    ['another type', { ...right, type: BPF_PROG_TYPE_SCHED_CLS }, /it is a program of type 3, not XDP/, 0],
  ]
  for (const [why, planted, reason, proofs] of table) {
    const f = fakeBackend(files)
    f.pinned.set(passDir, planted)
    const said = warnings()
    const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend, log: said })
    const p = await r.acquire('/o/pass.o')
    t.equal(p.source, 'loaded', `${why}: a fresh load`)
    t.not(p.id, planted.id, why)
    t.equal(p.tag, right.tag, why)
    t.same(f.calls.unpin, [passDir], `${why}: the pin unpinned`)
    t.equal(f.calls.tagOf, proofs, `${why}: the tag was asked only when type and name agreed`)
    t.equal(said.said.length, 1, `${why}: one warning`)
    t.match(said.said[0], { fields: { pin: `/bpffs/x/${passDir}/prog`, object: '/o/pass.o', program: 'xdp_pass' }, message: reason }, why)
    const planted_ = f.fds.filter((x) => x !== p.fd)
    if (planted.type === BPF_PROG_TYPE_XDP) {
      // Not attached by us, but a link still running it (an older daemon's, or one that adopted it) is moved off it
      // atomically, with the descriptor found: ours to replace until the next prune.
      t.ok(r.isOurs(planted.id), `${why}: still ours to replace`)
      t.equal(r.heldFd(planted.id), planted_[0], `${why}: through the descriptor it was found with`)
      t.ok(r.ownedProgramIds().has(planted.id))
      r.prune(new Set())
      t.ok(planted_[0]!.closed, `${why}: let go at the next prune`)
      t.notOk(r.isOurs(planted.id), `${why}: and then foreign`)
    } else {
      t.ok(planted_.every((x) => x.closed), `${why}: no XDP program: closed at once`)
      t.notOk(r.isOurs(planted.id), why)
    }
    r.close()
  }
})

t.test('a pin directory or pin that fails the checks: prog alone, or the whole directory, removed and replaced', async (t) => {
  const table: [why: string, problems: PinProblem[], removed: 'unpin' | 'remove'][] = [
    ['prog is a symlink', [{ path: `/bpffs/x/${passDir}/prog`, text: `pin /bpffs/x/${passDir}/prog is a symbolic link`, whole: false }], 'unpin'],
    ['the directory belongs to nobody', [{ path: `/bpffs/x/${passDir}`, text: `pin directory /bpffs/x/${passDir} is owned by uid 65534, not root`, whole: true }], 'remove'],
    ['a map pin is a symlink', [{ path: `/bpffs/x/${passDir}/maps/m`, text: 'pin m is a symbolic link', whole: true }], 'remove'],
  ]
  for (const [why, problems, removed] of table) {
    const f = fakeBackend(files)
    f.pinned.set(passDir, { id: 7, tag: tagOf('pass-v1', 'xdp_pass'), type: BPF_PROG_TYPE_XDP, kernelName: 'xdp_pass' })
    f.problems.set(passDir, problems)
    const said = warnings()
    const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend, log: said })
    t.notOk(r.isOurs(7), `${why}: not ours`)
    const p = await r.acquire('/o/pass.o')
    t.equal(p.source, 'loaded', why)
    t.equal(f.calls.openPinned, 0, `${why}: nothing opened through it`)
    t.same(removed === 'unpin' ? f.calls.unpin : f.calls.remove, [passDir], why)
    t.equal(said.said.length, 1, why)
    t.match(said.said[0]!.message, problems[0]!.text, why)
    t.equal(said.said[0]!.fields.pin, removed === 'unpin' ? `/bpffs/x/${passDir}/prog` : `/bpffs/x/${passDir}`, why)
    r.close()
  }

  t.test('one that cannot be removed (foreign content) is refused, unsafe', async (t) => {
    const f = fakeBackend(files)
    f.problems.set(passDir, [{ path: `/bpffs/x/${passDir}`, text: 'pin directory is writable by others (mode 0777)', whole: true }])
    f.backend.removePinDir = () => {
      throw Object.assign(new Error('ENOTEMPTY: directory not empty'), { code: 'ENOTEMPTY' })
    }
    const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
    await t.rejects(r.acquire('/o/pass.o'), { stage: 'pin', unsafe: true, message: /cannot remove the untrusted pin directory .*ENOTEMPTY/ })
    t.equal(f.calls.load, 0)
  })
})

t.test('choice errors', async (t) => {
  const f = fakeBackend(files)
  const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  await t.rejects(r.acquire('/o/two.o'), { name: 'ProgramLoadError', stage: 'select', candidates: ['xdp_first', 'xdp_second'] })
  await t.rejects(r.acquire('/o/two.o', '../../etc/passwd'), { name: 'ProgramLoadError', stage: 'select' })
  const second = await r.acquire('/o/two.o', 'xdp_second')
  t.equal(second.name, 'xdp_second')
  t.equal(f.calls.load, 1)
})

t.test('prune removes only unreferenced pins, never ones in use', async (t) => {
  const f = fakeBackend(files)
  const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  const pass = await r.acquire('/o/pass.o')
  const first = await r.acquire('/o/two.o', 'xdp_first')
  const second = await r.acquire('/o/two.o', 'xdp_second')
  first.release()
  second.release()
  t.same(
    r.ownedPrograms(),
    new Map([
      [pass.id, pass.pinDirName],
      [first.id, first.pinDirName],
      [second.id, second.pinDirName],
    ]),
  )
  const res = r.prune(new Set([second.pinDirName]))
  t.same(res.removed, [first.pinDirName])
  t.same(res.kept.sort(), [pass.pinDirName, second.pinDirName].sort())
  t.same(res.failed, [])
  t.same(r.ownedProgramIds(), new Set([pass.id, second.id]))
})

t.test('prune asks a keep function only when some directory is not held', async (t) => {
  const f = fakeBackend(files)
  const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  const pass = await r.acquire('/o/pass.o')
  const first = await r.acquire('/o/two.o', 'xdp_first')
  let asked = 0
  const keep = (): Set<string> => (asked++, new Set())
  t.same(r.prune(keep).removed, [], 'every directory held')
  t.equal(asked, 0, 'the function was not called')
  first.release()
  t.same(r.prune(keep).removed, [first.pinDirName], 'one released')
  t.equal(asked, 1, 'the function was called once')
  t.same(r.prune(() => new Set([pass.pinDirName])).kept, [pass.pinDirName])
})

t.test('a failed prune of one directory does not stop the others', async (t) => {
  const f = fakeBackend(files)
  const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  ;(await r.acquire('/o/two.o', 'xdp_first')).release()
  ;(await r.acquire('/o/two.o', 'xdp_second')).release()
  const remove = f.backend.removePinDir
  f.backend.removePinDir = (d, n) => {
    if (n.endsWith('xdp_first')) throw new Error('ENOTEMPTY')
    remove(d, n)
  }
  const res = r.prune(new Set())
  t.equal(res.failed.length, 1)
  t.equal(res.removed.length, 1)
})

t.test('the opener: a held program by its descriptor, another of ours from its pin, a foreign one by id', async (t) => {
  const f = fakeBackend(files)
  const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  const pinnedPaths: string[] = []
  const openPin = f.backend.openPin
  f.backend.openPin = (path) => (pinnedPaths.push(path), openPin(path))
  const held = await r.acquire('/o/pass.o')
  const open = r.opener(new Map([[held.id, held.pinDirName], [55, 'aaaaaaaaaaaaaaaa-xdp_old']]))
  const a = open(held.id)!
  t.equal(a.fd, held.fd.raw, 'held: its own descriptor')
  a.close()
  t.notOk(held.fd.closed, 'and closing it leaves the lease alone')
  const b = open(55)!
  t.same(pinnedPaths, ['/bpffs/x/aaaaaaaaaaaaaaaa-xdp_old/prog'], 'ours: from its pin')
  b.close()
  const c = open(77)
  t.ok(c, 'foreign: by id')
  c!.close()
  t.equal(open(4040), null, 'a program that is gone')
})

t.test('pinsToKeep: the programs in use, and ours that a link still runs in any mode', async (t) => {
  const owned = new Map([
    [1, 'aaaaaaaaaaaaaaaa-in_use'],
    [2, 'bbbbbbbbbbbbbbbb-on_skb'],
    [3, 'cccccccccccccccc-on_drv'],
    [4, 'dddddddddddddddd-unused'],
  ])
  const table: [why: string, links: Parameters<typeof pinsToKeep>[1], keep: string[]][] = [
    ['no links: the programs in use', [], ['aaaaaaaaaaaaaaaa-in_use']],
    ['a link running an old one of ours (single mode)', [{ xdp: { mode: 'generic', progId: 2, skbProgId: 2 } }], ['aaaaaaaaaaaaaaaa-in_use', 'bbbbbbbbbbbbbbbb-on_skb']],
    ['multi: per-mode ids', [{ xdp: { mode: 'multi', progId: null, drvProgId: 3, skbProgId: 2 } }], ['aaaaaaaaaaaaaaaa-in_use', 'bbbbbbbbbbbbbbbb-on_skb', 'cccccccccccccccc-on_drv']],
    ['a foreign program and a link without XDP keep nothing', [{ xdp: { mode: 'offload', progId: 99, hwProgId: 99 } }, { xdp: null }], ['aaaaaaaaaaaaaaaa-in_use']],
  ]
  for (const [why, links, keep] of table) {
    t.same([...pinsToKeep([{ pinDirName: 'aaaaaaaaaaaaaaaa-in_use' }], links, owned)].sort(), keep, why)
  }
})
