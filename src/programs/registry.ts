/**
 * ProgramRegistry: one kernel program per (object content, program name), shared by reference count, pinned under
 * a BPF filesystem so that it and its maps outlive the daemon and are found again by the next one.
 *
 * acquire(objectPath, programName?)
 *   1. opens the object file under the path rules and reads it in chunks, hashing as it reads (objects.ts): the
 *      content, not the path, names the program, and the bytes hashed are the bytes loaded (bpf_object__open_mem).
 *      A version of the file (device, inode, size, mtime, ctime) read before is not read again when its program is
 *      held already: many entries naming one object read it once;
 *   2. picks the program: by name, or the object's only XDP program (otherwise an error listing the candidates);
 *   3. in this process already: shares it (refcount);
 *   4. makes sure the bpffs directory exists, is on a bpffs and may be trusted (bpffs.ts checkBpffsDir: refused
 *      otherwise, never fixed);
 *   5. pinned at <bpffs>/<hash16>-<program>/prog (an earlier run, another process): adopts it only when the pin
 *      directory and its pins pass bpffs.ts pinProblems and the program is provably the object's (kernel.ts
 *      pinMismatch: type, name and the kernel's tag, learned by loading the object's program once without a pin).
 *      Anything else there is unpinned (never followed) with a warning naming it, and replaced by a fresh load; an
 *      XDP program found so is still ours to move links off (not to attach) until the next prune;
 *   6. otherwise loads it with libbpf, reusing maps pinned in <pin dir>/maps/ (so blocklists and counters survive a
 *      reload of the same object) and pinning the rest, then pins the program.
 * The descriptor is an Fd closed exactly once, when the last lease is released; the pin keeps the program alive.
 *
 * All I/O goes through a ProgramBackend (the kernel by default): that is the seam tests use, not an interface over
 * the registry, so the sharing, trust and pruning logic is the real one in test/programs/registry.test.ts and in the
 * daemon's root-free unit test (test/helpers/fake-programs.ts).
 */
import { resolve } from 'node:path'
import { walkOptions, type PathFinding, type WalkOptions } from '../config/secure-path.js'
import { SyscallError } from '../ffi/errno.js'
import type { Fd } from '../ffi/fd.js'
import type { LibbpfSink } from '../ffi/libbpf-log.js'
import { xdpPrograms, type XdpState } from '../rtnl/xdp.js'
import { BPF_PROG_TYPE_XDP, type ProgramSpec } from '../ffi/bpf-object.js'
import { objGet, progFdById } from '../ffi/bpf-fd.js'
import {
  checkBpffsDir,
  ensureBpffs,
  listPinDirs,
  pinProblems,
  removePinDir,
  unpinProgram,
  type EnsureBpffsResult,
  type PinProblem,
} from './bpffs.js'
import { ProgramLoadError, hintFor } from './errors.js'
import {
  checkProgramName,
  inspectObject,
  loadProgram,
  loadUnpinned,
  objectNameOf,
  openPinned,
  pinMismatch,
  pinnedProgramId,
  type KernelProgram,
  type LoadRequest,
  type Pinned,
  type UnpinnedLoad,
} from './kernel.js'
import { DEFAULT_LOG_LINES } from './log.js'
import { DEFAULT_BPFFS_DIR, pinDirName, pinLayout, type PinLayout } from './naming.js'
import { ObjectFiles, openObjectFile, type ObjectFile } from './objects.js'
import { describeSelectError, isInterfaceXdp, selectProgram } from './select.js'

export interface LoadedProgram {
  /** The kernel's program id (stable while the program exists; what IFLA_XDP_PROG_ID reports). */
  readonly id: number
  /** The kernel's tag, 16 hex digits. */
  readonly tag: string
  /** The program's name in the object (ELF symbol). */
  readonly name: string
  /** The kernel's name for it: `name` cut to 15 characters. */
  readonly kernelName: string
  /** Shared by every lease of this program: do not close it, release the lease. */
  readonly fd: Fd
  /** The path it was first acquired from (other paths with the same bytes share it). */
  readonly objectPath: string
  /** Hex SHA-256 of the object file. */
  readonly objectHash: string
  /** `<hash16>-<program>`: what prune's `keep` set holds. */
  readonly pinDirName: string
  readonly pinDir: string
  /** `<pinDir>/prog` */
  readonly pinPath: string
  /** Map name -> pin path, for the object's own maps. */
  readonly maps: ReadonlyMap<string, string>
  /** `loaded` now, or found `pinned` by an earlier load. */
  readonly source: 'loaded' | 'pinned'
}

