/**
 * BPF objects by descriptor, through libbpf's thin syscall wrappers (<bpf/bpf.h>): opening a pin or an id,
 * pinning, what the kernel says about a program or map (BPF_OBJ_GET_INFO_BY_FD), map elements and test runs.
 * Descriptors we own come back as Fd.
 */
import { readlinkSync } from 'node:fs'
import koffi from 'koffi'
import { ERRNO, type SyscallError } from './errno.js'
import { Fd } from './fd.js'
import { libbpf, libbpfCheck, libbpfError } from './libbpf.js'
import { BPF_OBJ_NAME_LEN, BPF_TAG_SIZE, STRUCTS } from './structs.js'

// <linux/bpf.h> flags of BPF_MAP_UPDATE_ELEM
export const BPF_ANY = 0
export const BPF_NOEXIST = 1
export const BPF_EXIST = 2

/** bpf_obj_get (BPF_OBJ_GET, Linux 4.4): opens a pinned program, map or link. */
export function objGet(path: string): Fd {
  const fd = libbpfCheck('bpf_obj_get', libbpf().bpf_obj_get(path) as number, path)
  return new Fd(fd, `bpf ${path}`)
}

/**
 * bpf_prog_get_fd_by_id (BPF_PROG_GET_FD_BY_ID, Linux 4.13): a program known only by id, e.g. a foreign one to
 * replace. Needs CAP_SYS_ADMIN (kernel/bpf/syscall.c); for our own programs open the pin with objGet instead.
 * Returns null when no program has that id.
 */
export function progFdById(id: number): Fd | null {
  const rc = libbpf().bpf_prog_get_fd_by_id(id) as number
  if (rc === -ERRNO.ENOENT) return null
  return new Fd(libbpfCheck('bpf_prog_get_fd_by_id', rc, `program id ${id}`), `bpf prog ${id}`)
}

/** bpf_obj_pin (BPF_OBJ_PIN, Linux 4.4). Fails with EEXIST when the path exists. */
export function objPin(fd: Fd, path: string): void {
  libbpfCheck('bpf_obj_pin', libbpf().bpf_obj_pin(fd.raw, path) as number, path)
}

/** What a BPF descriptor refers to: the anon inode's name (`anon_inode:bpf-prog`, fs/anon_inodes.c). */
export type BpfFdKind = 'prog' | 'map' | 'link' | 'btf' | 'other'
export function bpfFdKind(fd: Fd): BpfFdKind {
  const target = readlinkSync(`/proc/self/fd/${fd.raw}`)
  const m = /^anon_inode:bpf-(prog|map|link)$/.exec(target) ?? (target === 'anon_inode:btf' ? [target, 'btf'] : null)
  return (m?.[1] as BpfFdKind | undefined) ?? 'other'
}

/**
 * bpf_obj_get_info_by_fd (BPF_OBJ_GET_INFO_BY_FD, Linux 4.13): fills `info` (a struct bpf_prog_info, bpf_map_info,
 * ... as the descriptor is). A buffer shorter than the kernel's struct is allowed: the kernel fills the prefix it
 * was given (kernel/bpf/syscall.c, bpf_prog_get_info_by_fd). Returns the info_len the kernel wrote back: the bytes
 * it filled, at most its own sizeof.
 */
