/**
 * scripts/install.sh and scripts/uninstall.sh, run for real into a temporary --destdir (root only: the installed
 * files are root's, and the installed command is run against the kernel inside a private network namespace).
 * `npm test` builds dist/ and bpf/*.o first; the scripts run with --no-build and never touch the checkout.
 * systemctl is never run (--destdir implies --no-systemctl); the unit is checked with `systemd-analyze verify`.
 */
import t, { type Test } from 'tap'
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { makeNetns, needsRoot, waitFor, type Netns } from '../helpers/netns.js'
import { tempBpffs } from '../helpers/bpf.js'

const ROOT = new URL('../../', import.meta.url).pathname
const INSTALL = join(ROOT, 'scripts/install.sh')
const UNINSTALL = join(ROOT, 'scripts/uninstall.sh')
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
}
const SHIPPED_UNIT = readFileSync(join(ROOT, 'systemd/xdplinkd.service'), 'utf8')
const noAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0 ? false : 'systemd-analyze is not installed'

interface Ran {
  status: number | null
  out: string
}

function ran(r: SpawnSyncReturns<string>): Ran {
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

/** A script with a --destdir; inside `ns` when given (uninstall looks at the links of its network namespace). */
function script(path: string, dest: string, args: string[] = [], ns?: Netns): Ran {
  const argv = ['bash', path, '--destdir', dest, ...args]
  const [cmd, ...rest] = ns ? ['ip', 'netns', 'exec', ns.name, ...argv] : argv
  return ran(spawnSync(cmd!, rest, { encoding: 'utf8', timeout: 240_000 }))
}

const install = (dest: string, args: string[] = []): Ran => script(INSTALL, dest, ['--no-systemctl', '--no-build', ...args])
const uninstall = (dest: string, args: string[] = [], ns?: Netns): Ran => script(UNINSTALL, dest, args, ns)

function destdir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-install-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** The installed command, run inside `ns`. */
function xdplinkd(ns: Netns, bin: string, args: string[]): Ran {
  return ran(spawnSync('ip', ['netns', 'exec', ns.name, bin, ...args], { encoding: 'utf8', timeout: 60_000 }))
}

/** Every path below `dir` (symlinks not followed) whose owner is not root or that group or others may write. */
function unsafeFiles(dir: string): string[] {
  const bad: string[] = []
  const walk = (p: string): void => {
    const st = lstatSync(p)
    if (st.uid !== 0 || (!st.isSymbolicLink() && (st.mode & 0o022) !== 0)) bad.push(`${p} (uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)})`)
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e))
  }
  walk(dir)
  return bad
}