/** One holder's share of a LoadedProgram. release() gives it back; calling it again does nothing. */
export interface ProgramLease extends LoadedProgram {
  release(): void
}

export interface PruneResult {
  removed: string[]
  kept: string[]
  failed: { dir: string; error: Error }[]
}

/** The I/O a registry does; the default is the kernel (libbpf, bpffs, node:fs). */
export interface ProgramBackend {
  /** Opens an object file under the path rules (objects.ts openObjectFile); throws ProgramLoadError. */
  openObject(path: string, rules: WalkOptions): Promise<ObjectFile>
  ensureBpffs(dir: string): EnsureBpffsResult
  /** What is wrong with the bpffs directory (bpffs.ts checkBpffsDir); empty when it may be used. */
  checkBpffsDir(dir: string, rules: WalkOptions): Promise<PathFinding[]>
  inspect(image: Buffer, objectPath: string, objectName: string, logLines: number): ProgramSpec[]
  /** What is wrong with a pin directory and the pins in it (bpffs.ts pinProblems). */
  pinProblems(pin: PinLayout, rules: WalkOptions): PinProblem[]
  openPinned(pin: PinLayout, programName: string, objectPath: string): Pinned
  /** The kernel's tag of the object's program, loaded without a pin and let go (kernel.ts loadUnpinned). */
  tagOf(req: UnpinnedLoad): Promise<string>
  /** Asynchronous: libbpf loads on a worker thread (BpfObject.loadAsync). */
  load(req: LoadRequest): Promise<KernelProgram>
  listPinDirs(bpffsDir: string): string[]
  pinnedProgramId(pin: PinLayout, rules: WalkOptions): number | null
  removePinDir(bpffsDir: string, dirName: string): void
  unpinProgram(pin: PinLayout): void
  /** BPF_OBJ_GET of a pin; BPF_PROG_GET_FD_BY_ID (null: no such program). Both throw SyscallError otherwise. */
  openPin(path: string): Fd
  programById(id: number): Fd | null
}

export const kernelBackend: ProgramBackend = {
  openObject: openObjectFile,
  ensureBpffs,
  checkBpffsDir,
  inspect: inspectObject,
  pinProblems,
  openPinned,
  tagOf: async (req) => (await loadUnpinned(req)).tag,
  load: loadProgram,
  listPinDirs,
  pinnedProgramId,
  removePinDir,
  unpinProgram,
  openPin: objGet,
  programById: progFdById,
}

/** Where the registry's warnings go (a pino Logger is one). */
export interface WarningSink {
  warn(fields: Record<string, unknown>, message: string): void
}

export interface ProgramRegistryOptions {
  /** Directory on (or to be mounted as) a BPF filesystem. Default /sys/fs/bpf/xdplinkd. */
  bpffsDir?: string
  backend?: ProgramBackend
  /** Skip the ownership and mode checks on object paths, the bpffs directory and the pins (CLI: --insecure-paths). */
  insecurePaths?: boolean
  /** Lines of libbpf/verifier log a ProgramLoadError keeps. Default 50. */
  logLines?: number
  /** Receives every libbpf message during loads (e.g. for a debug log). */
  libbpfLog?: LibbpfSink
  /** Told about pins found untrustworthy and replaced. */
  log?: WarningSink
  /**
   * Told where a bpffs was mounted for the pin directory: `again` is true when one had been there before and is gone
   * (unmounted under the running daemon), so the pins made before went with it.
   */
  onBpffsMount?: (where: string, again: boolean) => void
  /**
   * Told just before the kernel is asked to load a program (a fresh load, or the load without a pin that proves a
   * pinned program is the object's), its file read and checked: the load runs on a worker thread from here
   * (BpfObject.loadAsync), and the daemon dumps the links meanwhile (Daemon.open).
   */
  onLoading?: () => void
}

