/**
 * Walking a map's keys with BPF_MAP_GET_NEXT_KEY (Linux 3.19, every keyed map type): the per-link counters' reads
 * and the `maps` view's entry counts. One bpf(2) call per key (about 2.5 µs through koffi on the 2-vCPU VM of the
 * bench), so callers that may meet a large map bound the walk.
 */
import { mapGetNextKey } from '../ffi/bpf-fd.js'
import type { Fd } from '../ffi/fd.js'

export interface KeyWalk {
  /** Every key met, once each, by lowercase hex. */
  keys: Map<string, Buffer>
  /**
   * Whether the walk reached the end of the map: false when it stopped at `limit` keys with more to come, or when
   * the map changed faster than it was walked.
   */
  complete: boolean
}

/**
 * The keys of the map behind `fd`, at most `limit` of them (every key by default). A hash map's walk starts again
 * from the first key when the key it stands on is deleted meanwhile (kernel/bpf/hashtab.c, htab_map_get_next_key:
 * an LRU eviction, another tool's delete), so a key may come twice: kept by value. The steps are bounded by twice
 * max_entries, so that a map churning faster than it is walked still ends.
 */
export function walkKeys(fd: Fd, keySize: number, maxEntries: number, limit = Infinity): KeyWalk {
  const keys = new Map<string, Buffer>()
  const next = Buffer.alloc(keySize)
  let key: Buffer | null = null
  for (let steps = 0; steps < 2 * maxEntries + 1; steps++) {
    if (keys.size >= limit) {
      // One more call tells a map of exactly `limit` keys from a larger one.
      return { keys, complete: !mapGetNextKey(fd, key, next) }
    }
    if (!mapGetNextKey(fd, key, next)) return { keys, complete: true }
    key = Buffer.from(next)
    keys.set(key.toString('hex'), key)
  }
  return { keys, complete: false }
}
