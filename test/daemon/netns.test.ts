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
import { makeNetns, needsRoot, unshareNet, waitFor, type Netns } from '../helpers/netns.js'
import { mounts } from '../helpers/mounts.js'
import { prng } from '../helpers/prng.js'
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

/** `n` pod namespaces, each with one end `e<i>` of a veth pair whose other end `h<i>` stays in `host`, bound as pod-<i>. */
function pods(t: Test, host: Netns, bind: (ns: Netns, name: string) => string, n: number): Netns[] {
  const list = Array.from({ length: n }, () => makeNetns(t, 'xdplp'))
  host.exec('ip', ['-batch', '-'], { input: list.map((_, i) => `link add e${i} type veth peer name h${i}\n`).join('') })
  host.exec('ip', ['-batch', '-'], { input: list.map((p, i) => `link set e${i} netns ${p.name}\n`).join('') })
  list.forEach((p, i) => bind(p, `pod-${i}`))
  return list
}

t.test('kill -9 and a restart with 50 managed namespaces: every program id unchanged, nothing sent; on-exit detach leaves foreign programs', { skip: needsRoot }, async (t) => {
  const { host, w, dir, bind } = setup(t)
  const list = pods(t, host, bind, 50)
  const yaml = (onExit: string) =>
    `settle: 10ms\nbpffs: ${w.bpffs}\non-exit: ${onExit}\nnetns-dirs: [${dir}]\nattach:\n  - interfaces: ["e*"]\n    netns: ["pod-*"]\n    object: ${w.object('xdp_pass')}\n    mode: generic\n`
  const cfg = w.config(yaml('keep'))
  const first = await startDaemon(host, cfg)
  const ids = list.map((p, i) => xdpOf(p, `e${i}`)?.id)
  t.ok(ids.every((id) => id !== undefined && id === ids[0]), `every pod end runs the one program (${ids[0]})`)
  t.equal(first.logs().filter((l) => l.action === 'attach').length, 50, 'attached before started:')
  first.child.kill('SIGKILL')
  await first.exited

  const again = await startDaemon(host, cfg)
  t.teardown(() => again.stop('SIGKILL'))
  t.same(
    list.map((p, i) => xdpOf(p, `e${i}`)?.id),
    ids,
    'every program id unchanged after kill -9 and a restart',
  )
  t.equal(again.logs().filter((l) => typeof l.action === 'string').length, 0, 'the restart sent nothing')
  t.match(again.logs().find((l) => typeof l.msg === 'string' && l.msg.startsWith('started:')), { managed: 50, attached: 50 })

  // A foreign program on another link of one pod; then a stop with on-exit: detach.
  list[0]!.ip('link', 'add', 'foreign0', 'type', 'veth', 'peer', 'name', 'foreign1')
  list[0]!.ip('link', 'set', 'dev', 'foreign0', 'xdpgeneric', 'obj', w.object('xdp_drop'), 'sec', 'xdp')
  const foreign = xdpOf(list[0]!, 'foreign0')?.id
  w.config(yaml('detach'))
  again.child.kill('SIGHUP')
  await again.waitLog((l) => typeof l.msg === 'string' && l.msg.startsWith('reloaded'), 'the reload')
  t.equal(await again.stop('SIGTERM'), 0)
  t.same(list.map((p, i) => xdpOf(p, `e${i}`)), list.map(() => null), 'on-exit detach: ours detached in every namespace')
  t.equal(xdpOf(list[0]!, 'foreign0')?.id, foreign, 'the foreign program stays')
})

