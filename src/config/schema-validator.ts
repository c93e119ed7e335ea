/**
 * The config schema as a validation function. Compiling it with ajv (the schema and the draft 2020-12 meta-schema)
 * costs 55-75 ms, on every start of the daemon; so `npm run build` writes ajv's standalone code for it next to the
 * compiled modules (precompile.ts -> dist/config/schema-validator.generated.js). That module is used only when it was
 * generated from this very schema (its hash); otherwise (tests run from src/, a build without the step, an edited
 * schema) the schema is compiled here, with the same options: both give the same errors.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type { Ajv2020, ErrorObject } from 'ajv/dist/2020.js'
import { configSchema } from './schema.js'

export interface SchemaValidator {
  (data: unknown): boolean
  errors?: ErrorObject[] | null
}

/** verbose: errors carry the schema node and the data, for our messages (validate.ts #fromAjv). */
const AJV_OPTIONS = { allErrors: true, verbose: true, allowUnionTypes: true, strict: true } as const

/**
 * CommonJS, loaded with require(): validate.ts needs the validator when it is evaluated, and the bundle it runs in is
 * CommonJS (launch/bundle.ts), where a module cannot wait for an import(). ajv's compiler is required the same way,
 * from node_modules, when the generated file does not match: it stays out of the bundle.
 */
export const GENERATED_FILE = 'schema-validator.generated.cjs'

const require = createRequire(import.meta.url)

/** Identifies the schema a generated validator was made from. */
export function schemaHash(): string {
  return createHash('sha256').update(JSON.stringify(configSchema)).digest('hex')
}

/** The schema compiled by ajv now; `source` keeps the code for standaloneCode(). */
export function compileSchema(source = false): { ajv: Ajv2020; validate: SchemaValidator } {
  const { Ajv2020 } = require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js')
  const ajv = new Ajv2020({ ...AJV_OPTIONS, ...(source ? { code: { source: true } } : {}) })
  ajv.addVocabulary(['x-expected'])
  return { ajv, validate: ajv.compile(configSchema) }
}

/** The generated validator when it matches the schema, else the schema compiled now. */
export function loadSchemaValidator(): SchemaValidator {
  const generated = requireGenerated()
  if (typeof generated === 'function' && generated.SCHEMA_HASH === schemaHash()) return generated
  return compileSchema().validate
}

/** ajv's standalone CommonJS module for one schema exports the function itself; precompile.ts adds SCHEMA_HASH. */
export type GeneratedValidator = SchemaValidator & { SCHEMA_HASH?: string }

function requireGenerated(): GeneratedValidator | null {
  const path = fileURLToPath(new URL(`./${GENERATED_FILE}`, import.meta.url))
  if (!existsSync(path)) return null
  return require(path) as GeneratedValidator
}
