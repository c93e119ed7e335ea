/**
 * docs/reference.md against the code it describes: every config key of the schema, every command and option the
 * CLI's --help lists, every sysexits status the code uses, every metric the registry holds and every journal field
 * name the logger maps must appear in it. Catches a key or option added without its documentation. No root needed.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { configSchema } from '../../src/config/schema.js'
import { EX_CANTCREAT } from '../../src/control/server.js'
import { KNOWN_FIELDS } from '../../src/log/journal.js'
import { DaemonMetrics } from '../../src/metrics/metrics.js'

const ROOT = new URL('../../', import.meta.url).pathname
const DOC = readFileSync(join(ROOT, 'docs/reference.md'), 'utf8')
const CLI = join(ROOT, 'dist/cli.js')

function help(...args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args, '--help'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '200' } })
  if (r.status !== 0) throw new Error(`xdplinkd ${args.join(' ')} --help failed: ${r.stderr}`)
  return r.stdout
}

/** A table row whose first cell is the backquoted `name`. */
const row = (name: string): RegExp => new RegExp(`^\\| \`${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\``, 'm')

t.test('every config key, top level and attach entry', async (t) => {
  const keys = [...Object.keys(configSchema.properties), ...Object.keys(configSchema.$defs.attachEntry.properties)]
  t.ok(keys.length > 10)
  for (const k of keys) t.match(DOC, row(k), `config key ${k}`)
  for (const [k, def] of Object.entries(configSchema.$defs.attachEntry.properties)) {
    if ('enum' in def) for (const v of def.enum) t.ok(DOC.includes(`\`${v}\``), `${k}: value ${v}`)
  }
})

t.test('every command and option of the CLI', async (t) => {
  const commands = [...help().matchAll(/^ {2}xdplinkd (\w+)/gm)].map((m) => m[1]!)
  t.same(commands.sort(), ['check', 'links', 'maps', 'monitor', 'reload', 'run', 'status', 'top'])
  t.ok(DOC.includes('--help') && DOC.includes('--version'))
  for (const c of commands) {
    t.match(DOC, new RegExp(`^### \`xdplinkd ${c}\`$`, 'm'), `a section for ${c}`)
    const section = DOC.split(`### \`xdplinkd ${c}\``)[1]!.split(/^##/m)[0]!
    const options = [...help(c).matchAll(/^ +(?:-\w, )?(--[a-z][a-z-]*)/gm)].map((m) => m[1]!)
    for (const o of options.filter((o) => o !== '--help' && o !== '--version')) {
      t.ok(section.includes(`\`${o}`), `${c} ${o} documented in its section`)
    }
  }
})

t.test('every exit status the code uses', async (t) => {
  // EX_CONFIG and EX_DATAERR live in daemon.ts, which loads libbpf; read them from the source instead.
  const daemon = readFileSync(join(ROOT, 'src/daemon.ts'), 'utf8')
  const statuses = [...daemon.matchAll(/export const (EX_\w+) = (\d+)/g)].map((m) => [m[1]!, Number(m[2])] as const)
  t.same(statuses.map(([n]) => n).sort(), ['EX_CONFIG', 'EX_DATAERR'])
  for (const [name, n] of [...statuses, ['EX_CANTCREAT', EX_CANTCREAT] as const, ['', 0] as const, ['', 1] as const]) {
    t.match(DOC, new RegExp(`^\\| ${n} \\| *${name} *\\|`, 'm'), `exit status ${n} ${name}`.trim())
  }
})

t.test('every metric', async (t) => {
  const names = new DaemonMetrics(() => null).registry.getMetricsAsArray().map((m) => m.name)
  t.ok(names.length >= 10)
  for (const n of names) t.match(DOC, row(n), `metric ${n}`)
})

t.test('every journal field the logger names', async (t) => {
  for (const f of [...Object.values(KNOWN_FIELDS), 'PRIORITY', 'MESSAGE', 'SYSLOG_IDENTIFIER', 'ERRNO']) t.match(DOC, row(f), `field ${f}`)
})
