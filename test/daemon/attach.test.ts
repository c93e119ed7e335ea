import t from 'tap'
import { makeNetns, needsRoot, waitFor } from '../helpers/netns.js'
import { actions, startDaemon, workdir, xdpOf } from '../helpers/daemon.js'

const config = (obj: string, bpffs: string, extra = '') => `settle: 20ms
max-settle: 200ms
bpffs: ${bpffs}
attach:
  - interfaces: ["v*", "long-alt-*"]
    exclude: ["vx*"]
    object: ${obj}
    mode: generic
${extra}`

t.test('attach on create (before up), nothing elsewhere; rename in and out; delete and re-create; alt names', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  const cfg = w.config(config(w.object('xdp_pass'), w.bpffs))
  ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'wa')
  const d = await startDaemon(ns, cfg)
  t.teardown(() => d.stop('SIGKILL'))

  const pass = xdpOf(ns, 'va')
  t.equal(pass?.mode, 'generic', 'existing matching link attached at start')
  t.equal(xdpOf(ns, 'wa'), null, 'non-matching link untouched')
  const id = pass!.id

  // created down: the program must be there before it ever comes up
  ns.ip('link', 'add', 'vb', 'type', 'veth', 'peer', 'name', 'vxb')
  await waitFor(() => xdpOf(ns, 'vb') !== null, 'vb attached')
  t.same(xdpOf(ns, 'vb'), { mode: 'generic', id }, 'new link attached, same program')
  t.equal(ns.ipJson<{ flags: string[] }[]>('link', 'show', 'vb')[0]!.flags.includes('UP'), false, 'while still down')
  t.equal(xdpOf(ns, 'vxb'), null, 'excluded link untouched')

  // rename out of the pattern: our program goes; into it: it comes
  ns.ip('link', 'set', 'vb', 'name', 'wb')
  await waitFor(() => xdpOf(ns, 'wb') === null, 'renamed-out link detached')
  ns.ip('link', 'set', 'wa', 'name', 'vc')
  await waitFor(() => xdpOf(ns, 'vc') !== null, 'renamed-in link attached')

  // delete and re-create under the same name: a new ifindex, attached again
  const before = ns.ipJson<{ ifindex: number }[]>('link', 'show', 'va')[0]!.ifindex
  ns.ip('link', 'del', 'va')
  ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'wd')
  const after = ns.ipJson<{ ifindex: number }[]>('link', 'show', 'va')[0]!.ifindex
  t.not(after, before)
  await waitFor(() => xdpOf(ns, 'va') !== null, 're-created link attached')

  // an alternative name matches too. The kernel announces a new altname only for a link that is up
  // (net/core/rtnetlink.c rtnl_linkprop -> netdev_state_change, which notifies only with IFF_UP): bring it up first.
  ns.ip('link', 'add', 'z0', 'type', 'veth', 'peer', 'name', 'z1')
  ns.ip('link', 'set', 'z0', 'up')
  ns.ip('link', 'property', 'add', 'dev', 'z0', 'altname', 'long-alt-name-for-z0')
  await waitFor(() => xdpOf(ns, 'z0') !== null, 'link matched by its alt name attached')
  t.equal(xdpOf(ns, 'z1'), null)
  // The kernel shows the program before the daemon's log line for it is read here: wait for the line.
  await d.waitLog((l) => l.action === 'attach' && l.ifname === 'z0', 'z0 attach line')

  const attaches = actions(d, 'attach').map((l) => l.ifname)
  t.ok(attaches.includes('va') && attaches.includes('vb') && attaches.includes('vc') && attaches.includes('z0'), `attach logged: ${attaches.join(',')}`)
  const first = actions(d, 'attach')[0]!
  t.match(first, { ifindex: Number, ifname: String, action: 'attach', progId: id, mode: 'generic', entry: 'attach[0]' }, 'log line fields')
  t.equal(await d.stop(), 0, 'exit 0 after SIGTERM')
  t.same(xdpOf(ns, 'va'), { mode: 'generic', id }, 'on-exit keep (default) leaves the program attached')
})

