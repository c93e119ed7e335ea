#!/usr/bin/env node
/**
 * `npm run bench`: how xdplinkd compares with the kernel's own cost and with the obvious alternatives, in private
 * network namespaces, baselines measured in the same run. A benchmark, not a test: it prints a report with the
 * ratios and PASS/MISS per target, and exits 0 unless something broke (then 1).
 *
 *   npm run bench -- [--only a,b,c,d,e,f,g,h,i] [--pairs 500] [--runs 3] [--samples 200] [--mem-pairs 5000]
 *                    [--soak-cycles 100] [--soak-pairs 50] [--namespaces 1000] [--ns-samples 50] [--prefixes 100000]
 *                    [--idle 60] [--idle-warmup 2000] [--settle 50] [--settle-c 1] [--settle-g 1]
 *                    [--cooldown 1000]
 *                    [--cpu-prof] [--prof-dir DIR] [--json FILE]
 *
 * See bench/README.md for what each part measures and how.
 *
 * (a) start-up with N veth pairs present, against node's own start-up, bpftool + one ip -batch, one ip per link;
 * (b) N pairs created while the daemon runs, against ip -batch create + ip -batch attach;
 * (c) RTM_NEWLINK -> attached for one pair at a time (ip -ts monitor link against the daemon's attach lines);
 * (d) VmRSS with 10,000 links; (e) CPU over an idle window; (f) VmRSS while the same pairs are created and deleted
 * again and again; (g) links in 1,000 network namespaces (bench/netns.mjs); (h) 100,000 IPv4 prefixes synced into an
 * LPM map against bpftool batch file, and a reload changing 1% (bench/maps.mjs); (i) the start-up of (a) in the
 * container image against outside it (bench/image.mjs; only when asked for: --only i). Parts run in the order a, b, c,
 * e, f, g, h, i, d: (d) leaves the most for the kernel to tear down.
 */
import { existsSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release } from 'node:os'
import { parseArgs } from 'node:util'
import { CLI, XDP_PASS, cleanupSync, scrubNodeEnv, setupEnv } from './env.mjs'
import { partH } from './maps.mjs'
import { partI } from './image.mjs'
import { partG } from './netns.mjs'
import { partA, partB, partC, partD, partE, partF } from './parts.mjs'

const USAGE = `usage: npm run bench -- [--only a,b,c,d,e,f,g,h,i] [--pairs N] [--runs R] [--samples S] [--mem-pairs M]
       [--soak-cycles C] [--soak-pairs P] [--namespaces N] [--ns-samples S] [--prefixes N] [--idle SECONDS]
       [--idle-warmup MS]
       [--settle MS] [--settle-c MS] [--settle-g MS] [--cooldown MS]
       [--cpu-prof] [--prof-dir DIR] [--json FILE]`

const OPTIONS = {
  only: { type: 'string', default: 'a,b,c,d,e,f,g,h' },
  pairs: { type: 'string', default: '500' },
  runs: { type: 'string', default: '3' },
  samples: { type: 'string', default: '200' },
  'mem-pairs': { type: 'string', default: '5000' },
  'soak-cycles': { type: 'string', default: '100' },
  'soak-pairs': { type: 'string', default: '50' },
  namespaces: { type: 'string', default: '1000' },
  'ns-samples': { type: 'string', default: '50' },
  prefixes: { type: 'string', default: '100000' },
  idle: { type: 'string', default: '60' },
  'idle-warmup': { type: 'string', default: '2000' },
  settle: { type: 'string', default: '50' },
  'settle-c': { type: 'string', default: '1' },
  'settle-g': { type: 'string', default: '1' },
  cooldown: { type: 'string', default: '1000' },
  'cpu-prof': { type: 'boolean', default: false },
  'prof-dir': { type: 'string' },
  json: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
}
let a
try {
  a = parseArgs({ options: OPTIONS }).values
} catch (e) {
  console.error(`bench: ${e.message}\n${USAGE}`)
  process.exit(2)
}
if (a.help) {
  console.log(USAGE)
  process.exit(0)
}
const num = (k, min) => {
  const v = Number(a[k])
  if (!Number.isFinite(v) || v < min) {
    console.error(`bench: --${k} must be a number >= ${min}\n${USAGE}`)
    process.exit(2)
  }
  return v
}
const opt = {
  pairs: num('pairs', 1),
  runs: num('runs', 1),
  samples: num('samples', 1),
  memPairs: num('mem-pairs', 1),
  soakCycles: num('soak-cycles', 1),
  soakPairs: num('soak-pairs', 1),
  namespaces: num('namespaces', 1),
  nsSamples: num('ns-samples', 1),
  prefixes: num('prefixes', 1),
  idle: num('idle', 0),
  idleWarmup: num('idle-warmup', 0),
  settle: num('settle', 1),
  settleC: num('settle-c', 1),
  settleG: num('settle-g', 1),
  cooldown: num('cooldown', 0),
  bTimeout: 30000,
  cpuProf: a['cpu-prof'],
  profDir: a['prof-dir'],
}
const only = new Set(a.only.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean))
for (const p of only) {
  if (!'abcdefghi'.includes(p) || p.length !== 1) {
    console.error(`bench: unknown part "${p}" in --only\n${USAGE}`)
    process.exit(2)
  }
}
if (process.getuid?.() !== 0) {
  console.error('bench: needs root (network namespaces, XDP, bpffs)')
  process.exit(1)
}
for (const f of [CLI, XDP_PASS]) {
  if (!existsSync(f)) {
    console.error(`bench: ${f} is missing; npm run build first (npm run bench does)`)
    process.exit(1)
  }
}

