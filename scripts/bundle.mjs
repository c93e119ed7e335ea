/**
 * Bundles what tsc compiled into dist/ so that the command starts from two files and V8's code cache instead of
 * ~150 ES modules (ours, yaml's, pino's, yargs'...), which Node 20 resolves, reads, links and compiles one by one on
 * every start of the service:
 *
 * - dist/bundle/xdplinkd.cjs: dist/main.js and everything it imports, one CommonJS file (src/launch/bundle.ts says
 *   why CommonJS). What a command loads lazily (`run`, yargs, prom-client) stays lazy: esbuild turns an import()
 *   into a module initialised on first use.
 * - dist/bundle/xdplinkd.cjs.cache: V8's code cache for it, made by dist/launch/make-cache.js under the node flags of
 *   dist/cli.js's `#!` line (the ones it is used under), then checked in a new process: the build fails if V8 will
 *   not take it.
 * - dist/cli.cjs: the launcher (src/launch/cli.ts and launch/), bundled alone: node's built-ins only; dist/cli.js, the
 *   path everything runs, is a symlink to it (src/launch/cli.ts says why).
 *
 * Left out of the bundle: koffi (a native addon that finds its .node file from its own directory), pino-pretty
 * (optional, a development aid) and ajv's compiler (only when the generated validator does not match the schema).
 * The generated validator, which config/schema-validator.ts require()s at run time from next to the module (the
 * tests run the modules tsc wrote), is imported into the bundle instead (inlineGeneratedValidator): so it is in the
 * code cache too, not compiled from its 45 KB of source at every start (~2-3 ms). The rest of dist/ stays as tsc
 * wrote it: the tests and `precompile.js` use those modules.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, rmSync, statSync, symlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { NODE_BUNDLE } from './esbuild-node.mjs'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
/** requireGenerated() in dist/config/schema-validator.js, as tsc writes it: its body is what the plugin replaces. */
const REQUIRE_GENERATED = /function requireGenerated\(\) \{\n[\s\S]*?\n\}/
const DIST = join(ROOT, 'dist')
const BUNDLE = join(DIST, 'bundle/xdplinkd.cjs')
const GENERATED = 'schema-validator.generated.cjs'

/** esbuild plugin: schema-validator.js imports the generated validator (built from the same schema) statically. */
const inlineGeneratedValidator = {
  name: 'inline-generated-validator',
  setup(b) {
    b.onLoad({ filter: /[\\/]dist[\\/]config[\\/]schema-validator\.js$/ }, (args) => {
      const src = readFileSync(args.path, 'utf8')
      if (!REQUIRE_GENERATED.test(src)) throw new Error(`bundle: no requireGenerated() to replace in ${args.path}`)
      const contents =
        src.replace(REQUIRE_GENERATED, 'function requireGenerated() {\n  return __generatedValidator\n}') +
        `\nimport __generatedValidator from './${GENERATED}'\n`
      return { contents, loader: 'js', resolveDir: dirname(args.path) }
    })
  },
}

// The ES module chunks of builds before the CommonJS bundle, and the last bundle with its cache.
rmSync(join(DIST, 'chunks'), { recursive: true, force: true })
rmSync(join(DIST, 'bundle'), { recursive: true, force: true })

/**
 * Both outputs are CommonJS, which has no import.meta: its url is the output file's own (the bundle is two levels
 * below the package root, like dist/cli/*.js: `new URL('../../package.json', import.meta.url)` holds).
 */
const CJS = {
  ...NODE_BUNDLE,
  absWorkingDir: ROOT,
  format: 'cjs',
  define: { 'import.meta.url': '__xdplinkdImportMetaUrl' },
  banner: { js: "var __xdplinkdImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
}

await build({
  ...CJS,
  entryPoints: ['dist/main.js'],
  outfile: BUNDLE,
  external: [...NODE_BUNDLE.external, 'ajv/dist/2020.js'],
  plugins: [inlineGeneratedValidator],
})
const launcher = await build({ ...CJS, entryPoints: ['dist/launch/cli.js'], outfile: join(DIST, 'cli.cjs'), metafile: true })
const inputs = Object.keys(launcher.metafile.inputs)
const stray = inputs.filter((f) => !/^dist\/(launch\/[^/]+|result)\.js$/.test(f))
if (stray.length) throw new Error(`bundle: the launcher (dist/cli.cjs) must stay small, but it takes in ${stray.join(', ')}`)
// dist/cli.js of earlier builds was a file (the launcher as an ES module).
rmSync(join(DIST, 'cli.js'), { force: true })
rmSync(join(DIST, 'cli.js.map'), { force: true })
symlinkSync('cli.cjs', join(DIST, 'cli.js'))

// The cache, made and then used under the `#!` line's node flags; XDPLINKD_CODE_CACHE=require makes dist/cli.js
// fail if V8 rejects it.
const first = readFileSync(join(DIST, 'cli.cjs'), 'utf8').split('\n', 1)[0]
const shebang = /^#!\/usr\/bin\/env -S node(.*)$/.exec(first)
if (!shebang) throw new Error(`bundle: dist/cli.cjs starts with ${JSON.stringify(first)}, not #!/usr/bin/env -S node ...`)
const flags = shebang[1].trim().split(/\s+/).filter(Boolean)
const { NODE_OPTIONS: _, ...env } = process.env
execFileSync(process.execPath, [...flags, join(DIST, 'launch/make-cache.js'), BUNDLE], { env, stdio: ['ignore', 'ignore', 'inherit'] })
execFileSync(process.execPath, [...flags, join(DIST, 'cli.js'), '--version'], { env: { ...env, XDPLINKD_CODE_CACHE: 'require' }, stdio: ['ignore', 'ignore', 'inherit'] })

const kib = (f) => `${(statSync(f).size / 1024).toFixed(0)} KiB`
console.log(`bundle: dist/cli.cjs ${kib(join(DIST, 'cli.cjs'))} (dist/cli.js links to it), dist/bundle/xdplinkd.cjs ${kib(BUNDLE)}, its code cache ${kib(`${BUNDLE}.cache`)}`)
