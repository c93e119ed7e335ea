import t from 'tap'
import { makeNetns, needsRoot, waitFor } from '../helpers/netns.js'
import { spawnDaemon, startDaemon, workdir, xdpOf } from '../helpers/daemon.js'
import { listen } from '../helpers/notify.js'
import { insecurePathsWarning } from '../../src/commands/run.js'

t.test('sd_notify: READY only after the first full reconcile, RELOADING/READY around a reload, STOPPING at exit, WATCHDOG', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  const sink = listen(t)
  for (const n of ['va', 'vb', 'vc']) ns.ip('link', 'add', n, 'type', 'veth', 'peer', 'name', `p${n}`)
  const cfg = w.config(`settle: 10ms\nbpffs: ${w.bpffs}\nattach:\n  - interfaces: ["v*"]\n    object: ${w.object('xdp_pass')}\n    mode: generic\n`)
  // WATCHDOG_USEC=400ms: pings every 200 ms
  const d = await startDaemon(ns, cfg, [], { NOTIFY_SOCKET: sink.address, WATCHDOG_USEC: '400000' })
  t.teardown(() => d.stop('SIGKILL'))
  await waitFor(() => sink.messages.some((m) => m.includes('READY=1')), 'READY=1')
  const ready = sink.messages.find((m) => m.includes('READY=1'))!
  t.match(ready, /STATUS=\d+ links, 3 managed, 3 attached, 0 pending/, 'READY comes with the first full reconcile done')
  t.notOk(sink.messages.slice(0, sink.messages.indexOf(ready)).some((m) => m.includes('READY=1')), 'no earlier READY')
  for (const n of ['va', 'vb', 'vc']) t.ok(xdpOf(ns, n), `${n} attached by then`)

  await waitFor(() => sink.messages.filter((m) => m.trim() === 'WATCHDOG=1').length >= 2, 'watchdog pings')
  t.pass('WATCHDOG=1 pings at half of WATCHDOG_USEC')

  const mark = sink.messages.length
  d.child.kill('SIGHUP')
  await waitFor(() => sink.messages.slice(mark).some((m) => m.includes('READY=1')), 'READY after the reload')
  const around = sink.messages.slice(mark).filter((m) => m.trim() !== 'WATCHDOG=1')
  const reloading = around.findIndex((m) => m.includes('RELOADING=1'))
  t.ok(reloading >= 0, 'RELOADING=1 sent')
  t.match(around[reloading], /MONOTONIC_USEC=\d+/, 'with MONOTONIC_USEC')
  t.ok(around.findIndex((m) => m.includes('READY=1')) > reloading, 'READY=1 after RELOADING=1')

  ns.ip('link', 'add', 'vd', 'type', 'veth', 'peer', 'name', 'pvd')
  await waitFor(() => sink.messages.some((m) => /^STATUS=.*4 attached/m.test(m)), 'STATUS kept current')
  t.pass('STATUS= follows a new link being attached')

  t.equal(await d.stop('SIGTERM'), 0)
  t.ok(sink.messages.some((m) => m.includes('STOPPING=1')), 'STOPPING=1 at exit')
})

t.test('sd_notify STATUS= during a burst of deletions: at most one per 100 ms, the last one current', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  const sink = listen(t)
  const N = 150
  const batch = (line: (i: number) => string) => ns.exec('ip', ['-batch', '-'], { input: Array.from({ length: N }, (_, i) => line(i)).join('\n') + '\n' })
  batch((i) => `link add b${i} type veth peer name pb${i}`)
  const cfg = w.config(`settle: 10ms\nbpffs: ${w.bpffs}\nattach:\n  - interfaces: ["*b*"]\n    object: ${w.object('xdp_pass')}\n    mode: generic\n`)
  const d = await startDaemon(ns, cfg, [], { NOTIFY_SOCKET: sink.address })
  t.teardown(() => d.stop('SIGKILL'))
  await waitFor(() => sink.messages.some((m) => m.includes('READY=1')), 'READY=1')
  t.match(sink.messages.find((m) => m.includes('READY=1')), new RegExp(`STATUS=${2 * N + 1} links, ${2 * N} managed, ${2 * N} attached`))
  const mark = sink.messages.length
  const t0 = performance.now()
  // Deleting one end of a pair deletes both: 2N RTM_DELLINK, each of which leaves the reconciler idle.
  batch((i) => `link del b${i}`)
  await waitFor(() => sink.messages.slice(mark).some((m) => /STATUS=1 links, 0 managed, 0 attached/.test(m)), 'STATUS= with every pair gone')
  const ms = performance.now() - t0
  const statuses = sink.messages.slice(mark).filter((m) => m.includes('STATUS='))
  // Sent on every change, it would be one per deleted link (the link count changes every time).
  t.ok(statuses.length <= Math.ceil(ms / 100) + 1, `${statuses.length} STATUS= for ${2 * N} links deleted, over ${ms.toFixed(0)} ms`)
  t.equal(await d.stop('SIGTERM'), 0)
})