process.on('exit', cleanupSync)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    process.stderr.write(`bench: ${sig}, cleaning up\n`)
    cleanupSync()
    process.exit(130)
  })
}

const progress = (s) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`)
const PARTS = { a: partA, b: partB, c: partC, e: partE, f: partF, g: partG, h: partH, i: partI, d: partD }
const results = {}
const broken = {}
const t0 = Date.now()
const scrubbed = scrubNodeEnv()
const env = setupEnv()
try {
  for (const [k, fn] of Object.entries(PARTS)) {
    if (!only.has(k)) continue
    progress(`part (${k})`)
    try {
      results[k] = await fn({ ...env, opt, progress })
    } catch (e) {
      broken[k] = e
      progress(`part (${k}) broke: ${e.stack ?? e}`)
    }
  }
} finally {
  cleanupSync()
}

// ---------------------------------------------------------------------------------------------------------------
// report

const pad = (s, n) => String(s).padEnd(n)
console.log(`xdplinkd bench: ${process.argv.slice(2).join(' ') || '(defaults)'}`)
console.log(
  `kernel ${release()}, node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')} at the end, ${((Date.now() - t0) / 1000).toFixed(0)} s`,
)
if (scrubbed.length) console.log(`removed from the environment of every process started: ${scrubbed.join(', ')} (as a systemd service runs)`)
for (const k of 'abcdefghi') {
  const r = results[k]
  if (broken[k]) console.log(`\n(${k}) BROKE: ${broken[k].message}`)
  if (!r) continue
  console.log(`\n${r.title}`)
  const table = r.rows.filter((x) => x[0] !== 'note')
  const w0 = Math.max(...table.map((x) => x[0].length)) + 2
  const w1 = Math.max(...table.map((x) => String(x[1]).length)) + 2
  for (const [label, value, note] of table) console.log(`  ${pad(label, w0)}${pad(value, w1)}${note ?? ''}`)
  for (const [, text] of r.rows.filter((x) => x[0] === 'note')) console.log(`  note: ${text}`)
  if (r.profile) {
    const p = r.profile
    console.log(`\n  cpu profile of one start-up (${p.totalMs.toFixed(0)} ms sampled, wall clock incl. idle):`)
    console.log('    self time, top functions:')
    for (const [f, t] of p.self) console.log(`      ${pad(t.toFixed(1) + ' ms', 11)}${f}`)
    console.log('    inclusive time by module (time with the module on the stack):')
    for (const [m, t] of p.inclusiveModules) console.log(`      ${pad(t.toFixed(1) + ' ms', 11)}${m}`)
    console.log('    inclusive time, top functions:')
    for (const [f, t] of p.inclusiveFunctions) console.log(`      ${pad(t.toFixed(1) + ' ms', 11)}${f}`)
  }
}

const targets = Object.values(results).flatMap((r) => r.targets)
if (targets.length) {
  console.log('\ntargets')
  const rows = targets
    .sort((x, y) => x.part.localeCompare(y.part))
    .map((t) => [`(${t.part}) ${t.what}`, t.measured, t.limit, Number.isFinite(t.ratio) ? `${t.ratio.toFixed(2)}x of limit` : '', t.pass ? 'PASS' : 'MISS'])
  const w = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length)) + 2)
  for (const r of rows) console.log(`  ${pad(r[0], w[0])}${pad(r[1], w[1])}${pad(r[2], w[2])}${pad(r[3], w[3])}${r[4]}`)
}

if (a.json) {
  const out = { argv: process.argv.slice(2), opt, results, broken: Object.fromEntries(Object.entries(broken).map(([k, e]) => [k, String(e.message)])) }
  writeFileSync(a.json, JSON.stringify(out, null, 2))
}
process.exitCode = Object.keys(broken).length ? 1 : 0
