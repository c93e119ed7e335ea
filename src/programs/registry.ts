/**
 * ProgramRegistry: one kernel program per (object content, program name), shared by reference count, pinned under
 * a BPF filesystem so that it and its maps outlive the daemon and are found again by the next one.
 *
 * acquire(objectPath, programName?)
 *   1. reads the object file and hashes its bytes (SHA-256): the content, not the path, names the program, and the
 *      bytes hashed are the bytes loaded (bpf_object__open_mem), so a file replaced mid-way cannot mix versions;
 *   2. picks the program: by name, or the object's only XDP program (otherwise an error listing the candidates);
 *   3. in this process already: shares it (refcount);
 *   4. pinned at <bpffs>/<hash16>-<program>/prog (an earlier run, another process): opens the pin and uses it,
 *      with the maps pinned next to it;
 *   5. otherwise loads it with libbpf, reusing maps pinned in <pin dir>/maps/ (so blocklists and counters survive a
 *      reload of the same object) and pinning the rest, then pins the program.
 * The descriptor is an Fd closed exactly once, when the last lease is released; the pin keeps the program alive.
 *
 * All I/O goes through a ProgramBackend (the kernel by default), so the sharing and pruning logic runs in tests
 * without root and the daemon depends on the Programs interface, not on libbpf.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { SyscallError } from '../ffi/errno.js'
import type { Fd } from '../ffi/fd.js'
import type { LibbpfSink } from '../ffi/libbpf-log.js'
import type { ProgramSpec } from '../ffi/bpf-object.js'
import { ensureBpffs, listPinDirs, removePinDir, type EnsureBpffsResult } from './bpffs.js'
import { ProgramLoadError, hintFor } from './errors.js'
import {
  inspectObject,
  loadProgram,
  objectNameOf,
  openPinned,
  pinnedProgramId,
  readObject,
  type KernelProgram,
  type LoadRequest,
} from './kernel.js'
import { DEFAULT_LOG_LINES } from './log.js'
import { DEFAULT_BPFFS_DIR, pinDirName, pinLayout, type PinLayout } from './naming.js'
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

/** What the daemon needs from the program side; ProgramRegistry is the real one, tests may fake it. */
export interface Programs {
  /** Throws ProgramLoadError. */
  acquire(objectPath: string, programName?: string): ProgramLease
  /** Removes our pin directories not in `keep` and not in use by this process. */
  prune(keep: ReadonlySet<string>): PruneResult
  /** Ids of the programs pinned under our bpffs directory (ours across restarts), with their pin directories. */
  ownedPrograms(): Map<number, string>
  ownedProgramIds(): Set<number>
  isOurs(progId: number): boolean
  /** The descriptor this process holds for a program, or null when it holds none (its pin may be gone). */
  heldFd(progId: number): Fd | null
  /** Closes every descriptor (pins stay). */
  close(): void
}

/** The I/O a registry does; the default is the kernel (libbpf, bpffs, node:fs). */
export interface ProgramBackend {
  readObject(path: string): Buffer
  ensureBpffs(dir: string): EnsureBpffsResult
  inspect(image: Buffer, objectPath: string, objectName: string, logLines: number): ProgramSpec[]
  openPinned(pin: PinLayout, programName: string, objectPath: string): KernelProgram | null
  load(req: LoadRequest): KernelProgram
  listPinDirs(bpffsDir: string): string[]
  pinnedProgramId(pin: PinLayout): number | null
  removePinDir(bpffsDir: string, dirName: string): void
}

export const kernelBackend: ProgramBackend = {
  readObject: (path) => readFileSync(path),
  ensureBpffs,
  inspect: inspectObject,
  openPinned,
  load: loadProgram,
  listPinDirs,
  pinnedProgramId,
  removePinDir,
}

export interface ProgramRegistryOptions {
  /** Directory on (or to be mounted as) a BPF filesystem. Default /sys/fs/bpf/xdplinkd. */
  bpffsDir?: string
  backend?: ProgramBackend
  /** Lines of libbpf/verifier log a ProgramLoadError keeps. Default 50. */
  logLines?: number
  /** Receives every libbpf message during loads (e.g. for a debug log). */
  libbpfLog?: LibbpfSink
  /**
   * Told where a bpffs was mounted for the pin directory: `again` is true when one had been there before and is gone
   * (unmounted under the running daemon), so the pins made before went with it.
   */
  onBpffsMount?: (where: string, again: boolean) => void
}

