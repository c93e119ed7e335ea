/**
 * V8 heap settings for the daemon. They are set at run time, because the service runs plain `node dist/cli.js`
 * (systemd/xdplinkd.service): no node flags to put them in. They are set after the daemon's modules are loaded and
 * before start-up allocates anything much (loadDaemonCommand): a flag changed at run time changes V8's flag hash,
 * and every built-in module Node loads after that (crypto, net, stream, worker_threads for pino, ...) no longer
 * matches the code cache embedded in the node binary, so it is compiled from source. Set first thing, they made
 * loading the daemon's modules 8 ms slower and the whole start-up over 1,000 links ~13 ms slower (median of 12).
 * Measured with
 * `npm run bench` (parts a, d, e) and a memory probe on 1,000 and 10,000 links:
 *
 * - --semi-space-growth-factor=1: the young generation keeps its initial 1 MiB semi-spaces. During a start-up over
 *   many links V8 otherwise doubles them up to 16 MiB, and both halves stay resident (32 MiB) until its memory
 *   reducer shrinks them, seconds after start-up if ever. With 10,000 links: 88 MiB resident after start-up instead
 *   of 116 MiB, and start-up no slower.
 * - --no-memory-reducer-for-small-heaps: once idle, a heap that never needed a full GC is left alone. Otherwise the
 *   memory reducer wakes the idle daemon some 8 s after start-up for ~40 ms of marking to return a few MiB
 *   (1,000 links: 67 MiB stay resident instead of ~60). A heap that did grow into a full GC still gets it.
 */
import { setFlagsFromString } from 'node:v8'

/** The `run` command's module, loaded before the heap is tuned (see above for why the order matters). */
export async function loadDaemonCommand(): Promise<typeof import('../commands/run.js')> {
  const m = await import('../commands/run.js')
  tuneHeapForDaemon()
  return m
}

export function tuneHeapForDaemon(): void {
  setFlagsFromString('--semi-space-growth-factor=1')
  setFlagsFromString('--no-memory-reducer-for-small-heaps')
}
