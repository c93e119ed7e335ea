/**
 * withNetns against the kernel: an RtnlClient whose sockets were created inside a test namespace sees that
 * namespace's links (dump and notifications) and not the host's, and the main thread is back in its own namespace
 * after every call, also one whose `fn` threw; a descriptor that is no network namespace is refused. Only reads and
 * subscriptions: nothing is sent that changes a link.
 */
import t, { type Test } from 'tap'
import { closeSync, fstatSync, openSync, readlinkSync } from 'node:fs'
import { once } from 'node:events'
import { CLONE_NEWNET, NSFS_MAGIC, fstatfsType } from '../../src/ffi/libc.js'
import { NetnsStuckError, isNsfs, nsType, ownNetnsIdentity, reopenNetns, withNetns } from '../../src/ffi/netns.js'
import { ERRNO, SyscallError } from '../../src/ffi/errno.js'
import { RtnlClient, type LinkNotification } from '../../src/rtnl/client.js'
import { makeNetns, needsRoot } from '../helpers/netns.js'

const here = (): string => readlinkSync('/proc/thread-self/ns/net')

/** A descriptor of the namespace `ip netns add` bound at /run/netns/NAME, closed on teardown. */
function openNetns(t: Test, name: string): number {
  const fd = openSync(`/run/netns/${name}`, 'r')
  t.teardown(() => closeSync(fd))
  return fd
}

