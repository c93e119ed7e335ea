/** Small numeric and /proc helpers for the bench. */
import { readdirSync, readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

export function median(xs) {
  return quantile(xs, 0.5)
}

/** Nearest-rank quantile (p99 of 400 samples is the 396th smallest). */
export function quantile(xs, q) {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]
}

export const ms = (x, d = 1) => (Number.isFinite(x) ? `${x.toFixed(d)} ms` : 'n/a')
export const ratio = (x, d = 2) => (Number.isFinite(x) ? `${x.toFixed(d)}x` : 'n/a')
export const runsText = (xs, d = 1) => xs.map((x) => x.toFixed(d)).join(', ')

let clkTck = null
export function ticksPerSecond() {
  clkTck ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  return clkTck
}

/**
 * CPU use of a process: utime+stime in clock ticks from /proc/PID/stat (all threads), plus the finer per-thread
 * run time (ns) from /proc/PID/task/TID/schedstat, the context switches and the thread count.
 */
export function cpuSample(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // f[0] is field 3 (state)
  const utime = Number(f[11])
  const stime = Number(f[12])
  let runNs = 0
  let switches = 0
  let threads = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      runNs += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
      const st = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8')
      switches += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1] ?? 0)
      switches += Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1] ?? 0)
      threads++
    } catch {
      /* thread exited */
    }
  }
  return { utime, stime, runNs, switches, threads }
}

/** VmRSS and VmHWM in bytes from /proc/PID/status. */
export function memSample(pid) {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(st)?.[1] ?? NaN) * 1024
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), rssAnon: kb('RssAnon'), rssFile: kb('RssFile') }
}

export const mib = (b) => `${(b / 1048576).toFixed(1)} MiB`
