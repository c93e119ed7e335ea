/**
 * The libbpf edge: thin, typed bindings to libbpf.so.1 (libbpf >= 1.0; the runtime ships 1.1.2, so only symbols
 * that exist in 1.1 are bound), plus the few libc calls a BPF filesystem needs (mount, umount2, statfs).
 *
 * libbpf 1.x conventions this file relies on (libbpf 1.0 "strict mode", now the only mode): a function returning a
 * pointer returns NULL and sets errno on failure; a function returning int returns -errno and also sets errno
 * (tools/lib/bpf/libbpf_internal.h, libbpf_err / libbpf_ptr). libbpf_get_error() is not needed.
 *
 * Every failure becomes a SyscallError named after the libbpf function. Pointers into a bpf_object (programs,
 * maps) are only valid while the object is open, so they live in classes that check that before every call.
 * Descriptors that libbpf owns (bpf_program__fd, bpf_map__fd) are lent, never wrapped in Fd: bpf_object__close
 * closes them. Descriptors we own (bpf_obj_get) come back as Fd.
 */
import { readlinkSync } from 'node:fs'
import koffi, { type LibraryHandle } from 'koffi'
import { ERRNO, SyscallError } from './errno.js'
import { Fd } from './fd.js'

// <linux/bpf.h> enum bpf_prog_type / enum bpf_attach_type
export const BPF_PROG_TYPE_XDP = 6
export const BPF_XDP_DEVMAP = 33
export const BPF_XDP_CPUMAP = 35
export const BPF_XDP = 37
// <linux/bpf.h>
export const BPF_OBJ_NAME_LEN = 16
export const BPF_TAG_SIZE = 8
export const BPF_ANY = 0
export const BPF_NOEXIST = 1
export const BPF_EXIST = 2
// <linux/magic.h>: statfs f_type of a BPF filesystem
export const BPF_FS_MAGIC = 0xcafe4a11
// <sys/mount.h>
export const MS_NOSUID = 0x2
export const MS_NODEV = 0x4
export const MS_NOEXEC = 0x8
export const MNT_DETACH = 0x2
// <bpf/libbpf.h> enum libbpf_print_level
export const LIBBPF_WARN = 0
export const LIBBPF_INFO = 1
export const LIBBPF_DEBUG = 2

/** Where libbpf is expected: the soname of libbpf 1.x (Debian/Ubuntu package libbpf1, Fedora libbpf). */
export const LIBBPF_SONAME = 'libbpf.so.1'

// ---------------------------------------------------------------------------------------------------------------
// Loading

// Opaque to us as to every libbpf user; registered by name for the prototypes below.
koffi.opaque('bpf_object')
koffi.opaque('bpf_program')
koffi.opaque('bpf_map')

/**
 * The subset of `struct bpf_object_open_opts` we set (<bpf/libbpf.h>). libbpf reads only `sz` bytes of an opts
 * struct and treats the fields past it as zero (libbpf_validate_opts), so a prefix is a valid opts struct.
 */
const OpenOptsT = koffi.struct('xdplinkd_bpf_object_open_opts', {
  sz: 'size_t',
  object_name: 'const char *',
})

/**
 * `int (*libbpf_print_fn_t)(enum libbpf_print_level, const char *, va_list)`. On x86-64 and arm64 a va_list
 * parameter arrives as a pointer (SysV: an array type decays; AAPCS64: a 32-byte struct goes by reference), so it is
 * declared `void *` and handed on to vsnprintf as is.
 */
const PrintFnT = koffi.proto('int xdplinkd_libbpf_print_fn(int level, const char *fmt, void *ap)')

type Ptr = object