t.test('a link moved out of a managed namespace into an unmanaged one and back', { skip: needsRoot }, async (t) => {
  const { host, w, dir, bind } = setup(t)
  const [a] = pods(t, host, bind, 1)
  const other = makeNetns(t, 'xdplp')
  bind(other, 'other')
  const cfg = w.config(`settle: 10ms\nbpffs: ${w.bpffs}\nnetns-dirs: [${dir}]\nattach:\n  - interfaces: ["e*", "moved"]\n    netns: ["pod-*"]\n    object: ${w.object('xdp_pass')}\n    mode: generic\n`)
  const d = await startDaemon(host, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  const id = xdpOf(a!, 'e0')?.id
  t.ok(id, 'attached in pod-0')
  // Out: RTM_DELLINK in pod-0, RTM_NEWLINK in `other`, renamed on arrival. The program goes with the device.
  a!.ip('link', 'set', 'e0', 'netns', other.name)
  other.ip('link', 'set', 'e0', 'name', 'moved')
  await waitFor(() => statusOf(host, join(w.dir, 'control.sock')).links.every((l) => l.netns !== 'pod-0' || l.name !== 'e0'), 'pod-0 to forget e0')
  t.equal(xdpOf(other, 'moved')?.id, id, 'in the unmanaged namespace it keeps what it ran: nobody manages it there')
  // Back, under another name: planned afresh in pod-0 (ours already, nothing to send).
  other.ip('link', 'set', 'moved', 'netns', a!.name)
  a!.ip('link', 'set', 'moved', 'name', 'e0')
  await waitFor(() => statusOf(host, join(w.dir, 'control.sock')).links.some((l) => l.netns === 'pod-0' && l.name === 'e0' && l.state === 'attached'), 'e0 attached again in pod-0')
  t.equal(xdpOf(a!, 'e0')?.id, id)
  t.notOk(d.logs().some((l) => (l.level as number) >= 40), 'no warnings or errors')
})

t.test('namespaces with links made and deleted in random order while the daemon runs (seeded): every link ends as the config says, every namespace freed', { skip: needsRoot }, async (t) => {
  const seed = Number(process.env.XDPL_SEED ?? 12)
  t.comment(`seed ${seed} (XDPL_SEED=${seed} repeats this run)`)
  const rnd = prng(seed)
  const { host, w, dir, m } = setup(t)
  const cfg = w.config(`settle: 5ms\nbpffs: ${w.bpffs}\nnetns-dirs: [${dir}]\nattach:\n  - interfaces: ["e*"]\n    netns: ["pod-*"]\n    object: ${w.object('xdp_pass')}\n    mode: generic\n`)
  const d = await startDaemon(host, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  const fdsBefore = fds(d)
  const live = new Map<number, { ns: Netns; file: string }>()
  let next = 0
  for (let step = 0; step < 30; step++) {
    const r = rnd()
    if (r < 0.6 || live.size === 0) {
      // A pod: its namespace, bound (sometimes before, sometimes after its link arrives), and one veth end inside.
      const i = next++
      const ns = makeNetns(t, 'xdplp')
      const early = rnd() < 0.5
      const file = join(dir, `pod-${i}`)
      if (early) m.bind(file, `/run/netns/${ns.name}`)
      host.ip('link', 'add', `e${i}`, 'type', 'veth', 'peer', 'name', `h${i}`)
      host.ip('link', 'set', `e${i}`, 'netns', ns.name)
      if (!early) m.bind(file, `/run/netns/${ns.name}`)
      live.set(i, { ns, file })
    } else {
      // A pod goes: its file unbound and removed, its namespace deleted.
      const keys = [...live.keys()]
      const i = keys[Math.floor(rnd() * keys.length)]!
      const { ns, file } = live.get(i)!
      live.delete(i)
      m.unbindAndRemove(file)
      execFileSync('ip', ['netns', 'del', ns.name])
    }
    if (rnd() < 0.3) await new Promise((r) => setTimeout(r, rnd() * 30))
  }
  const wanted = [...live.keys()].sort((a, b) => a - b)
  t.comment(`${next} pods made, ${wanted.length} left: ${wanted.join(' ')}`)
  await waitFor(() => wanted.every((i) => xdpOf(live.get(i)!.ns, `e${i}`)?.mode === 'generic'), 'every live pod end attached')
  const s = statusOf(host, join(w.dir, 'control.sock'))
  t.same(
    [...new Set(s.links.map((l) => l.netns))].filter((n) => n !== 'host').sort(),
    wanted.map((i) => `pod-${i}`).sort(),
    'status lists exactly the pods that are left',
  )
  // Every pod goes; each namespace is freed (its veth end goes, and the host end with it).
  for (const [, { ns, file }] of live) {
    m.unbindAndRemove(file)
    execFileSync('ip', ['netns', 'del', ns.name])
  }
  await waitFor(() => !host.ipJson<{ ifname: string }[]>('link', 'show').some((l) => /^h\d+$/.test(l.ifname)), 'every host end to go')
  await waitFor(() => fds(d) === fdsBefore, `the daemon's descriptors back to ${fdsBefore}`)
  t.notOk(d.logs().some((l) => (l.level as number) >= 50), 'no error lines')
})

t.test('a container namespace: a process of its own (unshare --net), its /proc/PID/ns/net bound by the test as a runtime binds it', { skip: needsRoot }, async (t) => {
  const { host, w, dir, m } = setup(t)
  const cfg = w.config(`settle: 10ms\nbpffs: ${w.bpffs}\nnetns-dirs: [${dir}]\nattach:\n  - interfaces: [eth0]\n    netns: ["ctr-*"]\n    object: ${w.object('xdp_pass')}\n    mode: generic\n`)
  const d = await startDaemon(host, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  const child = await unshareNet(t)
  const pid = String(child.pid)
  // The container's view of its links, through nsenter: a tool nobody here wrote.
  const inCtr = (...args: string[]) => execFileSync('nsenter', ['-t', pid, '-n', 'ip', ...args], { encoding: 'utf8' })
  const file = join(dir, 'ctr-1')
  m.bind(file, `/proc/${pid}/ns/net`)
  await d.waitLog((l) => l.msg === 'managing network namespace ctr-1', 'the container namespace managed')
  host.ip('link', 'add', 'tmpc', 'type', 'veth', 'peer', 'name', 'hc')
  host.ip('link', 'set', 'tmpc', 'netns', pid)
  inCtr('link', 'set', 'tmpc', 'name', 'eth0')
  const xdp = () => (JSON.parse(inCtr('-j', '-d', 'link', 'show', 'eth0')) as { xdp?: { mode: number; prog?: { id: number } } }[])[0]?.xdp
  await waitFor(() => xdp()?.mode === 2, 'eth0 in the container to run the program in generic mode')
  const progId = xdp()?.prog?.id
  const line = await d.waitLog((l) => l.action === 'attach' && l.netns === 'ctr-1', 'the attach line')
  t.equal(line.progId, progId, `attached by the daemon (program ${progId}), as its log says`)
  // The process ends while its file still binds the namespace: the namespace lives on (the mount holds it), managed.
  child.kill('SIGKILL')
  await new Promise((r) => child.once('exit', r))
  m.unbindAndRemove(file)
  await d.waitLog((l) => l.msg === 'network namespace ctr-1 released: its file is gone', 'released')
  await waitFor(() => !host.ipJson<{ ifname: string }[]>('link', 'show').some((l) => l.ifname === 'hc'), 'the namespace freed: the host end goes')
  t.notOk(d.logs().some((l) => (l.level as number) >= 40), 'no warnings or errors')
})

t.test('two files binding one namespace are one namespace; when the file that named it goes, the other names it', { skip: needsRoot }, async (t) => {
  const { host, w, dir, m, bind } = setup(t)
  const [pod] = pods(t, host, bind, 1)
  const alias = join(dir, 'pod-alias')
  m.bind(alias, `/run/netns/${pod!.name}`)
  const cfg = w.config(`settle: 10ms\nbpffs: ${w.bpffs}\nnetns-dirs: [${dir}]\nattach:\n  - interfaces: ["e*"]\n    netns: ["pod-*"]\n    object: ${w.object('xdp_pass')}\n    mode: generic\n`)
  const d = await startDaemon(host, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  const socket = join(w.dir, 'control.sock')
  t.same([...new Set(statusOf(host, socket).links.map((l) => l.netns))], ['host', 'pod-0'], 'managed once, under the name of the file that bound it first')
  t.equal(d.logs().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('managing network namespace')).length, 1)
  const id = xdpOf(pod!, 'e0')?.id
  m.unbindAndRemove(join(dir, 'pod-0'))
  await d.waitLog((l) => l.msg === 'network namespace pod-0 is now named pod-alias', 'the rename')
  t.same([...new Set(statusOf(host, socket).links.map((l) => l.netns))], ['host', 'pod-alias'], 'the same namespace, its other name')
  t.equal(xdpOf(pod!, 'e0')?.id, id, 'its link untouched')
  // A change on it now is logged under its new name: its program taken off by hand, then the link brought up (the
  // kernel announces a down link's XDP change to nobody; bringing it up is an RTM_NEWLINK with its state).
  pod!.ip('link', 'set', 'e0', 'xdpgeneric', 'off')
  pod!.ip('link', 'set', 'e0', 'up')
  const line = await d.waitLog((l) => l.action === 'attach' && l.netns === 'pod-alias', 'the re-attach, under the new name')
  t.match(line.msg, /^netns pod-alias: e0: /)
})

t.test('a reload that leaves no entry for another namespace detaches ours there before letting it go', { skip: needsRoot }, async (t) => {
  const { host, w, dir, bind } = setup(t)
  const [pod] = pods(t, host, bind, 1)
  const object = w.object('xdp_pass')
  const cfg = w.config(`settle: 10ms\nbpffs: ${w.bpffs}\nnetns-dirs: [${dir}]\nattach:\n  - interfaces: ["e*"]\n    netns: ["pod-*"]\n    object: ${object}\n    mode: generic\n`)
  const d = await startDaemon(host, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  t.equal(xdpOf(pod!, 'e0')?.mode, 'generic', 'attached in pod-0')
  // Only host entries now: no directory is watched any more.
  w.config(`settle: 10ms\nbpffs: ${w.bpffs}\nnetns-dirs: [${dir}]\nattach:\n  - interfaces: ["x*"]\n    object: ${object}\n    mode: generic\n`)
  d.child.kill('SIGHUP')
  await d.waitLog((l) => l.msg === 'network namespace pod-0 released: no entry is for it', 'released after the detach')
  t.equal(xdpOf(pod!, 'e0'), null, 'ours detached in pod-0')
  t.ok(d.logs().some((l) => l.action === 'detach' && l.netns === 'pod-0'), 'the detach line names the namespace')
})
