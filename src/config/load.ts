/**
 * Reading a config file from disk: check the path (secure-path.ts), read, parse and validate (validate.ts), then
 * check every object file the entries name. All filesystem access goes through fs.ts.
 */
import { realpath } from 'node:fs/promises'
import { posix } from 'node:path'
import { err, ok, type Result } from '../result.js'
import { ConfigError } from './errors.js'
import { openRegularFile } from './fs.js'
import { decodeUtf8 } from './source.js'
import { OVERRIDE_HINT } from './permissions.js'
import { openWalked, walkOptions, walkPath, type PathFinding } from './secure-path.js'
import { GROUP_FILE, parseConfigSource, parseGroupFile, type GroupTable } from './validate.js'
import type { Config } from './types.js'

export interface LoadOptions {
  /**
   * Skip the ownership and mode checks on the config file, the object files and their directories (CLI:
   * --insecure-paths). The files must still exist and be regular files.
   */
  insecurePaths?: boolean
}

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

  const parsed = parseConfigSource(text, file, { groups: /control-group/.test(text) ? await readGroups() : undefined })
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

/** group(5) is a few KiB; a directory service's copy of it is not read (numbers work there). */
const MAX_GROUP_FILE_BYTES = 16 << 20

/** group(5), for a `control-group:` name (read at every load: a reload sees a group added meanwhile). */
async function readGroups(): Promise<GroupTable> {
  let path: string
  try {
    path = await realpath(GROUP_FILE)
  } catch (e) {
    return err((e as Error).message)
  }
  const opened = await openRegularFile(path, { maxBytes: MAX_GROUP_FILE_BYTES })
  if (!opened.ok) return err(opened.error.message)
  const bytes = await opened.value.read().finally(() => opened.value.close())
  if (!bytes.ok) return err(bytes.error.message)
  const text = decodeUtf8(bytes.value)
  return text === null ? err(`${GROUP_FILE}: not valid UTF-8`) : ok(parseGroupFile(text))
}
