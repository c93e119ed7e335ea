/**
 * Starts the bundled command, dist/bundle/xdplinkd.cjs (scripts/bundle.mjs), from V8's code cache when there is a
 * good one next to it (dist/bundle/xdplinkd.cjs.cache, made at build time by launch/make-cache.ts).
 *
 * Why: without it, V8 parses the 1.4 MB bundle and compiles every function the start-up runs, on every start of the
 * service: 35-45 ms of a daemon that has 1,000 links attached ~160 ms after its spawn (`npm run bench -- --only a`,
 * its `XDPLINKD_CODE_CACHE=off` row; bench/README.md says where the rest goes). Node 20 has no compile cache of its own for modules
 * (module.enableCompileCache is Node 22), and only a script compiled through node:vm takes V8's `cachedData`: hence
 * a CommonJS bundle, run here with the wrapper Node gives a CommonJS module.
 *
 * The cache is a start-up aid, never a condition: a missing, foreign or stale file, or one V8 rejects (another node
 * than the one that made it, other V8 flags), leaves the bundle compiled from its source as before, and the daemon
 * says so in its log (commands/run.ts). XDPLINKD_CODE_CACHE=off ignores the file; =require fails instead of starting
 * without it (the build's and the tests' check that it is used).
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { Script } from 'node:vm'
import { decodeCodeCache, encodeCodeCache } from './code-cache.js'
import { setCodeCacheReport, type CodeCacheReport } from './state.js'

/** The cache of a bundle is the bundle's path with this appended. */
export const CODE_CACHE_SUFFIX = '.cache'

/** The wrapper Node's CommonJS loader puts around a module (lib/internal/modules/cjs/loader.js, wrapSafe). */
const WRAP_HEAD = '(function (exports, require, module, __filename, __dirname) { '
const WRAP_TAIL = '\n});'

function compile(path: string, source: Buffer, cachedData?: Buffer): Script {
  // esbuild writes ASCII only (its default charset), so V8 gets a one-byte string.
  return new Script(WRAP_HEAD + source.toString('utf8') + WRAP_TAIL, { filename: path, ...(cachedData ? { cachedData } : {}) })
}

/** V8's bytes from the bundle's cache file, or why there are none to use. */
function readCodeCache(path: string, bundle: Buffer): { data: Buffer } | { why: string } {
  const mode = process.env.XDPLINKD_CODE_CACHE
  if (mode === 'off') return { why: 'turned off (XDPLINKD_CODE_CACHE=off)' }
  let file: Buffer
  try {
    file = readFileSync(path)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    return { why: code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? (e as Error).message})` }
  }
  const r = decodeCodeCache(file, bundle)
  return r.ok ? { data: r.value } : { why: r.error }
}

interface BundleModule {
  exports: { main?: (args: readonly string[]) => Promise<void> }
}

/** Runs the bundle at `path` (its `main(args)`), from its code cache when V8 takes it. */
export async function startBundle(path: string, args: readonly string[]): Promise<void> {
  // Apart, so that the bundle's bytes and the cache's (3.4 MB) are garbage once it has run: the daemon's whole life
  // is spent inside main(), and an async function's locals live as long as it waits.
  const main = loadBundle(path)
  await main(args)
}

function loadBundle(path: string): (args: readonly string[]) => Promise<void> {
  const source = readFileSync(path)
  const cachePath = path + CODE_CACHE_SUFFIX
  const cache = readCodeCache(cachePath, source)
  const script = compile(path, source, 'data' in cache ? cache.data : undefined)
  const report: CodeCacheReport =
    'why' in cache
      ? { used: false, path: cachePath, why: cache.why }
      : script.cachedDataRejected
        ? { used: false, path: cachePath, why: 'rejected by V8 (made by another node, or with other V8 flags)' }
        : { used: true, path: cachePath }
  if (!report.used && process.env.XDPLINKD_CODE_CACHE === 'require') {
    throw new Error(`code cache ${report.path}: ${report.why} (XDPLINKD_CODE_CACHE=require)`)
  }
  setCodeCacheReport(report)
  const module: BundleModule = { exports: {} }
  const wrapper = script.runInThisContext() as (...a: unknown[]) => void
  wrapper.call(module.exports, module.exports, createRequire(path), module, path, dirname(path))
  if (typeof module.exports.main !== 'function') throw new Error(`${path} exports no main(): not a bundle of xdplinkd`)
  return module.exports.main
}

/**
 * Writes the code cache of the bundle at `path` (build time, launch/make-cache.ts). Every function is compiled
 * first (--no-lazy while the script compiles), so that whatever a command runs is in the cache: the same start-up
 * as a cache made after a real daemon's start, without running one (that needs root and a kernel). The flag is put
 * back before the cache is made: V8 stamps a hash of its flags into the cache and rejects it where they differ.
 * Returns the file's size.
 */
export function makeCodeCache(path: string): number {
  const source = readFileSync(path)
  setFlagsFromString('--no-lazy')
  let script: Script
  try {
    script = compile(path, source)
  } finally {
    setFlagsFromString('--lazy')
  }
  const file = encodeCodeCache(source, script.createCachedData())
  const cachePath = path + CODE_CACHE_SUFFIX
  const tmp = `${cachePath}.${process.pid}.tmp`
  writeFileSync(tmp, file, { mode: 0o644 })
  renameSync(tmp, cachePath)
  return file.length
}
