#!/usr/bin/env node
/**
 * Command line: argv only. Each command lives in commands/ and returns its exit status. The daemon's plain
 * `run ...` is read by a small parser of its own (cli/fast-run.ts); everything else goes through yargs.
 */
import { parseRunArgs } from './cli/fast-run.js'
import { loadDaemonCommand } from './cli/heap.js'
import { run } from './cli/outcome.js'

const args = process.argv.slice(2)
const runArgs = parseRunArgs(args)
if (runArgs) await run(async () => (await loadDaemonCommand()).runCommand(runArgs))
else await (await import('./cli/yargs.js')).parseAndRun(args)