/** The installed config with its commented example entries switched on, their objects taken from the destdir. */
function withExamples(text: string, dest: string, lib: string): string {
  const lines = text.split('\n')
  const at = lines.indexOf('attach: []')
  if (at < 0) throw new Error('no "attach: []" line in the installed config')
  return [...lines.slice(0, at), 'attach:', ...lines.slice(at + 1).map((l) => l.replace(/^#/, ''))]
    .join('\n')
    .replaceAll(`${lib}/`, `${dest}${lib}/`)
}

t.test('install into a destdir: the layout, the command, the config, the unit', { skip: needsRoot }, async (t) => {
  const dest = destdir(t)
  const r = install(dest)
  t.equal(r.status, 0, r.out)
  t.match(r.out, /wrote \/etc\/xdplinkd\/config\.yaml/)
  t.match(r.out, /systemctl daemon-reload && systemctl enable --now xdplinkd/, 'says what to run once in place')

  const lib = join(dest, 'usr/local/lib/xdplinkd')
  for (const f of [
    'package.json',
    'package-lock.json',
    'dist/cli.js',
    'dist/daemon.js',
    'bpf/xdp_pass.c',
    'bpf/xdp_pass.o',
    'bpf/xdp_drop.o',
    'bpf/xdp_blocklist.o',
    'bpf/xdp_stats.h',
    'bpf/Makefile',
    'systemd/xdplinkd.service',
    'systemd/README.md',
    'systemd/dropins/metrics.conf',
    'systemd/dropins/sys-admin.conf',
    'systemd/dropins/netns.conf',
    'examples/config.yaml',
    'schema/config.schema.json',
  ]) {
    t.ok(existsSync(join(lib, f)), `${f} installed`)
  }
  t.equal(statSync(join(lib, 'dist/cli.js')).mode & 0o777, 0o755, 'dist/cli.js is executable')
  for (const d of Object.keys(PKG.dependencies)) t.ok(existsSync(join(lib, 'node_modules', d, 'package.json')), `dependency ${d}`)
  for (const d of ['typescript', 'tap', '@types/node']) {
    if (d in PKG.devDependencies) t.notOk(existsSync(join(lib, 'node_modules', d)), `no dev dependency ${d}`)
  }
  t.same(unsafeFiles(lib), [], 'every installed file is root-owned and writable by root alone')
  t.same(
    readdirSync(join(dest, 'usr/local/lib')).filter((n) => n !== 'xdplinkd'),
    [],
    'no staging directory left behind',
  )

  const bin = join(dest, 'usr/local/bin/xdplinkd')
  t.equal(readlinkSync(bin), '../lib/xdplinkd/dist/cli.js', 'a relative symlink: right at the final place and in the destdir')
  const v = ran(spawnSync(bin, ['--version'], { encoding: 'utf8' }))
  t.equal(v.status, 0, v.out)
  t.equal(v.out.trim(), PKG.version, '--version through the symlink')

  const etc = join(dest, 'etc/xdplinkd')
  const conf = join(etc, 'config.yaml')
  t.equal(statSync(etc).mode & 0o7777, 0o755)
  t.equal(statSync(conf).mode & 0o7777, 0o644)
  t.equal(statSync(conf).uid, 0)
  const text = readFileSync(conf, 'utf8')
  t.match(text, /^attach: \[\]$/m, 'attaches nothing until the operator adds an entry')
  t.notMatch(text, /^metrics:/m, 'no metrics listener: the unit allows no IP socket without its drop-in')
  t.match(text, /^# {4}object: \/usr\/local\/lib\/xdplinkd\/bpf\/xdp_pass\.o$/m, 'the examples name the installed objects')

  const unit = readFileSync(join(dest, 'etc/systemd/system/xdplinkd.service'), 'utf8')
  t.equal(unit, SHIPPED_UNIT, 'the default prefix installs the unit as shipped')
  t.equal(statSync(join(dest, 'etc/systemd/system/xdplinkd.service')).mode & 0o7777, 0o644)

  t.test('check accepts the installed config (strict path checks: no --insecure-paths)', async (t) => {
    const ns = makeNetns(t, 'xdpli')
    ns.ip('link', 'add', 'veth-t0', 'type', 'veth', 'peer', 'name', 'veth-t1')
    const c = xdplinkd(ns, bin, ['check', '--config', conf, '--json'])
    t.equal(c.status, 0, c.out)
    const res = JSON.parse(c.out.split('\n').find((l) => l.startsWith('{')) ?? '{}') as { ok: boolean; entries: unknown[]; unmatched: number }
    t.equal(res.ok, true)
    t.same(res.entries, [], 'no entry: no link would get a program')
    t.equal(res.unmatched, 3, 'lo and both veths left alone')
  })

  t.test('its commented examples are valid and their installed objects load', async (t) => {
    const ns = makeNetns(t, 'xdpli')
    ns.ip('link', 'add', 'veth-t0', 'type', 'veth', 'peer', 'name', 'veth-t1')
    const examples = join(dest, 'examples.yaml')
    writeFileSync(examples, withExamples(text, dest, '/usr/local/lib/xdplinkd'), { mode: 0o644 })
    const c = xdplinkd(ns, bin, ['check', '--config', examples, '--json'])
    t.equal(c.status, 0, c.out)
    const res = JSON.parse(c.out.split('\n').find((l) => l.startsWith('{')) ?? '{}') as {
      entries: { entry: string; program: string; tag: string | null; links: { name: string }[] }[]
    }
    t.same(
      res.entries.map((e) => [e.entry, e.program, typeof e.tag, e.links.map((l) => l.name).sort()]),
      [
        ['test-veths', 'xdp_pass', 'string', ['veth-t0', 'veth-t1']],
        ['uplink-blocklist', 'xdp_blocklist', 'string', []],
      ],
    )
  })

  t.test('systemd-analyze verify accepts the installed unit', { skip: noAnalyze }, async (t) => {
    // ExecStart= must name an executable that exists: the destdir's command (through its symlink).
    const dir = mkdtempSync(join(tmpdir(), 'xdpl-install-unit-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const copy = join(dir, 'xdplinkd.service')
    t.ok(unit.includes('\nExecStart=/usr/local/bin/xdplinkd run '))
    writeFileSync(copy, unit.replace('\nExecStart=/usr/local/bin/xdplinkd ', `\nExecStart=${bin} `))
    const r = ran(spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' }))
    t.equal(r.status, 0, r.out)
  })
})

t.test('a second install upgrades the program files and keeps a changed config; uninstall leaves the config', { skip: needsRoot }, async (t) => {
  const dest = destdir(t)
  t.equal(install(dest).status, 0)
  const lib = join(dest, 'usr/local/lib/xdplinkd')
  const conf = join(dest, 'etc/xdplinkd/config.yaml')
  const mine = `${readFileSync(conf, 'utf8')}# the operator's change\n`
  writeFileSync(conf, mine)
  writeFileSync(join(lib, 'left-from-an-old-version.js'), '')

  const again = install(dest)
  t.equal(again.status, 0, again.out)
  t.match(again.out, /config\.yaml exists: kept/)
  t.equal(readFileSync(conf, 'utf8'), mine, 'the config is not overwritten')
  t.notOk(existsSync(join(lib, 'left-from-an-old-version.js')), 'the program files are replaced as a whole')
  t.ok(existsSync(join(lib, 'dist/cli.js')))
  t.same(readdirSync(join(dest, 'usr/local/lib')), ['xdplinkd'], 'no staging or old directory left behind')

  const u = uninstall(dest)
  t.equal(u.status, 0, u.out)
  t.match(u.out, /left \/etc\/xdplinkd/)
  t.notOk(existsSync(lib), 'program files removed')
  t.same(readdirSync(join(dest, 'usr/local/bin')), [], 'command removed')
  t.notOk(existsSync(join(dest, 'etc/systemd/system/xdplinkd.service')), 'unit removed')
  t.equal(readFileSync(conf, 'utf8'), mine, 'the config stays')

  const twice = uninstall(dest)
  t.equal(twice.status, 0, `uninstalling again is harmless: ${twice.out}`)
})

t.test('--prefix: the unit, the command and the config follow it', { skip: needsRoot }, async (t) => {
  const dest = destdir(t)
  const r = install(dest, ['--prefix', '/opt/xdplinkd/'])
  t.equal(r.status, 0, r.out)
  const unit = readFileSync(join(dest, 'etc/systemd/system/xdplinkd.service'), 'utf8')
  t.match(unit, /^ExecStart=\/opt\/xdplinkd\/bin\/xdplinkd run --config \/etc\/xdplinkd\/config\.yaml$/m)
  t.match(unit, /^Documentation=file:\/opt\/xdplinkd\/lib\/xdplinkd\/systemd\/README\.md$/m)
  t.notMatch(unit, /\/usr\/local\//, 'no /usr/local left in the unit')
  t.match(readFileSync(join(dest, 'etc/xdplinkd/config.yaml'), 'utf8'), /^# {4}object: \/opt\/xdplinkd\/lib\/xdplinkd\/bpf\/xdp_pass\.o$/m)
  const v = ran(spawnSync(join(dest, 'opt/xdplinkd/bin/xdplinkd'), ['--version'], { encoding: 'utf8' }))
  t.equal(v.out.trim(), PKG.version)

  const u = uninstall(dest, ['--prefix', '/opt/xdplinkd'])
  t.equal(u.status, 0, u.out)
  t.notOk(existsSync(join(dest, 'opt/xdplinkd/lib/xdplinkd')))
  t.notOk(existsSync(join(dest, 'opt/xdplinkd/bin/xdplinkd')))

  t.not(install(dest, ['--prefix', 'relative/dir']).status, 0, 'a relative prefix is refused')
})

t.test('the installed daemon runs; uninstall leaves its pins, and --purge-pins keeps those still attached', { skip: needsRoot }, async (t) => {
  const dest = destdir(t)
  t.equal(install(dest).status, 0)
  const bin = join(dest, 'usr/local/bin/xdplinkd')
  const bpffs = tempBpffs(t)
  const ns = makeNetns(t, 'xdpli')
  ns.ip('link', 'add', 'xi0', 'type', 'veth', 'peer', 'name', 'xi1')
  const sock = join(dest, 'control.sock')
  const cfg = join(dest, 'run.yaml')
  writeFileSync(
    cfg,
    `settle: 10ms
bpffs: ${bpffs}
control-socket: ${sock}
on-exit: keep
attach:
  - interfaces: ["xi*"]
    object: ${dest}/usr/local/lib/xdplinkd/bpf/xdp_pass.o
    mode: generic
`,
    { mode: 0o644 },
  )
  const { JOURNAL_STREAM: _j, NOTIFY_SOCKET: _n, ...env } = process.env
  const daemon = ns.spawn(bin, ['run', '--config', cfg], { env })
  let output = ''
  daemon.stdout!.on('data', (d: Buffer) => (output += d.toString()))
  daemon.stderr!.on('data', (d: Buffer) => (output += d.toString()))
  const exited = new Promise<number | null>((resolve) => daemon.on('exit', (c) => resolve(c)))
  const progOf = (dev: string): number | null =>
    ns.ipJson<{ xdp?: { prog?: { id: number } } }[]>('-d', 'link', 'show', 'dev', dev)[0]?.xdp?.prog?.id ?? null
  await waitFor(() => {
    if (daemon.exitCode !== null) throw new Error(`the installed daemon exited (${daemon.exitCode}):\n${output}`)
    return progOf('xi0') !== null && progOf('xi1') !== null
  }, 'the installed daemon to attach')

  const st = xdplinkd(ns, bin, ['status', '--json', '--socket', sock])
  t.equal(st.status, 0, st.out)
  const status = JSON.parse(st.out) as { links: { name: string; state: string }[]; programs: { name: string; pin: string }[] }
  t.same(status.links.filter((l) => l.name.startsWith('xi')).map((l) => l.state), ['attached', 'attached'])
  t.same(status.programs.map((p) => p.name), ['xdp_pass'])
  const pinDir = status.programs[0]!.pin.replace(/\/prog$/, '')

  daemon.kill('SIGTERM')
  t.equal(await exited, 0, output)
  const id = progOf('xi0')
  t.ok(id, 'on-exit: keep - the program stays attached after the daemon stops')

  const kept = uninstall(dest, ['--bpffs', bpffs], ns)
  t.equal(kept.status, 0, kept.out)
  t.match(kept.out, /left 1 pin directories/)
  t.match(kept.out, new RegExp(`attached to (xi0, xi1|xi1, xi0) \\(program id ${id}\\)`))
  t.ok(existsSync(pinDir), 'pins left without --purge-pins')
  t.notOk(existsSync(join(dest, 'usr/local/lib/xdplinkd')), 'the program files are gone all the same')

  const refused = uninstall(dest, ['--bpffs', bpffs, '--purge-pins'], ns)
  t.equal(refused.status, 1, refused.out)
  t.match(refused.out, /kept .*: its program is attached to (xi0, xi1|xi1, xi0)/)
  t.ok(existsSync(pinDir), 'the pins of an attached program are kept')

  ns.ip('link', 'set', 'dev', 'xi0', 'xdpgeneric', 'off')
  ns.ip('link', 'set', 'dev', 'xi1', 'xdpgeneric', 'off')
  const purged = uninstall(dest, ['--bpffs', bpffs, '--purge-pins'], ns)
  t.equal(purged.status, 0, purged.out)
  t.match(purged.out, /removed .*-xdp_pass/)
  t.same(readdirSync(bpffs).filter((n) => n.endsWith('-xdp_pass')), [], 'the pin directory is gone')
  t.ok(existsSync(join(dest, 'etc/xdplinkd/config.yaml')), 'the config stays')
})
