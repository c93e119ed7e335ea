/**
 * Why a program could not be had. One error type for every stage so the daemon can log and report it uniformly;
 * `stage` says where it failed, and the message names the object, the program and the kernel's or libbpf's reason.
 */
import { errnoName } from '../ffi/errno.js'

export type ProgramLoadStage =
  /** reading the object file */
  | 'read'
  /** libbpf parsing the ELF file (bpf_object__open_mem) */
  | 'open'
  /** choosing the program (missing, not XDP, ambiguous) */
  | 'select'
  /** finding or mounting the BPF filesystem */
  | 'bpffs'
  /** creating maps and loading the program (bpf_object__load), including verifier rejection */
  | 'load'
  /** pinning, or opening what is pinned */
  | 'pin'

export interface ProgramLoadErrorInit {
  stage: ProgramLoadStage
  objectPath: string
  program?: string | undefined
  /** What went wrong, in a phrase; the message is built from it. */
  detail: string
  errno?: number | undefined
  /** errno's name; defaults to the name of `errno` (libbpf's own numbers have names only libbpf knows) */
  code?: string | undefined
  /** XDP programs in the object, when the choice failed. */
  candidates?: string[] | undefined
  /** The last relevant lines of libbpf's and the verifier's log, oldest first. */
  log?: string[] | undefined
  verifierReason?: string | undefined
  /** What the kernel or setup needs, e.g. a minimum kernel version or a capability. */
  hint?: string | undefined
  /**
   * Refused for who could have changed it (owner, mode, a symlink where none belongs), not for what it holds: a
   * file or directory to fix, as for an unsafe config path (the daemon exits 78, EX_CONFIG, rather than 65).
   */
  unsafe?: boolean | undefined
  cause?: unknown
}

export class ProgramLoadError extends Error {
  readonly stage: ProgramLoadStage
  readonly objectPath: string
  readonly program: string | undefined
  readonly errno: number | undefined
  /** errno's name (`EACCES`, or libbpf's `LIBBPF_ERRNO__FORMAT`) */
  readonly code: string | undefined
  readonly candidates: string[]
  readonly log: string[]
  readonly verifierReason: string | undefined
  readonly hint: string | undefined
  readonly unsafe: boolean

  constructor(init: ProgramLoadErrorInit) {
    const code = init.code ?? (init.errno !== undefined ? errnoName(init.errno) : undefined)
    const where = init.program !== undefined ? `${init.objectPath}: program ${init.program}` : init.objectPath
    const tail = [code && !init.detail.includes(code) ? ` (${code})` : '', init.hint ? `; ${init.hint}` : ''].join('')
    super(`${where}: ${init.detail}${tail}`, init.cause !== undefined ? { cause: init.cause } : undefined)
    this.name = 'ProgramLoadError'
    this.stage = init.stage
    this.objectPath = init.objectPath
    this.program = init.program
    this.errno = init.errno
    this.code = code
    this.candidates = init.candidates ?? []
    this.log = init.log ?? []
    this.verifierReason = init.verifierReason
    this.hint = init.hint
    this.unsafe = init.unsafe === true
  }
}

/**
 * What a failing errno usually means for a stage, with the kernel version or privilege it points at (the way
 * cilium/ebpf's ErrNotSupported names the version a feature needs). Undefined when there is nothing to add.
 */
export function hintFor(stage: ProgramLoadStage, code: string | undefined, log: readonly string[] = []): string | undefined {
  // libbpf.c, bpf_object__reuse_map: the pinned map's type, key/value size, max_entries or flags differ.
  if (log.some((l) => l.includes("couldn't reuse pinned map"))) {
    return "a map pinned in this program's pin directory does not match the object's definition; remove the directory (or prune it) to start with fresh maps"
  }
  // libbpf.c, check_path: a pin path whose directory is not on a bpffs, which at a reload means it was unmounted.
  if (log.some((l) => l.includes('is not on BPF FS'))) {
    return 'the pin directory is not on a BPF filesystem (unmounted since the daemon started?)'
  }
  switch (code) {
    case 'EPERM':
      return stage === 'bpffs'
        ? 'mounting a BPF filesystem needs CAP_SYS_ADMIN'
        : 'loading BPF programs needs CAP_BPF + CAP_NET_ADMIN (Linux 5.8+) or CAP_SYS_ADMIN; before Linux 5.11 also a large enough RLIMIT_MEMLOCK'
    case 'ENOSYS':
      return 'the kernel has no bpf() system call (Linux 3.18+ with CONFIG_BPF_SYSCALL=y)'
    case 'ENODEV':
      return stage === 'bpffs' ? 'no BPF filesystem in this kernel (Linux 4.4+ with CONFIG_BPF_SYSCALL=y)' : undefined
    case 'EINVAL':
      return stage === 'load'
        ? 'an attribute this kernel may not support (XDP programs need Linux 4.8, PERCPU_ARRAY maps 4.6, LPM_TRIE maps 4.11)'
        : undefined
    case 'E2BIG':
      return stage === 'load' ? 'the program is too large for this kernel (1M verified instructions since Linux 5.2, 4096 before)' : undefined
    default:
      return undefined
  }
}
