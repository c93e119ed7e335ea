/**
 * V8 heap settings for the daemon. They are set at run time, before start-up allocates anything much, because the
 * service runs dist/cli.js through its `#!` line: one node flag can go there, the rest are cheaper here (node flags
 * on the command line cost more still: see below).
 *
 * The one on the `#!` line (src/launch/cli.ts), `--no-memory-reducer`, must be: V8 makes its memory reducer when it
 * sets the heap up, and a flag changed later only stops new GCs being planned, not the reducer (heap.cc, Heap::SetUp;
 * memory-reducer.cc never looks at the flag again). The reducer arms itself at any full GC while the old generation
 * holds 10 MiB more than after its last run (MemoryReducer::Step, kCommittedMemoryDelta), and then, 8 s after the
 * last full GC of a burst (kLongDelayMs), wakes the process for up to three GCs once it is idle: an idle daemon
 * that managed 300 network namespaces spent 8 ticks (80 ms) in them 8-10 s after start-up, 1,000 namespaces 14
 * (bench part g: `node bench/main.mjs --only g --namespaces 300 --idle 30`, 8 ticks -> 0 with the flag). The price:
 * the memory it would have returned stays resident, 62.1 -> 66.5 MiB after the idle window with 300 namespaces;
 * the resident size right after start-up (bench part d's target) is the same either way. V8's ordinary full GCs
 * still run as the heap grows and shrink it as they do.
 *
 * Their price: a flag changed at run time changes V8's flag hash, and node's built-in modules come with a code cache
 * made under the default flags (embedded in the node binary), which V8 takes only while the hash matches: every
 * built-in loaded after the change is compiled from its source. So the built-ins the daemon loads are loaded first
 * (DAEMON_BUILTINS; test/cli/heap.test.ts runs a daemon and fails on any built-in loaded later): loading those
 * after the change took 10.7 ms, before it 4.3, and a start-up over 1,000 links went from 217 to 194 ms (medians
 * of 16 interleaved runs, on a slow day of this VM). The flags themselves stay before the daemon's own modules
 * load: the memory reducer arms itself while they do (old generation grown by 1 MiB, no full GC yet) unless
 * --no-memory-reducer is on the command line, and the interrupt budget must be in force for the start-up's burst
 * (set after Daemon.open: 161 -> 172 ms, medians). The settings, measured with `npm run bench` (parts a, d, e) and
 * a memory probe on 1,000 and 10,000 links:
 *
 * - --semi-space-growth-factor=1: the young generation keeps its initial 1 MiB semi-spaces. During a start-up over
 *   many links V8 otherwise doubles them up to 16 MiB, and both halves stay resident (32 MiB) until its memory
 *   reducer shrinks them, seconds after start-up if ever. With 10,000 links: 88 MiB resident after start-up instead
 *   of 116 MiB, and start-up no slower.
 * - --no-memory-reducer-for-small-heaps: once idle, a heap that never needed a full GC is left alone. Otherwise the
 *   memory reducer wakes the idle daemon some 8 s after start-up for ~40 ms of marking to return a few MiB
 *   (1,000 links: 67 MiB stay resident instead of ~60). A heap that did grow into a full GC still gets it. Moot
 *   under the `#!` line's --no-memory-reducer; kept for `node dist/cli.js run` (the tests, a hand-made unit).
 * - --interrupt-budget=540672 (8x V8's 67584): functions run longer in the interpreter before V8 considers them for
 *   optimization. The daemon's work comes in bursts (a storm of link notifications, a batch of attaches); with the
 *   default budget each burst sends the same handful of functions through optimizing compiles on the daemon's two
 *   cores while the burst lasts. Measured with `node bench/main.mjs --only b --runs 5`, one build right after the
 *   other: CPU of a daemon that only listens to 1,000 links being created 144 -> 79 ms (`ip monitor link`: 16 ms);
 *   of one that attaches them 250 -> 160 ms; creation start to last attach 380 -> 282 ms (1.50x -> 1.20x of the
 *   create + `ip -batch` baseline).
 */
import { createRequire } from 'node:module'
import { setFlagsFromString } from 'node:v8'

/**
 * The built-in modules a daemon loads, at start-up or later (a status request, a reload, a link event): loaded
 * before the flags change, from node's code cache (see above). Named at the top only: what each loads with it
 * comes along (fs/promises brings readline's interface, stream its internals). cluster is net.Server.listen's
 * (lib/net.js loads it for the control socket), with child_process and dgram. The metrics server's node:http is
 * left out: only a config with `metrics:` loads it, and it would cost every other daemon ~1 ms.
 */
export const DAEMON_BUILTINS = [
  'node:assert',
  'node:cluster',
  'node:diagnostics_channel',
  'node:fs/promises',
  'node:net',
  'node:os',
  'node:perf_hooks',
  'node:process',
  'node:stream',
  'node:tty',
  'node:worker_threads',
] as const

export function tuneHeapForDaemon(): void {
  const load = createRequire(import.meta.url)
  for (const m of DAEMON_BUILTINS) load(m)
  // Resolving a package by its name loads node's package resolver (internal/modules/esm/resolve and three modules
  // with it), built-ins too; koffi is the first package the daemon requires by name.
  load.resolve('koffi')
  setFlagsFromString('--semi-space-growth-factor=1')
  setFlagsFromString('--no-memory-reducer-for-small-heaps')
  setFlagsFromString('--interrupt-budget=540672')
}
