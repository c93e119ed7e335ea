/**
 * The validator `npm run build` generates (dist/config/schema-validator.generated.cjs) reports exactly what ajv
 * compiling the schema at run time reports, for valid and invalid documents alike.
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { GENERATED_FILE, compileSchema, schemaHash, type GeneratedValidator } from '../../src/config/schema-validator.js'

const generated = fileURLToPath(new URL(`../../dist/config/${GENERATED_FILE}`, import.meta.url))

const DOCS: unknown[] = [
  { attach: [] },
  {},
  null,
  [],
  'attach',
  { attach: [{ interfaces: ['eth*'], object: 'x.o', mode: 'nativ' }] },
  { attach: [{ interfaces: [], object: '' }], settle: 5, 'max-settle': '1 fortnight', bogus: true },
  { attach: [{ interfaces: ['eth*'], object: 'x.o', kinds: [1], exclude: 'eth0', 'replace-foreign': 'yes' }], 'on-exit': 'explode' },
  { attach: [{ name: 'x'.repeat(300), interfaces: ['eth*'], object: 'x.o' }], metrics: { port: 70000 }, 'control-socket': 7 },
  { attach: [{ interfaces: ['eth*'], object: 'x.o', program: '' }], bpffs: 'relative/path', metrics: 'localhost:9100' },
  { attach: [{ interfaces: ['eth*'], object: 'x.o', netns: ['host', 'cni-*'] }], 'netns-dirs': ['/run/netns'] },
  { attach: [{ interfaces: ['eth*'], object: 'x.o', netns: 'cni-*' }, { interfaces: ['x'], object: 'x.o', netns: [''] }], 'netns-dirs': ['run/netns', 7] },
  { attach: [{ interfaces: ['eth*'], object: 'x.o', netns: [] }], 'netns-dirs': '/run/netns' },
]

t.test('generated validator: same verdicts and errors as ajv at run time', async (t) => {
  if (!existsSync(generated)) return t.skip(`${generated} is missing: run npm run build`)
  const mod = createRequire(import.meta.url)(generated) as GeneratedValidator
  t.equal(mod.SCHEMA_HASH, schemaHash(), 'generated from the current schema (npm run build regenerates it)')
  const { validate } = compileSchema()
  for (const doc of DOCS) {
    const a = validate(doc)
    const b = mod(doc)
    t.equal(b, a, `verdict for ${JSON.stringify(doc)}`)
    t.same(mod.errors ?? null, validate.errors ?? null, `errors for ${JSON.stringify(doc)}`)
  }
})
