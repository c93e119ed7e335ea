/**
 * A map's list file (`maps: {NAME: {file: PATH}}`): keys one a line, kept by another tool (a threat feed, a
 * script). Read under the same path rules as object files (config/secure-path.ts openWalked: root-owned, not
 * writable by others, a regular file opened with O_NOFOLLOW|O_NONBLOCK and judged by fstat, at most
 * MAX_LIST_FILE_BYTES), so a FIFO, a symlink swapped in or /dev/zero cannot stall or swell the daemon.
 */
import { ConfigError } from '../config/errors.js'
import { decodeUtf8 } from '../config/source.js'
import { OVERRIDE_HINT } from '../config/permissions.js'
import { openWalked, type WalkOptions } from '../config/secure-path.js'
import { err, ok, type Result } from '../result.js'
import type { ListFileKeys } from './declare.js'

/** 100,000 IPv6 prefixes with comments are about 5 MiB; the limit leaves room and still bounds memory. */
export const MAX_LIST_FILE_BYTES = 64 << 20

/**
 * Keys, one a line: `#` starts a comment (to the end of the line), blanks around a key are dropped, an empty line
 * is skipped. Lines are counted from 1; `\r\n` endings are accepted. Pure. The keys are read from `text` as they are
 * iterated (declare.ts ListFileKeys), without a string or object per line kept.
 */
export function parseListFile(path: string, text: string, version = ''): ListFileKeys {
  let lines = 1
  for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', nl + 1)) lines++
  return { path, keys: { [Symbol.iterator]: () => listKeys(text) }, lines, version }
}

function* listKeys(text: string): Generator<{ key: string; line: number }> {
  // Where the next `#` is, from the start of the line on: looked for again only once passed, so that a file without
  // comments is searched once, not once a line.
  let hash = text.indexOf('#')
  let line = 0
  for (let start = 0; start <= text.length; line++) {
    let end = text.indexOf('\n', start)
    if (end < 0) end = text.length
    if (hash >= 0 && hash < start) hash = text.indexOf('#', start)
    const key = text.slice(start, hash >= 0 && hash < end ? hash : end).trim()
    if (key !== '') yield { key, line: line + 1 }
    start = end + 1
  }
}

/**
 * Reads and parses a list file. A problem (unsafe path, not a regular file, too large, not UTF-8) is one
 * ConfigError at `at`, the `file:` key that names it.
 */
export async function readListFile(
  path: string,
  rules: WalkOptions,
  at: { file: string; line: number | null; col: number | null; path: string },
): Promise<Result<ListFileKeys, ConfigError>> {
  const fail = (message: string): Result<ListFileKeys, ConfigError> => err(new ConfigError({ ...at, message }))
  const opened = await openWalked(path, { ...rules, maxBytes: MAX_LIST_FILE_BYTES })
  if (!opened.ok) {
    const f = opened.error[0]!
    return fail(f.unsafe ? `refusing list file ${path}: ${opened.error.map((x) => x.text).join('; ')}${OVERRIDE_HINT}` : `cannot read list file ${path}: ${opened.error.map((x) => x.text).join('; ')}`)
  }
  const bytes = await opened.value.read().finally(() => opened.value.close())
  if (!bytes.ok) return fail(`cannot read list file ${path}: ${bytes.error.message}`)
  const text = decodeUtf8(bytes.value)
  if (text === null) return fail(`cannot read list file ${path}: not valid UTF-8`)
  return ok(parseListFile(path, text, opened.value.stat.version))
}
