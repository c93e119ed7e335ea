/**
 * Loading a program with libbpf and opening a pinned one. Thin I/O over src/ffi/bpf-object.ts and bpf-fd.ts; every
 * failure becomes a ProgramLoadError carrying libbpf's and the verifier's last lines.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { ERRNO, SyscallError } from '../ffi/errno.js'
import { Fd } from '../ffi/fd.js'
import { captureLibbpfLog, type LibbpfSink } from '../ffi/libbpf-log.js'
import { BPF_PROG_TYPE_XDP, BpfObject, type BpfProgram, type ProgramSpec } from '../ffi/bpf-object.js'
import { bpfFdKind, objGet, progInfo } from '../ffi/bpf-fd.js'
import { BPF_OBJ_NAME_LEN } from '../ffi/structs.js'
import { listMapPins, pinExists, removeEmptyPinDir } from './bpffs.js'
import { ProgramLoadError, hintFor, type ProgramLoadStage } from './errors.js'
import { DEFAULT_LOG_LINES, LogTail } from './log.js'
import { isPinnableMapName, isValidProgramName, pinDirName, pinLayout, type PinLayout } from './naming.js'
import { describeSelectError, isInterfaceXdp, selectProgram } from './select.js'

/** A program in the kernel, held by a descriptor we own. */
export interface KernelProgram {
  fd: Fd
  id: number
  /** The kernel's tag, hex */
  tag: string
  /** The kernel's (possibly shortened) name */
  kernelName: string
  /** Pinned maps by name: the object's own maps (not .data/.rodata/.bss) */
  maps: Map<string, string>
  /** `loaded`: verified and loaded now; `pinned`: found pinned by an earlier load (maybe another process) */
  source: 'loaded' | 'pinned'
}

export interface LoadRequest {
  image: Buffer
  objectPath: string
  /** The name libbpf gives the object: messages and internal map names */
  objectName: string
  /** Full hex SHA-256 of `image` */
  objectHash: string
  programName: string
  bpffsDir: string
  logLines: number
  /** Also receives every libbpf message (e.g. the daemon's debug log). */
  log?: LibbpfSink | undefined
}

function errnoOf(e: unknown): number | undefined {
  return e instanceof SyscallError ? e.errno : undefined
}

function wrap(
  e: unknown,
  stage: ProgramLoadStage,
  objectPath: string,
  program: string | undefined,
  what: string,
  tail?: LogTail,
): ProgramLoadError {
  if (e instanceof ProgramLoadError) return e
  const errno = errnoOf(e)
  const err = e instanceof SyscallError ? e : undefined
  const reason = tail?.verifierReason
  const detail = reason
    ? `rejected by the verifier: ${reason}`
    : `${what}: ${tail?.firstWarning ?? (err ? err.message : String((e as Error)?.message ?? e))}`
  return new ProgramLoadError({
    stage,
    objectPath,
    program,
    detail,
    errno,
    code: err?.code,
    log: tail?.lines(),
    verifierReason: reason,
    hint: reason ? undefined : hintFor(stage, err?.code, tail?.lines()),
    cause: e,
  })
}

/** The name libbpf gives an object read from `objectPath` (messages, internal map names): its base name, no `.o`. */
export function objectNameOf(objectPath: string): string {
  return basename(objectPath).replace(/\.(bpf\.)?o$/, '')
}

/**
 * The object file's bytes, once the program name (if any) is known to be a C identifier. Shared by the registry
 * (through its backend's `read`) and loadForCheck, so both refuse the same things with the same errors.
 */
export function readObject(objectPath: string, programName: string | undefined, read: (path: string) => Buffer = readFileSync): Buffer {
  if (programName !== undefined && !isValidProgramName(programName)) {
    throw new ProgramLoadError({
      stage: 'select',
      objectPath,
      detail: `${JSON.stringify(programName)} is not a program name (a C identifier)`,
    })
  }
  try {
    return read(objectPath)
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).errno
    throw new ProgramLoadError({
      stage: 'read',
      objectPath,
      program: programName,
      detail: `cannot read the object file: ${(e as Error).message}`,
      errno: typeof errno === 'number' ? -errno : undefined,
      cause: e,
    })
  }
}

/** The program to load (`wanted`, or the only XDP one), with autoload switched off for every other program. */
function chooseProgram(obj: BpfObject, objectPath: string, wanted: string | undefined): BpfProgram {
  const programs = obj.programs()
  const chosen = selectProgram(programs, wanted)
  if (!chosen.ok) {
    throw new ProgramLoadError({
      stage: 'select',
      objectPath,
      program: wanted,
      detail: describeSelectError(chosen.error),
      candidates: programs.filter(isInterfaceXdp).map((p) => p.name),
    })
  }
  const prog = programs.find((p) => p.name === chosen.value.name)!
  for (const p of programs) p.setAutoload(p === prog)
  return prog
}

