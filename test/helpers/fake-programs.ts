/**
 * A programs backend for the daemon without libbpf or a bpffs, sharing its program descriptors with a fake kernel
 * (nltest.ts): a "load" opens /dev/null as the program's descriptor and tells the fake kernel which program that
 * descriptor is, so an RTM_SETLINK naming it attaches that program id. Object files are real files, read under the
 * real path rules (objects.ts); one XDP program per object, named by the file's first line (`xdp_pass` by default),
 * its tag derived from the bytes, as the kernel's is from the instructions.
 */
import { createHash } from 'node:crypto'
import { openSync } from 'node:fs'
import { BPF_PROG_TYPE_XDP, BPF_XDP } from '../../src/ffi/bpf-object.js'
import { Fd } from '../../src/ffi/fd.js'
import type { PinLayout } from '../../src/programs/naming.js'
import { kernelBackend, type ProgramBackend } from '../../src/programs/registry.js'
import type { FakeRtnl } from './nltest.js'

export interface FakePrograms {
  backend: ProgramBackend
  /** Pin directory name -> program id, as the bpffs would hold them. */
  pinned: Map<string, number>
  /** Program ids loaded, in order. */
  loads: number[]
  /** Descriptors still open (the daemon closes each exactly once). */
  open(): number
}

export function fakePrograms(kernel: FakeRtnl, firstId = 100): FakePrograms {
  const pinned = new Map<string, number>()
  const loads: number[] = []
  const fds = new Set<Fd>()
  let nextId = firstId
  const tags = new Map<number, string>()
  /** A descriptor for program `id`: what the fake kernel resolves an IFLA_XDP_FD or EXPECTED_FD to. */
  const fdFor = (id: number): Fd => {
    const fd = new Fd(openSync('/dev/null', 'r'), `fake prog ${id}`)
    kernel.programs.set(fd.raw, id)
    fds.add(fd)
    const close = fd.close.bind(fd)
    fd.close = () => {
      kernel.programs.delete(fd.raw)
      fds.delete(fd)
      return close()
    }
    return fd
  }
  const nameOf = (image: Buffer): string => /^\s*([A-Za-z_]\w*)/.exec(image.toString('utf8'))?.[1] ?? 'xdp_pass'
  const tagOf = (image: Buffer): string => createHash('sha1').update(image).digest('hex').slice(0, 16)
  const backend: ProgramBackend = {
    openObject: kernelBackend.openObject,
    ensureBpffs: () => ({ mounted: null }),
    checkBpffsDir: async () => [],
    inspect: (image) => [{ name: nameOf(image), sectionName: 'xdp', type: BPF_PROG_TYPE_XDP, typeName: 'xdp', expectedAttachType: BPF_XDP }],
    pinProblems: () => [],
    openPinned(pin: PinLayout) {
      const id = pinned.get(pin.name)
      if (id === undefined) return { kind: 'none' }
      return { kind: 'program', type: BPF_PROG_TYPE_XDP, program: { fd: fdFor(id), id, tag: tags.get(id)!, kernelName: pin.name.slice(17, 32), maps: new Map(), source: 'pinned' } }
    },
    tagOf: async (req) => tagOf(req.image),
    async load(req) {
      const id = nextId++
      loads.push(id)
      tags.set(id, tagOf(req.image))
      pinned.set(`${req.objectHash.slice(0, 16)}-${req.programName}`, id)
      return { fd: fdFor(id), id, tag: tagOf(req.image), kernelName: req.programName.slice(0, 15), maps: new Map(), source: 'loaded' }
    },
    listPinDirs: () => [...pinned.keys()].sort(),
    pinnedProgramId: (pin) => pinned.get(pin.name) ?? null,
    removePinDir: (_dir, name) => void pinned.delete(name),
    unpinProgram: (pin) => void pinned.delete(pin.name),
    openPin(path) {
      const id = pinned.get(path.split('/').at(-2)!)
      if (id === undefined) throw Object.assign(new Error(`bpf_obj_get: ENOENT (${path})`), { errno: 2, code: 'ENOENT' })
      return fdFor(id)
    },
    programById: (id) => (tags.has(id) ? fdFor(id) : null),
  }
  return { backend, pinned, loads, open: () => fds.size }
}
