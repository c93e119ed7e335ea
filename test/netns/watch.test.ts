/**
 * The namespace watch against the kernel: ip netns add and del in /run/netns (the file first, its bind mount after);
 * namespaces bound by the test itself in a directory of its own, as a container runtime binds them (aliases, the
 * daemon's own namespace); directories that appear, and one that is moved away; a refused directory; a file that
 * never becomes a namespace (with the test's clock). Every mount, namespace and process is removed on teardown.
 */
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import {
  appendFileSync,
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NetnsWatch, type NetnsWatchOptions } from '../../src/netns/watch.js'
import type { NetnsEvent, NsIdentity } from '../../src/netns/registry.js'
import { err } from '../../src/result.js'
import { FakeClock } from '../helpers/clock.js'
import { makeNetns, needsRoot, unshareNet, waitFor } from '../helpers/netns.js'
import { mounts } from '../helpers/mounts.js'

function startWatch(t: Test, opts: Omit<NetnsWatchOptions, 'log'>) {
  const warnings: string[] = []
  const events: NetnsEvent[] = []
  const w = new NetnsWatch({ ...opts, log: { warn: (_f, m) => void warnings.push(m) } })
  w.on('netns', (e) => events.push(e))
  t.teardown(() => w.close())
  return { w, warnings, events }
}

