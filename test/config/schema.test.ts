/**
 * schema/config.schema.json is the schema the daemon validates with (src/config/schema.ts), serialized. After an
 * edit to schema.ts, regenerate the file with: XDPLINKD_WRITE_SCHEMA=1 npx tap test/config/schema.test.ts
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Ajv2020 } from 'ajv/dist/2020.js'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { loadConfig } from '../../src/config/load.js'
import { configSchema } from '../../src/config/schema.js'
import { parseConfig } from '../../src/config/validate.js'

const repo = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url))
const schemaFile = repo('schema/config.schema.json')
const exampleFile = repo('examples/config.yaml')
const serialized = `${JSON.stringify(configSchema, null, 2)}\n`

if (process.env['XDPLINKD_WRITE_SCHEMA'] === '1') writeFileSync(schemaFile, serialized)

t.test('schema/config.schema.json is src/config/schema.ts, byte for byte', async (t) => {
  t.equal(readFileSync(schemaFile, 'utf8'), serialized, 'regenerate: XDPLINKD_WRITE_SCHEMA=1 npx tap test/config/schema.test.ts')
})

t.test('the published schema compiles on its own (ajv, draft 2020-12, strict)', async (t) => {
  const schema: unknown = JSON.parse(readFileSync(schemaFile, 'utf8'))
  const ajv = new Ajv2020({ allErrors: true, allowUnionTypes: true, strict: true })
  ajv.addVocabulary(['x-expected'])
  const validate = ajv.compile(schema as object)
  t.ok(validate({ attach: [] }), 'minimal config')
  t.notOk(validate({ attach: [{ interfaces: ['eth*'], object: 'x.o', mode: 'nativ' }] }), 'bad mode')
  t.notOk(validate({}), 'attach is required')
})

t.test('examples/config.yaml validates against the published schema and loads', async (t) => {
  const text = readFileSync(exampleFile, 'utf8')
  const schema: unknown = JSON.parse(readFileSync(schemaFile, 'utf8'))
  const ajv = new Ajv2020({ allErrors: true, allowUnionTypes: true, strict: true })
  ajv.addVocabulary(['x-expected'])
  const validate = ajv.compile(schema as object)
  t.ok(validate(parseYaml(text)), JSON.stringify(validate.errors))

  const r = parseConfig(text, exampleFile)
  if (!r.ok) return t.fail(r.error.map(String).join('\n'))
  const objects = r.value.entries.map((e) => e.object)
  t.ok(objects.length > 0, 'has entries')
  t.ok(objects.includes(repo('bpf/xdp_pass.o')), '../bpf/xdp_pass.o resolves against examples/')
  for (const o of objects) t.match(o, /^\/.*\/bpf\/xdp_[a-z]+\.o$/, 'objects are the bundled ones')
})

t.test('examples/config.yaml loads from the checkout with --insecure-paths', {
  skip: existsSync(repo('bpf/xdp_pass.o')) ? false : 'bpf/xdp_pass.o not built (make -C bpf)',
}, async (t) => {
  const r = await loadConfig(exampleFile, { insecurePaths: true })
  t.ok(r.ok, r.ok ? 'loads' : r.error.map(String).join('\n'))
})