interface Entry {
  key: string
  program: LoadedProgram
  refs: number
}

export class ProgramRegistry implements Programs {
  readonly bpffsDir: string
  readonly #backend: ProgramBackend
  readonly #logLines: number
  readonly #libbpfLog: LibbpfSink | undefined
  readonly #onBpffsMount: ((where: string, again: boolean) => void) | undefined
  readonly #entries = new Map<string, Entry>()
  /** Object hash -> the program picked when none was named: the choice depends on the bytes only. */
  readonly #defaultNames = new Map<string, string>()
  #bpffs: EnsureBpffsResult | undefined
  #closed = false

  constructor(opts: ProgramRegistryOptions = {}) {
    this.bpffsDir = resolve(opts.bpffsDir ?? DEFAULT_BPFFS_DIR)
    this.#backend = opts.backend ?? kernelBackend
    this.#logLines = opts.logLines ?? DEFAULT_LOG_LINES
    this.#libbpfLog = opts.libbpfLog
    this.#onBpffsMount = opts.onBpffsMount
  }

  /** Where this registry mounted a bpffs (null: it found one), once known. */
  get bpffsMount(): string | null | undefined {
    return this.#bpffs?.mounted
  }

  /** Programs held by this process. */
  get size(): number {
    return this.#entries.size
  }

  acquire(objectPath: string, programName?: string): ProgramLease {
    if (this.#closed) throw new Error('ProgramRegistry: acquire after close')
    const image = readObject(objectPath, programName, (path) => this.#backend.readObject(path))
    const hash = createHash('sha256').update(image).digest('hex')
    const objectName = objectNameOf(objectPath)
    const name = programName ?? this.#defaultNames.get(hash) ?? this.#pick(image, objectPath, objectName, hash)

    const key = `${hash}:${name}`
    const held = this.#entries.get(key)
    if (held) {
      held.refs++
      return this.#lease(held)
    }

    this.#ensureBpffs(objectPath, name)
    const pin = pinLayout(this.bpffsDir, pinDirName(hash, name))
    const k =
      this.#backend.openPinned(pin, name, objectPath) ??
      this.#backend.load({
        image,
        objectPath,
        objectName,
        objectHash: hash,
        programName: name,
        bpffsDir: this.bpffsDir,
        logLines: this.#logLines,
        log: this.#libbpfLog,
      })
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

  #pick(image: Buffer, objectPath: string, objectName: string, hash: string): string {
    const programs = this.#backend.inspect(image, objectPath, objectName, this.#logLines)
    const chosen = selectProgram(programs)
    if (!chosen.ok) {
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
   * "not on BPF FS" until a restart. One statfs per new program.
   */
  #ensureBpffs(objectPath: string, program: string): void {
    try {
      const r = this.#backend.ensureBpffs(this.bpffsDir)
      const again = this.#bpffs !== undefined
      this.#bpffs ??= r
      if (r.mounted !== null) this.#onBpffsMount?.(r.mounted, again)
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

  prune(keep: ReadonlySet<string>): PruneResult {
    const inUse = new Set([...this.#entries.values()].map((e) => e.program.pinDirName))
    const result: PruneResult = { removed: [], kept: [], failed: [] }
    for (const dir of this.#backend.listPinDirs(this.bpffsDir)) {
      if (keep.has(dir) || inUse.has(dir)) {
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
    for (const dir of this.#backend.listPinDirs(this.bpffsDir)) {
      const id = this.#backend.pinnedProgramId(pinLayout(this.bpffsDir, dir))
      if (id !== null) owned.set(id, dir)
    }
    return owned
  }

  ownedProgramIds(): Set<number> {
    return new Set(this.ownedPrograms().keys())
  }

  isOurs(progId: number): boolean {
    for (const e of this.#entries.values()) if (e.program.id === progId) return true
    return this.ownedPrograms().has(progId)
  }

  heldFd(progId: number): Fd | null {
    for (const e of this.#entries.values()) if (e.program.id === progId) return e.program.fd
    return null
  }

  close(): void {
    this.#closed = true
    for (const e of this.#entries.values()) e.program.fd.close()
    this.#entries.clear()
  }
}