interface Entry {
  key: string
  program: LoadedProgram
  refs: number
}

export class ProgramRegistry {
  readonly bpffsDir: string
  /** The object files, read under this registry's path rules; the object watch (watch.ts) reads through it too. */
  readonly objects: ObjectFiles
  readonly #backend: ProgramBackend
  readonly #rules: WalkOptions
  readonly #logLines: number
  readonly #libbpfLog: LibbpfSink | undefined
  readonly #onLoading: () => void
  readonly #log: WarningSink | undefined
  readonly #onBpffsMount: ((where: string, again: boolean) => void) | undefined
  readonly #entries = new Map<string, Entry>()
  /** Object hash -> the program picked when none was named: the choice depends on the bytes only. */
  readonly #defaultNames = new Map<string, string>()
  /** `<hash>:<program>` -> the kernel's tag of that program: the same bytes give the same tag on this kernel. */
  readonly #tags = new Map<string, string>()
  /**
   * XDP programs found pinned under our names in a directory that passed the checks, but not provably the object's
   * (another tag: a pin left by another libbpf, or put there by root), unpinned: still ours to move links off, not
   * ours to attach. Their descriptors are kept until the next prune, so that a link still running one is replaced
   * atomically (IFLA_XDP_EXPECTED_FD) rather than left as a `conflict`.
   */
  readonly #displaced = new Map<number, { fd: Fd; dir: string }>()
  #bpffs: EnsureBpffsResult | undefined
  #closed = false
  /** Settles when the acquire asked for last is over (acquire() says why they run one at a time). */
  #acquiring: Promise<unknown> = Promise.resolve()

