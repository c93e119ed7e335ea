/** How links and link events are shown: JSON for programs, aligned columns for people. Pure. */
import type { LinkState } from '../rtnl/link.js'
import type { LinkEvent } from '../links/diff.js'
import { HOST_NETNS } from '../config/types.js'

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

/**
 * Text as it may go to a terminal: every control character (C0 U+0000-U+001F, DEL U+007F, C1 U+0080-U+009F) as a
 * `\xHH` escape, and `\` doubled so that an escape is never ambiguous. Link names are the kernel's bytes: it
 * refuses only '/', ':', whitespace and NUL in them (net/core/dev.c, dev_valid_name), so a name may carry ESC
 * sequences that move the cursor, rewrite the window title (OSC) or ring the bell (BEL) when printed raw. The text
 * output of status, links, monitor and check passes every such field through here (link names, kinds and altnames,
 * the kernel's error text, paths); JSON output escapes on its own.
 */
export function printable(s: string): string {
  return s.replace(/[\\\u0000-\u001f\u007f-\u009f]/g, (c) => (c === '\\' ? '\\\\' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`))
}

/** Aligned columns; every cell is made printable first. */
export function table(header: string[], rows: string[][]): string {
  rows = rows.map((r) => r.map(printable))
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n') + '\n'
}

const SI = ['', 'k', 'M', 'G', 'T', 'P', 'E']

/**
 * A rate for people: three significant digits and an SI prefix by powers of 1000 (`0`, `0.200`, `98.0`, `1.23k`,
 * `45.7M`), as top and bpftop show them; `?` for what is not a count. Rounded before the prefix is chosen, so that
 * 999.7 is `1.00k`, not `1000`.
 */
export function siText(x: number): string {
  if (!Number.isFinite(x) || x < 0) return '?'
  if (x === 0) return '0'
  let u = 0
  let v = Number(x.toPrecision(3))
  while (v >= 1000 && u < SI.length - 1) {
    v = Number((v / 1000).toPrecision(3))
    u++
  }
  return `${v.toPrecision(3)}${SI[u]}`
}

export function xdpText(x: LinkState['xdp']): string {
  if (!x) return '-'
  return x.progId !== undefined && x.progId !== null ? `${x.mode} id ${x.progId}` : x.mode
}

const LINK_HEADER = ['IFINDEX', 'NAME', 'KIND', 'STATE', 'UP', 'XDP', 'ALTNAMES']

function linkRow(l: LinkState): string[] {
  return [String(l.ifindex), l.name, l.kind ?? 'device', l.operState, l.up ? 'yes' : 'no', xdpText(l.xdp), l.altNames.join(',') || '-']
}

export function linksTable(links: LinkState[]): string {
  return table(LINK_HEADER, links.map(linkRow))
}

/** The links of one network namespace, named as the daemon names it (HOST_NETNS: the one the command runs in). */
export interface NetnsLinks {
  netns: string
  links: LinkState[]
}

/**
 * `links --netns` / `--all-namespaces`: the namespaces in the order given, each one's links as they are. A NETNS column
 * comes first once a namespace other than host is shown; the host's links alone look as without the options.
 */
export function netnsLinksTable(groups: readonly NetnsLinks[]): string {
  if (groups.every((g) => g.netns === HOST_NETNS)) return linksTable(groups.flatMap((g) => g.links))
  return table(['NETNS', ...LINK_HEADER], groups.flatMap((g) => g.links.map((l) => [g.netns, ...linkRow(l)])))
}

export type NetnsLinkJson = { netns: string } & LinkJson

/** The JSON of `links` with a namespace option: every link names its namespace, whichever were asked for. */
export function netnsLinksJson(groups: readonly NetnsLinks[]): NetnsLinkJson[] {
  return groups.flatMap((g) => g.links.map((l) => ({ netns: g.netns, ...linkJson(l) })))
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
  const head = `${e.event.padEnd(6)} ${String(e.ifindex).padStart(5)} ${printable(e.name)}`
  if (e.event === 'rename') return `${head} (was ${printable(e.oldName)})`
  if (e.event === 'change') {
    const parts = e.changed.map((f) => {
      if (f === 'operState') return `operstate ${e.previous.operState}->${e.link.operState}`
      if (f === 'up') return e.link.up ? 'up' : 'down'
      if (f === 'xdp') return `xdp ${xdpText(e.previous.xdp)}->${xdpText(e.link.xdp)}`
      return f
    })
    return `${head}: ${parts.join(', ')}`
  }
  if (e.event === 'add') return `${head} (${printable(e.link.kind ?? 'device')}, ${e.link.operState})`
  return head
}

/** A link event of a namespace (`monitor` with a namespace option): the namespace's name first, then the event. */
export function eventTextIn(netns: string, e: LinkEvent): string {
  return `${printable(netns)}  ${eventText(e)}`
}

export type NetnsEventJson = { netns: string } & EventJson

export function eventJsonIn(netns: string, e: LinkEvent): NetnsEventJson {
  return { netns, ...eventJson(e) }
}

/**
 * A namespace that `monitor` follows came, was renamed (the file that named it went while another still binds it)
 * or went. `id` is `net:[inode]`, as readlink(/proc/PID/ns/net) shows it; `netns` is the name after the event.
 */
export type NetnsChange =
  | { event: 'netns-add'; netns: string; id: string; paths: string[] }
  | { event: 'netns-rename'; netns: string; oldName: string; id: string }
  | { event: 'netns-remove'; netns: string; id: string }

export function netnsChangeText(e: NetnsChange): string {
  const head = `${printable(e.netns)}  ${e.event}`
  if (e.event === 'netns-add') return `${head} ${e.id}${e.paths.length > 0 ? ` (${e.paths.map(printable).join(', ')})` : ''}`
  if (e.event === 'netns-rename') return `${head} ${e.id} (was ${printable(e.oldName)})`
  return `${head} ${e.id}`
}
