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
 * Their price: a flag changed at run time changes V8's flag hash, so every built-in module Node loads after it
 * (crypto, net, stream, worker_threads for pino, ...) no longer matches the code cache embedded in the node binary
 * and is compiled from source, ~8 ms of the daemon's module loading (~13 ms of a start-up over 1,000 links, median
 * of 12). Setting them after the modules are loaded saves that but is too late for the memory reducer: it arms
 * itself while the modules load (old generation grown by 1 MiB, no full GC yet) and then wakes the idle daemon
 * ~8 s after start-up for three GCs (~50 ms of CPU; bench part e: 5 ticks instead of 0). Forcing a full GC first
 * (vm.measureMemory eager) keeps it disarmed but costs about what it saves. Measured with
 * `npm run bench` (parts a, d, e) and a memory probe on 1,000 and 10,000 links:
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
import { setFlagsFromString } from 'node:v8'

export function tuneHeapForDaemon(): void {
  setFlagsFromString('--semi-space-growth-factor=1')
  setFlagsFromString('--no-memory-reducer-for-small-heaps')
  setFlagsFromString('--interrupt-budget=540672')
}
