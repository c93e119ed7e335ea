import t from 'tap'
import { makeNetns, needsRoot } from '../helpers/netns.js'
import { actions, startDaemon, workdir, xdpOf } from '../helpers/daemon.js'

t.test('kill -9 and restart: the pinned programs are adopted, every program id stays, nothing is sent', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  const pass = w.object('xdp_pass')
  const drop = w.object('xdp_drop')
  for (const n of ['va', 'vb', 'vc', 'da', 'db']) ns.ip('link', 'add', n, 'type', 'veth', 'peer', 'name', `p${n}`)
  const cfg = w.config(`settle: 10ms
bpffs: ${w.bpffs}
attach:
  - interfaces: ["v*"]
    object: ${pass}
    mode: generic
  - interfaces: ["d*"]
    object: ${drop}
    mode: generic
`)
  const first = await startDaemon(ns, cfg)
  const ids = Object.fromEntries(['va', 'vb', 'vc', 'da', 'db'].map((n) => [n, xdpOf(ns, n)]))
  t.ok(Object.values(ids).every((x) => x !== null), 'all attached by the first daemon')
  t.not(ids.va!.id, ids.da!.id)
  first.child.kill('SIGKILL')
  await first.exited

  const second = await startDaemon(ns, cfg)
  t.teardown(() => second.stop('SIGKILL'))
  t.same(Object.fromEntries(['va', 'vb', 'vc', 'da', 'db'].map((n) => [n, xdpOf(ns, n)])), ids, 'same program id on every link')
  t.same(actions(second).filter((a) => a.action !== 'reload'), [], 'no attach, replace or detach')
  t.ok(second.logs().some((l) => /reusing pinned program xdp_pass/.test(String(l.msg))), 'the pin was reused')
  t.match(second.logs().find((l) => /^started:/.test(String(l.msg))), { attached: 5, conflicts: 0, errors: 0 })
})

t.test('restarted with a changed object: the program pinned by the earlier run is replaced atomically', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  const obj = w.object('xdp_pass')
  ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'wa')
  const cfg = w.config(`settle: 10ms\nbpffs: ${w.bpffs}\nattach:\n  - interfaces: ["va"]\n    object: ${obj}\n    mode: generic\n`)
  const first = await startDaemon(ns, cfg)
  const old = xdpOf(ns, 'va')!.id
  first.child.kill('SIGKILL')
  await first.exited
  w.object('xdp_drop', 'xdp_pass.o') // other bytes at the same path while no daemon runs
  const second = await startDaemon(ns, cfg)
  t.teardown(() => second.stop('SIGKILL'))
  const now = xdpOf(ns, 'va')!.id
  t.not(now, old)
  t.match(actions(second, 'replace'), [{ ifname: 'va', oldProgId: old, progId: now }], 'an atomic replace, not detach + attach')
})
