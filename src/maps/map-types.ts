/**
 * enum bpf_map_type (<linux/bpf.h>), as far as map contents and counters care: the one place for the numbers and
 * names, which maps can have declared contents, and how they hold them. Pure.
 */

export const BPF_MAP_TYPE_HASH = 1
export const BPF_MAP_TYPE_ARRAY = 2
export const BPF_MAP_TYPE_PROG_ARRAY = 3
export const BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4
export const BPF_MAP_TYPE_PERCPU_HASH = 5
export const BPF_MAP_TYPE_PERCPU_ARRAY = 6
export const BPF_MAP_TYPE_STACK_TRACE = 7
export const BPF_MAP_TYPE_CGROUP_ARRAY = 8
export const BPF_MAP_TYPE_LRU_HASH = 9
export const BPF_MAP_TYPE_LRU_PERCPU_HASH = 10
export const BPF_MAP_TYPE_LPM_TRIE = 11
export const BPF_MAP_TYPE_ARRAY_OF_MAPS = 12
export const BPF_MAP_TYPE_HASH_OF_MAPS = 13
export const BPF_MAP_TYPE_DEVMAP = 14
export const BPF_MAP_TYPE_SOCKMAP = 15
export const BPF_MAP_TYPE_CPUMAP = 16
export const BPF_MAP_TYPE_XSKMAP = 17
export const BPF_MAP_TYPE_SOCKHASH = 18
export const BPF_MAP_TYPE_CGROUP_STORAGE = 19
export const BPF_MAP_TYPE_REUSEPORT_SOCKARRAY = 20
export const BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE = 21
export const BPF_MAP_TYPE_QUEUE = 22
export const BPF_MAP_TYPE_STACK = 23
export const BPF_MAP_TYPE_SK_STORAGE = 24
export const BPF_MAP_TYPE_DEVMAP_HASH = 25
export const BPF_MAP_TYPE_STRUCT_OPS = 26
export const BPF_MAP_TYPE_RINGBUF = 27
export const BPF_MAP_TYPE_INODE_STORAGE = 28
export const BPF_MAP_TYPE_TASK_STORAGE = 29
export const BPF_MAP_TYPE_BLOOM_FILTER = 30
export const BPF_MAP_TYPE_USER_RINGBUF = 31
export const BPF_MAP_TYPE_CGRP_STORAGE = 32
export const BPF_MAP_TYPE_ARENA = 33

// <linux/bpf.h> map_flags: elements allocated on update, not all at creation (required by an LPM trie:
// kernel/bpf/lpm_trie.c, trie_alloc_check).
export const BPF_F_NO_PREALLOC = 1

