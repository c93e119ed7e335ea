/**
 * The daemon's wiring without root: Daemon.open() over a fake kernel (test/helpers/nltest.ts: the real netlink socket,
 * client, decoders and link table run over it) and a fake programs backend (no libbpf, no bpffs), with its control
 * socket, config reading, reconciler and logging all real. Start-up, a link appearing, a reload that replaces the
 * program, and a stop that detaches, judged by what the fake kernel holds and what `status` answers.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import t from 'tap'
import { controlRequest } from '../../src/control/client.js'
import type { StatusJson } from '../../src/control/protocol.js'
import { Daemon, type Summary } from '../../src/daemon.js'
import { fakePrograms } from '../helpers/fake-programs.js'
import { FakeRtnl } from '../helpers/nltest.js'
import { waitFor } from '../helpers/netns.js'

function setup(t: { teardown(fn: () => void): void }, config: (dir: string) => string) {
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-unit-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const object = join(dir, 'pass.o')
  writeFileSync(object, 'xdp_pass v1\n', { mode: 0o644 })
  const configPath = join(dir, 'config.yaml')
  writeFileSync(configPath, config(dir), { mode: 0o644 })
  const kernel = new FakeRtnl()
  const programs = fakePrograms(kernel)
  const logs: Record<string, unknown>[] = []
  const log = pino({ level: 'debug' }, { write: (s: string) => void logs.push(JSON.parse(s)) })
  const hooks: string[] = []
  const summaries: Summary[] = []
  const open = (signal?: AbortSignal) =>
    Daemon.open(
      {
        configPath,
        log,
        hooks: {
          ready: (s) => (hooks.push('ready'), summaries.push(s)),
          reloading: () => hooks.push('reloading'),
          reloaded: (ok) => hooks.push(`reloaded ${ok}`),
          stopping: () => hooks.push('stopping'),
        },
      },
      { netlink: kernel.open, programs: programs.backend },
      signal,
    )
  return { dir, object, configPath, kernel, programs, logs, hooks, summaries, open, socket: join(dir, 'control.sock') }
}

const yaml = (dir: string, extra = '') =>
  `settle: 5ms\nbpffs: ${join(dir, 'bpffs')}\ncontrol-socket: ${join(dir, 'control.sock')}\non-exit: detach\n${extra}` +
  `attach:\n  - name: web\n    interfaces: ["v*", "br*"]\n    object: pass.o\n`

/** The program the fake kernel runs on a link, and in which mode ('native' / 'generic'), or null. */
function running(kernel: FakeRtnl, name: string): { id: number; mode: string } | null {
  const x = kernel.link(kernel.indexOf(name))!.xdp
  if (!x) return null
  return { id: x.progId!, mode: x.mode }
}

t.test('start-up, a new link, a reload and a stop, through a fake kernel and without root', async (t) => {
  const s = setup(t, (dir) => yaml(dir))
  s.kernel.addVeth('va', 'vb')
  s.kernel.add({ name: 'br0', kind: 'bridge' })
  s.kernel.addVeth('other', 'x-peer')

  const d = await s.open()
  t.ok(d, 'opened')
  await d!.start()
  t.same(s.hooks, ['ready'])
  t.same(s.programs.loads, [100], 'one program loaded for the one entry')
  t.same(running(s.kernel, 'va'), { id: 100, mode: 'native' }, 'a veth runs it natively')
  t.same(running(s.kernel, 'vb'), { id: 100, mode: 'native' })
  t.same(running(s.kernel, 'br0'), { id: 100, mode: 'generic' }, 'a bridge (no ndo_bpf) in generic mode: auto fell back')
  t.equal(running(s.kernel, 'other'), null, 'a link no entry matches is left alone')
  t.match(s.summaries[0], { links: 6, managed: 3, attached: 3, pending: 0, conflicts: 0, errors: 0, programs: 1 })
  t.ok(s.logs.some((l) => l.action === 'fallback' && l.ifname === 'br0'), 'the fallback was logged')
  const setlinks = s.kernel.requests.filter((r) => r.type === 19)
  t.equal(setlinks[0]!.payload.readInt32LE(4), 1, 'the first RTM_SETLINK is the XDP_FLAGS_REPLACE probe, on loopback')

  // The control socket answers from the daemon's own state.
  const status = (await controlRequest(s.socket, { cmd: 'status' }, { timeoutMs: 2000 })) as StatusJson & { ok: true }
  t.match(
    Object.fromEntries(status.links.map((l) => [l.name, l.state])),
    { lo: 'unmanaged', va: 'attached', vb: 'attached', br0: 'attached', other: 'unmanaged' },
  )

  // A link that appears while the daemon runs is attached once it has settled.
  s.kernel.addVeth('vc', 'x-vc-peer')
  await waitFor(() => running(s.kernel, 'vc') !== null, 'vc attached', 5000)
  t.same(running(s.kernel, 'vc'), { id: 100, mode: 'native' })

  // A rebuilt object and a reload: the new program replaces the old one on every link, atomically (REPLACE with the
  // old program as the expected one), and the old pin goes.
  const tmp = join(s.dir, 'pass.o.new')
  writeFileSync(tmp, 'xdp_pass v2\n', { mode: 0o644 })
  renameSync(tmp, s.object)
  t.equal(await d!.reload('test'), true, 'the reload is accepted')
  for (const name of ['va', 'vb', 'vc']) t.same(running(s.kernel, name), { id: 101, mode: 'native' }, `${name} runs the new program`)
  t.same(running(s.kernel, 'br0'), { id: 101, mode: 'generic' })
  const replaces = s.logs.filter((l) => l.action === 'replace')
  t.equal(replaces.length, 4, 'four replaces')
  t.ok(replaces.every((l) => l.oldProgId === 100 && l.progId === 101), 'each in place of the old program (XDP_FLAGS_REPLACE, expected 100)')
  t.same([...s.programs.pinned.values()], [101], 'the old pin was pruned once no link ran it')
  t.match(s.hooks, ['ready', 'reloading', 'reloaded true'])

  // A broken config is rejected and changes nothing.
  writeFileSync(s.configPath, 'settle: nonsense\n', { mode: 0o644 })
  t.equal(await d!.reload('test'), false, 'rejected')
  t.match(d!.lastReloadError, /settle/)
  t.same(running(s.kernel, 'va'), { id: 101, mode: 'native' }, 'the program in force stays')

  // A stop with on-exit: detach takes our programs off and closes everything.
  await d!.stop()
  for (const name of ['va', 'vb', 'vc', 'br0']) t.equal(running(s.kernel, name), null, `${name}: detached on exit`)
  t.equal(s.programs.open(), 0, 'every program descriptor closed')
  await t.rejects(controlRequest(s.socket, { cmd: 'status' }, { timeoutMs: 500 }), 'the control socket is gone')
  t.match(s.hooks, ['ready', 'reloading', 'reloaded true', 'reloading', 'reloaded false', 'stopping'])
  t.equal(d!.alive(), false)
})

