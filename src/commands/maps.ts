/** `xdplinkd maps`: asks the running daemon for each program's maps; a table for people, or its JSON. */
import { dirname } from 'node:path'
import { askDaemon } from '../control/client.js'
import type { ControlResponse, ManagedMapJson, MapJson, MapsJson, MapsResponse } from '../control/protocol.js'
import { printable, table } from './format.js'

export interface MapsOptions {
  socket: string
  json: boolean
  out?: NodeJS.WritableStream
  timeoutMs?: number
}

export async function mapsCommand(o: MapsOptions): Promise<number> {
  const out = o.out ?? process.stdout
  const isMaps = (r: ControlResponse): r is MapsResponse => r.ok && 'countLimit' in r
  const r = await askDaemon(o.socket, { cmd: 'maps' }, isMaps, { timeoutMs: o.timeoutMs ?? 10_000 })
  const { ok: _ok, ...maps } = r
  out.write(o.json ? JSON.stringify(maps) + '\n' : mapsText(maps))
  return 0
}

/** `2`, `100000+` (at least: the walk stopped), `?` (not counted). */
function countText(m: MapJson): string {
  if (m.count === null) return '?'
  return m.countExact ? String(m.count) : `${m.count}+`
}

/** `-` for a map xdplinkd leaves alone; else who declares it, how many entries, and whether the map holds them. */
export function managedText(m: ManagedMapJson | null): string {
  if (!m) return '-'
  const head = `${m.declared} declared by ${m.declaredBy.join(',')}`
  if (m.holdsDeclared === true) return `${head}; holds them`
  if (m.holdsDeclared === false) {
    const how = m.missing !== undefined ? `${m.missing} missing, ${m.changed} changed, ${m.extra} extra` : (m.holdsProblem ?? 'differs')
    return `${head}; differs: ${how}`
  }
  return `${head}; not checked: ${m.holdsProblem ?? 'unknown'}`
}

const num = (n: number | null): string => (n === null ? '?' : String(n))

/** The human form: one table per program, its maps by name. Pure. */
export function mapsText(s: MapsJson): string {
  const head = `xdplinkd (pid ${s.pid}), config ${printable(s.config)}\n`
  if (s.programs.length === 0) return `${head}\nno programs (the config attaches nothing)\n`
  const blocks = s.programs.map((p) => {
    const title =
      `program ${printable(p.name)} (id ${p.id}) of ${printable(p.object)}, entries ${printable(p.entries.join(','))}; ` +
      `maps pinned in ${printable(dirname(p.pin))}/maps/\n`
    if (p.maps.length === 0) return `${title}no maps\n`
    const rows = p.maps.map((m) => [
      m.name,
      m.type ?? '?',
      num(m.id),
      num(m.keySize),
      num(m.valueSize),
      num(m.maxEntries),
      countText(m),
      managedText(m.managed),
    ])
    const problems = p.maps.filter((m) => m.problem !== undefined).map((m) => `${printable(m.name)}: ${printable(m.problem!)}\n`)
    return title + table(['NAME', 'TYPE', 'ID', 'KEY', 'VALUE', 'MAX', 'ENTRIES', 'MANAGED'], rows) + problems.join('')
  })
  return `${head}\n${blocks.join('\n')}`
}
