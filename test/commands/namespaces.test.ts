/**
 * The namespaces a command looks at (commands/namespaces.ts), against the kernel: the watch's findings, the links of
 * a namespace dumped through sockets made inside it, and why a name that was asked for is not there (a file named
 * after another namespace's name, a refused directory).
 */
import t from 'tap'
import { chmodSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { CommandNetns, dumpLinksIn, type NetnsWarning } from '../../src/commands/namespaces.js'
import { netnsDir } from '../helpers/mounts.js'
import { makeNetns, needsRoot } from '../helpers/netns.js'

t.test('the namespaces found, their links, and the warnings kept by kind', { skip: needsRoot }, async (t) => {
  const a = makeNetns(t, 'xdplp')
  const b = makeNetns(t, 'xdplp')
  a.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0')
  const one = netnsDir(t)
  const two = netnsDir(t)
  const file = one.bind(a.name, 'pod-1')
  const taken = two.bind(b.name, 'pod-1')
  const open = join(one.dir, '..', 'open')
  mkdirSync(open)
  chmodSync(open, 0o777) // writable by anyone: refused by the path rules
  const live: NetnsWarning[] = []
  const found = await CommandNetns.open({ dirs: [one.dir, two.dir, open], onWarning: (w) => live.push(w) })
  t.teardown(() => found.close())

  const names = found.namespaces().map((ns) => [ns.name, ns.host])
  t.same(names, [
    ['host', true],
    ['pod-1', false],
  ])
  const pod = found.namespaces()[1]!
  t.same(pod.paths, [file])
  const fd = found.fdOf(pod.id)
  t.ok(fd !== null, 'its descriptor is held')
  const links = await dumpLinksIn(fd!)
  t.same(
    links.map((l) => l.name),
    a.ipJson<{ ifname: string }[]>('link', 'show').map((l) => l.ifname),
    'the links of the namespace, not of this one',
  )
  t.equal(found.fdOf('net:[1]'), null)

  t.same(live, found.warnings, 'each warning told as it came, and kept')
  t.match(found.warnings, [
    { kind: 'ignored', path: taken, message: `ignoring ${taken}: the namespace ${pod.id} already has the name pod-1` },
    { kind: 'dir', dir: open, message: /^refusing to watch \S+\/open for network namespaces: .*writable by group and others/ },
  ])
  t.equal(found.warnings.length, 2)
  t.match(found.whyNot('pod-1'), /^ignoring \S+: the namespace net:\[\d+\] already has the name pod-1; refusing to watch /)
  t.match(found.whyNot('pod-9'), /^refusing to watch \S+\/open/, 'a name with no file of its own: the refused directory may have had it')
})
