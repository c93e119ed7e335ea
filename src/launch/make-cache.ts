/**
 * Build step (scripts/bundle.mjs): `node FLAGS dist/launch/make-cache.js BUNDLE` writes BUNDLE.cache. FLAGS must be
 * the node flags of dist/cli.js's `#!` line, the ones the cache is used under (launch/bundle.ts).
 */
import { makeCodeCache } from './bundle.js'

const path = process.argv[2]
if (!path) throw new Error('usage: make-cache.js BUNDLE')
process.stdout.write(`${makeCodeCache(path)}\n`)