/** The programs in an object image (ELF parsing only: nothing reaches the kernel). */
export function inspectObject(image: Buffer, objectPath: string, objectName: string, logLines: number): ProgramSpec[] {
  const tail = new LogTail(logLines)
  let obj: BpfObject | undefined
  try {
    obj = captureLibbpfLog((m) => tail.add(m), () => BpfObject.open(image, objectName))
    return obj.programs().map((p) => ({
      name: p.name,
      sectionName: p.sectionName,
      type: p.type,
      typeName: p.typeName,
      expectedAttachType: p.expectedAttachType,
    }))
  } catch (e) {
    throw wrap(e, 'open', objectPath, undefined, 'libbpf cannot read it', tail)
  } finally {
    obj?.close()
  }
}

/**
 * Loads one program of an object, its maps pinned under `<pin dir>/maps/` (reusing those already pinned there, so
 * map contents survive a reload), then pins the program at `<pin dir>/prog`. Only the chosen program is loaded:
 * autoload is switched off for the others. The program pin is made last, so a directory with a `prog` pin is a
 * complete one; a crash before that leaves maps that the next load reuses.
 */
export function loadProgram(req: LoadRequest): KernelProgram {
  const tail = new LogTail(req.logLines)
  const sink: LibbpfSink = (m) => {
    tail.add(m)
    req.log?.(m)
  }
  const name = req.programName
  let obj: BpfObject
  try {
    obj = captureLibbpfLog(sink, () => BpfObject.open(req.image, req.objectName))
  } catch (e) {
    throw wrap(e, 'open', req.objectPath, name, 'libbpf cannot read it', tail)
  }
  try {
    const prog = chooseProgram(obj, req.objectPath, name)

    const pin = pinLayout(req.bpffsDir, pinDirName(req.objectHash, name))
    const maps = new Map<string, string>()
    try {
      mkdirSync(pin.dir, { recursive: true, mode: 0o700 })
      for (const m of obj.maps()) {
        if (m.internal || !isPinnableMapName(m.name)) continue
        if (maps.size === 0) mkdirSync(pin.mapsDir, { recursive: true, mode: 0o700 })
        m.setPinPath(pin.map(m.name))
        maps.set(m.name, pin.map(m.name))
      }
    } catch (e) {
      throw wrap(e, 'pin', req.objectPath, name, `cannot prepare ${pin.dir}`, tail)
    }

    try {
      captureLibbpfLog(sink, () => obj.load())
    } catch (e) {
      // libbpf unpinned the maps it had pinned (not the reused ones); drop the directories if nothing is left.
      removeEmptyPinDir(pin)
      throw wrap(e, 'load', req.objectPath, name, 'load failed', tail)
    }

    try {
      prog.pin(pin.prog)
    } catch (e) {
      // Another process pinned the same content and program first: theirs is as good as ours.
      if (errnoOf(e) === ERRNO.EEXIST) {
        const theirs = openPinned(pin, name, req.objectPath)
        if (theirs) return theirs
      }
      throw wrap(e, 'pin', req.objectPath, name, `cannot pin at ${pin.prog}`, tail)
    }
    // Our own descriptor from the pin: bpf_object__close closes libbpf's.
    const fd = objGet(pin.prog)
    try {
      const info = progInfo(fd)
      return { fd, id: info.id, tag: info.tag, kernelName: info.name, maps, source: 'loaded' }
    } catch (e) {
      fd.close()
      throw wrap(e, 'pin', req.objectPath, name, 'cannot read the loaded program back', tail)
    }
  } finally {
    obj.close()
  }
}

/**
 * Opens the program pinned in `pin`, or null when nothing is pinned there. What is pinned must be an XDP program
 * whose kernel name matches: the directory name ties it to the object's content and the program's name, so this
 * guards against a pin replaced by hand, not against a different build (that gets another directory).
 */