function bind() {
  let lib: LibraryHandle
  try {
    lib = koffi.load(LIBBPF_SONAME)
  } catch (e) {
    throw new Error(`cannot load ${LIBBPF_SONAME} (libbpf >= 1.0, package libbpf1): ${(e as Error).message}`)
  }
  const libc = koffi.load('libc.so.6')
  const f = {
    libbpf_major_version: lib.func('uint32_t libbpf_major_version(void)'),
    libbpf_minor_version: lib.func('uint32_t libbpf_minor_version(void)'),
    libbpf_set_print: lib.func('libbpf_set_print', 'void *', [koffi.pointer(PrintFnT)]),
    bpf_object__open_mem: lib.func(
      'bpf_object *bpf_object__open_mem(const void *buf, size_t sz, const xdplinkd_bpf_object_open_opts *opts)',
    ),
    bpf_object__load: lib.func('int bpf_object__load(bpf_object *obj)'),
    bpf_object__close: lib.func('void bpf_object__close(bpf_object *obj)'),
    bpf_object__name: lib.func('const char *bpf_object__name(const bpf_object *obj)'),
    bpf_object__next_program: lib.func('bpf_program *bpf_object__next_program(const bpf_object *obj, bpf_program *prev)'),
    bpf_object__next_map: lib.func('bpf_map *bpf_object__next_map(const bpf_object *obj, const bpf_map *prev)'),
    bpf_program__name: lib.func('const char *bpf_program__name(const bpf_program *prog)'),
    bpf_program__section_name: lib.func('const char *bpf_program__section_name(const bpf_program *prog)'),
    bpf_program__type: lib.func('int bpf_program__type(const bpf_program *prog)'),
    bpf_program__expected_attach_type: lib.func('int bpf_program__expected_attach_type(const bpf_program *prog)'),
    bpf_program__set_autoload: lib.func('int bpf_program__set_autoload(bpf_program *prog, bool autoload)'),
    bpf_program__fd: lib.func('int bpf_program__fd(const bpf_program *prog)'),
    bpf_program__pin: lib.func('int bpf_program__pin(bpf_program *prog, const char *path)'),
    bpf_map__name: lib.func('const char *bpf_map__name(const bpf_map *map)'),
    bpf_map__type: lib.func('int bpf_map__type(const bpf_map *map)'),
    bpf_map__is_internal: lib.func('bool bpf_map__is_internal(const bpf_map *map)'),
    bpf_map__fd: lib.func('int bpf_map__fd(const bpf_map *map)'),
    bpf_map__reuse_fd: lib.func('int bpf_map__reuse_fd(bpf_map *map, int fd)'),
    bpf_map__set_pin_path: lib.func('int bpf_map__set_pin_path(bpf_map *map, const char *path)'),
    bpf_map__pin: lib.func('int bpf_map__pin(bpf_map *map, const char *path)'),
    bpf_obj_get: lib.func('int bpf_obj_get(const char *path)'),
    bpf_prog_get_fd_by_id: lib.func('int bpf_prog_get_fd_by_id(uint32_t id)'),
    bpf_obj_pin: lib.func('int bpf_obj_pin(int fd, const char *path)'),
    // libbpf 1.1 has only the generic call; bpf_prog_get_info_by_fd arrived in 1.2.
    bpf_obj_get_info_by_fd: lib.func('int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32_t *info_len)'),
    bpf_map_lookup_elem: lib.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
    bpf_map_update_elem: lib.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    bpf_prog_test_run_opts: lib.func('int bpf_prog_test_run_opts(int fd, void *opts)'),
    libbpf_num_possible_cpus: lib.func('int libbpf_num_possible_cpus(void)'),
    libbpf_strerror: lib.func('int libbpf_strerror(int err, _Out_ char *buf, size_t size)'),
    libbpf_bpf_prog_type_str: lib.func('const char *libbpf_bpf_prog_type_str(int t)'),
    vsnprintf: libc.func('int vsnprintf(void *buf, size_t size, const char *fmt, void *ap)'),
  }
  const major = f.libbpf_major_version() as number
  if (major < 1) {
    throw new Error(`${LIBBPF_SONAME} is libbpf ${major}.${f.libbpf_minor_version() as number}; xdplinkd needs libbpf >= 1.0`)
  }
  return f
}

let bound: ReturnType<typeof bind> | undefined
/** Loads libbpf on first use, so that a missing library is one clear error where BPF is needed, not at import. */
function c(): ReturnType<typeof bind> {
  if (!bound) {
    bound = bind()
    installPrint(bound)
  }
  return bound
}