t.test('a foreign program is never touched without replace-foreign; on-exit detach removes only ours', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  const obj = w.object('xdp_pass')
  ns.ip('link', 'add', 'fa', 'type', 'veth', 'peer', 'name', 'vo')
  // foreign: attached by someone else with iproute2, from a different object
  ns.ip('link', 'set', 'dev', 'fa', 'xdpgeneric', 'obj', w.objects.bundled('xdp_drop'), 'sec', 'xdp')
  const foreign = xdpOf(ns, 'fa')!
  const cfg = w.config(`settle: 10ms\nbpffs: ${w.bpffs}\non-exit: detach\nattach:\n  - interfaces: ["v*", "f*"]\n    object: ${obj}\n    mode: generic\n`)
  const d = await startDaemon(ns, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  t.same(xdpOf(ns, 'fa'), foreign, 'foreign program left in place')
  t.ok(xdpOf(ns, 'vo'), 'the other link is ours')
  const conflicts = actions(d, 'conflict')
  t.equal(conflicts.length, 1, 'conflict reported once')
  t.match(conflicts[0], { ifname: 'fa', progId: foreign.id })
  // more events on that link do not repeat the report
  ns.ip('link', 'set', 'fa', 'up')
  ns.ip('link', 'set', 'fa', 'down')
  await new Promise((r) => setTimeout(r, 200))
  t.equal(actions(d, 'conflict').length, 1, 'still reported once')

  t.equal(await d.stop(), 0)
  t.equal(xdpOf(ns, 'vo'), null, 'on-exit detach removed ours')
  t.same(xdpOf(ns, 'fa'), foreign, 'and left the foreign one')
})

t.test('replace-foreign: true takes the link over atomically', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  const obj = w.object('xdp_pass')
  ns.ip('link', 'add', 'fa', 'type', 'veth', 'peer', 'name', 'wo')
  ns.ip('link', 'set', 'dev', 'fa', 'xdpgeneric', 'obj', w.objects.bundled('xdp_drop'), 'sec', 'xdp')
  const foreign = xdpOf(ns, 'fa')!
  const cfg = w.config(`bpffs: ${w.bpffs}\nattach:\n  - interfaces: ["fa"]\n    object: ${obj}\n    mode: generic\n    replace-foreign: true\n`)
  const d = await startDaemon(ns, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  const now = xdpOf(ns, 'fa')!
  t.not(now.id, foreign.id)
  t.match(actions(d, 'replace')[0], { ifname: 'fa', progId: now.id, oldProgId: foreign.id })
})

t.test('mode auto: native where the driver takes it, generic where it refuses (a jumbo-MTU veth), said once', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  const cfg = w.config(`settle: 20ms\nbpffs: ${w.bpffs}\nattach:\n  - interfaces: ["a*", "j*"]\n    object: ${w.object('xdp_pass')}\n    mode: auto\n`)
  ns.ip('link', 'add', 'aa', 'type', 'veth', 'peer', 'name', 'ab')
  // veth_xdp_set (drivers/net/veth.c) refuses native XDP when the peer's MTU leaves no room: ERANGE.
  ns.ip('link', 'add', 'ja', 'mtu', '9000', 'type', 'veth', 'peer', 'name', 'jb', 'mtu', '9000')
  const d = await startDaemon(ns, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  t.equal(xdpOf(ns, 'aa')?.mode, 'native', 'a standard veth runs it natively')
  t.equal(xdpOf(ns, 'ja')?.mode, 'generic', 'the jumbo one in generic mode')
  t.equal(xdpOf(ns, 'jb')?.mode, 'generic')
  const fb = actions(d, 'fallback').filter((r) => r.ifname === 'ja')
  t.equal(fb.length, 1, 'one fallback line for ja')
  t.match(fb[0], { level: 40, code: 'ERANGE', msg: /ja: native XDP refused \(ERANGE: .*MTU is too large.*\); using generic mode/ })
  t.same(actions(d, 'error'), [], 'no error: nothing left to retry')
  t.match(d.logs().find((r) => typeof r.msg === 'string' && r.msg.startsWith('started:')), { attached: 4, errors: 0 })
  // The MTU fixed and the generic program detached by hand: native this time. (Up: the kernel announces an XDP
  // change only on a link that is up, net/core/dev.c netdev_state_change.)
  ns.ip('link', 'set', 'ja', 'up')
  ns.ip('link', 'set', 'ja', 'mtu', '1500')
  ns.ip('link', 'set', 'jb', 'mtu', '1500')
  ns.ip('link', 'set', 'dev', 'ja', 'xdpgeneric', 'off')
  await waitFor(() => xdpOf(ns, 'ja')?.mode === 'native', 'ja attached natively')
  t.equal(xdpOf(ns, 'jb')?.mode, 'generic', 'jb, not detached, keeps its program as it is')
})
