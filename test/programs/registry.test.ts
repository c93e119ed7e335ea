/**
 * The registry's sharing, pinning and pruning logic against an in-memory backend: no root, no kernel.
 */
import { createHash } from 'node:crypto'
import { openSync } from 'node:fs'
import t from 'tap'
import { Fd } from '../../src/ffi/fd.js'
import { BPF_PROG_TYPE_XDP, BPF_XDP, type ProgramSpec } from '../../src/ffi/bpf-object.js'
import { ProgramLoadError } from '../../src/programs/errors.js'
import type { KernelProgram, LoadRequest } from '../../src/programs/kernel.js'
import { parsePinDirName, type PinLayout } from '../../src/programs/naming.js'
import { ProgramRegistry, type ProgramBackend } from '../../src/programs/registry.js'

const xdp = (name: string): ProgramSpec => ({ name, sectionName: 'xdp', type: BPF_PROG_TYPE_XDP, typeName: 'xdp', expectedAttachType: BPF_XDP })

/** Files are byte strings; the ELF "contents" are a program list keyed by those bytes. */
function fakeBackend(files: Record<string, { bytes: string; programs: ProgramSpec[] }>) {
  const pinned = new Map<string, number>() // pin dir name -> program id
  const fds: Fd[] = []
  let nextId = 100
  const calls = { load: 0, openPinned: 0, inspect: 0, ensure: 0, remove: [] as string[] }
  /** What the next ensureBpffs calls report, first to last: where they mounted (null: a bpffs was there). */
  const mounts: (string | null)[] = []
  const programsOf = (image: Buffer) => Object.values(files).find((f) => f.bytes === image.toString())!.programs
  const fd = () => {
    const f = new Fd(openSync('/dev/null', 'r'), 'fake prog')
    fds.push(f)
    return f
  }
  const kp = (id: number, source: KernelProgram['source']): KernelProgram => ({
    fd: fd(),
    id,
    tag: id.toString(16).padStart(16, '0'),
    kernelName: 'x',
    maps: new Map(),
    source,
  })
  const backend: ProgramBackend = {
    readObject(path) {
      const f = files[path]
      if (!f) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT', errno: -2 })
      return Buffer.from(f.bytes)
    },
    ensureBpffs() {
      calls.ensure++
      return { mounted: mounts.shift() ?? null }
    },
    inspect(image) {
      calls.inspect++
      return programsOf(image)
    },
    openPinned(pin: PinLayout) {
      calls.openPinned++
      const id = pinned.get(pin.name)
      return id === undefined ? null : kp(id, 'pinned')
    },
    load(req: LoadRequest) {
      calls.load++
      if (!programsOf(req.image).some((p) => p.name === req.programName)) {
        throw new ProgramLoadError({ stage: 'select', objectPath: req.objectPath, program: req.programName, detail: 'no such program' })
      }
      const id = nextId++
      pinned.set(`${req.objectHash.slice(0, 16)}-${req.programName}`, id)
      return kp(id, 'loaded')
    },
    listPinDirs: () => [...pinned.keys(), 'maps.debug'].filter((n) => parsePinDirName(n) !== null).sort(),
    pinnedProgramId: (pin) => pinned.get(pin.name) ?? null,
    removePinDir(_dir, name) {
      calls.remove.push(name)
      pinned.delete(name)
    },
  }
  return { backend, pinned, fds, calls, mounts }
}

const files = {
  '/o/pass.o': { bytes: 'pass-v1', programs: [xdp('xdp_pass')] },
  '/other/pass-copy.o': { bytes: 'pass-v1', programs: [xdp('xdp_pass')] },
  '/o/two.o': { bytes: 'two', programs: [xdp('xdp_first'), xdp('xdp_second')] },
}
const hash = (s: string) => createHash('sha256').update(s).digest('hex')