t.test('SIGTERM during start-up: exit 0 at once, every attach done is logged, nothing announced, no error', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  const sink = listen(t)
  const N = 600
  ns.exec('ip', ['-batch', '-'], { input: Array.from({ length: N }, (_, i) => `link add s${i} type veth peer name ps${i}`).join('\n') + '\n' })
  const cfg = w.config(`settle: 10ms\nbpffs: ${w.bpffs}\nattach:\n  - interfaces: ["*s*"]\n    object: ${w.object('xdp_pass')}\n    mode: generic\n`)
  const d = spawnDaemon(ns, cfg, [], { NOTIFY_SOCKET: sink.address, WATCHDOG_USEC: '400000' })
  t.teardown(() => d.stop('SIGKILL'))
  // The program is loaded; the dump of 1,201 links and the first reconcile are still to come.
  await d.waitLog((r) => r.msg === 'programs ready', 'the program loaded')
  d.child.kill('SIGTERM')
  const t0 = performance.now()
  const code = await Promise.race([d.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10000))])
  t.equal(code, 0, 'exit status 0')
  t.ok(performance.now() - t0 < 1500, `exited ${(performance.now() - t0).toFixed(0)} ms after SIGTERM, without the exit grace`)
  const logs = d.logs() as { msg: string; action?: string }[]
  const stopping = logs.findIndex((r) => r.msg === 'SIGTERM: stopping')
  t.ok(stopping >= 0, 'the stop is logged')
  t.notOk(logs.slice(stopping).some((r) => r.msg.startsWith('started:')), 'no started: line once stopping')
  t.same(logs.filter((r) => r.action === 'error'), [], 'requests cut off by the stop are not errors')
  t.notOk(logs.some((r) => /exiting anyway/.test(r.msg)), 'nothing held the stopped daemon')
  const attachedNow = ns.ipJson<{ xdp?: unknown }[]>('-d', 'link', 'show').filter((l) => l.xdp).length
  t.equal(logs.filter((r) => r.action === 'attach').length, attachedNow, `one attach line per link the kernel shows attached (${attachedNow})`)
  const stopAt = sink.messages.findIndex((m) => m.includes('STOPPING=1'))
  t.notOk(sink.messages.some((m) => m.includes('READY=1')), 'no READY=1')
  t.notOk(sink.messages.slice(stopAt).some((m) => m.includes('WATCHDOG=1')), 'no watchdog ping after STOPPING=1')
})

t.test('what --insecure-paths leaves unchecked, in one line', async (t) => {
  const entry = (object: string) => ({ object })
  const table: [entries: { object: string }[], objects: string][] = [
    [[], 'no objects'],
    [[entry('/opt/a.o')], 'the object /opt/a.o'],
    [[entry('/opt/a.o'), entry('/opt/b.o'), entry('/opt/a.o')], 'the objects /opt/a.o, /opt/b.o'],
  ]
  for (const [entries, objects] of table) {
    const c = { path: '/home/dev/c.yaml', controlSocket: '/tmp/dev/x.sock', bpffs: '/sys/fs/bpf/dev', entries } as Parameters<typeof insecurePathsWarning>[0]
    t.equal(
      insecurePathsWarning(c),
      `--insecure-paths: not checked who owns and may write the config file /home/dev/c.yaml, ${objects}, the control socket's directory /tmp/dev and the pin directory /sys/fs/bpf/dev with its pins, nor the directories and symlinks on their way (development only)`,
    )
  }
})

t.test('--insecure-paths: one warning at start and one per accepted reload; none without it', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  const object = w.object('xdp_pass')
  const cfg = w.config(`bpffs: ${w.bpffs}\nattach:\n  - interfaces: ["v*"]\n    object: ${object}\n    mode: generic\n`)
  const warnings = (d: Awaited<ReturnType<typeof startDaemon>>) => d.logs().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('--insecure-paths'))

  const plain = await startDaemon(ns, cfg)
  t.equal(await plain.stop('SIGTERM'), 0)
  t.same(warnings(plain), [], 'nothing without the flag')

  const d = await startDaemon(ns, cfg, ['--insecure-paths'])
  t.teardown(() => d.stop('SIGKILL'))
  t.match(warnings(d), [
    {
      level: 40,
      config: cfg,
      objects: [object],
      controlSocketDir: w.dir,
      bpffs: w.bpffs,
      msg: new RegExp(`the config file ${cfg}, the object ${object}, the control socket's directory ${w.dir} and the pin directory ${w.bpffs} with its pins,`),
    },
  ])
  d.child.kill('SIGHUP')
  await d.waitLog((l) => typeof l.msg === 'string' && l.msg.startsWith('reloaded'), 'the reload')
  t.equal(warnings(d).length, 2, 'again after the reload')
})