export function openPinned(pin: PinLayout, programName: string, objectPath: string): KernelProgram | null {
  if (!pinExists(pin.prog)) return null
  let fd: Fd
  try {
    fd = objGet(pin.prog)
  } catch (e) {
    throw wrap(e, 'pin', objectPath, programName, `cannot open ${pin.prog}`)
  }
  try {
    const kind = bpfFdKind(fd)
    if (kind !== 'prog') throw new Error(`${pin.prog} is a BPF ${kind}, not a program`)
    const info = progInfo(fd)
    const expected = programName.slice(0, BPF_OBJ_NAME_LEN - 1)
    if (info.type !== BPF_PROG_TYPE_XDP) throw new Error(`${pin.prog} is a program of type ${info.type}, not XDP`)
    // Kernels before 4.15 have no program names: an empty one is no mismatch.
    if (info.name !== '' && info.name !== expected) throw new Error(`${pin.prog} is program ${info.name}, not ${expected}`)
    const maps = new Map<string, string>()
    for (const m of listMapPins(pin.mapsDir)) maps.set(m, pin.map(m))
    return { fd, id: info.id, tag: info.tag, kernelName: info.name, maps, source: 'pinned' }
  } catch (e) {
    fd.close()
    throw wrap(e, 'pin', objectPath, programName, 'unusable pin')
  }
}

/** The id of the program pinned in a directory, or null if there is none or it is not a program. */
export function pinnedProgramId(pin: PinLayout): number | null {
  if (!pinExists(pin.prog)) return null
  let fd: Fd | undefined
  try {
    fd = objGet(pin.prog)
    return bpfFdKind(fd) === 'prog' ? progInfo(fd).id : null
  } catch {
    return null
  } finally {
    fd?.close()
  }
}

/** What `xdplinkd check` learns about a program it loaded and let go. */
export interface CheckedProgram {
  /** The program's name in the object (the one named, or the object's only XDP program). */
  name: string
  /** The kernel's tag, hex: the same tag a daemon's load of these bytes gets (map fds are zeroed before hashing). */
  tag: string
  /** The kernel's (possibly shortened) name */
  kernelName: string
  /** Instructions the verifier processed (fdinfo `verified_insns`, Linux 5.16); null where the kernel does not say. */
  verifiedInsns: number | null
}

export interface CheckLoadOptions {
  /** Lines of libbpf/verifier log a ProgramLoadError keeps. Default 50. */
  logLines?: number
  /** Also receives every libbpf message. */
  log?: LibbpfSink | undefined
}

/**
 * Loads one program of an object file exactly as far as the daemon would (ELF parsing, program choice, map
 * creation, the verifier), reads its tag, and closes everything: no pin, no bpffs needed, nothing left in the
 * kernel once it returns (the program and its maps die with the object's descriptors). Throws ProgramLoadError.
 *
 * The maps are created fresh, so this cannot tell whether maps pinned by an earlier run still match the object
 * (the daemon reuses those: loadProgram); it checks the object, not the state of a bpffs.
 */
export function loadForCheck(objectPath: string, programName?: string, opts: CheckLoadOptions = {}): CheckedProgram {
  const image = readObject(objectPath, programName)
  const tail = new LogTail(opts.logLines ?? DEFAULT_LOG_LINES)
  const sink: LibbpfSink = (m) => {
    tail.add(m)
    opts.log?.(m)
  }
  let obj: BpfObject
  try {
    obj = captureLibbpfLog(sink, () => BpfObject.open(image, objectNameOf(objectPath)))
  } catch (e) {
    throw wrap(e, 'open', objectPath, programName, 'libbpf cannot read it', tail)
  }
  try {
    const prog = chooseProgram(obj, objectPath, programName)
    const name = prog.name
    // A map declared with __uint(pinning, LIBBPF_PIN_BY_NAME) gets a pin path at open (libbpf.c,
    // bpf_object__init_user_btf_map -> build_map_pin_path under pin_root_path, /sys/fs/bpf by default), and load
    // would pin it there, or fail where that is no bpffs. bpf_map__set_pin_path(map, NULL) clears it (frees
    // map->pin_path); the binding is typed for a string, and koffi passes null as a NULL `const char *`.
    for (const m of obj.maps()) m.setPinPath(null as unknown as string)
    try {
      captureLibbpfLog(sink, () => obj.load())
    } catch (e) {
      throw wrap(e, 'load', objectPath, name, 'load failed', tail)
    }
    // Borrowed: libbpf owns this descriptor and bpf_object__close closes it, so this Fd is never closed.
    const fd = new Fd(prog.fd(), `bpf prog ${name}`)
    let info
    try {
      info = progInfo(fd)
    } catch (e) {
      throw wrap(e, 'load', objectPath, name, 'cannot read the loaded program back', tail)
    }
    return { name, tag: info.tag, kernelName: info.name, verifiedInsns: verifiedInsns(fd.raw) }
  } finally {
    obj.close()
  }
}

/** `verified_insns` from a program descriptor's fdinfo (kernel/bpf/syscall.c, bpf_prog_show_fdinfo; Linux 5.16). */
function verifiedInsns(fd: number): number | null {
  try {
    const m = /^verified_insns:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}