t.test('one load per content and program, however often and from whichever path', async (t) => {
  const f = fakeBackend(files)
  const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  const a = r.acquire('/o/pass.o')
  const b = r.acquire('/o/pass.o', 'xdp_pass')
  const c = r.acquire('/other/pass-copy.o')
  t.equal(f.calls.load, 1)
  t.equal(f.calls.inspect, 1, 'the unnamed choice is remembered per content')
  t.equal(f.calls.ensure, 1)
  t.equal(a.id, b.id)
  t.equal(a.id, c.id)
  t.equal(a.fd, b.fd, 'one descriptor')
  t.equal(r.size, 1)
  t.equal(a.objectHash, hash('pass-v1'))
  t.equal(a.pinDirName, `${hash('pass-v1').slice(0, 16)}-xdp_pass`)
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

t.test('the bpffs is checked before each program not held yet; one mounted again is reported as such', async (t) => {
  const f = fakeBackend(files)
  const said: [string, boolean][] = []
  const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend, onBpffsMount: (where, again) => said.push([where, again]) })
  f.mounts.push('/bpffs/x') // nothing there at start: mounted
  const a = r.acquire('/o/pass.o')
  t.equal(r.bpffsMount, '/bpffs/x')
  r.acquire('/other/pass-copy.o')
  t.equal(f.calls.ensure, 1, 'a program already held needs no check')
  r.acquire('/o/two.o', 'xdp_first') // found on a bpffs
  f.mounts.push('/bpffs/x') // unmounted under us since: mounted again
  r.acquire('/o/two.o', 'xdp_second')
  t.equal(f.calls.ensure, 3)
  t.same(said, [
    ['/bpffs/x', false],
    ['/bpffs/x', true],
  ])
  t.equal(r.bpffsMount, '/bpffs/x', 'the first finding stays what bpffsMount says')
  a.release()
  r.close()
})

t.test('after the last release the pin is found again', async (t) => {
  const f = fakeBackend(files)
  const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  const first = r.acquire('/o/pass.o')
  t.equal(r.heldFd(first.id), first.fd, 'a held program: its descriptor')
  t.equal(r.heldFd(first.id + 1), null, 'any other: none')
  first.release()
  t.equal(r.heldFd(first.id), null, 'released: held no more')
  const again = r.acquire('/o/pass.o')
  t.equal(again.id, first.id)
  t.equal(again.source, 'pinned')
  t.equal(f.calls.load, 1)
  t.not(again.fd, first.fd)
  r.close()
  t.ok(again.fd.closed)
  again.release() // after close: harmless
  t.throws(() => r.acquire('/o/pass.o'))
})

t.test('a second registry (another process) reuses the pin', async (t) => {
  const f = fakeBackend(files)
  const one = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  const id = one.acquire('/o/pass.o').id
  one.close()
  const two = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  const again = two.acquire('/o/pass.o')
  t.equal(again.id, id)
  t.equal(again.source, 'pinned')
  t.ok(two.isOurs(id))
  t.notOk(two.isOurs(9999))
})

t.test('choice errors', async (t) => {
  const f = fakeBackend(files)
  const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  t.throws(() => r.acquire('/o/two.o'), { name: 'ProgramLoadError', stage: 'select', candidates: ['xdp_first', 'xdp_second'] })
  t.throws(() => r.acquire('/o/two.o', '../../etc/passwd'), { name: 'ProgramLoadError', stage: 'select' })
  t.throws(() => r.acquire('/missing.o'), { stage: 'read', code: 'ENOENT' })
  const second = r.acquire('/o/two.o', 'xdp_second')
  t.equal(second.name, 'xdp_second')
  t.equal(f.calls.load, 1)
})

t.test('prune removes only unreferenced pins, never ones in use', async (t) => {
  const f = fakeBackend(files)
  const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  const pass = r.acquire('/o/pass.o')
  const first = r.acquire('/o/two.o', 'xdp_first')
  const second = r.acquire('/o/two.o', 'xdp_second')
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

t.test('a failed prune of one directory does not stop the others', async (t) => {
  const f = fakeBackend(files)
  const r = new ProgramRegistry({ bpffsDir: '/bpffs/x', backend: f.backend })
  r.acquire('/o/two.o', 'xdp_first').release()
  r.acquire('/o/two.o', 'xdp_second').release()
  const remove = f.backend.removePinDir
  f.backend.removePinDir = (d, n) => {
    if (n.endsWith('xdp_first')) throw new Error('ENOTEMPTY')
    remove(d, n)
  }
  const res = r.prune(new Set())
  t.equal(res.failed.length, 1)
  t.equal(res.removed.length, 1)
})
