import t from 'tap'
import { cliIn } from '../helpers/daemon.js'
import { netnsDir } from '../helpers/mounts.js'
import { CLI, lines, makeNetns, needsRoot, waitFor, type Netns } from '../helpers/netns.js'

interface Ev {
  event: string
  ifindex: number
  name: string
  oldName?: string
  changed?: string[]
}

/** `xdplinkd monitor ARGS` in the namespace, once it has said it is monitoring; its output collected line by line. */
async function spawnMonitor(ns: Netns, args: string[]) {
  const child = ns.spawn('node', [CLI, 'monitor', ...args])
  const out = lines(child.stdout!)
  const err = lines(child.stderr!)
  await waitFor(() => err.some((l) => l.startsWith('monitoring')), `monitor to start (stderr: ${err.join(' | ')})`)
  return { child, out, err }
}

async function startMonitor(ns: Netns, ...extra: string[]) {
  const { child, out, err } = await spawnMonitor(ns, ['--json', ...extra])
  const events = (): Ev[] => out.map((l) => JSON.parse(l) as Ev)
  return { child, events, err }
}

t.test('monitor reports create, rename, delete and re-creation in order', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const m = await startMonitor(ns)
  ns.ip('link', 'add', 'm0', 'type', 'veth', 'peer', 'name', 'm1')
  const first = ns.ipJson<{ ifindex: number }[]>('link', 'show', 'm0')[0]!.ifindex
  ns.ip('link', 'set', 'm0', 'name', 'm0x')
  ns.ip('link', 'set', 'm0x', 'up')
  ns.ip('link', 'del', 'm0x')
  ns.ip('link', 'add', 'm0', 'type', 'veth', 'peer', 'name', 'm1')
  const second = ns.ipJson<{ ifindex: number }[]>('link', 'show', 'm0')[0]!.ifindex
  t.not(second, first, 're-created link has a new ifindex')

  const mine = () => m.events().filter((e) => e.ifindex === first || e.ifindex === second)
  await waitFor(() => mine().some((e) => e.event === 'add' && e.ifindex === second), 'the re-created link')
  const seq = mine().map((e) => `${e.event} ${e.ifindex === first ? 'first' : 'second'} ${e.name}`)
  const collapse = seq.filter((s, i) => !(s.startsWith('change') && seq[i - 1] === s))
  t.same(
    collapse.filter((s) => !s.startsWith('change')),
    ['add first m0', 'rename first m0x', 'remove first m0x', 'add second m0'],
    'add, rename, remove, add with a new index',
  )
  const up = mine().find((e) => e.event === 'change' && e.name === 'm0x' && e.changed?.includes('up'))
  t.ok(up, 'the link coming up is a change with "up" in it')
  const remove = seq.indexOf('remove first m0x')
  t.ok(seq.slice(remove + 1).every((s) => s.includes('second')), 'nothing about the first link after its removal')
  m.child.kill('SIGTERM')
  const code = await new Promise((r) => m.child.on('exit', (c) => r(c)))
  t.equal(code, 0, 'exits 0 on SIGTERM')
})

t.test('an overrun with a tiny buffer and a burst still ends equal to ip link show', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  // the kernel doubles the value and enforces a minimum of a few KiB: a handful of notifications fill it
  const m = await startMonitor(ns, '--rcvbuf', '1024')
  const pairs = 400
  const batch: string[] = []
  for (let i = 0; i < pairs; i++) batch.push(`link add o${i} type veth peer name p${i}`)
  for (let i = 0; i < pairs; i++) batch.push(`link set o${i} up`, `link set p${i} up`)
  for (let i = 0; i < pairs; i += 2) batch.push(`link set o${i} name r${i}`)
  for (let i = 0; i < pairs; i += 4) batch.push(`link del p${i + 1}`)
  ns.exec('ip', ['-batch', '-'], { input: batch.join('\n') + '\n' })
  t.ok(batch.length >= 1000, `${batch.length} link changes in one burst`)

  const table = new Map<number, string>()
  let applied = 0
  const apply = () => {
    const evs = m.events()
    for (; applied < evs.length; applied++) {
      const e = evs[applied]!
      if (e.event === 'remove') table.delete(e.ifindex)
      else table.set(e.ifindex, e.name)
    }
  }
  // the monitor's table starts from what it printed: the namespace had only lo at start
  const lo = ns.ipJson<{ ifindex: number; ifname: string }[]>('link', 'show', 'lo')[0]!
  table.set(lo.ifindex, lo.ifname)
  const expected = () =>
    ns.ipJson<{ ifindex: number; ifname: string }[]>('link', 'show').map((l) => `${l.ifindex}:${l.ifname}`).sort().join(' ')
  const ours = () => [...table].map(([i, n]) => `${i}:${n}`).sort().join(' ')
  try {
    await waitFor(() => (apply(), ours() === expected()), 'the monitor to agree with ip link show', 60000, 100)
  } catch (e) {
    const a = new Set(ours().split(' '))
    const b = new Set(expected().split(' '))
    const only = (x: Set<string>, y: Set<string>) => [...x].filter((v) => !y.has(v)).slice(0, 8).join(' ')
    throw new Error(`${(e as Error).message}: monitor only [${only(a, b)}], ip only [${only(b, a)}]; ${m.events().length} events; stderr tail: ${m.err.slice(-3).join(' | ')}`)
  }
  t.equal(ours(), expected(), 'same ifindex and name for every link')
  const resyncs = m.err.filter((l) => /resync after overrun/.test(l)).length
  t.ok(resyncs > 0, `overruns happened and were resynced (${resyncs} resyncs)`)
  m.child.kill('SIGINT')
  t.equal(await new Promise((r) => m.child.on('exit', (c) => r(c))), 0)
})

