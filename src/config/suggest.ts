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
