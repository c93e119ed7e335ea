/** How links and link events are shown: JSON for programs, aligned columns for people. Pure. */
import type { LinkState } from '../rtnl/link.js'
import type { LinkEvent } from '../links/diff.js'

export interface LinkJson {
  ifindex: number
  name: string
  kind: string | null
  operState: string
  up: boolean
  altNames: string[]
  xdp: null | {
    mode: string
    progId: number | null
    drvProgId: number | null
    skbProgId: number | null
    hwProgId: number | null
  }
}

export function linkJson(l: LinkState): LinkJson {
  return {
    ifindex: l.ifindex,
    name: l.name,
    kind: l.kind,
    operState: l.operState,
    up: l.up,
    altNames: l.altNames,
    xdp: l.xdp
      ? {
          mode: l.xdp.mode,
          progId: l.xdp.progId ?? null,
          drvProgId: l.xdp.drvProgId ?? null,
          skbProgId: l.xdp.skbProgId ?? null,
          hwProgId: l.xdp.hwProgId ?? null,
        }
      : null,
  }
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n') + '\n'
}

export function xdpText(x: LinkState['xdp']): string {
  if (!x) return '-'
  return x.progId !== undefined && x.progId !== null ? `${x.mode} id ${x.progId}` : x.mode
}

export function linksTable(links: LinkState[]): string {
  return table(
    ['IFINDEX', 'NAME', 'KIND', 'STATE', 'UP', 'XDP', 'ALTNAMES'],
    links.map((l) => [
      String(l.ifindex),
      l.name,
      l.kind ?? 'device',
      l.operState,
      l.up ? 'yes' : 'no',
      xdpText(l.xdp),
      l.altNames.join(',') || '-',
    ]),
  )
}

export interface EventJson {
  event: LinkEvent['event']
  ifindex: number
  name: string
  oldName?: string
  changed?: string[]
}

export function eventJson(e: LinkEvent): EventJson {
  const out: EventJson = { event: e.event, ifindex: e.ifindex, name: e.name }
  if (e.event === 'rename') out.oldName = e.oldName
  if (e.event === 'change') out.changed = e.changed
  return out
}

export function eventText(e: LinkEvent): string {
  const head = `${e.event.padEnd(6)} ${String(e.ifindex).padStart(5)} ${e.name}`
  if (e.event === 'rename') return `${head} (was ${e.oldName})`
  if (e.event === 'change') {
    const parts = e.changed.map((f) => {
      if (f === 'operState') return `operstate ${e.previous.operState}->${e.link.operState}`
      if (f === 'up') return e.link.up ? 'up' : 'down'
      if (f === 'xdp') return `xdp ${xdpText(e.previous.xdp)}->${xdpText(e.link.xdp)}`
      return f
    })
    return `${head}: ${parts.join(', ')}`
  }
  if (e.event === 'add') return `${head} (${e.link.kind ?? 'device'}, ${e.link.operState})`
  return head
}
