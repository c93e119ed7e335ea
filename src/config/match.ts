/**
 * Which attach entry a link gets. Pure.
 *
 * A link is known by its namespace's name (HOST_NETNS for the daemon's own namespace, else the namespace file's
 * name in a directory of `netns-dirs`) and its identity there. Of the entries whose `netns` globs match the
 * namespace's name, the first (in file order) decides when:
 * - one of its `interfaces` globs matches the link's name or one of its alternative names,
 * - none of its `exclude` globs matches the name or any alternative name (excluding by any name is enough: an
 *   operator who excludes `eth9` means that link whichever of its names `interfaces` caught), and
 * - it has no `kinds`, or they contain the link's IFLA_INFO_KIND (`device` for a link without one).
 * A link that an entry's `exclude` or `kinds` leaves out is offered to the next entries. The namespace is one more
 * condition of the same kind, not a separate ranking: an entry for another namespace is skipped as an entry for
 * other names is, and order alone decides among the rest.
 */
import { compileGlobs } from './globs.js'
import { HOST_NETNS, NO_KIND, type AttachEntry, type Config, type LinkIdentity } from './types.js'

export type LinkMatcher = (link: LinkIdentity) => AttachEntry | null

interface CompiledEntry {
  entry: AttachEntry
  netns: (name: string) => boolean
  include: (name: string) => boolean
  exclude: (name: string) => boolean
  kinds: ReadonlySet<string> | null
}

/** Globs are compiled once per Config object (configs are replaced whole on reload, never edited). */
const cache = new WeakMap<Config, CompiledEntry[]>()

/** An entry's `netns` globs compiled, once per entry object (entries belong to a Config, never edited). */
const netnsCache = new WeakMap<AttachEntry, (name: string) => boolean>()

function netnsPredicate(entry: AttachEntry): (name: string) => boolean {
  let p = netnsCache.get(entry)
  if (p === undefined) {
    p = compileGlobs(entry.netns)
    netnsCache.set(entry, p)
  }
  return p
}

/** Whether `entry` is for the namespace named `name` (HOST_NETNS: the daemon's own). */
export function netnsMatches(entry: AttachEntry, name: string): boolean {
  return netnsPredicate(entry)(name)
}

function compiled(config: Config): CompiledEntry[] {
  let c = cache.get(config)
  if (c === undefined) {
    c = config.entries.map((entry) => ({
      entry,
      netns: netnsPredicate(entry),
      include: compileGlobs(entry.interfaces),
      exclude: compileGlobs(entry.exclude),
      kinds: entry.kinds === null ? null : new Set(entry.kinds),
    }))
    cache.set(config, c)
  }
  return c
}

/**
 * The matcher for the links of the namespace named `netns` (default: the daemon's own). The entries' globs are
 * compiled once per config, whatever the number of namespaces; making a namespace's matcher only picks the entries
 * for it, and is not cached here (namespaces come and go under a config that stays): its user keeps it.
 */
export function compileMatcher(config: Config, netns: string = HOST_NETNS): LinkMatcher {
  const entries = compiled(config).filter((e) => e.netns(netns))
  return (link) => {
    const names = [link.name, ...link.altNames]
    const kind = link.kind ?? NO_KIND
    for (const e of entries) {
      if (e.kinds !== null && !e.kinds.has(kind)) continue
      if (!names.some(e.include)) continue
      if (names.some(e.exclude)) continue
      return e.entry
    }
    return null
  }
}

/**
 * The entry that decides for `link` in the namespace named `netns` (default: the daemon's own), or null when none
 * matches (the link should carry no program of ours).
 */
export function matchLink(config: Config, link: LinkIdentity, netns: string = HOST_NETNS): AttachEntry | null {
  return compileMatcher(config, netns)(link)
}

/**
 * Whether an entry is for a namespace other than the daemon's own: only then are namespace files watched (which
 * needs CAP_SYS_ADMIN for setns()), so a config without `netns:` runs as it did before namespaces.
 */
export function namesOtherNamespaces(config: Config): boolean {
  return config.entries.some((e) => e.netns.some((p) => p !== HOST_NETNS))
}
