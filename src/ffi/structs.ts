/**
 * The C structs this folder fills or reads byte by byte, in one table: each with its C name, the header that
 * defines it, the byte offset of every member we touch (from the header, as `offsetof` gives it) and the bytes we
 * hand over. Structs that koffi lays out itself (msghdr, iovec, timespec, bpf_object_open_opts) are declared with
 * koffi.struct where they are used and are not here.
 *
 * The offsets are those of the 64-bit Linux ABIs (x86-64, arm64: LP64, little-endian), the only ones this folder
 * supports (pointers are written as 64-bit values). test/ffi/structs.test.ts checks every entry against the C
 * compiler reading the headers and, for the kernel's own structs, against the running kernel's BTF.
 */

export interface StructLayout {
  /** The struct's C name, as in its header and in the kernel's BTF. */
  readonly struct: string
  /** The header that defines it, as an #include names it. */
  readonly header: string
  /** Whether the kernel defines it (a uapi struct, in /sys/kernel/btf/vmlinux), not only libc or libbpf. */
  readonly kernel: boolean
  /** The byte offset of each member we read or write, by its C name. */
  readonly fields: Readonly<Record<string, number>>
  /**
   * The bytes we pass: the whole struct, or the prefix that ends at the last member we use where the callee accepts a
   * prefix (the kernel for BPF_OBJ_GET_INFO_BY_FD, libbpf for an opts struct with its `sz`).
   */
  readonly size: number
  /** `size` must be the struct's whole sizeof: we step through an array of them (the test checks equality). */
  readonly whole?: boolean
}

// <linux/bpf.h>: the lengths of two array members (`name`, `tag`).
export const BPF_OBJ_NAME_LEN = 16
export const BPF_TAG_SIZE = 8

