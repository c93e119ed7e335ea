/**
 * Links in other network namespaces, against the kernel. A pod-like namespace gets its `eth0` as a CNI plugin gives
 * it one (a veth made in the daemon's namespace under a temporary name, one end moved into the pod and renamed
 * there, then brought up); the namespace is bound into a directory the daemon watches, as a container runtime binds
 * it. Judged by `ip -n NS -j -d link show`, packets (ping) and the program's own counters; and, when the namespace
 * goes, by the daemon's descriptors and the host end of the veth (it disappears only once the namespace is freed).
 */
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { makeNetns, needsRoot, waitFor, type Netns } from '../helpers/netns.js'
import { mounts } from '../helpers/mounts.js'
import { startDaemon, statusOf, workdir, xdpOf, type Running } from '../helpers/daemon.js'

/** Sums the per-CPU packets of a pinned xdp_stats map, read with bpftool. */
function packets(mapPin: string): number {
  const dump = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', mapPin], { encoding: 'utf8' })) as {
    formatted?: { values: { value: { packets: number } }[] }
  }[]
  let n = 0
  for (const e of dump) for (const v of e.formatted?.values ?? []) n += Number(v.value.packets)
  return n
}

/** The CNI steps: `tmp` made in `host` with its peer `hostEnd`, moved into `pod`, renamed eth0 there, both up. */
function cniAdd(host: Netns, pod: Netns, hostEnd: string, hostAddr: string, podAddr: string): void {
  const tmp = `tmp${Math.floor(Math.random() * 1e6)}`
  host.ip('link', 'add', tmp, 'type', 'veth', 'peer', 'name', hostEnd)
  host.ip('link', 'set', tmp, 'netns', pod.name)
  pod.ip('link', 'set', tmp, 'name', 'eth0')
  pod.ip('addr', 'add', `${podAddr}/24`, 'dev', 'eth0')
  pod.ip('link', 'set', 'eth0', 'up')
  host.ip('addr', 'add', `${hostAddr}/24`, 'dev', hostEnd)
  host.ip('link', 'set', hostEnd, 'up')
}

function pings(from: Netns, to: string): boolean {
  try {
    from.exec('ping', ['-c', '3', '-i', '0.2', '-W', '1', to])
    return true
  } catch {
    return false
  }
}

/** Descriptors the daemon holds. */
const fds = (d: Running): number => readdirSync(`/proc/${d.child.pid}/fd`).length

function setup(t: Test) {
  const host = makeNetns(t, 'xdplh')
  const w = workdir(t)
  const dir = join(w.dir, 'netns')
  mkdirSync(dir, { mode: 0o755 })
  const m = mounts(t)
  m.shared(dir)
  /** Binds a namespace into the watched directory as `name`, as a container runtime binds it. */
  const bind = (ns: Netns, name: string): string => {
    const file = join(dir, name)
    m.bind(file, `/run/netns/${ns.name}`)
    return file
  }
  return { host, w, dir, m, bind }
}

t.test('the CNI sequence: eth0 of a pod namespace gets xdp_drop, ping fails and the drop counter rises; detached, ping passes; the namespace gone, it is freed', { skip: needsRoot }, async (t) => {
  const { host, w, dir, m, bind } = setup(t)
  const pod = makeNetns(t, 'xdplp')
  const yaml = (netns: string) =>
    `settle: 10ms\nbpffs: ${w.bpffs}\nnetns-dirs: [${dir}]\nattach:\n  - interfaces: [eth0]\n    netns: ["${netns}"]\n    object: ${w.object('xdp_drop')}\n    mode: generic\n`
  const d = await startDaemon(host, w.config(yaml('pod-*')))
  t.teardown(() => d.stop('SIGKILL'))
  t.ok(d.logs().some((l) => l.msg === `watching ${dir} for network namespaces`), 'the directory is watched')
  const fdsBefore = fds(d)

  const file = bind(pod, 'pod-1')
  await d.waitLog((l) => l.msg === 'managing network namespace pod-1', 'the namespace managed')
  cniAdd(host, pod, 'hveth', '10.201.0.1', '10.201.0.2')
  await waitFor(() => xdpOf(pod, 'eth0')?.mode === 'generic', 'eth0 in the pod to carry the program')
  t.equal(xdpOf(host, 'hveth'), null, 'the host end does not: the entry is for pod-* only')
  const attach = await d.waitLog((l) => l.action === 'attach' && l.ifname === 'eth0', 'the attach line')
  t.equal(attach.netns, 'pod-1', 'the attach line names the namespace')

  const pinDir = readdirSync(w.bpffs).find((n) => n.endsWith('-xdp_drop'))!
  const statsPin = join(w.bpffs, pinDir, 'maps', 'xdp_stats')
  const before = packets(statsPin)
  t.notOk(pings(host, '10.201.0.2'), 'ping into the pod fails through xdp_drop')
  const after = packets(statsPin)
  t.ok(after >= before + 3, `drop counter rose from ${before} to ${after}`)

  const s = statusOf(host, join(w.dir, 'control.sock'))
  t.match(
    s.links.filter((l) => l.name === 'eth0'),
    [{ netns: 'pod-1', state: 'attached', entry: 'attach[0]' }],
    'status names the namespace of each link',
  )
  t.ok(s.links.some((l) => l.netns === 'host' && l.name === 'hveth' && l.state === 'unmanaged'), 'and the host links as host')

  // No entry for pod-* any more: ours is detached there, the namespace released.
  w.config(yaml('nothing-*'))
  d.child.kill('SIGHUP')
  await waitFor(() => xdpOf(pod, 'eth0') === null, 'the program to be detached')
  t.ok(pings(host, '10.201.0.2'), 'ping passes again')
  await d.waitLog((l) => l.msg === 'network namespace pod-1 released: no entry is for it', 'released')

  // Named again, then gone: unbound and deleted while the daemon runs.
  w.config(yaml('pod-*'))
  d.child.kill('SIGHUP')
  await waitFor(() => xdpOf(pod, 'eth0')?.mode === 'generic', 'attached again')
  m.unbindAndRemove(file)
  execFileSync('ip', ['netns', 'del', pod.name])
  await d.waitLog((l) => l.msg === 'network namespace pod-1 released: its file is gone', 'released when its file went')
  // The kernel frees the namespace only once nothing holds it; then its veth goes, and the host end with it.
  await waitFor(() => !host.ipJson<{ ifname: string }[]>('link', 'show').some((l) => l.ifname === 'hveth'), 'the host end of the veth to go')
  t.equal(fds(d), fdsBefore, 'the daemon holds no more descriptors than before the namespace came')
  t.notOk(
    d.logs().some((l) => (l.level as number) >= 50),
    'no error lines',
  )
})

