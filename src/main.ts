/**
 * Command line: argv only. Each command lives in commands/ and returns its exit status. The daemon's plain
 * `run ...` is read by a small parser of its own (cli/fast-run.ts); everything else goes through yargs.
 *
 * The entry of the bundle (scripts/bundle.mjs -> dist/bundle/xdplinkd.cjs), which dist/cli.js starts (src/launch/cli.ts,
 * launch/bundle.ts). No top-level await here or below: the bundle is CommonJS, so that V8 can start it from a code
 * cache.
 */
import { parseRunArgs } from './cli/fast-run.js'
import { tuneHeapForDaemon } from './cli/heap.js'
import { run } from './cli/outcome.js'

export async function main(args: readonly string[]): Promise<void> {
  if (args[0] === 'run') tuneHeapForDaemon()
  const runArgs = parseRunArgs(args)
  if (runArgs) await run(async () => (await import('./commands/run.js')).runCommand(runArgs))
  else await (await import('./cli/yargs.js')).parseAndRun([...args])
}
