/**
 * Shell globs on interface names and on network namespace names, on top of picomatch. Pure.
 *
 * The accepted syntax is the shell's: `*`, `?`, `[...]` (with `[!...]`/`[^...]` and POSIX classes such as
 * `[[:digit:]]`), `{a,b}` alternatives and `\` escapes. picomatch is a path matcher with more than that, so:
 * - `dot: true`: `*` also matches a leading dot (interface names have no hidden-file convention);
 * - `noextglob`, and unescaped `(`/`)` are refused: picomatch still reads `(a|b)` as a regex group;
 * - `nonegate`, and a leading `!` is refused: in picomatch it negates the whole glob, which would turn an entry
 *   into "every link except" by one character. `exclude:` says that explicitly;
 * - `/` is refused: no interface name contains one (dev_valid_name in net/core/dev.c), no namespace name either
 *   (it is a file name), and picomatch treats it as a path separator;
 * - `strictBrackets`: an unbalanced `[`, `{` or `(` is an error, not a literal;
 * - `posix`: bracket expressions as the shell has them (`[!0-9]` negates; POSIX classes).
 */
import picomatch from 'picomatch'

export const GLOB_OPTIONS: picomatch.PicomatchOptions = Object.freeze({
  dot: true,
  noextglob: true,
  nonegate: true,
  strictBrackets: true,
  // Without it picomatch reads [!v] as "[!v] literally, or ! or v" rather than the shell's "not v".
  posix: true,
  nocase: false,
  windows: false,
})

/** IFNAMSIZ - 1: the longest link name (include/uapi/linux/if.h). */
export const MAX_IFNAME_BYTES = 15
/** ALTIFNAMSIZ - 1: the longest alternative name (include/uapi/linux/if.h, rtnl_alt_ifname). */
export const MAX_ALTNAME_BYTES = 127
/** NAME_MAX: the longest file name (include/uapi/linux/limits.h), so the longest namespace name. */
export const MAX_NETNS_NAME_BYTES = 255

/** What a list of globs is matched against: the words of globProblem's messages and the longest name. */
export interface GlobSubject {
  /** Plural, as in "interface names cannot contain ...". */
  names: string
  /** How to say "all but" instead of a leading "!". */
  negation: string
  /** The longest name in bytes: a glob that needs more can never match. */
  maxBytes: number
  /** Why no name is longer. */
  limit: string
}

/** `interfaces:` and `exclude:`: link names and alternative names. */
export const LINK_NAMES: GlobSubject = Object.freeze({
  names: 'interface names',
  negation: 'list the links to leave out under "exclude"',
  maxBytes: MAX_ALTNAME_BYTES,
  limit: `link names have at most ${MAX_IFNAME_BYTES} and alternative names at most ${MAX_ALTNAME_BYTES}`,
})

/** `netns:`: the file name of a namespace file in a watched directory, or the reserved name of the own namespace. */
export const NETNS_NAMES: GlobSubject = Object.freeze({
  names: 'namespace names',
  negation: 'list the namespaces to manage instead',
  maxBytes: MAX_NETNS_NAME_BYTES,
  limit: `namespace names are file names, of at most ${MAX_NETNS_NAME_BYTES} bytes (NAME_MAX)`,
})

/** Why `glob` is not usable as a glob on `subject`'s names (interface names by default), or null when it is. */
export function globProblem(glob: string, subject: GlobSubject = LINK_NAMES): string | null {
  if (glob === '') return 'an empty glob matches nothing'
  if (glob.startsWith('!')) return `a leading "!" would negate the glob, which is not supported: ${subject.negation} (write "\\!" for a literal "!")`
  if (glob.includes('/')) return `${subject.names} cannot contain "/"`
  if (glob.includes('\0')) return `${subject.names} cannot contain NUL`
  const paren = unescapedOutsideBrackets(glob, '()')
  if (paren !== null) return `"${paren}" is not glob syntax here: use {a,b} for alternatives, or "\\${paren}" for a literal character`
  let re: RegExp
  try {
    re = picomatch.makeRe(glob, GLOB_OPTIONS)
  } catch (e) {
    return `invalid glob: ${e instanceof Error ? e.message : String(e)}`
  }
  // picomatch turns a pattern it cannot make a regex of (a reversed range such as [z-a], a trailing "\") into $^.
  if (re.source === '$^') return 'invalid glob (a reversed range such as [z-a], or a trailing "\\"?)'
  const min = minMatchBytes(glob)
  if (min > subject.maxBytes) return `can never match: it needs at least ${min} bytes, but ${subject.limit}`
  return null
}

/** One predicate for a list of globs (false for an empty list). Call only with globs globProblem accepted. */
export function compileGlobs(globs: readonly string[]): (name: string) => boolean {
  if (globs.length === 0) return () => false
  const res = globs.map((g) => picomatch.makeRe(g, GLOB_OPTIONS))
  return (name) => res.some((re) => re.test(name))
}

/**
 * A lower bound on the length in bytes of any name `glob` matches: literal characters count their UTF-8 bytes,
 * `?` and a bracket expression one, `*` and a `{...}` group nothing (an alternative may be empty).
 */
export function minMatchBytes(glob: string): number {
  const cs = Array.from(glob) // code points, so that a character outside the BMP counts its 4 bytes once
  let n = 0
  for (let i = 0; i < cs.length; i++) {
    const c = cs[i] as string
    if (c === '\\') {
      const next = cs[i + 1]
      if (next !== undefined) n += Buffer.byteLength(next)
      i++
    } else if (c === '*') {
      // matches the empty string
    } else if (c === '?') {
      n += 1
    } else if (c === '[') {
      n += 1
      const end = bracketEnd(cs, i)
      if (end >= 0) i = end
    } else if (c === '{') {
      i = braceEnd(cs, i)
    } else {
      n += Buffer.byteLength(c)
    }
  }
  return n
}

/** Index of the `]` that closes the bracket expression opening at `start`, or -1. */
function bracketEnd(cs: readonly string[], start: number): number {
  let j = start + 1
  if (cs[j] === '!' || cs[j] === '^') j++
  if (cs[j] === ']') j++ // a leading ] is literal
  while (j < cs.length) {
    const c = cs[j]
    if (c === '\\') j += 2
    else if (c === '[' && cs[j + 1] === ':') {
      let close = -1
      for (let k = j + 2; k + 1 < cs.length; k++) if (cs[k] === ':' && cs[k + 1] === ']') { close = k; break }
      j = close < 0 ? j + 1 : close + 2
    } else if (c === ']') return j
    else j++
  }
  return -1
}

/** Index of the `}` that closes the group opening at `start` (nesting and escapes respected), or the last index. */
function braceEnd(cs: readonly string[], start: number): number {
  let depth = 0
  for (let j = start; j < cs.length; j++) {
    const c = cs[j]
    if (c === '\\') j++
    else if (c === '{') depth++
    else if (c === '}' && --depth === 0) return j
  }
  return cs.length - 1
}

/** The first of `chars` that stands unescaped outside a bracket expression, or null. */
function unescapedOutsideBrackets(glob: string, chars: string): string | null {
  const cs = Array.from(glob)
  for (let i = 0; i < cs.length; i++) {
    const c = cs[i] as string
    if (c === '\\') i++
    else if (c === '[') {
      const end = bracketEnd(cs, i)
      if (end >= 0) i = end
    } else if (chars.includes(c)) return c
  }
  return null
}