export const STRUCTS = {
  /**
   * What BPF_OBJ_GET_INFO_BY_FD tells about a program. The kernel fills the prefix it is given and writes back its
   * length (kernel/bpf/syscall.c, bpf_prog_get_info_by_fd): ours ends with `name` (Linux 4.15).
   */
  bpf_prog_info: {
    struct: 'bpf_prog_info',
    header: 'linux/bpf.h',
    kernel: true,
    fields: { type: 0, id: 4, tag: 8, nr_map_ids: 52, map_ids: 56, name: 64 },
    size: 80,
  },
  /**
   * The same for a map (kernel/bpf/syscall.c, bpf_map_get_info_by_fd), up to `btf_value_type_id` (the BTF members,
   * Linux 4.18): the BTF object the map was created with and its key and value types in it, 0 when it has none.
   */
  bpf_map_info: {
    struct: 'bpf_map_info',
    header: 'linux/bpf.h',
    kernel: true,
    fields: {
      type: 0,
      id: 4,
      key_size: 8,
      value_size: 12,
      max_entries: 16,
      map_flags: 20,
      name: 24,
      btf_id: 64,
      btf_key_type_id: 68,
      btf_value_type_id: 72,
    },
    size: 76,
  },
  /**
   * libbpf's options for BPF_PROG_TEST_RUN. libbpf reads only the `sz` bytes we say we have and treats later members
   * as zero (libbpf_validate_opts), so the prefix through `flags` (left 0: no BPF_F_TEST_RUN_ON_CPU) is whole.
   */
  bpf_test_run_opts: {
    struct: 'bpf_test_run_opts',
    header: 'bpf/bpf.h',
    kernel: false,
    fields: {
      sz: 0,
      data_in: 8,
      data_out: 16,
      data_size_in: 24,
      data_size_out: 28,
      retval: 56,
      repeat: 60,
      duration: 64,
      flags: 68,
    },
    size: 72,
  },
  /**
   * One BTF type as libbpf's btf__type_by_id points at it (<linux/btf.h>): the name's offset in the string section,
   * `info` (vlen, kind, kind_flag: BTF_INFO_VLEN/KIND/KFLAG) and the anonymous union of `size` and `type`. The
   * kind's own data follows it at `size` bytes (Documentation/bpf/btf.rst, 2.2 Type encoding): a u32 for INT,
   * one btf_array, or vlen btf_member, btf_enum or btf_enum64. Read, not passed: these sizes are the whole structs,
   * the strides of those arrays (`whole`).
   */
  btf_type: {
    struct: 'btf_type',
    header: 'linux/btf.h',
    kernel: true,
    whole: true,
    fields: { name_off: 0, info: 4, size: 8, type: 8 },
    size: 12,
  },
  /** After an ARRAY's btf_type: the element type and the number of elements. */
  btf_array: {
    struct: 'btf_array',
    header: 'linux/btf.h',
    kernel: true,
    whole: true,
    fields: { type: 0, nelems: 8 },
    size: 12,
  },
  /** After a STRUCT's or UNION's btf_type, vlen of them; `offset` is in bits (with the bitfield size on kind_flag). */
  btf_member: {
    struct: 'btf_member',
    header: 'linux/btf.h',
    kernel: true,
    whole: true,
    fields: { name_off: 0, type: 4, offset: 8 },
    size: 12,
  },
  /** After an ENUM's btf_type, vlen of them; `val` is a __s32, unsigned unless kind_flag (Linux 6.0). */
  btf_enum: {
    struct: 'btf_enum',
    header: 'linux/btf.h',
    kernel: true,
    whole: true,
    fields: { name_off: 0, val: 4 },
    size: 8,
  },
  /** After an ENUM64's btf_type (Linux 6.0), vlen of them: the value in two u32 halves. */
  btf_enum64: {
    struct: 'btf_enum64',
    header: 'linux/btf.h',
    kernel: true,
    whole: true,
    fields: { name_off: 0, val_lo32: 4, val_hi32: 8 },
    size: 12,
  },
  /**
   * libbpf's options of the map batch calls (bpf_map_lookup_batch, _update_batch, _delete_batch): `elem_flags` is
   * BPF_ANY/BPF_NOEXIST/BPF_EXIST/BPF_F_LOCK per element, `flags` is reserved (0). Whole: libbpf copies both into
   * union bpf_attr's `batch` (tools/lib/bpf/bpf.c, bpf_map_batch_common).
   */
  bpf_map_batch_opts: {
    struct: 'bpf_map_batch_opts',
    header: 'bpf/bpf.h',
    kernel: false,
    fields: { sz: 0, elem_flags: 8, flags: 16 },
    size: 24,
  },
  /**
   * libbpf's options of bpf_map_create (libbpf 0.7), through `map_flags` (BPF_F_NO_PREALLOC, which an LPM trie
   * requires: kernel/bpf/lpm_trie.c, trie_alloc_check). The later members (map_extra, numa_node, ...) read as 0.
   */
  bpf_map_create_opts: {
    struct: 'bpf_map_create_opts',
    header: 'bpf/bpf.h',
    kernel: false,
    fields: { sz: 0, btf_fd: 8, btf_key_type_id: 12, btf_value_type_id: 16, inner_map_fd: 24, map_flags: 28 },
    size: 32,
  },
  /** The address of a netlink socket: family, pad, port id, multicast groups. */
  sockaddr_nl: {
    struct: 'sockaddr_nl',
    header: 'linux/netlink.h',
    kernel: true,
    fields: { nl_family: 0, nl_pad: 2, nl_pid: 4, nl_groups: 8 },
    size: 12,
  },
  /** An AF_UNIX address: the family, then up to 108 bytes of path (the address length says how many count). */
  sockaddr_un: {
    struct: 'sockaddr_un',
    header: 'sys/un.h',
    kernel: true,
    fields: { sun_family: 0, sun_path: 2 },
    size: 110,
  },
  /** One entry of poll(2)'s array. */
  pollfd: {
    struct: 'pollfd',
    header: 'poll.h',
    kernel: true,
    fields: { fd: 0, events: 4, revents: 6 },
    size: 8,
  },
  /**
   * The header of a control message (unix(7), cmsg(3)); its data starts at CMSG_ALIGN(sizeof(struct cmsghdr)), and
   * `size` is that sizeof (already aligned on LP64).
   */
  cmsghdr: {
    struct: 'cmsghdr',
    header: 'sys/socket.h',
    kernel: true,
    fields: { cmsg_len: 0, cmsg_level: 8, cmsg_type: 12 },
    size: 16,
  },
  /**
   * statfs(2)'s answer; f_type (the filesystem's magic number, a `long`) and f_flags (the mount's ST_* flags) are
   * read. glibc's struct is the kernel's (include/uapi/asm-generic/statfs.h) on LP64.
   */
  statfs: {
    struct: 'statfs',
    header: 'sys/statfs.h',
    kernel: true,
    fields: { f_type: 0, f_flags: 80 },
    size: 120,
  },
} as const satisfies Record<string, StructLayout>
