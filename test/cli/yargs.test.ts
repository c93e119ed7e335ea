/** Usage errors of the command line (cli/yargs.ts): one line on stderr, exit 1, nothing started. */
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { rcvbufBytes } from '../../src/cli/yargs.js'
import { CLI } from '../helpers/netns.js'

t.test('--rcvbuf takes a whole number of bytes', async (t) => {
  t.equal(rcvbufBytes(undefined), undefined, 'absent: the default')
  t.equal(rcvbufBytes(4096), 4096)
  t.equal(rcvbufBytes(0x3fffffff), 0x3fffffff)
  for (const bad of [NaN, 0, -5, 1.5, 0x40000000, Infinity, '4096']) {
    t.throws(() => rcvbufBytes(bad), /--rcvbuf: expected a whole number of bytes from 1 to 1073741823/, `${String(bad)} refused`)
  }
})

t.test('a usage error is one line on stderr and exit 1', async (t) => {
  const cases: [args: string[], stderr: RegExp][] = [
    [['run', '--rcvbuf', 'abc', '--config', '/nonexistent'], /^xdplinkd: --rcvbuf: expected a whole number of bytes from 1 to 1073741823, got NaN \(see xdplinkd --help\)\n$/],
    [['monitor', '--rcvbuf', '-5'], /^xdplinkd: --rcvbuf: expected .* got -5 \(see xdplinkd --help\)\n$/],
    [['run', '--bogus'], /^xdplinkd: Unknown argument: bogus \(see xdplinkd --help\)\n$/],
    [[], /^xdplinkd: name a command \(see xdplinkd --help\)\n$/],
  ]
  for (const [args, stderr] of cases) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20000 })
    t.equal(r.status, 1, `xdplinkd ${args.join(' ')}: exit 1`)
    t.match(r.stderr, stderr)
    t.equal(r.stdout, '', 'nothing on stdout')
  }
})