t.test('open(): a stop while opening closes what was made; a bad config is a StartupError (78)', async (t) => {
  const s = setup(t, (dir) => yaml(dir))
  const ac = new AbortController()
  ac.abort()
  t.equal(await s.open(ac.signal), null, 'aborted: no daemon')
  await t.rejects(controlRequest(s.socket, { cmd: 'status' }, { timeoutMs: 500 }), 'its control socket is closed again')
  t.equal(s.programs.open(), 0, 'nothing left open')

  const bad = setup(t, () => 'attach: 7\n')
  await t.rejects(bad.open(), { name: 'StartupError', exitCode: 78 })
})

t.test('open(): the links are dumped while the programs load; a stop meanwhile closes both', async (t) => {
  const RTM_GETLINK = 18
  const s = setup(t, (dir) => yaml(dir))
  s.kernel.addVeth('va', 'vb')
  const load = s.programs.backend.load
  // The load waits until the fake kernel has been asked for the links (or 2 s): one made after the load never is.
  let dumpedDuringLoad: boolean | null = null
  s.programs.backend.load = async (req) => {
    const t0 = Date.now()
    while (!s.kernel.requests.some((r) => r.type === RTM_GETLINK) && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 5))
    dumpedDuringLoad = s.kernel.requests.some((r) => r.type === RTM_GETLINK)
    return load(req)
  }
  const d = await s.open()
  t.equal(dumpedDuringLoad, true, 'RTM_GETLINK (dump) sent before the load returned')
  await d!.start()
  t.same(running(s.kernel, 'va'), { id: 100, mode: 'native' }, 'start() planned over that dump')
  t.equal(s.kernel.requests.filter((r) => r.type === RTM_GETLINK).length, 1, 'one dump, not a second one at start()')
  await d!.stop()

  // SIGTERM while the program loads: open() resolves null with the netlink sockets and the program closed.
  const s2 = setup(t, (dir) => yaml(dir))
  const ac = new AbortController()
  const load2 = s2.programs.backend.load
  s2.programs.backend.load = async (req) => {
    ac.abort()
    return load2(req)
  }
  t.equal(await s2.open(ac.signal), null, 'aborted while loading: no daemon')
  t.equal(s2.programs.open(), 0, 'the program it loaded is closed')
  t.equal(s2.kernel.openEndpoints, 0, 'and the netlink sockets, the dump cut off')
  await new Promise((r) => setTimeout(r, 1500))
  t.same(s2.logs.filter((l) => /link dump|netlink/.test(String(l.msg))), [], 'nothing retries a dump on the closed socket')
  await t.rejects(controlRequest(s2.socket, { cmd: 'status' }, { timeoutMs: 500 }), 'its control socket is closed again')
})

t.test('netns: the daemon manages its own namespace as host; an entry for other namespaces gets none of its links', async (t) => {
  const s = setup(
    t,
    (dir) =>
      `settle: 5ms\nbpffs: ${join(dir, 'bpffs')}\ncontrol-socket: ${join(dir, 'control.sock')}\non-exit: detach\n` +
      `netns-dirs: [${join(dir, 'netns')}]\n` +
      `attach:\n  - name: pods\n    interfaces: ["v*"]\n    netns: ["cni-*"]\n    object: drop.o\n` +
      `  - name: web\n    interfaces: ["v*"]\n    object: pass.o\n`,
  )
  writeFileSync(join(s.dir, 'drop.o'), 'xdp_drop\n', { mode: 0o644 })
  s.kernel.addVeth('va', 'vb')
  const d = await s.open()
  await d!.start()
  t.same(s.programs.loads, [100, 101], 'both entries loaded (pods first)')
  for (const name of ['va', 'vb']) t.same(running(s.kernel, name), { id: 101, mode: 'native' }, `${name}: web's program, not pods'`)
  await d!.stop()
})
