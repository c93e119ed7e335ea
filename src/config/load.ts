/**
 * Reading a config file from disk: check the path (secure-path.ts), read, parse and validate (validate.ts), then
 * check every object file the entries name. All filesystem access goes through fs.ts.
 */
import { posix } from 'node:path'
import { err, ok, type Result } from '../result.js'
import { ConfigError } from './errors.js'
import { readTextFile } from './fs.js'
import { OVERRIDE_HINT, defaultTrustedUids } from './permissions.js'
import { walkPath, type PathFinding, type WalkOptions } from './secure-path.js'
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
 * Loads `path` (made absolute against the working directory). Relative object paths are resolved against the
 * directory of `path` as given, not of the file a symlink leads to: the directory the operator named.
 * Every problem found is returned, in file order where the file could be parsed.
 */
export async function loadConfig(path: string, opts: LoadOptions = {}): Promise<Result<Config, ConfigError[]>> {
  const file = posix.resolve(path)
  const walk: WalkOptions = {
    strict: opts.insecurePaths !== true,
    trustedUids: defaultTrustedUids(typeof process.geteuid === 'function' ? process.geteuid() : 0),
  }
  const fileError = (message: string): ConfigError => new ConfigError({ file, line: null, col: null, path: '', message })

  const checked = await walkPath(file, walk)
  if (!checked.ok) {
    return err(checked.error.map((f) => fileError(f.unsafe ? `refusing this config file: ${f.text}${OVERRIDE_HINT}` : `cannot read this config file: ${f.text}`)))
  }
  const text = await readTextFile(checked.value)
  if (!text.ok) return err([fileError(`cannot read this config file: ${text.error.message}`)])

  const parsed = parseConfigSource(text.value, file, { groups: /control-group/.test(text.value) ? await readGroups() : undefined })
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

/** group(5), for a `control-group:` name (read at every load: a reload sees a group added meanwhile). */
async function readGroups(): Promise<GroupTable> {
  const text = await readTextFile(GROUP_FILE)
  return text.ok ? ok(parseGroupFile(text.value)) : err(text.error.message)
}