t.test('kernel', { skip: needsRoot }, async (t) => {
  const before = here()

  t.test('an RtnlClient made inside a namespace dumps its links, not the host\'s', async (t) => {
    const ns = makeNetns(t)
    ns.ip('link', 'add', 'nsa', 'type', 'veth', 'peer', 'name', 'nsb')
    const fd = openNetns(t, ns.name)
    const client = new RtnlClient({ netnsFd: fd, subscribe: false })
    t.teardown(() => client.close())
    t.equal(here(), before, 'the thread is back in its own namespace after the sockets were made')
    const names = (await client.dumpLinks()).map((l) => l.name).sort()
    t.same(names, ['lo', 'nsa', 'nsb'], "the namespace's links only")
    const host = new RtnlClient({ subscribe: false })
    t.teardown(() => host.close())
    const hostNames = (await host.dumpLinks()).map((l) => l.name)
    t.notOk(hostNames.includes('nsa'), "the host's client does not see them")
    t.equal(here(), before)
  })

  t.test('a link made in the namespace after the client opened is a link event on it', async (t) => {
    const ns = makeNetns(t)
    const fd = openNetns(t, ns.name)
    const client = new RtnlClient({ netnsFd: fd })
    t.teardown(() => client.close())
    const seen: LinkNotification[] = []
    const arrived = new Promise<void>((resolve) =>
      client.on('link', (n) => {
        seen.push(n)
        if (n.type === 'new' && n.link.name === 'sub0') resolve()
      }),
    )
    ns.ip('link', 'add', 'sub0', 'type', 'veth', 'peer', 'name', 'sub1')
    await arrived
    t.ok(seen.some((n) => n.link.name === 'sub0'), 'RTM_NEWLINK of sub0 arrived')
    t.ok(seen.every((n) => ['sub0', 'sub1'].includes(n.link.name)), 'only the links made there')
  })

  t.test('fn that throws: the error is passed on and the thread switched back', async (t) => {
    const ns = makeNetns(t)
    const fd = openNetns(t, ns.name)
    let inside = ''
    t.throws(
      () =>
        withNetns(fd, () => {
          inside = here()
          throw new Error('boom')
        }),
      { message: 'boom' },
    )
    t.equal(inside, `net:[${fstatSync(fd).ino}]`, 'fn ran in the other namespace')
    t.equal(here(), before, 'back in its own namespace')
    t.equal(withNetns(fd, () => 42), 42, 'a value is returned')
    t.throws(() => withNetns(fd, () => withNetns(fd, () => 1)), { message: /do not nest/ }, 'nesting is refused')
    t.equal(here(), before, 'back after the refused nesting too')
    t.throws(() => withNetns(fd, () => Promise.resolve(1)), TypeError, 'a promise is refused')
    t.equal(here(), before)
  })

  t.test('descriptors that are no network namespace are refused, and fn does not run', async (t) => {
    const devnull = openSync('/dev/null', 'r')
    t.teardown(() => closeSync(devnull))
    const uts = openSync('/proc/self/ns/uts', 'r')
    t.teardown(() => closeSync(uts))
    let ran = false
    const run = (): void => void (ran = true)
    t.throws(() => withNetns(devnull, run), { syscall: 'setns', code: 'EINVAL' }, '/dev/null: EINVAL from setns')
    t.throws(() => withNetns(uts, run), { syscall: 'setns', code: 'EINVAL' }, 'a UTS namespace: EINVAL from setns')
    t.notOk(ran)
    t.equal(here(), before)
    t.notOk(isNsfs(devnull), '/dev/null is not on nsfs')
    t.ok(isNsfs(uts), 'a UTS namespace file is')
    t.not(nsType(uts), CLONE_NEWNET, 'but not a network namespace')
    t.throws(() => nsType(devnull), { code: 'ENOTTY' }, 'NS_GET_NSTYPE on a file that is no namespace')
  })

  t.test('nsfs identity and type of a namespace file', async (t) => {
    const ns = makeNetns(t)
    const fd = openNetns(t, ns.name)
    t.equal(fstatfsType(fd), NSFS_MAGIC)
    t.equal(nsType(fd), CLONE_NEWNET)
    const own = ownNetnsIdentity()
    const self = openSync('/proc/self/ns/net', 'r')
    t.teardown(() => closeSync(self))
    const st = fstatSync(self)
    t.same(own, { dev: st.dev, ino: st.ino }, "fstat of /proc/self/ns/net: the process's namespace")
    t.equal(`net:[${own.ino}]`, before, 'the inode is the one readlink shows')
    const again = reopenNetns(fd)
    t.teardown(() => closeSync(again))
    t.equal(readlinkSync(`/proc/self/fd/${fd}`), `/run/netns/${ns.name}`, 'the file opened through its bind mount')
    t.equal(readlinkSync(`/proc/self/fd/${again}`), `net:[${fstatSync(fd).ino}]`, 'reopened: the same namespace, through no mount')
    t.equal(fstatSync(again).dev, fstatSync(fd).dev)
    t.equal(here(), before)
  })

})

t.test('a switch back that fails: NetnsStuckError, with what fn threw, and every later call refused', async (t) => {
  // setns replaced: the first call (in) succeeds and does nothing, the second (back) fails as the kernel would.
  const calls: number[] = []
  const libc = await import('../../src/ffi/libc.js')
  const netns = await t.mockImport<typeof import('../../src/ffi/netns.js')>('../../src/ffi/netns.js', {
    '../../src/ffi/libc.js': {
      ...libc,
      setns(fd: number) {
        calls.push(fd)
        if (calls.length === 2) throw new SyscallError('setns', ERRNO.EPERM)
      },
    },
  })
  const e = t.throws(() =>
    netns.withNetns(1000, () => {
      throw new Error('boom')
    }),
  ) as InstanceType<typeof NetnsStuckError>
  t.equal(e.name, 'NetnsStuckError')
  t.match(e.message, /setns: EPERM.*stuck in another one/)
  t.match(e.fnError, { message: 'boom' }, "fn's own error is kept")
  t.equal(calls[0], 1000, 'in: the namespace given')
  let ran = false
  t.throws(() => netns.withNetns(1000, () => (ran = true)), { name: 'NetnsStuckError' }, 'a later call is refused')
  t.notOk(ran)
  t.equal(calls.length, 2, 'and does not call setns')
})