/** Lower-case names as libbpf's libbpf_bpf_map_type_str gives them, for messages. */
const NAMES: Record<number, string> = {
  [BPF_MAP_TYPE_HASH]: 'hash',
  [BPF_MAP_TYPE_ARRAY]: 'array',
  [BPF_MAP_TYPE_PROG_ARRAY]: 'prog_array',
  [BPF_MAP_TYPE_PERF_EVENT_ARRAY]: 'perf_event_array',
  [BPF_MAP_TYPE_PERCPU_HASH]: 'percpu_hash',
  [BPF_MAP_TYPE_PERCPU_ARRAY]: 'percpu_array',
  [BPF_MAP_TYPE_STACK_TRACE]: 'stack_trace',
  [BPF_MAP_TYPE_CGROUP_ARRAY]: 'cgroup_array',
  [BPF_MAP_TYPE_LRU_HASH]: 'lru_hash',
  [BPF_MAP_TYPE_LRU_PERCPU_HASH]: 'lru_percpu_hash',
  [BPF_MAP_TYPE_LPM_TRIE]: 'lpm_trie',
  [BPF_MAP_TYPE_ARRAY_OF_MAPS]: 'array_of_maps',
  [BPF_MAP_TYPE_HASH_OF_MAPS]: 'hash_of_maps',
  [BPF_MAP_TYPE_DEVMAP]: 'devmap',
  [BPF_MAP_TYPE_SOCKMAP]: 'sockmap',
  [BPF_MAP_TYPE_CPUMAP]: 'cpumap',
  [BPF_MAP_TYPE_XSKMAP]: 'xskmap',
  [BPF_MAP_TYPE_SOCKHASH]: 'sockhash',
  [BPF_MAP_TYPE_CGROUP_STORAGE]: 'cgroup_storage',
  [BPF_MAP_TYPE_REUSEPORT_SOCKARRAY]: 'reuseport_sockarray',
  [BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE]: 'percpu_cgroup_storage',
  [BPF_MAP_TYPE_QUEUE]: 'queue',
  [BPF_MAP_TYPE_STACK]: 'stack',
  [BPF_MAP_TYPE_SK_STORAGE]: 'sk_storage',
  [BPF_MAP_TYPE_DEVMAP_HASH]: 'devmap_hash',
  [BPF_MAP_TYPE_STRUCT_OPS]: 'struct_ops',
  [BPF_MAP_TYPE_RINGBUF]: 'ringbuf',
  [BPF_MAP_TYPE_INODE_STORAGE]: 'inode_storage',
  [BPF_MAP_TYPE_TASK_STORAGE]: 'task_storage',
  [BPF_MAP_TYPE_BLOOM_FILTER]: 'bloom_filter',
  [BPF_MAP_TYPE_USER_RINGBUF]: 'user_ringbuf',
  [BPF_MAP_TYPE_CGRP_STORAGE]: 'cgrp_storage',
  [BPF_MAP_TYPE_ARENA]: 'arena',
}

export function mapTypeName(type: number): string {
  return NAMES[type] ?? `type ${type}`
}

/**
 * How a map whose contents may be declared holds them: `hash` (keys come and go: hash, LRU hash, LPM trie and the
 * per-CPU hashes) or `array` (every index from 0 to max_entries - 1 always exists and cannot be deleted: an index
 * not declared holds zero bytes). null: contents that are not data (programs, devices, sockets, other maps), or a
 * map that has no keys (ring buffers).
 *
 * LRU maps may evict a declared key when full; declaring no more than max_entries (declare.ts) keeps that from
 * happening to the declared keys alone, but the program may insert others.
 */
export function declarableMapType(type: number): 'hash' | 'array' | null {
  switch (type) {
    case BPF_MAP_TYPE_HASH:
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_LRU_HASH:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
    case BPF_MAP_TYPE_LPM_TRIE:
      return 'hash'
    case BPF_MAP_TYPE_ARRAY:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
      return 'array'
    default:
      return null
  }
}

/** Whether each CPU has its own copy of a value (the value buffer of a lookup or update holds one per CPU). */
export function isPerCpu(type: number): boolean {
  return type === BPF_MAP_TYPE_PERCPU_HASH || type === BPF_MAP_TYPE_PERCPU_ARRAY || type === BPF_MAP_TYPE_LRU_PERCPU_HASH
}

/**
 * Maps indexed 0 to max_entries - 1 where every index exists whatever was written (kernel/bpf/arraymap.c and the
 * fd, device, CPU, socket and XSK arrays: their get_next_key steps through the indices). Their entry count is
 * max_entries; walking them would only count to it.
 */
export function isIndexed(type: number): boolean {
  switch (type) {
    case BPF_MAP_TYPE_ARRAY:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
    case BPF_MAP_TYPE_PROG_ARRAY:
    case BPF_MAP_TYPE_PERF_EVENT_ARRAY:
    case BPF_MAP_TYPE_CGROUP_ARRAY:
    case BPF_MAP_TYPE_ARRAY_OF_MAPS:
    case BPF_MAP_TYPE_DEVMAP:
    case BPF_MAP_TYPE_SOCKMAP:
    case BPF_MAP_TYPE_CPUMAP:
    case BPF_MAP_TYPE_XSKMAP:
    case BPF_MAP_TYPE_REUSEPORT_SOCKARRAY:
      return true
    default:
      return false
  }
}
