/** A path into the YAML document: mapping keys and sequence indexes, outermost first. */
export type KeyPath = readonly (string | number)[]

/** `attach[1].mode`; keys that are not plain words are quoted: `attach[0]["odd key"]`. */
export function formatKeyPath(path: KeyPath): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else if (/^[A-Za-z0-9_-]+$/.test(seg)) out += out === '' ? seg : `.${seg}`
    else out += `[${JSON.stringify(seg)}]`
  }
  return out
}

export interface ConfigErrorFields {
  file: string
  /** 1-based; null when the error concerns the file as a whole (it cannot be read, or its permissions are unsafe). */
  line: number | null
  col: number | null
  /** `attach[1].mode`; '' for the document as a whole. */
  path: string
  /** What is wrong, usually `expected ..., got ...`. */
  message: string
}

/**
 * One problem with a config file. `toString()` gives the compiler-style line an operator sees:
 * `/etc/xdplinkd/config.yaml:7:11: attach[1].mode: expected one of auto, native, generic, offload, got "nativ"`.
 */
export class ConfigError implements ConfigErrorFields {
  readonly file: string
  readonly line: number | null
  readonly col: number | null
  readonly path: string
  readonly message: string

  constructor(fields: ConfigErrorFields) {
    this.file = fields.file
    this.line = fields.line
    this.col = fields.col
    this.path = fields.path
    this.message = fields.message
  }

  toString(): string {
    let where = this.file
    if (this.line !== null) where += this.col !== null ? `:${this.line}:${this.col}` : `:${this.line}`
    return this.path === '' ? `${where}: ${this.message}` : `${where}: ${this.path}: ${this.message}`
  }
}

/** Orders errors as they appear in the file; errors without a position come first, in their original order. */
export function sortErrors(errors: ConfigError[]): ConfigError[] {
  return errors
    .map((e, i) => ({ e, i }))
    .sort((a, b) => (a.e.line ?? 0) - (b.e.line ?? 0) || (a.e.col ?? 0) - (b.e.col ?? 0) || a.i - b.i)
    .map(({ e }) => e)
}

/** The same error once (the same text at the same place: a list file named by two entries fails for each). */
export function dedupeErrors(errors: ConfigError[]): ConfigError[] {
  const seen = new Set<string>()
  return errors.filter((e) => {
    const k = e.toString()
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}