interface NsEv {
  netns: string
  event: string
  ifindex?: number
  name?: string
  id?: string
  paths?: string[]
  oldName?: string
}

t.test('monitor --all-namespaces --json: each event names its namespace; a namespace bound later is followed, and its going is said', { skip: needsRoot }, async (t) => {
  const host = makeNetns(t)
  const pod = makeNetns(t, 'xdplp')
  const later = makeNetns(t, 'xdplp')
  later.ip('link', 'add', 'x0', 'type', 'veth', 'peer', 'name', 'x1')
  const d = netnsDir(t)
  d.bind(pod.name, 'pod-1')
  const { child, out, err } = await spawnMonitor(host, ['--json', '--all-namespaces', '--netns-dir', d.dir])
  t.match(err[0], /^monitoring \d+ links in 2 network namespaces \(and those bound in \S+ from now on\); Ctrl-C to stop$/)
  const events = (): NsEv[] => out.map((l) => JSON.parse(l) as NsEv)
  const seen = (pred: (e: NsEv) => boolean, what: string) => waitFor(() => events().some(pred), what)

  pod.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0')
  await seen((e) => e.netns === 'pod-1' && e.event === 'add' && e.name === 'eth0', 'eth0 added in pod-1')
  host.ip('link', 'add', 'h0', 'type', 'bridge')
  await seen((e) => e.netns === 'host' && e.event === 'add' && e.name === 'h0', 'h0 added in host')
  t.notOk(events().some((e) => e.netns !== 'pod-1' && e.name === 'eth0'), 'the pod link is not reported as another namespace')

  const file = d.bind(later.name, 'pod-2')
  await seen((e) => e.netns === 'pod-2' && e.event === 'add' && e.name === 'x1', 'the links of the namespace bound after start')
  const ids = later.exec('readlink', ['/proc/self/ns/net']).trim()
  const added = events().find((e) => e.event === 'netns-add')
  t.same(added, { netns: 'pod-2', event: 'netns-add', id: ids, paths: [file] }, 'announced, with its id and file')
  const evs = events()
  const after = evs.slice(evs.findIndex((e) => e.event === 'netns-add') + 1)
  t.same(
    after.filter((e) => e.netns === 'pod-2').map((e) => `${e.event} ${e.name}`).sort(),
    ['add lo', 'add x0', 'add x1'],
    'its links listed as add events',
  )
  later.ip('link', 'set', 'x0', 'name', 'x0r')
  await seen((e) => e.netns === 'pod-2' && e.event === 'rename' && e.name === 'x0r', 'a rename inside it')

  d.unbindAndRemove(file)
  await seen((e) => e.event === 'netns-remove', 'its removal')
  t.same(events().find((e) => e.event === 'netns-remove'), { netns: 'pod-2', event: 'netns-remove', id: ids })
  child.kill('SIGTERM')
  t.equal(await new Promise((r) => child.on('exit', (c) => r(c))), 0, 'exits 0 on SIGTERM')
  t.same(err.filter((l) => !l.startsWith('monitoring')), [], 'nothing else on stderr')
})

t.test('monitor --netns NAME: the text names the namespace on each line; an unknown name is a usage error', { skip: needsRoot }, async (t) => {
  const host = makeNetns(t)
  const pod = makeNetns(t, 'xdplp')
  const d = netnsDir(t)
  d.bind(pod.name, 'pod-1')
  const { child, out, err } = await spawnMonitor(host, ['--netns', 'pod-1', '--netns-dir', d.dir])
  t.match(err[0], /^monitoring 1 links in 1 network namespace; Ctrl-C to stop$/)
  pod.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0')
  host.ip('link', 'add', 'h0', 'type', 'bridge')
  await waitFor(() => out.some((l) => / eth0 /.test(l)), 'eth0 added')
  t.match(out.find((l) => / eth0 /.test(l)), /^pod-1  add +\d+ eth0 \(veth, down\)$/)
  t.notOk(out.some((l) => / h0/.test(l)), 'nothing of host')
  child.kill('SIGINT')
  t.equal(await new Promise((r) => child.on('exit', (c) => r(c))), 0)

  const r = cliIn(host, 'monitor', '--netns', 'pod-9', '--netns-dir', d.dir)
  t.equal(r.status, 1)
  t.equal(r.stderr, `xdplinkd: no network namespace named "pod-9" in ${d.dir} (host is this one; --netns-dir chooses the directories)\n`)
})
