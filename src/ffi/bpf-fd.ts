/**
 * BPF objects by descriptor, through libbpf's thin syscall wrappers (<bpf/bpf.h>): opening a pin or an id,
 * pinning, what the kernel says about a program or map (BPF_OBJ_GET_INFO_BY_FD), map elements and test runs.
 * Descriptors we own come back as Fd.
 */
import { readlinkSync } from 'node:fs'
import koffi from 'koffi'
import { ERRNO } from './errno.js'
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
}

/** What the kernel says about a map (struct bpf_map_info, through `name`). */
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
  }
}

function cString(b: Buffer): string {
  const end = b.indexOf(0)
  return b.toString('utf8', 0, end < 0 ? b.length : end)
}

/** bpf_map_lookup_elem: copies the value into `value`; false when the key is absent (ENOENT). */
export function mapLookupElem(fd: Fd, key: Buffer, value: Buffer): boolean {
  const rc = libbpf().bpf_map_lookup_elem(fd.raw, key, value) as number
  if (rc >= 0) return true
  const err = libbpfError('bpf_map_lookup_elem', rc, fd.label)
  if (err.errno === ERRNO.ENOENT) return false
  throw err
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
  const rc = libbpf().bpf_map_get_next_key(fd.raw, key, next) as number
  if (rc >= 0) return true
  const err = libbpfError('bpf_map_get_next_key', rc, fd.label)
  if (err.errno === ERRNO.ENOENT) return false
  throw err
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
