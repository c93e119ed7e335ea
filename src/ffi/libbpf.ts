/**
 * The libbpf binding: libbpf.so.1 loaded on first use, its functions typed, and its failures turned into errors.
 * What uses it: bpf-object.ts (objects, programs, maps), bpf-fd.ts (descriptors and what the kernel says about
 * them), libbpf-log.ts (libbpf's messages).
 *
 * The version check accepts libbpf 1.0, so only symbols libbpf 1.0 exports are bound (their symbol versions in
 * libbpf.map are LIBBPF_0.0.1 to LIBBPF_1.0.0). Debian 12, and the machine the tests run on, have 1.1.2.
 *
 * libbpf 1.x conventions this relies on (libbpf 1.0 "strict mode", now the only mode): a function returning a
 * pointer returns NULL and sets errno on failure; a function returning int returns -errno and also sets errno
 * (tools/lib/bpf/libbpf_internal.h, libbpf_err / libbpf_ptr). libbpf_get_error() is not needed.
 */
import koffi, { type LibraryHandle } from 'koffi'
import { ERRNO, SyscallError } from './errno.js'
import { syscallError } from './libc.js'
import { installLibbpfPrint } from './libbpf-log.js'

/** Where libbpf is expected: the soname of libbpf 1.x (Debian/Ubuntu package libbpf1, Fedora libbpf). */
export const LIBBPF_SONAME = 'libbpf.so.1'

// Opaque to us as to every libbpf user; registered by name for the prototypes below.
koffi.opaque('bpf_object')
koffi.opaque('bpf_program')
koffi.opaque('bpf_map')
// <bpf/btf.h>: libbpf's BTF object (opaque), and the uapi `struct btf_type` (<linux/btf.h>) it hands out pointers to,
// read byte by byte through STRUCTS.btf_type (btf.ts).
koffi.opaque('btf')
koffi.opaque('btf_type')

/**
 * The subset of `struct bpf_object_open_opts` we set (<bpf/libbpf.h>). libbpf reads only `sz` bytes of an opts
 * struct and treats the fields past it as zero (libbpf_validate_opts), so a prefix is a valid opts struct.
 */
export const OpenOptsT = koffi.struct('xdplinkd_bpf_object_open_opts', {
  sz: 'size_t',
  object_name: 'const char *',
})

