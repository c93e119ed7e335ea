/**
 * Reading a config file from disk: check the path (secure-path.ts), read, parse and validate (validate.ts), then
 * check every object file the entries name. All filesystem access goes through fs.ts.
 */
import { posix } from 'node:path'
import { err, ok, type Result } from '../result.js'
import { ConfigError } from './errors.js'
import { openWalked, walkOptions, walkPath, type PathFinding } from './secure-path.js'
import { parseConfigSource } from './validate.js'
import type { Config } from './types.js'

export interface LoadOptions {
  /**
   * Skip the ownership and mode checks on the config file, the object files and their directories (CLI:
   * --insecure-paths). The files must still exist and be regular files.
   */
  insecurePaths?: boolean
}

const OVERRIDE_HINT = ' (fix the owner or mode, or start xdplinkd with --insecure-paths)'

/**
 * The largest config file read: a config of 1,000 entries is about 100 KiB. A limit keeps a mistaken path (a log
 * file, a device) from being read into memory whole.
 */
export const MAX_CONFIG_BYTES = 1 << 20

/**
 * Loads `path` (made absolute against the working directory). Relative object paths are resolved against the
 * directory of `path` as given, not of the file a symlink leads to: the directory the operator named.
 * Every problem found is returned, in file order where the file could be parsed.
 */
export async function loadConfig(path: string, opts: LoadOptions = {}): Promise<Result<Config, ConfigError[]>> {
  const file = posix.resolve(path)
  const walk = walkOptions(opts)
  const fileError = (message: string): ConfigError => new ConfigError({ file, line: null, col: null, path: '', message })

  // Checked, opened and read in one go: the bytes parsed are those of the file judged (secure-path.ts openWalked).
  const opened = await openWalked(file, { ...walk, maxBytes: MAX_CONFIG_BYTES })
  if (!opened.ok) {
    return err(opened.error.map((f) => fileError(f.unsafe ? `refusing this config file: ${f.text}${OVERRIDE_HINT}` : `cannot read this config file: ${f.text}`)))
  }
  const bytes = await opened.value.read().finally(() => opened.value.close())
  if (!bytes.ok) return err([fileError(`cannot read this config file: ${bytes.error.message}`)])
  const text = decodeUtf8(bytes.value)
  if (text === null) return err([fileError('cannot read this config file: not valid UTF-8')])

  const parsed = parseConfigSource(text, file)
  if (!parsed.ok) return parsed
  const { config, source } = parsed.value

  // One walk per distinct object, however many entries share it; each entry still gets its own error line.
  const walks = new Map<string, Promise<Result<string, PathFinding[]>>>()
  for (const e of config.entries) if (!walks.has(e.object)) walks.set(e.object, walkPath(e.object, walk))
  const errors: ConfigError[] = []
  for (const e of config.entries) {
    const r = await walks.get(e.object)
    if (r === undefined || r.ok) continue
    for (const f of r.error) {
      const message = f.unsafe ? `refusing object ${e.object}: ${f.text}${OVERRIDE_HINT}` : `cannot use object ${e.object}: ${f.text}`
      errors.push(source.errorAt(['attach', e.index, 'object'], message))
    }
  }
  return errors.length > 0 ? err(errors) : ok(config)
}

/** UTF-8 text, or null for bytes that are not: refused rather than silently replaced by U+FFFD. */
function decodeUtf8(bytes: Buffer): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return null
  }
}
