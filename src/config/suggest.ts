/**
 * "Did you mean": the candidate fewest edits (Levenshtein, by fastest-levenshtein) away from a word, for the
 * messages about an unknown config key and about a `kinds:` value that looks misspelt. Pure.
 */
import { closest, distance } from 'fastest-levenshtein'

/** The nearest candidate (the first of equally near ones) when it is at most `maxEdits` away, else null. */
export function suggest(word: string, candidates: readonly string[], maxEdits: number): string | null {
  if (candidates.length === 0) return null
  const best = closest(word, candidates as string[])
  return distance(word, best) <= maxEdits ? best : null
}

/**
 * Words an operator may write for a key of ours that are too many edits away from it to be suggested (lower case,
 * `-` for `_`): `namespaces` is 6 edits from `netns`.
 */
const KEY_ALIASES: ReadonlyMap<string, string> = new Map([
  ['namespace', 'netns'],
  ['namespaces', 'netns'],
  ['network-namespace', 'netns'],
  ['network-namespaces', 'netns'],
  ['ns', 'netns'],
  ['netns-dir', 'netns-dirs'],
  ['namespace-dirs', 'netns-dirs'],
  ['namespace-directories', 'netns-dirs'],
  ['netns-directories', 'netns-dirs'],
])

/** The key of `keys` that an unknown key probably means: an alias of one of them, or one at most 2 edits away. */
export function suggestKey(key: string, keys: readonly string[]): string | null {
  const word = key.toLowerCase()
  const alias = KEY_ALIASES.get(word.replace(/_/g, '-'))
  if (alias !== undefined && keys.includes(alias)) return alias
  return suggest(word, keys, 2)
}