/** `major.minor` of the loaded libbpf. */
export function libbpfVersion(): string {
  const f = c()
  return `${f.libbpf_major_version() as number}.${f.libbpf_minor_version() as number}`
}

// <bpf/libbpf.h> enum libbpf_errno: libbpf's own error numbers, above the kernel's.
export const LIBBPF_ERRNO__START = 4000
const LIBBPF_ERRNO_NAMES = [
  'LIBBPF_ERRNO__LIBELF',
  'LIBBPF_ERRNO__FORMAT',
  'LIBBPF_ERRNO__KVERSION',
  'LIBBPF_ERRNO__ENDIAN',
  'LIBBPF_ERRNO__INTERNAL',
  'LIBBPF_ERRNO__RELOC',
  'LIBBPF_ERRNO__LOAD',
  'LIBBPF_ERRNO__VERIFY',
  'LIBBPF_ERRNO__PROG2BIG',
  'LIBBPF_ERRNO__KVER',
  'LIBBPF_ERRNO__PROGTYPE',
  'LIBBPF_ERRNO__WRNGPID',
  'LIBBPF_ERRNO__INVSEQ',
  'LIBBPF_ERRNO__NLPARSE',
]

/**
 * A libbpf failure with one of libbpf's own error numbers (e.g. LIBBPF_ERRNO__FORMAT: not a BPF ELF object), which
 * no errno table knows: `code` is the enum's C name and the message has libbpf_strerror's text.
 */
export class LibbpfError extends SyscallError {
  constructor(fn: string, errno: number, description: string, detail?: string) {
    super(fn, errno, detail)
    const code = LIBBPF_ERRNO_NAMES[errno - LIBBPF_ERRNO__START] ?? `E${errno}`
    Object.defineProperty(this, 'code', { value: code, enumerable: true })
    this.name = 'LibbpfError'
    this.message = `${fn}: ${code}: ${description}${detail ? ` (${detail})` : ''}`
  }
}

/** The errno of a failed libbpf call: libbpf 1.x returns -errno and sets errno; prefer errno, fall back to -rc. */
function fail(fn: string, rc: number | null, detail?: string): SyscallError {
  const e = koffi.errno()
  const errno = e > 0 ? e : rc !== null && rc < 0 ? -rc : 5 /* EIO: libbpf gave no reason */
  if (errno >= LIBBPF_ERRNO__START) {
    const buf = Buffer.alloc(256)
    c().libbpf_strerror(errno, buf, buf.length)
    return new LibbpfError(fn, errno, buf.toString('utf8', 0, Math.max(0, buf.indexOf(0))), detail)
  }
  return new SyscallError(fn, errno, detail)
}

function check(fn: string, rc: number, detail?: string): number {
  if (rc < 0) throw fail(fn, rc, detail)
  return rc
}

// ---------------------------------------------------------------------------------------------------------------
// libbpf's log

export type LibbpfLevel = 'warn' | 'info' | 'debug'
export interface LibbpfMessage {
  level: LibbpfLevel
  /** One formatted message; may span lines (the verifier log arrives as one message). */
  text: string
}
export type LibbpfSink = (m: LibbpfMessage) => void

const LEVELS: Record<number, LibbpfLevel> = { [LIBBPF_WARN]: 'warn', [LIBBPF_INFO]: 'info', [LIBBPF_DEBUG]: 'debug' }

/**
 * libbpf's default printer (libbpf.c, __base_pr) writes WARN and INFO to stderr and drops DEBUG; keep that until the
 * daemon routes messages to its logger with setLibbpfLogger.
 */
const stderrSink: LibbpfSink = (m) => {
  if (m.level !== 'debug') process.stderr.write(m.text.endsWith('\n') ? m.text : `${m.text}\n`)
}
let defaultSink: LibbpfSink = stderrSink
const captures: LibbpfSink[] = []

