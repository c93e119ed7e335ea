import t from 'tap'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createConnection, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, ROOT, lines, makeNetns, needsRoot, waitFor } from '../helpers/netns.js'
import { cliIn, spawnDaemon, startDaemon } from '../helpers/daemon.js'
import { NOBODY, askAs } from '../helpers/as-user.js'
import { tempBpffs } from '../helpers/bpf.js'
import { controlRequest } from '../../src/control/client.js'

t.test('the daemon: socket 0600 in a new 0700 dir, one daemon per socket, stale socket replaced, removed on exit; abusive clients do not stall it', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-ctl-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bpffs = tempBpffs(t)
  const socket = join(dir, 'run', 'xdplinkd', 'control.sock')
  const cfg = join(dir, 'config.yaml')
  writeFileSync(
    cfg,
    `settle: 10ms\nbpffs: ${bpffs}\ncontrol-socket: ${socket}\nattach:\n  - interfaces: ["v*"]\n    object: ${ROOT}bpf/xdp_pass.o\n    mode: generic\n`,
    { mode: 0o644 },
  )
  const first = await startDaemon(ns, cfg)
  t.teardown(() => first.stop('SIGKILL'))
  t.equal(statSync(socket).mode & 0o777, 0o600)
  t.equal(statSync(join(dir, 'run', 'xdplinkd')).mode & 0o777, 0o700)
  t.equal(statSync(join(dir, 'run')).mode & 0o777, 0o700)

  // A second daemon on the same socket refuses to start (EX_CANTCREAT), and the first keeps its socket.
  const second = ns.spawn('node', [CLI, 'run', '--config', cfg])
  const err = lines(second.stderr!)
  const out = lines(second.stdout!)
  const code = await new Promise<number | null>((r) => second.on('exit', (c) => r(c)))
  t.equal(code, 73, 'exit 73')
  t.match(err.join('\n') + out.join('\n'), /another process \(another xdplinkd\?\) is listening on .*control\.sock/)
  t.notOk(out.some((l) => /program|attach/.test(l)), 'it gave up before loading or attaching anything')
  t.match(await controlRequest(socket, { cmd: 'status' }, { timeoutMs: 2000 }), { ok: true, pid: first.child.pid })

  // Clients that misbehave while links come and go: silent ones, half lines, garbage, oversized lines.
  const bad: Socket[] = []
  t.teardown(() => bad.forEach((s) => s.destroy()))
  const open = (): Socket => {
    const s = createConnection(socket)
    s.on('error', () => {})
    bad.push(s)
    return s
  }
  for (let i = 0; i < 8; i++) open()
  for (let i = 0; i < 4; i++) open().write('{"cmd":"sta')
  for (let i = 0; i < 4; i++) open().write('\u0000garbage\n{]\n')
  for (let i = 0; i < 2; i++) open().write('x'.repeat(200 * 1024))
  ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'wa')
  const t0 = performance.now()
  const st = await controlRequest(socket, { cmd: 'status' }, { timeoutMs: 2000 })
  t.ok(performance.now() - t0 < 500, `status answered in ${(performance.now() - t0).toFixed(1)} ms among 18 bad clients`)
  t.match(st, { ok: true })
  await waitFor(async () => {
    const r = await controlRequest(socket, { cmd: 'status' }, { timeoutMs: 2000 })
    return 'links' in r && r.links.some((l) => l.name === 'va' && l.state === 'attached')
  }, 'va attached while the bad clients hang around')

  // Killed: the socket file stays behind, stale. The next daemon replaces it.
  first.child.kill('SIGKILL')
  await first.exited
  t.ok(existsSync(socket), 'a SIGKILLed daemon leaves its socket file')
  const third = await startDaemon(ns, cfg)
  t.teardown(() => third.stop('SIGKILL'))
  t.ok(third.logs().some((l) => typeof l.msg === 'string' && l.msg.startsWith('removed a stale control socket')), 'logged the stale socket')
  t.match(await controlRequest(socket, { cmd: 'status' }, { timeoutMs: 2000 }), { ok: true, pid: third.child.pid })
  t.equal(await third.stop('SIGTERM'), 0)
  t.notOk(existsSync(socket), 'a clean stop removes the socket')
})

