/**
 * What changed between two observations of links. Pure: the table uses it for live notifications and for the
 * differences a resync finds after notifications were lost.
 */
import { isDeepStrictEqual } from 'node:util'
import type { LinkState } from '../rtnl/link.js'

/** The fields of a link whose change is reported (the name has its own `rename` event). */
export const WATCHED_FIELDS = [
  'flags',
  'up',
  'running',
  'operState',
  'kind',
  'altNames',
  'master',
  'xdp',
  'mtu',
  'address',
] as const satisfies readonly (keyof LinkState)[]

export type LinkField = (typeof WATCHED_FIELDS)[number]

export type LinkEvent =
  | { event: 'add'; ifindex: number; name: string; link: LinkState }
  | { event: 'change'; ifindex: number; name: string; link: LinkState; previous: LinkState; changed: LinkField[] }
  | { event: 'rename'; ifindex: number; name: string; oldName: string; link: LinkState; previous: LinkState }
  | { event: 'remove'; ifindex: number; name: string; link: LinkState }

export function changedFields(a: LinkState, b: LinkState): LinkField[] {
  const out: LinkField[] = []
  for (const f of WATCHED_FIELDS) if (!sameValue(a[f], b[f])) out.push(f)
  return out
}

/**
 * isDeepStrictEqual for the values a LinkState holds, with the common cases first: every notification of every
 * link is compared field by field, and the generic comparison costs more than decoding the message did. Primitives
 * and null compare with Object.is; altNames and xdp (plain arrays and objects of primitives) fall back to it.
 */
function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) && Array.isArray(b) && a.length === 0 && b.length === 0) return true
  return isDeepStrictEqual(a, b)
}

/**
 * The events that turn observation `prev` of one ifindex into `next`. A link whose name and kind both differ is taken
 * for a new link that reuses a freed ifindex (a remove and an add), since a rename cannot change the kind.
 */
export function linkEvents(prev: LinkState | undefined, next: LinkState | undefined): LinkEvent[] {
  if (!prev && !next) return []
  if (!prev) return [{ event: 'add', ifindex: next!.ifindex, name: next!.name, link: next! }]
  if (!next) return [{ event: 'remove', ifindex: prev.ifindex, name: prev.name, link: prev }]
  if (prev.name !== next.name && prev.kind !== next.kind) {
    return [...linkEvents(prev, undefined), ...linkEvents(undefined, next)]
  }
  const out: LinkEvent[] = []
  if (prev.name !== next.name) {
    out.push({ event: 'rename', ifindex: next.ifindex, name: next.name, oldName: prev.name, link: next, previous: prev })
  }
  const changed = changedFields(prev, next)
  if (changed.length > 0) {
    out.push({ event: 'change', ifindex: next.ifindex, name: next.name, link: next, previous: prev, changed })
  }
  return out
}

/** Events turning table `prev` into table `next`: removals first (so a freed name is free again), then the rest. */
export function tableEvents(prev: ReadonlyMap<number, LinkState>, next: ReadonlyMap<number, LinkState>): LinkEvent[] {
  const removed: LinkEvent[] = []
  const rest: LinkEvent[] = []
  for (const [ifindex, link] of prev) if (!next.has(ifindex)) removed.push(...linkEvents(link, undefined))
  const indexes = [...next.keys()].sort((a, b) => a - b)
  for (const ifindex of indexes) rest.push(...linkEvents(prev.get(ifindex), next.get(ifindex)))
  return [...removed, ...rest]
}