/** Where libbpf's messages go outside captureLibbpfLog (null: back to stderr as libbpf would). */
export function setLibbpfLogger(sink: LibbpfSink | null): void {
  defaultSink = sink ?? stderrSink
}

/**
 * Runs `fn` with libbpf's messages sent to `sink` instead of the logger. libbpf prints synchronously from inside the
 * call that fails (bpf_object__open_mem, bpf_object__load), and every call here is synchronous, so the messages a
 * call produces arrive before it returns and belong to it. Nested captures go to the innermost sink.
 */
export function captureLibbpfLog<T>(sink: LibbpfSink, fn: () => T): T {
  c()
  captures.push(sink)
  try {
    return fn()
  } finally {
    captures.pop()
  }
}

/**
 * The size of a va_list object, for copying one (what va_copy does) before a measuring vsnprintf consumes it:
 * x86-64 SysV `struct __va_list_tag[1]` is 24 bytes, AAPCS64 `struct __va_list` is 32. Elsewhere we do not copy and
 * format once into a fixed buffer.
 */
const VA_LIST_SIZE: number | null = process.arch === 'x64' ? 24 : process.arch === 'arm64' ? 32 : null
/** Most messages fit here; only a long verifier log needs the second, exact-size pass. */
const SCRATCH_SIZE = 64 * 1024
/** The kernel caps a verifier log at 16 MiB before 6.4 and libbpf doubles its buffer up to that; stop beyond it. */
const MAX_MESSAGE = 32 * 1024 * 1024
const scratch = Buffer.alloc(SCRATCH_SIZE)

/**
 * Formats one printf-style message from libbpf. vsnprintf consumes the va_list, so the first pass formats a byte
 * copy of it into a scratch buffer; when the message was longer, the second pass formats the original into a
 * buffer of the exact size. Both run while libbpf's frame (which the va_list points into) is still live.
 */
function formatMessage(f: ReturnType<typeof bind>, fmt: string, ap: unknown): string {
  if (VA_LIST_SIZE === null) {
    const n = f.vsnprintf(scratch, SCRATCH_SIZE, fmt, ap) as number
    return n < 0 ? fmt : scratch.toString('utf8', 0, Math.min(n, SCRATCH_SIZE - 1))
  }
  const copy = Buffer.from(new Uint8Array(koffi.view(ap, VA_LIST_SIZE)))
  const n = f.vsnprintf(scratch, SCRATCH_SIZE, fmt, copy) as number
  if (n < 0) return fmt
  if (n < SCRATCH_SIZE) return scratch.toString('utf8', 0, n)
  const size = Math.min(n + 1, MAX_MESSAGE)
  const big = Buffer.alloc(size)
  f.vsnprintf(big, size, fmt, ap)
  return big.toString('utf8', 0, size - 1)
}

let printHandle: unknown
function installPrint(f: ReturnType<typeof bind>): void {
  // Registered (not transient): libbpf keeps the pointer in a global and calls it from any later call. One slot for
  // the life of the process; never unregistered.
  printHandle = koffi.register((level: number, fmt: string | null, ap: unknown): number => {
    try {
      const text = fmt === null ? '' : formatMessage(f, fmt, ap)
      const m: LibbpfMessage = { level: LEVELS[level] ?? 'debug', text }
      const sink = captures[captures.length - 1] ?? defaultSink
      sink(m)
    } catch {
      // A throw would only make koffi return 0 to libbpf; losing one log line is the lesser harm.
    }
    return 0
  }, koffi.pointer(PrintFnT))
  f.libbpf_set_print(printHandle)
}

// ---------------------------------------------------------------------------------------------------------------
// Objects, programs, maps

export interface ProgramSpec {
  name: string
  sectionName: string
  /** enum bpf_prog_type */
  type: number
  /** libbpf's name for the type (`xdp`, `sched_cls`), for messages */
  typeName: string
  /** enum bpf_attach_type */
  expectedAttachType: number
}

/** A bpf_object opened from memory: ELF parsed, nothing in the kernel until load(). Close it exactly once. */
export class BpfObject {
  #ptr: Ptr | null
  // libbpf may refer to the ELF image until close; keep it reachable so the GC cannot free it under libbpf.
  #image: Buffer | null
  readonly name: string

