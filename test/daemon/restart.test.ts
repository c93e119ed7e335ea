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

t.test('at start, pins of an earlier config that no entry and no link uses are removed', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  const pass = w.object('xdp_pass')
  const drop = w.object('xdp_drop')
  ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'wa')
  ns.ip('link', 'add', 'da', 'type', 'veth', 'peer', 'name', 'wd')
  const both = `settle: 10ms\nbpffs: ${w.bpffs}\nattach:\n  - interfaces: ["v*"]\n    object: ${pass}\n    mode: generic\n  - interfaces: ["d*"]\n    object: ${drop}\n    mode: generic\n`
  const first = await startDaemon(ns, w.config(both))
  first.child.kill('SIGKILL')
  await first.exited
  const { readdirSync } = await import('node:fs')
  // a fresh bpffs also shows the kernel's own maps.debug and progs.debug
  const pins = () => readdirSync(w.bpffs).filter((d) => /^[0-9a-f]{16}-/.test(d)).map((d) => d.slice(17)).sort()
  t.same(pins(), ['xdp_drop', 'xdp_pass'], 'the first daemon pinned both')
  // the next config names only xdp_pass: xdp_drop, still on `da` (renamed while no daemon ran), is ours and no
  // longer wanted there, so it is detached, and then nothing uses its pin
  ns.ip('link', 'set', 'da', 'name', 'keep0')
  const second = await startDaemon(ns, w.config(`settle: 10ms\nbpffs: ${w.bpffs}\nattach:\n  - interfaces: ["v*"]\n    object: ${pass}\n    mode: generic\n`))
  t.teardown(() => second.stop('SIGKILL'))
  t.equal(xdpOf(ns, 'keep0'), null, 'our old program detached from the link no entry matches')
  t.same(pins(), ['xdp_pass'], 'the unused pin is gone')
  t.ok(second.logs().some((l) => /removed 1 unused pins/.test(String(l.msg))))
})
