/**
 * The launcher (dist/cli.js) and the code cache the build makes (dist/bundle/xdplinkd.cjs.cache): used as built,
 * and left unused, with the command still working, whenever it does not belong to the bundle or V8 refuses it.
 * Run on the built files and on a copy of them in a temporary package (node_modules linked).
 */
import { spawnSync } from 'node:child_process'
import { cpSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { CODE_CACHE_HEADER_BYTES, encodeCodeCache } from '../../src/launch/code-cache.js'
import { CLI, ROOT } from '../helpers/netns.js'

const { NODE_OPTIONS: _, XDPLINKD_CODE_CACHE: __, ...env } = process.env

function cli(path: string, args: string[], extra: Record<string, string> = {}, nodeFlags: string[] = []) {
  return spawnSync(process.execPath, [...nodeFlags, path, ...args], { encoding: 'utf8', env: { ...env, ...extra } })
}

t.test('as built: V8 takes the cache, and `run` says it started from it', async (t) => {
  // dist/cli.js is what everything runs: a symlink, so that node takes the launcher for CommonJS (src/launch/cli.ts).
  t.ok(lstatSync(CLI).isSymbolicLink(), 'dist/cli.js is a symlink')
  t.equal(readlinkSync(CLI), 'cli.cjs', 'to dist/cli.cjs, relative (it moves with dist/)')
  // Node resolves a main module's symlinks and decides by the real name's extension (.cjs: CommonJS).
  t.match(readFileSync(CLI, 'utf8'), /^#!\/usr\/bin\/env -S node[^\n]*\nvar __xdplinkdImportMetaUrl = require\(/, 'CommonJS, after the #! line')
  const r = cli(CLI, ['--version'], { XDPLINKD_CODE_CACHE: 'require' })
  t.equal(r.status, 0, `XDPLINKD_CODE_CACHE=require --version: ${r.stderr}`)
  t.match(r.stdout, /^\d+\.\d+\.\d+/)
  const run = cli(CLI, ['run', '--config', join(tmpdir(), 'xdplinkd-no-such-config.yaml'), '--log-level', 'debug'])
  t.not(run.status, 0, 'no config: exits with an error')
  t.match(run.stdout, /"msg":"started from V8's code cache [^"]*dist\/bundle\/xdplinkd\.cjs\.cache"/)
  const off = cli(CLI, ['run', '--config', join(tmpdir(), 'xdplinkd-no-such-config.yaml'), '--log-level', 'debug'], { XDPLINKD_CODE_CACHE: 'off' })
  t.match(off.stdout, /code cache [^"]*: turned off \(XDPLINKD_CODE_CACHE=off\)/)
})

t.test('the bundle holds the generated config validator: nothing compiles the schema at run time', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xdplinkd-launch-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const probe = join(dir, 'probe.cjs')
  writeFileSync(probe, "process.on('exit', () => process.stderr.write('required: ' + Object.keys(require.cache).filter((k) => /ajv[\\\\/]dist[\\\\/](2020|core)|generated/.test(k)).join(',') + '\\n'))\n")
  const bad = join(dir, 'bad.yaml')
  writeFileSync(bad, 'attach: 7\n')
  const r = cli(CLI, ['check', '--config', bad], {}, ['--require', probe])
  t.match(r.stderr, /bad\.yaml:1:9: attach: expected a list of attach entries, got 7/, 'the schema is checked')
  t.match(r.stderr, /^required: $/m, "neither ajv's compiler nor a generated file beside the bundle was loaded")
})

t.test('a cache that is not the bundle`s own is left unused, and the command still runs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xdplinkd-launch-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'))
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  cpSync(join(ROOT, 'dist/cli.cjs'), join(dir, 'dist/cli.cjs'))
  symlinkSync('cli.cjs', join(dir, 'dist/cli.js'))
  cpSync(join(ROOT, 'dist/bundle'), join(dir, 'dist/bundle'), { recursive: true })
  const cliCopy = join(dir, 'dist/cli.js')
  const bundlePath = join(dir, 'dist/bundle/xdplinkd.cjs')
  const cachePath = `${bundlePath}.cache`
  const built = readFileSync(bundlePath)
  const builtCache = readFileSync(cachePath)
  t.equal(cli(cliCopy, ['--version'], { XDPLINKD_CODE_CACHE: 'require' }).status, 0, 'the copy uses its cache')

  // One byte of the bundle changed, same length: the text of `--help`.
  const edited = Buffer.from(built.toString('latin1').replace('Keeps XDP programs attached', 'KEEPS XDP programs attached'), 'latin1')
  t.equal(edited.length, built.length)
  t.not(edited.compare(built), 0)
  writeFileSync(bundlePath, edited)
  const stale = cli(cliCopy, ['--version'], { XDPLINKD_CODE_CACHE: 'require' })
  t.not(stale.status, 0)
  t.match(stale.stderr, /code cache .*xdplinkd\.cjs\.cache: made from another bundle/)
  t.match(cli(cliCopy, ['--help']).stdout, /KEEPS XDP programs attached/, 'the edited bundle runs, compiled from its source')

  // Why the header carries the bundle's hash: V8 checks the source's length only, and would run the old bytecode.
  writeFileSync(cachePath, encodeCodeCache(edited, builtCache.subarray(CODE_CACHE_HEADER_BYTES)))
  const fooled = cli(cliCopy, ['--help'], { XDPLINKD_CODE_CACHE: 'require' })
  t.equal(fooled.status, 0, 'V8 takes bytes made from another source of the same length')
  t.match(fooled.stdout, /Keeps XDP programs attached/, 'and runs the old code')

  writeFileSync(bundlePath, built)
  writeFileSync(cachePath, Buffer.from('not a cache\n'))
  const garbage = cli(cliCopy, ['--version'], { XDPLINKD_CODE_CACHE: 'require' })
  t.match(garbage.stderr, /: not a code cache of xdplinkd/)
  t.equal(cli(cliCopy, ['--version']).status, 0, 'a damaged cache: runs without it')

  writeFileSync(cachePath, builtCache)
  const flags = cli(cliCopy, ['--version'], { XDPLINKD_CODE_CACHE: 'require' }, ['--max-old-space-size=300'])
  t.match(flags.stderr, /: rejected by V8 \(made by another node, or with other V8 flags\)/, 'a V8 flag that changes its hash')
  t.equal(cli(cliCopy, ['--version'], {}, ['--max-old-space-size=300']).status, 0, 'and runs without it')

  rmSync(cachePath)
  t.match(cli(cliCopy, ['--version'], { XDPLINKD_CODE_CACHE: 'require' }).stderr, /: no such file/)
  const run = cli(cliCopy, ['run', '--config', join(dir, 'none.yaml')])
  t.match(run.stdout, /"level":30,.*"msg":"code cache \S+ not used: no such file; start-up is slower/, 'said at info level')
})
