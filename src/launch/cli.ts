#!/usr/bin/env -S node --no-memory-reducer
/**
 * The command: starts the bundle (dist/bundle/xdplinkd.cjs, made from main.ts by scripts/bundle.mjs) from V8's code
 * cache (bundle.ts). The `#!` line carries the one node flag that only works on the command line (cli/heap.ts); the
 * code cache is made under the same flags.
 *
 * Bundled alone as CommonJS into dist/cli.cjs, with dist/cli.js a symlink to it: the bin, the unit and the image run
 * dist/cli.js, and node, which resolves the main module's symlinks (--preserve-symlinks-main is off), takes the file
 * for CommonJS by its real name. A CommonJS main module starts ~4 ms sooner than an ES module: node never sets up its
 * ES module loader. Hence no top-level await here.
 */
import { fileURLToPath } from 'node:url'
import { startBundle } from './bundle.js'

startBundle(fileURLToPath(new URL('./bundle/xdplinkd.cjs', import.meta.url)), process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`xdplinkd: ${e instanceof Error ? e.message : String(e)}\n`)
  process.exitCode = 1
})