  private constructor(ptr: Ptr, image: Buffer) {
    this.#ptr = ptr
    this.#image = image
    this.name = c().bpf_object__name(ptr) as string
  }

  /**
   * bpf_object__open_mem: parses the ELF image (program sections, BTF-defined maps, relocations). `name` becomes
   * the object name libbpf uses in messages and as the prefix of internal map names (.rodata, .bss).
   */
  static open(image: Buffer, name: string): BpfObject {
    const f = c()
    const ptr = f.bpf_object__open_mem(image, image.length, {
      sz: koffi.sizeof(OpenOptsT),
      object_name: name,
    }) as Ptr | null
    if (ptr === null) throw fail('bpf_object__open_mem', null, name)
    return new BpfObject(ptr, image)
  }

  get closed(): boolean {
    return this.#ptr === null
  }

  /** @internal the live pointer; throws once closed so no call can reach freed memory. */
  ptr(): Ptr {
    if (this.#ptr === null) throw new Error(`bpf_object ${this.name}: used after close`)
    return this.#ptr
  }

  programs(): BpfProgram[] {
    const f = c()
    const out: BpfProgram[] = []
    let p: Ptr | null = null
    for (;;) {
      p = f.bpf_object__next_program(this.ptr(), p) as Ptr | null
      if (p === null) break
      out.push(new BpfProgram(this, p))
    }
    return out
  }

  maps(): BpfMap[] {
    const f = c()
    const out: BpfMap[] = []
    let m: Ptr | null = null
    for (;;) {
      m = f.bpf_object__next_map(this.ptr(), m) as Ptr | null
      if (m === null) break
      out.push(new BpfMap(this, m))
    }
    return out
  }

  /**
   * bpf_object__load: creates the maps (reusing those given a pin path whose pin exists, pinning the others there),
   * then loads every program whose autoload is on. On failure libbpf unpins the maps it pinned itself and prints
   * why (the verifier log at WARN level) through the print callback.
   */
  load(): void {
    check('bpf_object__load', c().bpf_object__load(this.ptr()) as number, this.name)
  }

  /** bpf_object__close: frees the object and closes every descriptor libbpf owns. Later calls do nothing. */
  close(): void {
    if (this.#ptr === null) return
    const p = this.#ptr
    this.#ptr = null
    c().bpf_object__close(p)
    this.#image = null
  }

  [Symbol.dispose](): void {
    this.close()
  }
}

/** A program or map inside a bpf_object: its pointer is valid only while the object is open. */
abstract class ObjectPart {
  readonly #obj: BpfObject
  readonly #p: Ptr

  constructor(obj: BpfObject, p: Ptr) {
    this.#obj = obj
    this.#p = p
  }

  /** The pointer, once the object is known to be open (throws otherwise). */
  protected live(): Ptr {
    this.#obj.ptr()
    return this.#p
  }
}

export class BpfProgram extends ObjectPart implements ProgramSpec {
  readonly name: string
  readonly sectionName: string
  readonly type: number
  readonly typeName: string
  readonly expectedAttachType: number

  /** @internal */
  constructor(obj: BpfObject, p: Ptr) {
    super(obj, p)
    const f = c()
    this.name = f.bpf_program__name(p) as string
    this.sectionName = f.bpf_program__section_name(p) as string
    this.type = f.bpf_program__type(p) as number
    this.typeName = (f.libbpf_bpf_prog_type_str(this.type) as string | null) ?? `type ${this.type}`
    this.expectedAttachType = f.bpf_program__expected_attach_type(p) as number
  }

  /** Whether bpf_object__load loads this program (before load only). */
  setAutoload(on: boolean): void {
    check('bpf_program__set_autoload', c().bpf_program__set_autoload(this.live(), on) as number, this.name)
  }

  /** The loaded program's descriptor, owned by the object (closed by its close()). */
  fd(): number {
    return check('bpf_program__fd', c().bpf_program__fd(this.live()) as number, this.name)
  }

  pin(path: string): void {
    check('bpf_program__pin', c().bpf_program__pin(this.live(), path) as number, path)
  }
}

export class BpfMap extends ObjectPart {
  readonly name: string
  /** enum bpf_map_type */
  readonly type: number
  /** .data/.rodata/.bss/.kconfig: libbpf made it for the object's global variables. */
  readonly internal: boolean

  /** @internal */
  constructor(obj: BpfObject, m: Ptr) {
    super(obj, m)
    const f = c()
    this.name = f.bpf_map__name(m) as string
    this.type = f.bpf_map__type(m) as number
    this.internal = f.bpf_map__is_internal(m) as boolean
  }

  /** The map's descriptor, owned by the object. */
  fd(): number {
    return check('bpf_map__fd', c().bpf_map__fd(this.live()) as number, this.name)
  }

  /**
   * Before load: reuse an existing map if `path` is pinned (after checking type, key/value size, max_entries and
   * flags match: libbpf.c, map_is_reuse_compat), otherwise create it and pin it there.
   */
  setPinPath(path: string): void {
    check('bpf_map__set_pin_path', c().bpf_map__set_pin_path(this.live(), path) as number, path)
  }

  /** Before load: use this existing map instead of creating one (libbpf dups `fd`; the caller keeps its own). */
  reuseFd(fd: Fd): void {
    check('bpf_map__reuse_fd', c().bpf_map__reuse_fd(this.live(), fd.raw) as number, this.name)
  }

  pin(path: string): void {
    check('bpf_map__pin', c().bpf_map__pin(this.live(), path) as number, path)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Descriptors

/** bpf_obj_get (BPF_OBJ_GET, Linux 4.4): opens a pinned program, map or link. */
export function objGet(path: string): Fd {
  const fd = check('bpf_obj_get', c().bpf_obj_get(path) as number, path)
  return new Fd(fd, `bpf ${path}`)
}

/**
 * bpf_prog_get_fd_by_id (BPF_PROG_GET_FD_BY_ID, Linux 4.13): a program known only by id, e.g. a foreign one to
 * replace. Needs CAP_SYS_ADMIN (kernel/bpf/syscall.c); for our own programs open the pin with objGet instead.
 * Returns null when no program has that id.
 */
export function progFdById(id: number): Fd | null {
  const rc = c().bpf_prog_get_fd_by_id(id) as number
  if (rc === -2) return null
  return new Fd(check('bpf_prog_get_fd_by_id', rc, `program id ${id}`), `bpf prog ${id}`)
}

/** bpf_obj_pin (BPF_OBJ_PIN, Linux 4.4). Fails with EEXIST when the path exists. */
export function objPin(fd: Fd, path: string): void {
  check('bpf_obj_pin', c().bpf_obj_pin(fd.raw, path) as number, path)
}

/** What a BPF descriptor refers to: the anon inode's name (`anon_inode:bpf-prog`, fs/anon_inodes.c). */
export type BpfFdKind = 'prog' | 'map' | 'link' | 'btf' | 'other'
export function bpfFdKind(fd: Fd): BpfFdKind {
  const target = readlinkSync(`/proc/self/fd/${fd.raw}`)
  const m = /^anon_inode:bpf-(prog|map|link)$/.exec(target) ?? (target === 'anon_inode:btf' ? [target, 'btf'] : null)
  return (m?.[1] as BpfFdKind | undefined) ?? 'other'
}

export interface ProgInfo {
  /** enum bpf_prog_type */
  type: number
  id: number
  /** The kernel's tag: first 8 bytes of a SHA-1 over the instructions, map fds zeroed (kernel/bpf/core.c). Hex. */
  tag: string
  /** Up to BPF_OBJ_NAME_LEN - 1 characters of the program's name (Linux 4.15). */
  name: string
  mapIds: number[]
}

// struct bpf_prog_info offsets (<linux/bpf.h>); fields past `name` are not needed and not requested.
const PI_TYPE = 0
const PI_ID = 4
const PI_TAG = 8
const PI_NR_MAP_IDS = 52
const PI_MAP_IDS = 56
const PI_NAME = 64
const PI_SIZE = PI_NAME + BPF_OBJ_NAME_LEN
const MAX_MAP_IDS = 64

/**
 * bpf_obj_get_info_by_fd (BPF_OBJ_GET_INFO_BY_FD, Linux 4.13) for a program. Passing a short info_len is allowed: the
 * kernel fills the prefix it was given (kernel/bpf/syscall.c, bpf_prog_get_info_by_fd).
 */
export function progInfo(fd: Fd): ProgInfo {
  const info = Buffer.alloc(PI_SIZE)
  const ids = Buffer.alloc(MAX_MAP_IDS * 4)
  info.writeUInt32LE(MAX_MAP_IDS, PI_NR_MAP_IDS)
  info.writeBigUInt64LE(koffi.address(ids), PI_MAP_IDS)
  const len = [PI_SIZE]
  check('bpf_obj_get_info_by_fd', c().bpf_obj_get_info_by_fd(fd.raw, info, len) as number, fd.label)
  const nr = Math.min(info.readUInt32LE(PI_NR_MAP_IDS), MAX_MAP_IDS)
  const mapIds: number[] = []
  for (let i = 0; i < nr; i++) mapIds.push(ids.readUInt32LE(i * 4))
  return {
    type: info.readUInt32LE(PI_TYPE),
    id: info.readUInt32LE(PI_ID),
    tag: info.subarray(PI_TAG, PI_TAG + BPF_TAG_SIZE).toString('hex'),
    name: cString(info.subarray(PI_NAME, PI_NAME + BPF_OBJ_NAME_LEN)),
    mapIds,
  }
}

export interface MapInfo {
  /** enum bpf_map_type */
  type: number
  id: number
  keySize: number
  valueSize: number
  maxEntries: number
  flags: number
  name: string
}

/** bpf_obj_get_info_by_fd for a map (struct bpf_map_info, <linux/bpf.h>). */
export function mapInfo(fd: Fd): MapInfo {
  const size = 24 + BPF_OBJ_NAME_LEN
  const info = Buffer.alloc(size)
  const len = [size]
  check('bpf_obj_get_info_by_fd', c().bpf_obj_get_info_by_fd(fd.raw, info, len) as number, fd.label)
  return {
    type: info.readUInt32LE(0),
    id: info.readUInt32LE(4),
    keySize: info.readUInt32LE(8),
    valueSize: info.readUInt32LE(12),
    maxEntries: info.readUInt32LE(16),
    flags: info.readUInt32LE(20),
    name: cString(info.subarray(24, 24 + BPF_OBJ_NAME_LEN)),
  }
}

function cString(b: Buffer): string {
  const end = b.indexOf(0)
  return b.toString('utf8', 0, end < 0 ? b.length : end)
}

/** bpf_map_lookup_elem: copies the value into `value`; false when the key is absent (ENOENT). */
export function mapLookupElem(fd: Fd, key: Buffer, value: Buffer): boolean {
  const rc = c().bpf_map_lookup_elem(fd.raw, key, value) as number
  if (rc >= 0) return true
  const err = fail('bpf_map_lookup_elem', rc, fd.label)
  if (err.errno === ERRNO.ENOENT) return false
  throw err
}

export function mapUpdateElem(fd: Fd, key: Buffer, value: Buffer, flags = BPF_ANY): void {
  check('bpf_map_update_elem', c().bpf_map_update_elem(fd.raw, key, value, flags) as number, fd.label)
}

export interface TestRunResult {
  /** What the program returned (an XDP action for XDP) */
  retval: number
  /** Average run time per repetition, in ns, as the kernel measured it */
  durationNs: number
  /** The packet as the program left it */
  dataOut: Buffer
}

// struct bpf_test_run_opts (<bpf/bpf.h>), the fields up to `duration`; a shorter `sz` is valid (libbpf_validate_opts).
const TR_SZ = 0
const TR_DATA_IN = 8
const TR_DATA_OUT = 16
const TR_DATA_SIZE_IN = 24
const TR_DATA_SIZE_OUT = 28
const TR_RETVAL = 56
const TR_REPEAT = 60
const TR_DURATION = 64
const TR_SIZE = 72

/**
 * bpf_prog_test_run_opts (BPF_PROG_TEST_RUN; XDP since Linux 4.12): runs the program `repeat` times on a copy of
 * `data` in the kernel, with its real maps, without any interface. Since Linux 5.x the frame must hold at least an
 * Ethernet header (net/bpf/test_run.c, bpf_prog_test_run_xdp).
 */
export function progTestRun(fd: Fd, data: Buffer, repeat = 1): TestRunResult {
  const out = Buffer.alloc(data.length + 256)
  const opts = Buffer.alloc(TR_SIZE)
  opts.writeBigUInt64LE(BigInt(TR_SIZE), TR_SZ)
  opts.writeBigUInt64LE(koffi.address(data), TR_DATA_IN)
  opts.writeBigUInt64LE(koffi.address(out), TR_DATA_OUT)
  opts.writeUInt32LE(data.length, TR_DATA_SIZE_IN)
  opts.writeUInt32LE(out.length, TR_DATA_SIZE_OUT)
  opts.writeInt32LE(repeat, TR_REPEAT)
  check('bpf_prog_test_run_opts', c().bpf_prog_test_run_opts(fd.raw, opts) as number, fd.label)
  return {
    retval: opts.readUInt32LE(TR_RETVAL),
    durationNs: opts.readUInt32LE(TR_DURATION),
    dataOut: out.subarray(0, opts.readUInt32LE(TR_DATA_SIZE_OUT)),
  }
}

/** CPUs a per-CPU map holds a value for (/sys/devices/system/cpu/possible), as libbpf counts them. */
export function numPossibleCpus(): number {
  return check('libbpf_num_possible_cpus', c().libbpf_num_possible_cpus() as number)
}

// ---------------------------------------------------------------------------------------------------------------
// The BPF filesystem

function bindFs() {
  const libc = koffi.load('libc.so.6')
  return {
    mount: libc.func(
      'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)',
    ),
    umount2: libc.func('int umount2(const char *target, int flags)'),
    statfs: libc.func('int statfs(const char *path, void *buf)'),
  }
}
let boundFs: ReturnType<typeof bindFs> | undefined
const libcFs = (): ReturnType<typeof bindFs> => (boundFs ??= bindFs())

function checkLibc(fn: string, rc: number, detail: string): void {
  if (rc < 0) throw new SyscallError(fn, koffi.errno(), detail)
}

/**
 * statfs(2)'s f_type, the filesystem's magic number. `struct statfs` starts with `__fsword_t f_type` (a long) on
 * every 64-bit Linux ABI; 120 bytes on x86-64, so 256 is room enough.
 */
export function statfsType(path: string): number {
  const buf = Buffer.alloc(256)
  checkLibc('statfs', libcFs().statfs(path, buf) as number, path)
  return Number(buf.readBigUInt64LE(0) & 0xffffffffn)
}

/** Whether `path` lies on a BPF filesystem (the only place BPF_OBJ_PIN works: kernel/bpf/inode.c). */
export function isBpffs(path: string): boolean {
  return statfsType(path) === BPF_FS_MAGIC
}

/**
 * Mounts a new BPF filesystem instance at `target` (`mount -t bpf bpf TARGET`), nosuid,nodev,noexec as systemd
 * mounts /sys/fs/bpf. `mode` is the root directory's mode (bpffs `mode=` option, Linux 4.7).
 */
export function mountBpffs(target: string, mode = 0o700): void {
  checkLibc(
    'mount',
    libcFs().mount('bpf', target, 'bpf', MS_NOSUID | MS_NODEV | MS_NOEXEC, `mode=${mode.toString(8)}`) as number,
    target,
  )
}

export function umount(target: string, flags = 0): void {
  checkLibc('umount2', libcFs().umount2(target, flags) as number, target)
}
