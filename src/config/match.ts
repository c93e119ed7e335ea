/**
 * Which attach entry a link gets. Pure.
 *
 * The first entry (in file order) decides when:
 * - one of its `interfaces` globs matches the link's name or one of its alternative names,
 * - none of its `exclude` globs matches the name or any alternative name (excluding by any name is enough: an
 *   operator who excludes `eth9` means that link whichever of its names `interfaces` caught), and
 * - it has no `kinds`, or they contain the link's IFLA_INFO_KIND (`device` for a link without one).
 * A link that an entry's `exclude` or `kinds` leaves out is offered to the next entries.
 */
import { compileGlobs } from './globs.js'
import { NO_KIND, type AttachEntry, type Config, type LinkIdentity } from './types.js'

export type LinkMatcher = (link: LinkIdentity) => AttachEntry | null

interface CompiledEntry {
  entry: AttachEntry
  include: (name: string) => boolean
  exclude: (name: string) => boolean
  kinds: ReadonlySet<string> | null
}

/** Globs are compiled once per Config object (configs are replaced whole on reload, never edited). */
const cache = new WeakMap<Config, LinkMatcher>()

export function compileMatcher(config: Config): LinkMatcher {
  const compiled: CompiledEntry[] = config.entries.map((entry) => ({
    entry,
    include: compileGlobs(entry.interfaces),
    exclude: compileGlobs(entry.exclude),
    kinds: entry.kinds === null ? null : new Set(entry.kinds),
  }))
  return (link) => {
    const names = [link.name, ...link.altNames]
    const kind = link.kind ?? NO_KIND
    for (const c of compiled) {
      if (c.kinds !== null && !c.kinds.has(kind)) continue
      if (!names.some(c.include)) continue
      if (names.some(c.exclude)) continue
      return c.entry
    }
    return null
  }
}

/** The entry that decides for `link`, or null when none matches (the link should carry no program of ours). */
export function matchLink(config: Config, link: LinkIdentity): AttachEntry | null {
  let matcher = cache.get(config)
  if (matcher === undefined) {
    matcher = compileMatcher(config)
    cache.set(config, matcher)
  }
  return matcher(link)
}
