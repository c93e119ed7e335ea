/**
 * YAML text -> plain data plus a way back from a key path to a line and column. Pure: no I/O, never throws.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml'
import { err, ok, type Result } from '../result.js'
import { ConfigError, formatKeyPath, sortErrors, type KeyPath } from './errors.js'

export interface Position {
  line: number
  col: number
}

export interface YamlSource {
  file: string
  /** The document as plain data (mappings as objects, sequences as arrays). */
  data: unknown
  /**
   * Where the node at `path` starts. `key` gives a mapping member's key instead of its value (for unknown keys).
   * A path that does not exist (a missing key) gives the position of the deepest node that does.
   */
  positionOf(path: KeyPath, at?: 'value' | 'key'): Position
  /** A ConfigError located at `path`. */
  errorAt(path: KeyPath, message: string, at?: 'value' | 'key', shownPath?: KeyPath): ConfigError
}

/** UTF-8 text, or null for bytes that are not: refused rather than silently replaced by U+FFFD. */
export function decodeUtf8(bytes: Buffer): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return null
  }
}

/** Aliases are allowed (anchors can share a list of globs), but not as a way to blow up memory. */
const MAX_ALIAS_COUNT = 100

export function parseYaml(text: string, file: string): Result<YamlSource, ConfigError[]> {
  const lineCounter = new LineCounter()
  // YAML 1.2 core schema: `yes`/`no`/`on`/`off` are strings, so `replace-foreign: yes` is an error rather than a
  // silent true; no merge keys (`<<` is an unknown key); duplicate keys are errors.
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    version: '1.2',
    schema: 'core',
    merge: false,
    uniqueKeys: true,
    strict: true,
  })
  const at = (offset: number): Position => lineCounter.linePos(offset)
  // Warnings too: an unresolved tag (`!!set`, `!foo`) would otherwise become a plain string.
  const problems = [...doc.errors, ...doc.warnings]
  if (problems.length > 0) {
    return err(
      sortErrors(
        problems.map((e) => {
          const { line, col } = at(e.pos[0])
          const message = e.code === 'MULTIPLE_DOCS' ? 'YAML: expected one document, but "---" starts another' : yamlMessage(e.message)
          return new ConfigError({ file, line, col, path: '', message })
        }),
      ),
    )
  }
  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT })
  } catch (e) {
    return err([new ConfigError({ file, line: 1, col: 1, path: '', message: e instanceof Error ? e.message : String(e) })])
  }
  const positionOf = (path: KeyPath, which: 'value' | 'key' = 'value'): Position => {
    const node = locate(doc, path, which)
    return at(node?.range?.[0] ?? 0)
  }
  return ok({
    file,
    data,
    positionOf,
    errorAt(path, message, which = 'value', shownPath = path) {
      const { line, col } = positionOf(path, which)
      return new ConfigError({ file, line, col, path: formatKeyPath(shownPath), message })
    },
  })
}

/** yaml's messages end with a source excerpt when prettyErrors is on; it is off, but keep only the first line. */
function yamlMessage(message: string): string {
  const first = message.split('\n')[0] ?? message
  return `YAML: ${first.replace(/\s+$/, '')}`
}

/** The deepest node along `path` (through aliases); for `key`, the key of the last mapping member if it exists. */
function locate(doc: Document, path: KeyPath, which: 'value' | 'key'): Node | null {
  let node: unknown = doc.contents
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]
    const last = i === path.length - 1
    node = resolve(doc, node)
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && keyString(p.key) === String(seg))
      if (pair === undefined) return node
      if (last && which === 'key' && isNode(pair.key)) return pair.key
      if (!isNode(pair.value)) return isNode(pair.key) ? pair.key : node
      node = pair.value
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg]
      if (!isNode(item)) return node
      node = item
    } else {
      return isNode(node) ? node : null
    }
  }
  return isNode(node) ? node : null
}

function resolve(doc: Document, node: unknown): unknown {
  for (let depth = 0; isAlias(node) && depth < MAX_ALIAS_COUNT; depth++) node = node.resolve(doc)
  return node
}

function keyString(key: unknown): string {
  if (isScalar(key)) return String(key.value)
  return String(key)
}

function isNode(x: unknown): x is Node {
  return isScalar(x) || isMap(x) || isSeq(x) || isAlias(x)
}
