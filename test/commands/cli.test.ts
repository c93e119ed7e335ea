import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { CLI, ROOT } from '../helpers/netns.js'

const run = (...args: string[]) => spawnSync('node', [CLI, ...args], { encoding: 'utf8' })

t.test('--version prints the package version', async (t) => {
  const r = run('--version')
  t.equal(r.status, 0)
  t.equal(r.stdout.trim(), JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')).version)
})

t.test('--help lists the commands', async (t) => {
  const r = run('--help')
  t.equal(r.status, 0)
  for (const c of ['links', 'monitor']) t.match(r.stdout, new RegExp(`xdplinkd ${c}`))
})

t.test('an unknown command or option: exit 1 with one line on stderr', async (t) => {
  for (const args of [['frobnicate'], ['links', '--bogus'], []]) {
    const r = run(...args)
    t.equal(r.status, 1, args.join(' '))
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
    t.match(r.stderr, /^xdplinkd: /)
  }
})
