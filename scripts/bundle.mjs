/**
 * Bundles what tsc compiled into dist/ so that a command starts from a handful of files instead of ~150 ES modules
 * (ours, yaml's, pino's, ajv's runtime...): Node 20 resolves, reads and links every ES module one by one, and that
 * was about 35 ms of the daemon's start-up (`npm run bench -- --only a`: 250 -> 214 ms to all 1,000 links attached).
 *
 * dist/cli.js is replaced in place by the bundle's entry; what each command loads lazily (`run`, yargs, prom-client,
 * ajv's compiler) stays a separate chunk in dist/chunks/, loaded only when used. What is left out of the bundle:
 * scripts/esbuild-node.mjs.
 * The rest of dist/ is left as tsc wrote it: the tests and `precompile.js` use those modules.
 */
import { copyFileSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { NODE_BUNDLE } from './esbuild-node.mjs'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const DIST = join(ROOT, 'dist')
const GENERATED = 'schema-validator.generated.js'

// Chunk names carry a content hash: the last build's would pile up.
rmSync(join(DIST, 'chunks'), { recursive: true, force: true })

const result = await build({
  absWorkingDir: ROOT,
  entryPoints: ['dist/cli.js'],
  outdir: 'dist',
  allowOverwrite: true,
  entryNames: '[name]',
  // Two levels below the package root, like dist/cli/*.js: `new URL('../../package.json', import.meta.url)` holds.
  chunkNames: 'chunks/[name]-[hash]',
  ...NODE_BUNDLE,
  splitting: true,
  metafile: true,
})

// The config's validator is generated after tsc (precompile.js) and imported by a path relative to the module
// that loads it (config/schema-validator.ts); put a copy next to every output file that refers to it.
const chunks = readdirSync(join(DIST, 'chunks')).map((f) => join(DIST, 'chunks', f))
const users = [join(DIST, 'cli.js'), ...chunks].filter((f) => f.endsWith('.js') && readFileSync(f, 'utf8').includes(GENERATED))
if (users.length === 0) throw new Error(`bundle: no output file refers to ${GENERATED}`)
for (const dir of new Set(users.map(dirname))) copyFileSync(join(DIST, 'config', GENERATED), join(dir, GENERATED))

const out = Object.entries(result.metafile.outputs)
const bytes = out.reduce((n, [, o]) => n + o.bytes, 0)
console.log(`bundle: dist/cli.js and ${out.length - 1} chunks, ${(bytes / 1024).toFixed(0)} KiB`)
