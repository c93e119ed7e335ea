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
export const BPF_MAP_TYPE_QUEUE = 22
export const BPF_MAP_TYPE_RINGBUF = 27

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
  [BPF_MAP_TYPE_QUEUE]: 'queue',
  [BPF_MAP_TYPE_RINGBUF]: 'ringbuf',
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