t.test('the same ifindex and name in two namespaces, with different entries, are two links', { skip: needsRoot }, async (t) => {
  const { host, w, dir, bind } = setup(t)
  const a = makeNetns(t, 'xdplp')
  const b = makeNetns(t, 'xdplp')
  const cfg = w.config(
    `settle: 10ms\nbpffs: ${w.bpffs}\nnetns-dirs: [${dir}]\nattach:\n` +
      `  - interfaces: [eth0]\n    netns: [pod-a]\n    object: ${w.object('xdp_drop')}\n    mode: generic\n` +
      `  - interfaces: [eth0]\n    netns: [pod-b]\n    object: ${w.object('xdp_pass')}\n    mode: generic\n`,
  )
  cniAdd(host, a, 'ha', '10.202.0.1', '10.202.0.2')
  cniAdd(host, b, 'hb', '10.203.0.1', '10.203.0.2')
  const ia = a.ipJson<{ ifindex: number }[]>('link', 'show', 'eth0')[0]!.ifindex
  const ib = b.ipJson<{ ifindex: number }[]>('link', 'show', 'eth0')[0]!.ifindex
  bind(a, 'pod-a')
  bind(b, 'pod-b')
  const d = await startDaemon(host, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  // Present at start-up: attached before the `started:` line.
  const pa = xdpOf(a, 'eth0')
  const pb = xdpOf(b, 'eth0')
  t.ok(pa && pb && pa.id !== pb.id, `two programs: ${pa?.id} in pod-a, ${pb?.id} in pod-b`)
  const s = statusOf(host, join(w.dir, 'control.sock'))
  const eth0 = s.links.filter((l) => l.name === 'eth0').map((l) => [l.netns, l.ifindex, l.entry, l.attached?.progId])
  t.same(eth0.sort(), [
    ['pod-a', ia, 'attach[0]', pa?.id],
    ['pod-b', ib, 'attach[1]', pb?.id],
  ])
  t.notOk(pings(host, '10.202.0.2'), 'pod-a drops')
  t.ok(pings(host, '10.203.0.2'), 'pod-b passes')
})

t.test('without CAP_SYS_ADMIN a namespace cannot be entered: one warning that says what to change; the host namespace is served', { skip: needsRoot }, async (t) => {
  const { host, w, dir, bind } = setup(t)
  const pod = makeNetns(t, 'xdplp')
  bind(pod, 'pod-1')
  host.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb')
  const cfg = w.config(
    `settle: 10ms\nbpffs: ${w.bpffs}\nnetns-dirs: [${dir}]\nattach:\n  - interfaces: [eth0, va]\n    netns: [host, "pod-*"]\n    object: ${w.object('xdp_pass')}\n    mode: generic\n`,
  )
  // As the base unit runs it: root without CAP_SYS_ADMIN (CAP_BPF and CAP_NET_ADMIN are enough for the rest).
  const d = await startDaemon(host, cfg, [], {}, ['setpriv', '--bounding-set', '-sys_admin', '--inh-caps', '-sys_admin', '--'])
  t.teardown(() => d.stop('SIGKILL'))
  t.equal(xdpOf(host, 'va')?.mode, 'generic', 'the host link is served')
  const warned = d.logs().filter((l) => typeof l.msg === 'string' && l.msg.startsWith(`${join(dir, 'pod-1')} is not used as a network namespace`))
  t.equal(warned.length, 1, 'one warning')
  t.match(warned[0]?.msg, /entering it was refused \(.*EPERM.*\): xdplinkd needs CAP_SYS_ADMIN, under systemd the netns\.conf drop-in/)
  t.notOk(d.logs().some((l) => l.msg === 'managing network namespace pod-1'), 'not managed')
})