/** A directory of the test's own (root's or the user's, 0755), removed on teardown. */
function tempDir(t: Test, mode = 0o755): string {
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-netns-'))
  chmodSync(dir, mode)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Whether this process holds a descriptor of the namespace (fstat through /proc/self/fd). */
function fdHeld(identity: NsIdentity): boolean {
  for (const n of readdirSync('/proc/self/fd')) {
    try {
      const st = statSync(`/proc/self/fd/${n}`)
      if (st.dev === identity.dev && st.ino === identity.ino) return true
    } catch {
      /* closed meanwhile */
    }
  }
  return false
}

const find = (events: NetnsEvent[], kind: NetnsEvent['kind'], name: string): NetnsEvent | undefined =>
  events.find((e) => e.kind === kind && e.kind !== 'ignored' && e.namespace.names.includes(name))
const until = (events: NetnsEvent[], kind: NetnsEvent['kind'], name: string): Promise<void> =>
  waitFor(() => find(events, kind, name) !== undefined, `${kind} ${name}`, 10_000, 5)

t.test('ip netns add, then del, in /run/netns', { skip: needsRoot }, async (t) => {
  const { w, events } = startWatch(t, { dirs: ['/run/netns'] })
  t.match(await w.start(), [{ dir: '/run/netns', state: { kind: 'watching' } }])
  // ip netns add creates the file, then bind-mounts the new namespace on it: the first look may find a plain file.
  const ns = makeNetns(t)
  await until(events, 'added', ns.name)
  const added = find(events, 'added', ns.name) as Extract<NetnsEvent, { kind: 'added' }>
  const { id, identity } = added.namespace
  t.match(added.namespace, { name: ns.name, names: [ns.name], paths: [`/run/netns/${ns.name}`], host: false })
  t.equal(readlinkSync(`/proc/self/fd/${w.fdOf(id)!.raw}`), id, 'its id, as /proc shows the descriptor kept (not the bind mount)')
  t.ok(fdHeld(identity), 'its descriptor is held')
  execFileSync('ip', ['netns', 'del', ns.name])
  await until(events, 'removed', ns.name)
  t.equal(w.fdOf(id), null)
  t.notOk(fdHeld(identity), 'and closed once it is removed')
  t.equal(events.filter((e) => e.kind !== 'ignored' && e.namespace.names.includes(ns.name)).length, 2, 'added and removed, nothing else')
})

t.test('namespaces bound in a directory of our own, as a container runtime binds them', { skip: needsRoot }, async (t) => {
  const dir = tempDir(t)
  const m = mounts(t)
  const child = await unshareNet(t)
  const { w, events, warnings } = startWatch(t, { dirs: [dir] })
  t.match(await w.start(), [{ dir, state: { kind: 'watching', path: dir } }])

  m.bind(join(dir, 'ns1'), `/proc/${child.pid}/ns/net`, 100)
  await until(events, 'added', 'ns1')
  const { namespace } = find(events, 'added', 'ns1') as Extract<NetnsEvent, { kind: 'added' }>
  t.equal(namespace.id, readlinkSync(`/proc/${child.pid}/ns/net`), 'its id is what readlink shows for the process')
  t.ok(fdHeld(namespace.identity))

  m.bind(join(dir, 'ns2'), `/proc/${child.pid}/ns/net`)
  await waitFor(() => w.namespaces().some((n) => n.names.length === 2 && n.id === namespace.id), 'ns2 as an alias')
  t.same(events.at(-1), { kind: 'renamed', namespace: { ...namespace, names: ['ns1', 'ns2'], paths: [join(dir, 'ns1'), join(dir, 'ns2')] }, was: { name: 'ns1', names: ['ns1'] } })
  t.equal(events.filter((e) => e.kind === 'added').length, 1, 'one namespace, not two')

  m.bind(join(dir, 'self'), `/proc/${process.pid}/ns/net`)
  await waitFor(() => w.namespaces()[0]!.names.includes('self'), 'self as a name of host')
  t.match(events.at(-1), { kind: 'renamed', namespace: { name: 'host', names: ['host', 'self'], host: true } }, "the daemon's own namespace: host")
  t.same(w.namespaces().map((n) => n.name), ['host', 'ns1'])

  m.bind(join(dir, 'uts'), `/proc/${child.pid}/ns/uts`)
  await waitFor(() => warnings.length > 0, 'a warning')
  t.match(warnings, [/uts is not used as a network namespace: it binds a namespace of another kind/])

  m.unbindAndRemove(join(dir, 'ns1'))
  await waitFor(() => w.namespaces()[1]?.name === 'ns2', 'ns2 names it now')
  t.match(events.at(-1), { kind: 'renamed', namespace: { name: 'ns2', names: ['ns2'] }, was: { name: 'ns1' } })
  m.unbindAndRemove(join(dir, 'ns2'))
  await until(events, 'removed', 'ns2')
  t.notOk(fdHeld(namespace.identity), 'its descriptor closed with its last file')
  m.unbindAndRemove(join(dir, 'self'))
  await waitFor(() => w.namespaces()[0]!.names.length === 1, 'host alone')
  t.equal(events.filter((e) => e.kind === 'added' || e.kind === 'removed').length, 2)
  t.equal(warnings.length, 1, 'the one warning')
})

t.test('directories that appear after the watch started, and one moved away', { skip: needsRoot }, async (t) => {
  const dir = tempDir(t)
  const m = mounts(t)
  const later = join(dir, 'later')
  const deep = join(dir, 'a', 'b', 'netns')
  const { w, events } = startWatch(t, { dirs: [later, deep] })
  t.same(await w.start(), [
    { dir: later, state: { kind: 'waiting', ancestor: dir } },
    { dir: deep, state: { kind: 'waiting', ancestor: dir } },
  ])
  mkdirSync(later, { mode: 0o755 })
  await waitFor(() => w.dirs()[0]!.state.kind === 'watching', `${later} watched`)
  const child = await unshareNet(t)
  m.bind(join(later, 'x1'), `/proc/${child.pid}/ns/net`)
  await until(events, 'added', 'x1')

  mkdirSync(deep, { recursive: true, mode: 0o755 })
  await waitFor(() => w.dirs()[1]!.state.kind === 'watching', `${deep} watched`)
  m.bind(join(deep, 'y1'), `/proc/${process.pid}/ns/net`)
  await waitFor(() => w.namespaces()[0]!.names.includes('y1'), 'y1 binds host')

  // Moved away with its namespace file still mounted: the namespace is released, the directory waited for again.
  const { namespace } = find(events, 'added', 'x1') as Extract<NetnsEvent, { kind: 'added' }>
  m.alsoAt(join(dir, 'moved', 'x1'))
  renameSync(later, join(dir, 'moved'))
  await until(events, 'removed', 'x1')
  t.notOk(fdHeld(namespace.identity), 'its descriptor closed')
  await waitFor(() => w.dirs()[0]!.state.kind === 'waiting', `${later} waited for again`)
  t.same(w.dirs()[0]!.state, { kind: 'waiting', ancestor: dir })
  mkdirSync(later, { mode: 0o755 })
  await waitFor(() => w.dirs()[0]!.state.kind === 'watching', `${later} watched again`)
})

t.test('a directory others may write is refused, with its path; --insecure-paths watches it', async (t) => {
  const dir = tempDir(t, 0o775)
  const refused = startWatch(t, { dirs: [dir] })
  const [status] = await refused.w.start()
  t.equal(status!.state.kind, 'refused')
  t.equal(refused.warnings.length, 1)
  t.match(refused.warnings[0], `refusing to watch ${dir} for network namespaces: directory ${dir} is writable by group (mode 0775)`)
  t.match(refused.warnings[0], /--insecure-paths/)
  const insecure = startWatch(t, { dirs: [dir], insecurePaths: true })
  t.match(await insecure.w.start(), [{ dir, state: { kind: 'watching' } }])
  t.same(insecure.warnings, [])
})

t.test('the directory check decides: not there yet is waited for; unsafe, or unusable, is not watched', async (t) => {
  const dir = tempDir(t)
  const seen: string[] = []
  const { w, warnings } = startWatch(t, {
    dirs: [join(dir, 'missing'), '/srv/unsafe', '/srv/file'],
    checkDir: async (d) => {
      seen.push(d)
      if (d.endsWith('missing')) return err([{ path: d, unsafe: false, text: `${d} does not exist`, code: 'ENOENT' }])
      if (d === '/srv/unsafe') return err([{ path: d, unsafe: true, text: `directory ${d} is owned by uid 1000, not root` }])
      return err([{ path: d, unsafe: false, text: `${d} is not a directory`, code: 'ENOTDIR' }])
    },
  })
  t.same((await w.start()).map((s) => s.state.kind), ['waiting', 'refused', 'refused'])
  t.same(seen, [join(dir, 'missing'), '/srv/unsafe', '/srv/file'])
  t.same(warnings, [
    'refusing to watch /srv/unsafe for network namespaces: directory /srv/unsafe is owned by uid 1000, not root (fix the owner or mode, or start xdplinkd with --insecure-paths)',
    'cannot watch /srv/file for network namespaces: /srv/file is not a directory',
  ])
})

t.test('a file that never becomes a namespace: looked at again with a backoff, then one warning', async (t) => {
  const dir = tempDir(t)
  const clock = new FakeClock()
  const { w, warnings, events } = startWatch(t, { dirs: [dir], clock, retry: { firstMs: 5, maxMs: 40, giveUpMs: 200 } })
  await w.start()
  const plain = join(dir, 'plain')
  writeFileSync(plain, '')
  await waitFor(() => clock.live() === 1, 'the first look', 5000, 5)
  clock.advance(1000)
  t.same(clock.timers.map((x) => x.at), [5, 15, 35, 75, 115, 155, 195, 200], '5 ms doubling to the most, the last one at the give-up time')
  t.same(warnings, [`${plain} did not become a network namespace within 200 ms (nothing is mounted on it): not managed; looked at again when it is created again`])
  appendFileSync(plain, 'x')
  await new Promise((r) => setTimeout(r, 50))
  clock.advance(1000)
  t.equal(clock.live(), 0, 'a change to it is looked at once, not retried')
  t.equal(warnings.length, 1, 'and not warned of again')
  rmSync(plain)
  writeFileSync(plain, '')
  await waitFor(() => clock.live() === 1, 'created again: retried again', 5000, 5)
  symlinkSync('/proc/self/ns/net', join(dir, 'link'))
  await waitFor(() => warnings.length === 2, 'the symlink warned of', 5000, 5)
  t.equal(warnings[1], `${join(dir, 'link')} is not used as a network namespace: it is a symbolic link`)
  t.same(events, [], 'no namespace came of it')
  t.same(w.namespaces().map((n) => n.name), ['host'])
})

t.test('close() closes every descriptor', { skip: needsRoot }, async (t) => {
  const { w, events } = startWatch(t, { dirs: ['/run/netns'] })
  await w.start()
  const ns = makeNetns(t)
  await until(events, 'added', ns.name)
  const { identity } = (find(events, 'added', ns.name) as Extract<NetnsEvent, { kind: 'added' }>).namespace
  t.ok(fdHeld(identity))
  w.close()
  t.notOk(fdHeld(identity))
  t.same(w.dirs().map((d) => d.state.kind), ['closed'])
})