export function objInfo(fd: Fd, info: Buffer): number {
  const len = [info.length]
  libbpfCheck('bpf_obj_get_info_by_fd', libbpf().bpf_obj_get_info_by_fd(fd.raw, info, len) as number, fd.label)
  return len[0]!
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

/** How many map ids progInfo asks for; of a program that uses more, the first ones are listed. */
const MAX_MAP_IDS = 64

/** What the kernel says about a program (struct bpf_prog_info, through `name`). */
export function progInfo(fd: Fd): ProgInfo {
  const { size, fields } = STRUCTS.bpf_prog_info
  const info = Buffer.alloc(size)
  const ids = Buffer.alloc(MAX_MAP_IDS * 4)
  info.writeUInt32LE(MAX_MAP_IDS, fields.nr_map_ids)
  info.writeBigUInt64LE(koffi.address(ids), fields.map_ids)
  objInfo(fd, info)
  const nr = Math.min(info.readUInt32LE(fields.nr_map_ids), MAX_MAP_IDS)
  const mapIds: number[] = []
  for (let i = 0; i < nr; i++) mapIds.push(ids.readUInt32LE(i * 4))
  return {
    type: info.readUInt32LE(fields.type),
    id: info.readUInt32LE(fields.id),
    tag: info.subarray(fields.tag, fields.tag + BPF_TAG_SIZE).toString('hex'),
    name: cString(info.subarray(fields.name, fields.name + BPF_OBJ_NAME_LEN)),
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
  /** The BTF object the map was created with (0: none), and its key and value types in it (0: none). */
  btfId: number
  btfKeyTypeId: number
  btfValueTypeId: number
}

/** What the kernel says about a map (struct bpf_map_info, through `btf_value_type_id`). */
export function mapInfo(fd: Fd): MapInfo {
  const { size, fields } = STRUCTS.bpf_map_info
  const info = Buffer.alloc(size)
  objInfo(fd, info)
  return {
    type: info.readUInt32LE(fields.type),
    id: info.readUInt32LE(fields.id),
    keySize: info.readUInt32LE(fields.key_size),
    valueSize: info.readUInt32LE(fields.value_size),
    maxEntries: info.readUInt32LE(fields.max_entries),
    flags: info.readUInt32LE(fields.map_flags),
    name: cString(info.subarray(fields.name, fields.name + BPF_OBJ_NAME_LEN)),
    btfId: info.readUInt32LE(fields.btf_id),
    btfKeyTypeId: info.readUInt32LE(fields.btf_key_type_id),
    btfValueTypeId: info.readUInt32LE(fields.btf_value_type_id),
  }
}

function cString(b: Buffer): string {
  const end = b.indexOf(0)
  return b.toString('utf8', 0, end < 0 ? b.length : end)
}

/** The answer of a call on a key: true for done, false for a key that is absent (ENOENT), any other error thrown. */
function keyFound(fn: string, rc: number, fd: Fd): boolean {
  if (rc >= 0) return true
  const err = libbpfError(fn, rc, fd.label)
  if (err.errno === ERRNO.ENOENT) return false
  throw err
}

/** bpf_map_lookup_elem: copies the value into `value`; false when the key is absent (ENOENT). */
export function mapLookupElem(fd: Fd, key: Buffer, value: Buffer): boolean {
  return keyFound('bpf_map_lookup_elem', libbpf().bpf_map_lookup_elem(fd.raw, key, value) as number, fd)
}

export function mapUpdateElem(fd: Fd, key: Buffer, value: Buffer, flags = BPF_ANY): void {
  libbpfCheck('bpf_map_update_elem', libbpf().bpf_map_update_elem(fd.raw, key, value, flags) as number, fd.label)
}

/**
 * bpf_map_get_next_key (BPF_MAP_GET_NEXT_KEY, Linux 3.19): writes the key after `key` into `next`, the first key
 * for a null `key`; false at the end (ENOENT). A hash map's order is its buckets'; a key deleted meanwhile makes the
 * kernel start again from the first (kernel/bpf/hashtab.c, htab_map_get_next_key), so a walk of a map that changes
 * under it may see a key twice: callers keep what they have seen by key.
 */
export function mapGetNextKey(fd: Fd, key: Buffer | null, next: Buffer): boolean {
  return keyFound('bpf_map_get_next_key', libbpf().bpf_map_get_next_key(fd.raw, key, next) as number, fd)
}

export interface TestRunResult {
  /** What the program returned (an XDP action for XDP) */
  retval: number
  /** Average run time per repetition, in ns, as the kernel measured it */
  durationNs: number
  /** The packet as the program left it */
  dataOut: Buffer
}

/**
 * Room past the input for a program that grows the packet (bpf_xdp_adjust_head, bpf_xdp_adjust_tail): given a
 * data_out too small, the kernel copies what fits and fails with ENOSPC (net/bpf/test_run.c, bpf_test_finish).
 */
const TEST_RUN_HEADROOM = 256

/**
 * bpf_prog_test_run_opts (BPF_PROG_TEST_RUN; XDP since Linux 4.12): runs the program `repeat` times on a copy of
 * `data` in the kernel, with its real maps, without any interface. Since Linux 5.x the frame must hold at least an
 * Ethernet header (net/bpf/test_run.c, bpf_prog_test_run_xdp).
 */
export function progTestRun(fd: Fd, data: Buffer, repeat = 1): TestRunResult {
  const { size, fields } = STRUCTS.bpf_test_run_opts
  const out = Buffer.alloc(data.length + TEST_RUN_HEADROOM)
  const opts = Buffer.alloc(size)
  opts.writeBigUInt64LE(BigInt(size), fields.sz)
  opts.writeBigUInt64LE(koffi.address(data), fields.data_in)
  opts.writeBigUInt64LE(koffi.address(out), fields.data_out)
  opts.writeUInt32LE(data.length, fields.data_size_in)
  opts.writeUInt32LE(out.length, fields.data_size_out)
  opts.writeInt32LE(repeat, fields.repeat)
  libbpfCheck('bpf_prog_test_run_opts', libbpf().bpf_prog_test_run_opts(fd.raw, opts) as number, fd.label)
  return {
    retval: opts.readUInt32LE(fields.retval),
    durationNs: opts.readUInt32LE(fields.duration),
    dataOut: out.subarray(0, opts.readUInt32LE(fields.data_size_out)),
  }
}

/** CPUs a per-CPU map holds a value for (/sys/devices/system/cpu/possible), as libbpf counts them. */
export function numPossibleCpus(): number {
  return libbpfCheck('libbpf_num_possible_cpus', libbpf().libbpf_num_possible_cpus() as number)
}


/** bpf_map_delete_elem (BPF_MAP_DELETE_ELEM): false when the key was absent (ENOENT). */
export function mapDeleteElem(fd: Fd, key: Buffer): boolean {
  return keyFound('bpf_map_delete_elem', libbpf().bpf_map_delete_elem(fd.raw, key) as number, fd)
}

/**
 * What one batch call did: the elements it did (its written-back `count`) and the error that stopped it, null when
 * it did them all. Not thrown, because a failed batch call has still done `count` elements (kernel/bpf/syscall.c,
 * generic_map_update_batch stops at the first failing element), and ENOENT ends every lookup walk with the last
 * partial batch.
 */
export interface BatchAnswer {
  count: number
  error: SyscallError | null
}

function batchOpts(elemFlags: number): Buffer {
  const { size, fields } = STRUCTS.bpf_map_batch_opts
  const opts = Buffer.alloc(size)
  opts.writeBigUInt64LE(BigInt(size), fields.sz)
  opts.writeBigUInt64LE(BigInt(elemFlags), fields.elem_flags)
  return opts
}

function batchAnswer(fn: string, rc: number, count: number, fd: Fd): BatchAnswer {
  return { count, error: rc < 0 ? libbpfError(fn, rc, fd.label) : null }
}

/**
 * A write batch that failed with `count` as it was asked did nothing: the kernel writes `count` back only once it
 * has started on the elements (generic_map_update_batch, generic_map_delete_batch), and one that does them all does
 * not fail. Refusals before that (ENOTSUPP, EPERM on a frozen map, EINVAL flags) leave it untouched.
 */
function writeBatchAnswer(fn: string, rc: number, count: number, asked: number, fd: Fd): BatchAnswer {
  return batchAnswer(fn, rc, rc < 0 && count >= asked ? 0 : count, fd)
}

/**
 * bpf_map_lookup_batch (BPF_MAP_LOOKUP_BATCH, Linux 5.6): up to `count` elements from where `inBatch` says (null:
 * the start), keys packed in `keys` (key_size each), values in `values` (bpf_map_value_size each: per-CPU maps
 * round_up(value_size, 8) per possible CPU); `outBatch` receives the token for the next call. The token is the map
 * type's: a u32 bucket index for hash maps (kernel/bpf/hashtab.c, __htab_map_lookup_and_delete_batch), the last key
 * (key_size bytes) for the generic walk (kernel/bpf/syscall.c, generic_map_lookup_batch): give both buffers
 * max(4, key_size) bytes. The end of the map is ENOENT, with the last elements counted.
 */
export function mapLookupBatch(
  fd: Fd,
  inBatch: Buffer | null,
  outBatch: Buffer,
  keys: Buffer,
  values: Buffer,
  count: number,
): BatchAnswer {
  const n = [count]
  const rc = libbpf().bpf_map_lookup_batch(fd.raw, inBatch, outBatch, keys, values, n, batchOpts(BPF_ANY)) as number
  return batchAnswer('bpf_map_lookup_batch', rc, n[0]!, fd)
}

/**
 * bpf_map_update_batch (BPF_MAP_UPDATE_BATCH, Linux 5.6): the first `count` keys and values of the buffers (laid out
 * as for mapLookupBatch), each with `elemFlags`, in order; stops at the first that fails, which is element `count`
 * of the answer.
 */
export function mapUpdateBatch(fd: Fd, keys: Buffer, values: Buffer, count: number, elemFlags = BPF_ANY): BatchAnswer {
  const n = [count]
  const rc = libbpf().bpf_map_update_batch(fd.raw, keys, values, n, batchOpts(elemFlags)) as number
  return writeBatchAnswer('bpf_map_update_batch', rc, n[0]!, count, fd)
}

/** bpf_map_delete_batch (BPF_MAP_DELETE_BATCH, Linux 5.6): the first `count` keys, in order; a missing key is ENOENT. */
export function mapDeleteBatch(fd: Fd, keys: Buffer, count: number): BatchAnswer {
  const n = [count]
  const rc = libbpf().bpf_map_delete_batch(fd.raw, keys, n, batchOpts(BPF_ANY)) as number
  return writeBatchAnswer('bpf_map_delete_batch', rc, n[0]!, count, fd)
}

/** bpf_map_create (BPF_MAP_CREATE): a new map, not pinned; for tests and the bench. */
export function mapCreate(type: number, name: string, keySize: number, valueSize: number, maxEntries: number, flags = 0): Fd {
  const { size, fields } = STRUCTS.bpf_map_create_opts
  const opts = Buffer.alloc(size)
  opts.writeBigUInt64LE(BigInt(size), fields.sz)
  opts.writeUInt32LE(flags, fields.map_flags)
  const rc = libbpf().bpf_map_create(type, name, keySize, valueSize, maxEntries, opts) as number
  return new Fd(libbpfCheck('bpf_map_create', rc, name), `bpf map ${name}`)
}
