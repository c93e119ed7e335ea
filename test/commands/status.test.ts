import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, ROOT, makeNetns, needsRoot, waitFor } from '../helpers/netns.js'
import { cliIn, startDaemon, statusOf } from '../helpers/daemon.js'
import { tempBpffs } from '../helpers/bpf.js'

const OBJ = `${ROOT}bpf/xdp_pass.o`

interface IpLink {
  ifindex: number
  ifname: string
  xdp?: { mode: number; prog?: { id: number } }
}
const IP_MODES: Record<number, string> = { 1: 'native', 2: 'generic', 3: 'offload' }

/** A temp dir (0700, root's) for the config and the control socket, and a private bpffs. */
function setup(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-status-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bpffs = tempBpffs(t)
  const socket = join(dir, 'run', 'control.sock')
  const configPath = join(dir, 'config.yaml')
  const config = (attach: string, extra = ''): string => {
    writeFileSync(configPath, `settle: 10ms\nmax-settle: 200ms\nbpffs: ${bpffs}\ncontrol-socket: ${socket}\n${extra}attach:\n${attach}`, { mode: 0o644 })
    return configPath
  }
  return { dir, bpffs, socket, configPath, config }
}

const V_STAR = `  - name: veths\n    interfaces: ["v*"]\n    object: ${OBJ}\n    mode: generic\n`

t.test('status --json agrees with ip -j -d link show', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const s = setup(t)
  ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'wa')
  ns.ip('link', 'add', 'vb', 'type', 'veth', 'peer', 'name', 'wb')
  ns.ip('link', 'add', 'vc', 'type', 'veth', 'peer', 'name', 'wc')
  // someone else's program on a link the config names: left alone, reported as a conflict
  ns.ip('link', 'set', 'dev', 'vc', 'xdpgeneric', 'obj', OBJ, 'sec', 'xdp')
  const d = await startDaemon(ns, s.config(V_STAR))
  t.teardown(() => d.stop('SIGKILL'))

  let st = statusOf(ns, s.socket)
  await waitFor(() => {
    st = statusOf(ns, s.socket)
    return st.links.filter((l) => l.name.startsWith('v')).every((l) => l.state === 'attached' || l.state === 'conflict')
  }, 'the v* links settled')
  const ip = ns.ipJson<IpLink[]>('-d', 'link', 'show')

  t.same(
    st.links.map((l) => [l.ifindex, l.name]),
    ip.map((l) => [l.ifindex, l.ifname]),
    'every link, by ifindex and name',
  )
  t.same(
    st.links.map((l) => (l.attached ? [l.attached.progId, l.attached.mode] : null)),
    ip.map((l) => (l.xdp?.prog ? [l.xdp.prog.id, IP_MODES[l.xdp.mode]] : null)),
    'attached program ids and modes',
  )
  const by = (n: string) => st.links.find((l) => l.name === n)!
  const [prog] = st.programs
  t.equal(st.programs.length, 1)
  t.match(prog, { id: Number, tag: /^[0-9a-f]{16}$/, name: 'xdp_pass', object: OBJ, entries: ['veths'] })
  t.ok(prog!.pin.startsWith(`${s.bpffs}/`) && prog!.pin.endsWith('-xdp_pass/prog'), `pin under the private bpffs: ${prog!.pin}`)
  for (const n of ['va', 'vb']) {
    t.match(by(n), { entry: 'veths', desiredProgId: prog!.id, attached: { progId: prog!.id, mode: 'generic', owner: 'ours' }, state: 'attached', lastError: null }, n)
  }
  const foreign = ip.find((l) => l.ifname === 'vc')!.xdp!.prog!.id
  t.not(foreign, prog!.id)
  t.match(by('vc'), { entry: 'veths', desiredProgId: prog!.id, attached: { progId: foreign, owner: 'foreign' }, state: 'conflict' })
  for (const n of ['lo', 'wa', 'wb', 'wc']) t.match(by(n), { entry: null, desiredProgId: null, attached: null, state: 'unmanaged' }, n)
  t.match(st.counters, { attaches: 2, replaces: 0, detaches: 0, conflicts: 1, errors: {}, overruns: 0 })
  t.ok(st.counters.resyncs >= 1, 'the start-up dump counts as a resync')
  t.equal(st.config, s.configPath)
  t.equal(st.pid, d.child.pid, "the daemon's pid (ip netns exec execs node)")

  // the same, for people
  const r = cliIn(ns, 'status', '--socket', s.socket)
  t.equal(r.status, 0)
  t.match(r.stdout, /^xdplinkd \(pid \d+\), config /)
  t.match(r.stdout, /\nIFINDEX\s+NAME\s+ENTRY\s+DESIRED\s+ATTACHED\s+STATE\n/)
  t.match(r.stdout, new RegExp(`\\n\\d+\\s+va\\s+veths\\s+${prog!.id}\\s+generic id ${prog!.id} \\(ours\\)\\s+attached\\n`))
  t.match(r.stdout, new RegExp(`\\n\\d+\\s+vc\\s+veths\\s+${prog!.id}\\s+generic id ${foreign} \\(foreign\\)\\s+conflict\\n`))
  t.match(r.stdout, /\nattaches 2, replaces 0, detaches 0, conflicts 1, overruns 0, resyncs \d+; errors: none\n/)
})

