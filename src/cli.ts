#!/usr/bin/env -S node --no-memory-reducer
/**
 * Command line: argv only. Each command lives in commands/ and returns its exit status. The daemon's plain
 * `run ...` is read by a small parser of its own (cli/fast-run.ts); everything else goes through yargs.
 */
import { parseRunArgs } from './cli/fast-run.js'
import { tuneHeapForDaemon } from './cli/heap.js'
import { run } from './cli/outcome.js'

const args = process.argv.slice(2)
if (args[0] === 'run') tuneHeapForDaemon()
const runArgs = parseRunArgs(args)
if (runArgs) await run(async () => (await import('./commands/run.js')).runCommand(runArgs))
else await (await import('./cli/yargs.js')).parseAndRun(args)