function bind() {
  let lib: LibraryHandle
  try {
    lib = koffi.load(LIBBPF_SONAME)
  } catch (e) {
    throw new Error(`cannot load ${LIBBPF_SONAME} (libbpf >= 1.0, package libbpf1): ${(e as Error).message}`)
  }
  const f = {
    libbpf_major_version: lib.func('uint32_t libbpf_major_version(void)'),
    libbpf_minor_version: lib.func('uint32_t libbpf_minor_version(void)'),
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
    bpf_map__key_size: lib.func('uint32_t bpf_map__key_size(const bpf_map *map)'),
    bpf_map__value_size: lib.func('uint32_t bpf_map__value_size(const bpf_map *map)'),
    bpf_map__max_entries: lib.func('uint32_t bpf_map__max_entries(const bpf_map *map)'),
    bpf_map__map_flags: lib.func('uint32_t bpf_map__map_flags(const bpf_map *map)'),
    bpf_map__btf_key_type_id: lib.func('uint32_t bpf_map__btf_key_type_id(const bpf_map *map)'),
    bpf_map__btf_value_type_id: lib.func('uint32_t bpf_map__btf_value_type_id(const bpf_map *map)'),
    // Owned by the object (freed by bpf_object__close): never btf__free'd. NULL for an object without .BTF.
    bpf_object__btf: lib.func('btf *bpf_object__btf(const bpf_object *obj)'),
    // The caller owns what this returns and frees it with btf__free.
    btf__load_from_kernel_by_id: lib.func('btf *btf__load_from_kernel_by_id(uint32_t id)'),
    btf__free: lib.func('void btf__free(btf *btf)'),
    btf__type_cnt: lib.func('uint32_t btf__type_cnt(const btf *btf)'),
    btf__type_by_id: lib.func('const btf_type *btf__type_by_id(const btf *btf, uint32_t id)'),
    btf__name_by_offset: lib.func('const char *btf__name_by_offset(const btf *btf, uint32_t offset)'),
    bpf_obj_get: lib.func('int bpf_obj_get(const char *path)'),
    bpf_prog_get_fd_by_id: lib.func('int bpf_prog_get_fd_by_id(uint32_t id)'),
    bpf_obj_pin: lib.func('int bpf_obj_pin(int fd, const char *path)'),
    // libbpf 1.0 and 1.1 have only the generic call; bpf_prog_get_info_by_fd arrived in 1.2.
    bpf_obj_get_info_by_fd: lib.func('int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32_t *info_len)'),
    bpf_map_lookup_elem: lib.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
    bpf_map_update_elem: lib.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    bpf_map_get_next_key: lib.func('int bpf_map_get_next_key(int fd, const void *key, void *next_key)'),
    bpf_prog_test_run_opts: lib.func('int bpf_prog_test_run_opts(int fd, void *opts)'),
    libbpf_num_possible_cpus: lib.func('int libbpf_num_possible_cpus(void)'),
    libbpf_strerror: lib.func('int libbpf_strerror(int err, _Out_ char *buf, size_t size)'),
    libbpf_bpf_prog_type_str: lib.func('const char *libbpf_bpf_prog_type_str(int t)'),
    // Map contents (src/maps/sync.ts): deletes and the batch calls (libbpf 0.0.8, Linux 5.6), whose `count` is read
    // and written back; `opts` is a struct bpf_map_batch_opts (structs.ts), `in_batch` may be NULL.
    bpf_map_delete_elem: lib.func('int bpf_map_delete_elem(int fd, const void *key)'),
    bpf_map_lookup_batch: lib.func(
      'int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, _Inout_ uint32_t *count, const void *opts)',
    ),
    bpf_map_update_batch: lib.func(
      'int bpf_map_update_batch(int fd, const void *keys, const void *values, _Inout_ uint32_t *count, const void *opts)',
    ),
    bpf_map_delete_batch: lib.func('int bpf_map_delete_batch(int fd, const void *keys, _Inout_ uint32_t *count, const void *opts)'),
    // libbpf 0.7; `opts` is a struct bpf_map_create_opts (structs.ts). Only tests and the bench make maps.
    bpf_map_create: lib.func(
      'int bpf_map_create(int map_type, const char *map_name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const void *opts)',
    ),
  }
  const major = f.libbpf_major_version() as number
  if (major < 1) {
    throw new Error(`${LIBBPF_SONAME} is libbpf ${major}.${f.libbpf_minor_version() as number}; xdplinkd needs libbpf >= 1.0`)
  }
  // Before any call that may print: libbpf's messages go through our callback from the first one on.
  installLibbpfPrint(lib)
  return f
}

let bound: ReturnType<typeof bind> | undefined
/** libbpf's functions, loaded on first use, so that a missing library is one clear error where BPF is needed. */
export function libbpf(): ReturnType<typeof bind> {
  return (bound ??= bind())
}

/** `major.minor` of the loaded libbpf. */
export function libbpfVersion(): string {
  const f = libbpf()
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

/**
 * The error of a failed libbpf call (`rc` its negative return, null for a NULL pointer): libc's reading of errno,
 * with what libbpf adds. errno may be one of libbpf's own numbers; and an int return carries -errno too, which
 * stands in should errno be unset. EIO when neither says anything.
 */
export function libbpfError(fn: string, rc: number | null, detail?: string): SyscallError {
  const e = koffi.errno()
  const errno = e > 0 ? e : rc !== null && rc < 0 ? -rc : ERRNO.EIO
  if (errno < LIBBPF_ERRNO__START) return syscallError(fn, detail, errno)
  const buf = Buffer.alloc(256)
  libbpf().libbpf_strerror(errno, buf, buf.length)
  return new LibbpfError(fn, errno, buf.toString('utf8', 0, Math.max(0, buf.indexOf(0))), detail)
}

/** The result of a libbpf call returning int, or its error thrown when negative. */
export function libbpfCheck(fn: string, rc: number, detail?: string): number {
  if (rc < 0) throw libbpfError(fn, rc, detail)
  return rc
}