  constructor(opts: ProgramRegistryOptions = {}) {
    this.bpffsDir = resolve(opts.bpffsDir ?? DEFAULT_BPFFS_DIR)
    this.#backend = opts.backend ?? kernelBackend
    this.#rules = walkOptions({ insecurePaths: opts.insecurePaths })
    this.#logLines = opts.logLines ?? DEFAULT_LOG_LINES
    this.#libbpfLog = opts.libbpfLog
    this.#onLoading = opts.onLoading ?? (() => {})
    this.#log = opts.log
    this.#onBpffsMount = opts.onBpffsMount
    this.objects = new ObjectFiles((path) => this.#backend.openObject(path, this.#rules))
  }

  /** Where this registry mounted a bpffs (null: it found one), once known. */
  get bpffsMount(): string | null | undefined {
    return this.#bpffs?.mounted
  }

  /** Programs held by this process. */
  get size(): number {
    return this.#entries.size
  }

  /**
   * A lease on the program of an object file (the file's `programName`, or its only XDP program): one held already
   * for the same bytes and name, one pinned by an earlier run that is provably the object's, or a fresh load.
   * Acquires run one at a time, in the order asked: a load is asynchronous (libbpf on a worker thread), and two at
   * once could load the same program twice, and the first to end would turn libbpf's printing back on under the
   * other (withoutLibbpfLog).
   */
  acquire(objectPath: string, programName?: string): Promise<ProgramLease> {
    const next = this.#acquiring.then(() => this.#acquire(objectPath, programName))
    this.#acquiring = next.catch(() => {})
    return next
  }

  async #acquire(objectPath: string, programName?: string): Promise<ProgramLease> {
    if (this.#closed) throw new Error('ProgramRegistry: acquire after close')
    checkProgramName(objectPath, programName)
    const file = await this.objects.open(objectPath)
    let image: Buffer
    let hash: string
    try {
      // This version of the file was read before, and its program is held: nothing to read.
      const shared = file.knownHash !== null ? this.#share(file.knownHash, programName) : null
      if (shared) return shared
      ;({ bytes: image, hash } = await file.read())
    } finally {
      await file.close()
    }
    const objectName = objectNameOf(objectPath)
    const name = programName ?? this.#defaultNames.get(hash) ?? this.#pick(image, objectPath, objectName, hash)
    // Learned now while the bytes are at hand (ELF parsing only), so that an entry naming no program shares without
    // reading the file again; an object with several XDP programs has no default, and that is no error here.
    if (!this.#defaultNames.has(hash)) this.#pick(image, objectPath, objectName, hash, true)
    const shared = this.#share(hash, name)
    if (shared) return shared
    await this.#ensureBpffs(objectPath, name)
    if (this.#closed) throw new Error('ProgramRegistry: acquire after close')
    const key = `${hash}:${name}`
    const again = this.#share(hash, name)
    if (again) return again
    const pin = pinLayout(this.bpffsDir, pinDirName(hash, name))
    const req: LoadRequest = {
      image,
      objectPath,
      objectName,
      objectHash: hash,
      programName: name,
      bpffsDir: this.bpffsDir,
      logLines: this.#logLines,
      log: this.#libbpfLog,
    }
    let k = await this.#adopt(pin, req)
    if (!k) {
      this.#onLoading()
      k = await this.#backend.load(req)
    }
    if (this.#closed) {
      // Closed while it loaded (a stop during start-up): its pin stays for the next run, as the others' do.
      k.fd.close()
      throw new Error('ProgramRegistry: acquire after close')
    }
    if (k.source === 'loaded') this.#tags.set(key, k.tag)
    const entry: Entry = {
      key,
      refs: 1,
      program: Object.freeze({
        id: k.id,
        tag: k.tag,
        name,
        kernelName: k.kernelName,
        fd: k.fd,
        objectPath,
        objectHash: hash,
        pinDirName: pin.name,
        pinDir: pin.dir,
        pinPath: pin.prog,
        maps: k.maps,
        source: k.source,
      }),
    }
    this.#entries.set(key, entry)
    return this.#lease(entry)
  }

  /** A new lease on the program held for these bytes and this name (or the name picked for them before). */
  #share(hash: string, programName: string | undefined): ProgramLease | null {
    const name = programName ?? this.#defaultNames.get(hash)
    const held = name !== undefined ? this.#entries.get(`${hash}:${name}`) : undefined
    if (!held) return null
    held.refs++
    return this.#lease(held)
  }

  /**
   * The program pinned for this content and name, if it may be adopted; otherwise (nothing there, or something
   * that is not provably ours, which is then unpinned with a warning) null, for a fresh load.
   */
  async #adopt(pin: PinLayout, req: LoadRequest): Promise<KernelProgram | null> {
    const problems = this.#backend.pinProblems(pin, this.#rules)
    if (problems.length > 0) {
      const whole = problems.some((p) => p.whole)
      this.#replacing(whole ? pin.dir : pin.prog, problems.map((p) => p.text).join('; '), req)
      try {
        if (whole) this.#backend.removePinDir(this.bpffsDir, pin.name)
        else this.#backend.unpinProgram(pin)
      } catch (e) {
        throw new ProgramLoadError({
          stage: 'pin',
          objectPath: req.objectPath,
          program: req.programName,
          detail: `cannot remove the untrusted ${whole ? `pin directory ${pin.dir}` : `pin ${pin.prog}`} (${problems.map((p) => p.text).join('; ')}): ${(e as Error).message}`,
          unsafe: true,
          hint: 'check who made it, then remove it by hand',
          cause: e,
        })
      }
      return null
    }
    const found = this.#backend.openPinned(pin, req.programName, req.objectPath)
    if (found.kind === 'none') return null
    let why: string | null
    try {
      why = found.kind === 'other' ? `it is ${found.what}` : await pinMismatch(found, req.programName, () => this.#tagOf(req))
    } catch (e) {
      if (found.kind === 'program') found.program.fd.close()
      throw e
    }
    if (found.kind === 'program' && why === null) return found.program
    if (found.kind === 'program' && found.type === BPF_PROG_TYPE_XDP) this.#displaced.set(found.program.id, { fd: found.program.fd, dir: pin.name })
    else if (found.kind === 'program') found.program.fd.close()
    this.#replacing(pin.prog, why ?? '', req)
    this.#backend.unpinProgram(pin)
    return null
  }

  #replacing(path: string, why: string, req: LoadRequest): void {
    this.#log?.warn(
      { pin: path, object: req.objectPath, program: req.programName },
      `not adopting ${path} for program ${req.programName} of ${req.objectPath}: ${why}; unpinned and replaced by a fresh load`,
    )
  }

