/**
 * The config schema as a validation function. Compiling it with ajv (the schema and the draft 2020-12 meta-schema)
 * costs 55-75 ms, on every start of the daemon; so `npm run build` writes ajv's standalone code for it next to the
 * compiled modules (precompile.ts -> dist/config/schema-validator.generated.js). That module is used only when it was
 * generated from this very schema (its hash); otherwise (tests run from src/, a build without the step, an edited
 * schema) the schema is compiled here, with the same options: both give the same errors.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import type { Ajv2020, ErrorObject } from 'ajv/dist/2020.js'
import { configSchema } from './schema.js'

export interface SchemaValidator {
  (data: unknown): boolean
  errors?: ErrorObject[] | null
}

/** verbose: errors carry the schema node and the data, for our messages (validate.ts #fromAjv). */
const AJV_OPTIONS = { allErrors: true, verbose: true, allowUnionTypes: true, strict: true } as const

export const GENERATED_FILE = 'schema-validator.generated.js'

/** Identifies the schema a generated validator was made from. */
export function schemaHash(): string {
  return createHash('sha256').update(JSON.stringify(configSchema)).digest('hex')
}

/** The schema compiled by ajv now; `source` keeps the code for standaloneCode(). */
export async function compileSchema(source = false): Promise<{ ajv: Ajv2020; validate: SchemaValidator }> {
  const { Ajv2020 } = await import('ajv/dist/2020.js')
  const ajv = new Ajv2020({ ...AJV_OPTIONS, ...(source ? { code: { source: true, esm: true } } : {}) })
  ajv.addVocabulary(['x-expected'])
  return { ajv, validate: ajv.compile(configSchema) }
}

/** The generated validator when it matches the schema, else the schema compiled now. */
export async function loadSchemaValidator(): Promise<SchemaValidator> {
  const mod = await importGenerated()
  if (mod && mod.SCHEMA_HASH === schemaHash()) return mod.validate
  return (await compileSchema()).validate
}

async function importGenerated(): Promise<{ validate: SchemaValidator; SCHEMA_HASH: string } | null> {
  const url = new URL(`./${GENERATED_FILE}`, import.meta.url)
  if (!existsSync(url)) return null
  return (await import(url.href)) as { validate: SchemaValidator; SCHEMA_HASH: string }
}