t.test('the daemon: control-group members may ask, others are refused with one warning; a reload changes who may', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-ctl-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bpffs = tempBpffs(t)
  const socket = join(dir, 'run', 'control.sock')
  const cfg = join(dir, 'config.yaml')
  const config = (extra: string): void =>
    writeFileSync(cfg, `${extra}bpffs: ${bpffs}\ncontrol-socket: ${socket}\nattach: []\n`, { mode: 0o644 })
  config('control-group: 4242\n')
  const d = await startDaemon(ns, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  t.ok(d.logs().some((l) => l.msg === `control socket at ${socket} (root or members of gid 4242 may ask)`), 'who may ask is logged')
  // The daemon makes the socket 0660 and the group's, but the directory here is 0700: the kernel lets nobody else
  // connect until the operator opens the directories.
  t.equal(statSync(socket).mode & 0o777, 0o660, 'the socket is 0660')
  t.equal(statSync(socket).gid, 4242, "in the control group")
  t.same(await askAs({ uid: 65534, gid: 4242 }, socket), ['error: EACCES'], 'the directory mode comes first')
  chmodSync(dir, 0o711)
  chmodSync(join(dir, 'run'), 0o711)
  chmodSync(socket, 0o666)

  const member = { uid: 65534, gid: 65534, groups: [4242] }
  t.match(JSON.parse((await askAs(member, socket))[0]!), { ok: true, pid: d.child.pid }, 'a member asks')
  const denied = '{"ok":false,"error":"permission denied: only root or members of gid 4242 may use this socket"}'
  t.same(await askAs(NOBODY, socket, 3), [denied, denied, denied], 'nobody is refused')
  await d.waitLog((l) => typeof l.msg === 'string' && l.msg.startsWith('control socket: refused uid 65534'), 'the warning')
  t.same(
    d.logs().filter((l) => typeof l.msg === 'string' && l.msg.includes('refused')).map((l) => [l.level, l.uid, l.refused]),
    [[40, 65534, 1]],
    'one warning for three refusals',
  )

  config('')
  const reload = cliIn(ns, 'reload', '--socket', socket)
  t.equal(reload.status, 0, reload.stderr)
  await d.waitLog((l) => l.msg === 'control socket: root may ask now', 'the new policy logged')
  // Without control-group the daemon makes the socket 0600 and root's again: the kernel refuses the member first.
  t.equal(statSync(socket).mode & 0o777, 0o600, 'the socket is 0600 again')
  t.equal(statSync(socket).gid, 0, 'in group root')
  t.same(await askAs(member, socket), ['error: EACCES'], 'the file mode keeps the group out')
  // An operator who opens the mode by hand still meets the peer check.
  chmodSync(socket, 0o666)
  t.same(await askAs(member, socket), ['{"ok":false,"error":"permission denied: only root may use this socket"}'], 'the group is out after the reload')
})

t.test('the daemon refuses a control socket in a directory another user owns: exit 73, the path named', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-ctl-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bpffs = tempBpffs(t)
  mkdirSync(join(dir, 'users'))
  chownSync(join(dir, 'users'), 65534, 65534)
  const socket = join(dir, 'users', 'control.sock')
  const cfg = join(dir, 'config.yaml')
  writeFileSync(cfg, `bpffs: ${bpffs}\ncontrol-socket: ${socket}\nattach: []\n`, { mode: 0o644 })
  const d = spawnDaemon(ns, cfg)
  t.equal(await d.exited, 73)
  t.match(
    d.logs().find((l) => l.level === 60)?.msg,
    `refusing control socket ${socket}: directory ${join(dir, 'users')} is owned by uid 65534, not root (fix the owner or mode, or start xdplinkd with --insecure-paths)`,
  )
  t.notOk(existsSync(socket), 'nothing created there')
})