  /** The kernel's tag of the object's program: learned once per content and name, by a load without a pin. */
  async #tagOf(req: LoadRequest): Promise<string> {
    const key = `${req.objectHash}:${req.programName}`
    let tag = this.#tags.get(key)
    if (tag === undefined) {
      this.#onLoading()
      tag = await this.#backend.tagOf({
        image: req.image,
        objectPath: req.objectPath,
        objectName: req.objectName,
        programName: req.programName,
        logLines: req.logLines,
        log: req.log,
      })
      this.#tags.set(key, tag)
    }
    return tag
  }

  #pick(image: Buffer, objectPath: string, objectName: string, hash: string, quiet = false): string {
    const programs = this.#backend.inspect(image, objectPath, objectName, this.#logLines)
    const chosen = selectProgram(programs)
    if (!chosen.ok) {
      if (quiet) return ''
      throw new ProgramLoadError({
        stage: 'select',
        objectPath,
        detail: describeSelectError(chosen.error),
        candidates: programs.filter(isInterfaceXdp).map((p) => p.name),
      })
    }
    this.#defaultNames.set(hash, chosen.value.name)
    return chosen.value.name
  }

  /**
   * Checked before every program this registry does not hold yet, not once: a bpffs can be unmounted under a
   * running daemon (a cleanup script, another tool), and libbpf would then refuse every pin of a reload with
   * "not on BPF FS" until a restart. One statfs per new program, and the walk from / to the directory: a mount made
   * over it since, or a chmod, is judged before anything is adopted from it or pinned in it.
   */
  async #ensureBpffs(objectPath: string, program: string): Promise<void> {
    let r: EnsureBpffsResult
    try {
      r = this.#backend.ensureBpffs(this.bpffsDir)
    } catch (e) {
      const err = e instanceof SyscallError ? e : undefined
      throw new ProgramLoadError({
        stage: 'bpffs',
        objectPath,
        program,
        detail: `no BPF filesystem at ${this.bpffsDir}: ${(e as Error).message}`,
        errno: err?.errno,
        hint: hintFor('bpffs', err?.code),
        cause: e,
      })
    }
    const again = this.#bpffs !== undefined
    this.#bpffs ??= r
    if (r.mounted !== null) this.#onBpffsMount?.(r.mounted, again)
    const findings = await this.#backend.checkBpffsDir(this.bpffsDir, this.#rules)
    if (findings.length > 0) {
      const unsafe = findings.some((f) => f.unsafe)
      throw new ProgramLoadError({
        stage: 'bpffs',
        objectPath,
        program,
        detail: `refusing the pin directory ${this.bpffsDir} (bpffs): ${findings.map((f) => f.text).join('; ')}`,
        unsafe,
        hint: unsafe
          ? `it must be owned by root and writable by its owner only, as are its parents (e.g. chown root: ${this.bpffsDir} && chmod 0700 ${this.bpffsDir}), or start xdplinkd with --insecure-paths`
          : undefined,
      })
    }
  }

  #lease(entry: Entry): ProgramLease {
    let released = false
    return Object.freeze({
      ...entry.program,
      release: () => {
        if (released) return
        released = true
        this.#release(entry)
      },
    })
  }

  #release(entry: Entry): void {
    if (this.#entries.get(entry.key) !== entry) return // closed, or already gone
    if (--entry.refs > 0) return
    this.#entries.delete(entry.key)
    entry.program.fd.close()
  }

  /**
   * Removes the pin directories that neither a program held here nor `keep` uses. `keep` may be given as a function,
   * called only when some directory is not held here: the daemon's (daemon.ts #prune) opens every pin to learn
   * which programs still run on a link, and at a start-up over the same config every directory is held.
   */
  prune(keep: ReadonlySet<string> | (() => ReadonlySet<string>)): PruneResult {
    const inUse = new Set([...this.#entries.values()].map((e) => e.program.pinDirName))
    const result: PruneResult = { removed: [], kept: [], failed: [] }
    const dirs = this.#backend.listPinDirs(this.bpffsDir)
    // Asked before the displaced programs go below: what it learns may still name them.
    const keeping = typeof keep !== 'function' ? keep : dirs.every((d) => inUse.has(d)) ? new Set<string>() : keep()
    // Links have been moved off the displaced programs by now (the daemon prunes once the reconciler is idle).
    for (const d of this.#displaced.values()) d.fd.close()
    this.#displaced.clear()
    for (const dir of dirs) {
      if (keeping.has(dir) || inUse.has(dir)) {
        result.kept.push(dir)
        continue
      }
      try {
        this.#backend.removePinDir(this.bpffsDir, dir)
        result.removed.push(dir)
      } catch (e) {
        result.failed.push({ dir, error: e as Error })
      }
    }
    return result
  }

  ownedPrograms(): Map<number, string> {
    const owned = new Map<number, string>()
    for (const e of this.#entries.values()) owned.set(e.program.id, e.program.pinDirName)
    for (const [id, d] of this.#displaced) owned.set(id, d.dir)
    for (const dir of this.#backend.listPinDirs(this.bpffsDir)) {
      const id = this.#backend.pinnedProgramId(pinLayout(this.bpffsDir, dir), this.#rules)
      if (id !== null) owned.set(id, dir)
    }
    return owned
  }

  ownedProgramIds(): Set<number> {
    return new Set(this.ownedPrograms().keys())
  }

  isOurs(progId: number): boolean {
    for (const e of this.#entries.values()) if (e.program.id === progId) return true
    return this.#displaced.has(progId) || this.ownedPrograms().has(progId)
  }

  heldFd(progId: number): Fd | null {
    for (const e of this.#entries.values()) if (e.program.id === progId) return e.program.fd
    return this.#displaced.get(progId)?.fd ?? null
  }

  /**
   * Opens an attached program for IFLA_XDP_EXPECTED_FD. One this process still holds (the previous config's, during
   * a reload) is given by its own descriptor: its pin may be gone with an unmounted bpffs. Another of ours (`owned`:
   * ownedPrograms) is opened from its pin (BPF_OBJ_GET needs only access to the bpffs), so replacing or detaching
   * our own programs works without CAP_SYS_ADMIN; only a foreign one (`replace-foreign`) is opened by id, which
   * needs it.
   */
  opener(owned: ReadonlyMap<number, string>): (id: number) => { fd: number; close(): void } | null {
    return (id) => {
      const held = this.heldFd(id)
      if (held) return { fd: held.raw, close: () => {} }
      const dir = owned.get(id)
      const fd = dir ? this.#backend.openPin(pinLayout(this.bpffsDir, dir).prog) : this.#backend.programById(id)
      return fd ? { fd: fd.raw, close: () => fd.close() } : null
    }
  }

  close(): void {
    this.#closed = true
    for (const e of this.#entries.values()) e.program.fd.close()
    this.#entries.clear()
    for (const d of this.#displaced.values()) d.fd.close()
    this.#displaced.clear()
  }
}

/**
 * The pin directories prune must leave: those of the programs in use (`programs`), and those of our programs that a
 * link still runs in any mode (a link in error, or not matched any more and not yet detached, may still run an
 * old one; removing its pin would make it look foreign to the next daemon). `owned` is ownedPrograms().
 */
export function pinsToKeep(
  programs: Iterable<{ pinDirName: string }>,
  links: Iterable<{ xdp: XdpState | null }>,
  owned: ReadonlyMap<number, string>,
): Set<string> {
  const keep = new Set([...programs].map((p) => p.pinDirName))
  for (const l of links) {
    for (const { progId } of xdpPrograms(l.xdp)) {
      const dir = owned.get(progId)
      if (dir) keep.add(dir)
    }
  }
  return keep
}
