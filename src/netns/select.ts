/**
 * Which namespaces a command shows (`--netns NAME`, `--all-namespaces`) and in what order. Pure: the namespaces come
 * from the watch (watch.ts), the answer is a list; no I/O.
 */
import { posix } from 'node:path'
import type { Result } from '../result.js'
import { HOST } from './registry.js'

/** `--netns NAME` (one namespace, by any of its names) or `--all-namespaces`. */
export type NetnsSelector = { kind: 'one'; name: string } | { kind: 'all' }

/** What selection needs of a namespace (registry.ts Namespace has it). */
export interface Named {
  readonly name: string
  readonly names: readonly string[]
  readonly host: boolean
}

/** Whether the selector is for the namespace: `--netns NAME` takes any of its names, since a file of each binds it. */
export function selects(sel: NetnsSelector, ns: Named): boolean {
  return sel.kind === 'all' || ns.names.includes(sel.name)
}

/**
 * The daemon's own namespace first, then the others by primary name in code point order (as `ls` sorts in the C
 * locale): the order does not depend on the locale, or on the order the files were found in.
 */
export function showOrder<T extends Named>(list: readonly T[]): T[] {
  return [...list].sort((a, b) => (a.host !== b.host ? (a.host ? -1 : 1) : a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/**
 * `--netns` takes a namespace's name: `host`, or the name of a file in one of the directories. A path is refused
 * rather than taken apart: `/run/netns/x` with directories that do not include /run/netns would find another `x`.
 */
export function netnsName(v: string): Result<string, string> {
  if (v === '') return { ok: false, error: 'expected the name of a network namespace, got an empty string' }
  if (v.includes('/')) {
    const dir = posix.dirname(v)
    return {
      ok: false,
      error: `expected the name of a network namespace (a file name in a --netns-dir, or ${HOST}), got the path ${JSON.stringify(v)}: use --netns ${posix.basename(v)} --netns-dir ${dir}`,
    }
  }
  if (v.includes('\0')) return { ok: false, error: 'expected the name of a network namespace, got a name with NUL in it' }
  return { ok: true, value: v }
}

/** The selected namespaces, in show order; `--netns NAME` that names none is an error naming where it looked. */
export function selectNamespaces<T extends Named>(
  list: readonly T[],
  sel: NetnsSelector,
  dirs: readonly string[],
  /** Why a file of that name is not a namespace we could use (it could not be entered, say), when known. */
  why?: string,
): Result<T[], string> {
  const picked = showOrder(list.filter((ns) => selects(sel, ns)))
  if (picked.length > 0 || sel.kind === 'all') return { ok: true, value: picked }
  return { ok: false, error: unknownNetnsText(sel.name, dirs, why) }
}

export function unknownNetnsText(name: string, dirs: readonly string[], why?: string): string {
  const where = dirs.length > 0 ? `in ${dirs.join(', ')}` : 'in no directory'
  const reason = why ? `: ${why}` : ` (${HOST} is this one; --netns-dir chooses the directories)`
  return `no network namespace named ${JSON.stringify(name)} ${where}${reason}`
}
