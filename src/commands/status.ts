/** `xdplinkd status`: asks the running daemon over its control socket; a table for people, or its JSON. */
import { askDaemon } from '../control/client.js'
import type { AttachedProgramJson, ControlResponse, CountersJson, LinkStatusJson, ProgramStatusJson, StatusJson, StatusResponse } from '../control/protocol.js'
import { XDP_ACTIONS } from '../programs/counters.js'
import { printable, table } from './format.js'

export interface StatusOptions {
  socket: string
  json: boolean
  out?: NodeJS.WritableStream
  timeoutMs?: number
}

export const isStatus = (r: ControlResponse): r is StatusResponse => r.ok && 'links' in r

export async function statusCommand(o: StatusOptions): Promise<number> {
  const out = o.out ?? process.stdout
  const r = await askDaemon(o.socket, { cmd: 'status' }, isStatus, { timeoutMs: o.timeoutMs ?? 10_000 })
  const { ok: _ok, ...status } = r
  out.write(o.json ? JSON.stringify(status) + '\n' : statusText(status))
  return 0
}

function attachedText(a: AttachedProgramJson | null): string {
  return a ? `${a.mode} id ${a.progId} (${a.owner})` : '-'
}

function linkRow(l: LinkStatusJson): string[] {
  const attached = [l.attached, ...(l.alsoAttached ?? [])].map(attachedText).join(', ')
  return [
    String(l.ifindex),
    l.name,
    l.entry ?? '-',
    l.desiredProgId === null ? '-' : String(l.desiredProgId),
    attached,
    l.state === 'error' && l.lastError ? `error: ${l.lastError}` : l.state,
  ]
}

export function countersText(c: CountersJson): string {
  const errors = Object.entries(c.errors)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([code, n]) => `${code} ${n}`)
  return (
    `attaches ${c.attaches}, replaces ${c.replaces}, detaches ${c.detaches}, conflicts ${c.conflicts}, ` +
    `overruns ${c.overruns}, resyncs ${c.resyncs}; errors: ${errors.length ? errors.join(', ') : 'none'}\n`
  )
}

const LINK_COLUMNS = ['IFINDEX', 'NAME', 'ENTRY', 'DESIRED', 'ATTACHED', 'STATE']

/**
 * The links, one table per network namespace in the order the daemon lists them (its own first). With only its own
 * namespace managed, one table without a heading, as before namespaces.
 */
function linksText(links: readonly LinkStatusJson[]): string {
  const byNetns = new Map<string, LinkStatusJson[]>()
  for (const l of links) byNetns.set(l.netns, [...(byNetns.get(l.netns) ?? []), l])
  if (byNetns.size <= 1 && [...byNetns.keys()].every((n) => n === 'host')) return table(LINK_COLUMNS, links.map(linkRow))
  return [...byNetns]
    .map(([netns, ls]) => `network namespace ${printable(netns)}: ${ls.length} links\n${table(LINK_COLUMNS, ls.map(linkRow))}`)
    .join('\n')
}

/**
 * What each link's program counted: a row per action it counted on the link, a link counted but quiet as one row
 * with `-`; links without counters are left out. The namespace column names the daemon's own `host`.
 */
export function trafficText(links: readonly LinkStatusJson[]): string {
  const rows: string[][] = []
  for (const { netns, name, traffic } of links) {
    if (!traffic) continue
    const counted = XDP_ACTIONS.filter((a) => traffic[a].packets > 0 || traffic[a].bytes > 0)
    if (counted.length === 0) rows.push([netns, name, '-', '0', '0'])
    for (const a of counted) rows.push([netns, name, a, String(traffic[a].packets), String(traffic[a].bytes)])
  }
  if (rows.length === 0) return 'no per-link counters: no link runs a program that keeps them\n'
  return table(['NETNS', 'NAME', 'ACTION', 'PACKETS', 'BYTES'], rows)
}

/** `per link` when the program keeps per-link counters, `-` when not, and why not when it has a map that does not serve. */
function linkStatsText(p: ProgramStatusJson): string {
  if (p.linkStats) return 'per link'
  return p.linkStatsProblem ? `none: ${p.linkStatsProblem}` : '-'
}

/** The human form: links, what they counted, programs, counters. Pure. */
export function statusText(s: StatusJson): string {
  const links = linksText(s.links)
  const programs = s.programs.length
    ? table(
        ['ID', 'TAG', 'NAME', 'ENTRIES', 'OBJECT', 'PIN', 'COUNTERS'],
        s.programs.map((p) => [String(p.id), p.tag, p.name, p.entries.join(','), p.object, p.pin, linkStatsText(p)]),
      )
    : 'no programs (the config attaches nothing)\n'
  return `xdplinkd (pid ${s.pid}), config ${printable(s.config)}\n\n${links}\n${trafficText(s.links)}\n${programs}\n${countersText(s.counters)}`
}
