#!/usr/bin/env -S node --no-memory-reducer
/**
 * The command: starts the bundle (dist/bundle/xdplinkd.cjs, made from main.ts by scripts/bundle.mjs) from V8's code
 * cache (launch/bundle.ts). The `#!` line carries the one node flag that only works on the command line
 * (cli/heap.ts); the code cache is made under the same flags.
 */
import { fileURLToPath } from 'node:url'
import { startBundle } from './launch/bundle.js'

await startBundle(fileURLToPath(new URL('./bundle/xdplinkd.cjs', import.meta.url)), process.argv.slice(2))
