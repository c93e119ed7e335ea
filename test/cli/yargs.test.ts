/** Usage errors of the command line (cli/yargs.ts): one line on stderr, exit 1, nothing started. */
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { countArg, intervalArg, netnsArg, netnsChoice, netnsDirsArg, rcvbufBytes } from '../../src/cli/yargs.js'
import { CLI } from '../helpers/netns.js'

t.test('--rcvbuf takes a whole number of bytes', async (t) => {
  t.equal(rcvbufBytes(undefined), undefined, 'absent: the default')
  t.equal(rcvbufBytes(4096), 4096)
  t.equal(rcvbufBytes(0x3fffffff), 0x3fffffff)
  for (const bad of [NaN, 0, -5, 1.5, 0x40000000, Infinity, '4096']) {
    t.throws(() => rcvbufBytes(bad), /--rcvbuf: expected a whole number of bytes from 1 to 1073741823/, `${String(bad)} refused`)
  }
})

t.test('top: --interval in seconds from 0.1 to 3600, --count a whole number from 1', async (t) => {
  for (const ok of [0.1, 0.5, 1, 3600]) t.equal(intervalArg(ok), ok)
  for (const bad of [0, 0.05, -1, 3601, NaN, Infinity, '1']) t.throws(() => intervalArg(bad), /--interval: expected seconds from 0.1 to 3600/, `${String(bad)} refused`)
  t.equal(countArg(undefined), undefined, 'absent: until stopped')
  for (const ok of [1, 2, 1000]) t.equal(countArg(ok), ok)
  for (const bad of [0, -1, 1.5, NaN, '2']) t.throws(() => countArg(bad), /--count: expected a whole number from 1/, `${String(bad)} refused`)
})

t.test('a usage error is one line on stderr and exit 1', async (t) => {
  const cases: [args: string[], stderr: RegExp][] = [
    [['run', '--rcvbuf', 'abc', '--config', '/nonexistent'], /^xdplinkd: --rcvbuf: expected a whole number of bytes from 1 to 1073741823, got NaN \(see xdplinkd --help\)\n$/],
    [['monitor', '--rcvbuf', '-5'], /^xdplinkd: --rcvbuf: expected .* got -5 \(see xdplinkd --help\)\n$/],
    [['run', '--bogus'], /^xdplinkd: Unknown argument: bogus \(see xdplinkd --help\)\n$/],
    [['top', '--interval', '0'], /^xdplinkd: --interval: expected seconds from 0.1 to 3600, got 0 \(see xdplinkd --help\)\n$/],
    [['top', '--count', '0'], /^xdplinkd: --count: expected a whole number from 1, got 0 \(see xdplinkd --help\)\n$/],
    [['maps', '--bogus'], /^xdplinkd: Unknown argument: bogus \(see xdplinkd --help\)\n$/],
    [[], /^xdplinkd: name a command \(see xdplinkd --help\)\n$/],
  ]
  for (const [args, stderr] of cases) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20000 })
    t.equal(r.status, 1, `xdplinkd ${args.join(' ')}: exit 1`)
    t.match(r.stderr, stderr)
    t.equal(r.stdout, '', 'nothing on stdout')
  }
})

t.test('the namespace options: --netns a name, --netns-dir absolute and normalized, what the command is given', async (t) => {
  t.equal(netnsArg(undefined), undefined)
  t.equal(netnsArg('pod-1'), 'pod-1')
  t.throws(() => netnsArg('/run/netns/pod-1'), /^--netns: expected the name of a network namespace .* use --netns pod-1 --netns-dir \/run\/netns$/)
  t.throws(() => netnsArg(''), /^--netns: expected the name/)
  t.equal(netnsDirsArg(undefined), undefined)
  t.same(netnsDirsArg(['/run/netns/', '/srv//ns/.', 'rel']), ['/run/netns', '/srv/ns', `${process.cwd()}/rel`])
  t.throws(() => netnsDirsArg(['']), /^--netns-dir: expected a directory, got ""$/)
  const cases: [args: Parameters<typeof netnsChoice>[0], given: ReturnType<typeof netnsChoice>][] = [
    [{}, {}],
    [{ 'all-namespaces': false }, {}],
    [{ netns: 'pod-1' }, { netns: { kind: 'one', name: 'pod-1' } }],
    [{ 'all-namespaces': true, 'netns-dir': ['/a', '/b', '/a'] }, { netns: { kind: 'all' }, netnsDirs: ['/a', '/b'] }],
    [{ netns: 'host', 'insecure-paths': true }, { netns: { kind: 'one', name: 'host' }, insecurePaths: true }],
  ]
  for (const [args, given] of cases) t.same(netnsChoice(args), given, JSON.stringify(args))
})

t.test('namespace options that do not go together are usage errors', async (t) => {
  const cases: [args: string[], stderr: RegExp][] = [
    [['links', '--netns', 'a', '--all-namespaces'], /^xdplinkd: --netns and --all-namespaces: give one of them \(see xdplinkd --help\)\n$/],
    [['monitor', '--netns-dir', '/run/netns'], /^xdplinkd: --netns-dir: only with --netns or --all-namespaces \(without them, only this namespace is shown\) \(see xdplinkd --help\)\n$/],
    [['links', '--insecure-paths'], /^xdplinkd: --insecure-paths: only with --netns or --all-namespaces/],
    [['links', '--netns', '/run/netns/a'], /^xdplinkd: --netns: expected the name of a network namespace .* \(see xdplinkd --help\)\n$/],
    [['links', '--all-namespaces', '--netns-dir'], /^xdplinkd: Not enough arguments following: netns-dir \(see xdplinkd --help\)\n$/],
  ]
  for (const [args, stderr] of cases) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20000 })
    t.equal(r.status, 1, `xdplinkd ${args.join(' ')}: exit 1`)
    t.match(r.stderr, stderr)
    t.equal(r.stdout, '', 'nothing on stdout')
  }
})
