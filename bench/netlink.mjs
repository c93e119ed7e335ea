#!/usr/bin/env node
// The netlink layer alone (issue 2's figures): how long a dump of 2,000 links takes, next to `ip -j link show`, and
// how many link events per second `xdplinkd monitor` keeps up with. Runs in a private namespace, as root:
//   npm run build && sudo node bench/netlink.mjs [--pairs 1000] [--rounds 5]
import { execFileSync, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : def
}

if (process.argv[2] === '--child-dump') {
  // inside the namespace: time RtnlClient.dumpLinks()
  const { RtnlClient } = await import(join(ROOT, 'dist/rtnl/client.js'))
  const c = new RtnlClient({ subscribe: false })
  const times = []
  let n = 0
  for (let i = 0; i < 21; i++) {
    const t0 = performance.now()
    n = (await c.dumpLinks()).length
    times.push(performance.now() - t0)
  }
  c.close()
  times.shift() // the first includes JIT warm-up
  times.sort((a, b) => a - b)
  console.log(JSON.stringify({ links: n, median: times[times.length >> 1], min: times[0], max: times.at(-1) }))
  process.exit(0)
}

const pairs = arg('pairs', 1000)
const rounds = arg('rounds', 5)
const ns = `benchnl-${process.pid}`
const ip = (...a) => execFileSync('ip', ['-n', ns, ...a], { encoding: 'utf8', maxBuffer: 1 << 28 })
const batch = (lines) => execFileSync('ip', ['-n', ns, '-batch', '-'], { input: lines.join('\n') + '\n', maxBuffer: 1 << 28 })
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
let monitor = null
const cleanup = () => {
  if (monitor && monitor.exitCode === null) monitor.kill('SIGKILL')
  try {
    execFileSync('ip', ['netns', 'del', ns])
  } catch {}
}
process.on('exit', cleanup)
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(1))

execFileSync('ip', ['netns', 'add', ns])
const create = []
for (let i = 0; i < pairs; i++) create.push(`link add a${i} type veth peer name b${i}`)
batch(create)
const links = JSON.parse(ip('-j', 'link', 'show')).length

// 1. dump
const ours = JSON.parse(execFileSync('ip', ['netns', 'exec', ns, 'node', fileURLToPath(import.meta.url), '--child-dump'], { encoding: 'utf8' }))
const ipTimes = []
for (let i = 0; i < 10; i++) {
  const t0 = performance.now()
  execFileSync('ip', ['-n', ns, '-j', 'link', 'show'], { maxBuffer: 1 << 28 })
  ipTimes.push(performance.now() - t0)
}

// 2. monitor throughput: bursts of link changes (up/down of every link), as fast as one ip -batch makes them
monitor = spawn('ip', ['netns', 'exec', ns, 'node', join(ROOT, 'dist/cli.js'), 'monitor', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
let events = 0
let first = 0
let last = 0
let rest = ''
monitor.stdout.setEncoding('utf8')
monitor.stdout.on('data', (d) => {
  const now = performance.now()
  const parts = (rest + d).split('\n')
  rest = parts.pop()
  if (parts.length && !first) first = now
  events += parts.length
  last = now
})
let stderr = ''
monitor.stderr.on('data', (d) => (stderr += d))
await new Promise((r) => {
  const t = setInterval(() => stderr.includes('monitoring') && (clearInterval(t), r()), 20)
})
const results = []
for (let r = 0; r < rounds; r++) {
  events = 0
  first = 0
  const changes = []
  for (let i = 0; i < pairs; i++) changes.push(`link set a${i} ${r % 2 ? 'down' : 'up'}`)
  const t0 = performance.now()
  batch(changes)
  const genMs = performance.now() - t0
  // wait until quiet for 300 ms
  let seen = -1
  while (seen !== events) {
    seen = events
    await new Promise((res) => setTimeout(res, 300))
  }
  results.push({ changes: changes.length, genMs, events, spanMs: last - t0, rate: events / ((last - t0) / 1000) })
}
const overruns = (stderr.match(/resync after overrun/g) || []).length
monitor.kill('SIGTERM')

console.log(`netlink bench: ${links} links in a private namespace (kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}, node ${process.version})`)
console.log(`dump of ${ours.links} links (RtnlClient.dumpLinks, decoded): median ${ours.median.toFixed(1)} ms (min ${ours.min.toFixed(1)}, max ${ours.max.toFixed(1)}), 20 dumps`)
console.log(`ip -j link show of the same (a whole process): median ${median(ipTimes).toFixed(1)} ms`)
for (const [i, r] of results.entries()) {
  console.log(
    `monitor round ${i + 1}: ${r.changes} link changes made by one ip -batch in ${r.genMs.toFixed(0)} ms (${Math.round(r.changes / (r.genMs / 1000))}/s); ` +
      `${r.events} events printed, the last ${r.spanMs.toFixed(0)} ms after the burst began: ${Math.round(r.rate)} events/s`,
  )
}
console.log(`overruns (resyncs) during the monitor rounds: ${overruns}`)
