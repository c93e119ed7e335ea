/**
 * Summary of a V8 .cpuprofile (node --cpu-prof): self time per function, and inclusive time per module (a package
 * under node_modules, a file under dist/, node's internals), to see where a start-up goes.
 */
import { readFileSync } from 'node:fs'

function moduleOf(url) {
  if (!url) return null
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (nm) return `node_modules/${nm[1]}`
  const d = /\/dist\/(.+)$/.exec(url)
  if (d) return `dist/${d[1]}`
  if (url.startsWith('node:')) return 'node:internal'
  return url.replace(/^file:\/\//, '')
}

function fnKey(cf) {
  const mod = moduleOf(cf.url)
  const name = cf.functionName || '(anonymous)'
  return mod ? `${name} ${mod}:${cf.lineNumber + 1}` : name
}

export function summarizeProfile(file, top = 15) {
  const p = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const self = new Map()
  const incMod = new Map()
  const incFn = new Map()
  let total = 0
  for (let i = 0; i < p.samples.length; i++) {
    // A sample stands for the time until the next one.
    const dt = (i + 1 < p.timeDeltas.length ? p.timeDeltas[i + 1] : 0) / 1000
    const leaf = byId.get(p.samples[i])
    total += dt
    const k = fnKey(leaf.callFrame)
    self.set(k, (self.get(k) ?? 0) + dt)
    const mods = new Set()
    const fns = new Set()
    for (let id = p.samples[i]; id !== undefined; id = parent.get(id)) {
      const cf = byId.get(id).callFrame
      const m = moduleOf(cf.url)
      if (m) mods.add(m)
      if (cf.url) fns.add(fnKey(cf))
    }
    for (const m of mods) incMod.set(m, (incMod.get(m) ?? 0) + dt)
    for (const f of fns) incFn.set(f, (incFn.get(f) ?? 0) + dt)
  }
  const sorted = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)
  return { totalMs: total, self: sorted(self), inclusiveModules: sorted(incMod), inclusiveFunctions: sorted(incFn) }
}