t.test('reload through the socket: accepted, then rejected with the reason', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const s = setup(t)
  ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb')
  const d = await startDaemon(ns, s.config(V_STAR))
  t.teardown(() => d.stop('SIGKILL'))
  await waitFor(() => statusOf(ns, s.socket).links.filter((l) => l.state === 'attached').length === 2, 'va and vb attached')

  // accepted: vb is excluded now, so our program leaves it
  s.config(V_STAR.replace('interfaces: ["v*"]', 'interfaces: ["v*"]\n    exclude: ["vb"]'))
  const ok = cliIn(ns, 'reload', '--socket', s.socket)
  t.equal(ok.status, 0, ok.stderr)
  t.match(ok.stdout, /reloaded/)
  t.equal(ok.stderr, '')
  // the answer comes once the new config is applied: no waiting needed
  let st = statusOf(ns, s.socket)
  t.match(st.links.find((l) => l.name === 'vb'), { entry: null, attached: null, state: 'unmanaged' })
  t.match(st.links.find((l) => l.name === 'va'), { state: 'attached' })
  t.equal(st.counters.detaches, 1)

  // rejected: a config that does not validate; the old one stays
  writeFileSync(s.configPath, 'attach:\n  - interfaces: ["v*"]\n    object: 42\n    mode: sideways\n')
  const bad = cliIn(ns, 'reload', '--socket', s.socket)
  t.equal(bad.status, 1)
  t.equal(bad.stdout, '')
  t.match(bad.stderr, /^xdplinkd: reload rejected, the previous config stays in force:\n/)
  t.match(bad.stderr, /mode/, `the reason: ${bad.stderr}`)
  st = statusOf(ns, s.socket)
  t.match(st.links.find((l) => l.name === 'va'), { state: 'attached' })
  t.match(st.links.find((l) => l.name === 'vb'), { state: 'unmanaged' })

  // and accepted again once it is fixed
  s.config(V_STAR)
  t.equal(cliIn(ns, 'reload', '--socket', s.socket).status, 0)
  st = statusOf(ns, s.socket)
  t.match(st.links.find((l) => l.name === 'vb'), { state: 'attached' })
})

t.test('status and reload without a daemon: exit 1 and one line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-status-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const cmd of ['status', 'reload']) {
    const r = spawnSync('node', [CLI, cmd, '--socket', join(dir, 'none.sock')], { encoding: 'utf8' })
    t.equal(r.status, 1, cmd)
    t.equal(r.stdout, '')
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
    t.match(r.stderr, /^xdplinkd: cannot reach xdplinkd at .*none\.sock: no socket there \(is the daemon running\?\)\n$/)
  }
})
