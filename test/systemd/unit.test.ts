/**
 * The unit file as systemd reads it: `systemd-analyze verify` must accept it (with each shipped drop-in), and
 * `systemd-analyze security --offline=true` must not report a higher exposure than docs/service.md promises.
 * Neither needs systemd running as PID 1.
 */
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const ROOT = new URL('../../', import.meta.url).pathname
const UNIT = join(ROOT, 'systemd/xdplinkd.service')
const DROPINS = join(ROOT, 'systemd/dropins')
const DOC = join(ROOT, 'docs/service.md')
const EXEC_START = '/usr/local/bin/xdplinkd run --config /etc/xdplinkd/config.yaml'

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' })
const version = Number(/systemd (\d+)/.exec(analyze.stdout ?? '')?.[1] ?? NaN)
const noAnalyze = analyze.status === 0 ? false : 'systemd-analyze is not installed'
// --offline=true came with systemd 250.
const noOffline = noAnalyze || (version >= 250 ? false : `systemd ${version} has no security --offline`)

function run(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('systemd-analyze', args, { encoding: 'utf8' })
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

/**
 * A copy of the unit whose ExecStart= names an executable that exists here: verify rejects a unit whose binary is
 * missing, and /usr/local/bin/xdplinkd exists only once installed. Everything else is the file as shipped.
 */
function stage(t: Test, dropins: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'xdplinkd-unit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const stub = join(dir, 'xdplinkd')
  writeFileSync(stub, '#!/bin/sh\nexit 0\n', { mode: 0o755 })
  const text = readFileSync(UNIT, 'utf8')
  t.ok(text.includes(`\nExecStart=${EXEC_START}\n`), 'the shipped ExecStart')
  const unit = join(dir, 'xdplinkd.service')
  writeFileSync(unit, text.replace(`\nExecStart=/usr/local/bin/xdplinkd `, `\nExecStart=${stub} `))
  if (dropins.length > 0) {
    mkdirSync(join(dir, 'xdplinkd.service.d'))
    for (const d of dropins) copyFileSync(join(DROPINS, d), join(dir, 'xdplinkd.service.d', d))
  }
  return unit
}

function exposure(out: string): number {
  const m = /Overall exposure level for xdplinkd\.service: (\d+\.\d)/.exec(out)
  if (!m) throw new Error(`no exposure figure in:\n${out}`)
  return Number(m[1])
}

/** The figures docs/service.md documents, from its table rows `| <setup> | **1.5** |`. */
function documented(setup: string): number {
  const doc = readFileSync(DOC, 'utf8')
  const row = doc.split('\n').find((l) => l.startsWith(`| ${setup} |`))
  const m = row && /\*\*(\d+\.\d)\*\*/.exec(row)
  if (!m) throw new Error(`docs/service.md has no exposure row for "${setup}"`)
  return Number(m[1])
}

const dropins = readdirSync(DROPINS).filter((f) => f.endsWith('.conf')).sort()

t.test('the unit keeps what the daemon depends on', async (t) => {
  const lines = new Set(readFileSync(UNIT, 'utf8').split('\n'))
  for (const l of [
    'Type=notify',
    'NotifyAccess=main',
    'WatchdogSec=30s',
    'ExecReload=/bin/kill -HUP $MAINPID',
    'Restart=on-failure',
    'CapabilityBoundingSet=CAP_NET_ADMIN CAP_BPF CAP_PERFMON',
    'ExecStartPre=+/bin/mkdir -p -m 0700 /sys/fs/bpf/xdplinkd',
    'ReadWritePaths=-/sys/fs/bpf/xdplinkd',
    'RestrictAddressFamilies=AF_NETLINK AF_UNIX',
    'LimitMEMLOCK=infinity',
    'MemoryDenyWriteExecute=no',
    'SystemCallErrorNumber=EPERM',
    // a broken config or object is not fixed by restarting
    'RestartPreventExitStatus=65 78',
  ]) {
    t.ok(lines.has(l), l)
  }
  t.same(dropins, ['metrics.conf', 'netns.conf', 'sys-admin.conf'])
})

/** `Key=value` of the unit (the last one, as systemd takes it), or undefined. */
function setting(key: string): string | undefined {
  const lines = readFileSync(UNIT, 'utf8').split('\n').filter((l) => l.startsWith(`${key}=`))
  return lines.at(-1)?.slice(key.length + 1)
}

t.test('MemoryMax= and TasksMax= are what docs/service.md measured, with headroom', async (t) => {
  const doc = readFileSync(DOC, 'utf8')
  const row = (key: string): { value: string; measured: number } => {
    const m = new RegExp(`^\\| \`${key}=\` \\| \`([^\`]+)\` \\| [^|]*\\*\\*([0-9.]+)(?: MB)?\\*\\*`, 'm').exec(doc)
    if (!m) throw new Error(`docs/service.md has no row for ${key}=`)
    return { value: m[1]!, measured: Number(m[2]) }
  }
  const mem = row('MemoryMax')
  t.equal(setting('MemoryMax'), mem.value, 'MemoryMax= as documented')
  const max = /^(\d+)M$/.exec(mem.value)
  t.ok(max, 'MemoryMax= in MiB')
  t.ok(Number(max?.[1]) * 1.048576 >= 2 * mem.measured, `MemoryMax=${mem.value} is at least twice the measured ${mem.measured} MB`)
  const tasks = row('TasksMax')
  t.equal(setting('TasksMax'), tasks.value, 'TasksMax= as documented')
  t.ok(Number(tasks.value) >= 2 * tasks.measured, `TasksMax=${tasks.value} is at least twice the measured ${tasks.measured} threads`)
})

t.test('systemd-analyze verify accepts the unit', { skip: noAnalyze }, async (t) => {
  const r = run(['verify', stage(t)])
  t.equal(r.status, 0, r.out)
  t.equal(r.out.trim(), '', 'no warnings')
})

for (const d of dropins) {
  t.test(`systemd-analyze verify accepts the unit with dropins/${d}`, { skip: noAnalyze }, async (t) => {
    const r = run(['verify', stage(t, [d])])
    t.equal(r.status, 0, r.out)
    t.equal(r.out.trim(), '', 'no warnings')
  })
}

t.test('the exposure is no higher than docs/service.md says', { skip: noOffline }, async (t) => {
  const r = run(['security', '--offline=true', stage(t)])
  t.equal(r.status, 0, 'systemd-analyze security ran', r.status === 0 ? {} : { output: r.out })
  const figure = exposure(r.out)
  t.ok(figure <= documented('base unit'), `exposure ${figure} <= documented ${documented('base unit')}`)
  t.ok(figure < 2, 'still rated OK')
  const readme = /exposure (\d+\.\d) by `systemd-analyze security`/.exec(readFileSync(new URL('../../README.md', import.meta.url), 'utf8'))
  t.equal(Number(readme?.[1]), documented('base unit'), 'the README gives the documented figure')
})

t.test('the drop-ins cost what docs/service.md says', { skip: noOffline }, async (t) => {
  for (const [d, setup] of [
    ['metrics.conf', 'with dropins/metrics.conf'],
    ['sys-admin.conf', 'with dropins/sys-admin.conf'],
    ['netns.conf', 'with dropins/netns.conf'],
  ] as const) {
    const r = run(['security', '--offline=true', stage(t, [d])])
    t.equal(r.status, 0, `systemd-analyze security ran with ${d}`, r.status === 0 ? {} : { output: r.out })
    const figure = exposure(r.out)
    t.ok(figure <= documented(setup), `${d}: exposure ${figure} <= documented ${documented(setup)}`)
  }
})
