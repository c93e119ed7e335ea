import { spawnSync } from 'node:child_process'
import t from 'tap'
import { cliIn } from '../helpers/daemon.js'
import { netnsDir } from '../helpers/mounts.js'
import { CLI, ROOT, lines, makeNetns, needsRoot, waitFor, type Netns } from '../helpers/netns.js'

interface IpLink {
  ifindex: number
  ifname: string
  linkinfo?: { info_kind?: string }
  xdp?: { mode: number; prog?: { id: number }; attached?: { mode: number; prog: { id: number } }[] }
}

t.test('links --json agrees with ip -j -d link show', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb')
  ns.ip('link', 'add', 'br0', 'type', 'bridge')
  ns.ip('link', 'set', 'va', 'master', 'br0')
  ns.ip('link', 'property', 'add', 'dev', 'vb', 'altname', 'a-rather-long-alternative-name')
  ns.ip('link', 'set', 'va', 'up')
  ns.ip('link', 'set', 'dev', 'vb', 'xdpgeneric', 'obj', `${ROOT}bpf/xdp_pass.o`, 'sec', 'xdp')

  const ours = JSON.parse(ns.exec('node', [CLI, 'links', '--json'])) as {
    ifindex: number
    name: string
    kind: string | null
    altNames: string[]
    operState: string
    up: boolean
    xdp: null | { mode: string; progId: number | null }
  }[]
  const theirs = ns.ipJson<IpLink[]>('-d', 'link', 'show')

  t.same(
    ours.map((l) => [l.ifindex, l.name, l.kind]),
    theirs.map((l) => [l.ifindex, l.ifname, l.linkinfo?.info_kind ?? null]),
    'ifindex, name and kind of every link',
  )
  const progOf = (l: IpLink): number | null => l.xdp?.prog?.id ?? null
  t.same(
    ours.map((l) => l.xdp?.progId ?? null),
    theirs.map(progOf),
    'attached XDP program ids',
  )
  const vb = ours.find((l) => l.name === 'vb')!
  t.equal(vb.xdp?.mode, 'generic')
  t.ok(vb.xdp?.progId && vb.xdp.progId > 0)
  t.same(vb.altNames, ['a-rather-long-alternative-name'])
  t.equal(ours.find((l) => l.name === 'va')?.up, true)
  t.equal(ours.find((l) => l.name === 'lo')?.kind, null)
  t.equal(ours.find((l) => l.name === 'br0')?.kind, 'bridge')
})

t.test('links prints a table for people', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  ns.ip('link', 'add', 'ta', 'type', 'veth', 'peer', 'name', 'tb')
  const out = ns.exec('node', [CLI, 'links'])
  t.match(out, /^IFINDEX\s+NAME\s+KIND\s+STATE\s+UP\s+XDP\s+ALTNAMES\n/)
  t.match(out, /\n\d+\s+ta\s+veth\s+down\s+no\s+-\s+-\n/)
  t.match(out, /\n1\s+lo\s+device\s+/)
})

t.test('a link name with terminal escapes is shown escaped, by links and monitor alike', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const name = 'a\u001b]0;PWNED\u0007' // OSC 0: set the window title, ended by BEL
  ns.ip('link', 'add', name, 'type', 'veth', 'peer', 'name', 'peer0')
  // (iproute2 6.1's -j prints such a name unescaped, which is not JSON: read the one-line form.)
  t.match(ns.ip('-o', 'link', 'show'), `: ${name}@peer0: `, 'the kernel took the name as it is')

  const out = ns.exec('node', [CLI, 'links'])
  t.notMatch(out, /[\u001b\u0007]/, 'no ESC or BEL reaches the terminal')
  t.match(out, /\n\d+\s+a\\x1b\]0;PWNED\\x07\s+veth\s/, 'the name, escaped')
  const json = JSON.parse(ns.exec('node', [CLI, 'links', '--json'])) as { name: string }[]
  t.ok(json.some((l) => l.name === name), '--json keeps the real name (JSON escapes it)')

  const m = ns.spawn('node', [CLI, 'monitor'])
  const events = lines(m.stdout!)
  const err = lines(m.stderr!)
  await waitFor(() => err.some((l) => l.startsWith('monitoring')), 'monitor to start')
  ns.ip('link', 'set', name, 'name', 'b\u001b[2J')
  await waitFor(() => events.some((l) => l.startsWith('rename')), 'the rename event')
  const rename = events.find((l) => l.startsWith('rename'))!
  t.match(rename, /^rename +\d+ b\\x1b\[2J \(was a\\x1b\]0;PWNED\\x07\)$/)
  t.notMatch(events.join('\n'), /[\u001b\u0007]/)
})

interface NsLink {
  netns: string
  ifindex: number
  name: string
}

t.test('--netns NAME and --all-namespaces: the links of namespaces bound in a directory', { skip: needsRoot }, async (t) => {
  const host = makeNetns(t)
  const pod = makeNetns(t, 'xdplp')
  host.ip('link', 'add', 'h0', 'type', 'bridge')
  pod.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0')
  const d = netnsDir(t)
  d.bind(pod.name, 'pod-1')
  const ipLinks = (ns: Netns, netns: string): NsLink[] =>
    ns.ipJson<{ ifindex: number; ifname: string }[]>('link', 'show').map((l) => ({ netns, ifindex: l.ifindex, name: l.ifname }))

  const one = cliIn(host, 'links', '--netns', 'pod-1', '--netns-dir', d.dir, '--json')
  t.equal(one.status, 0, one.stderr)
  t.equal(one.stderr, '')
  const podLinks = (JSON.parse(one.stdout) as NsLink[]).map(({ netns, ifindex, name }) => ({ netns, ifindex, name }))
  t.same(podLinks, ipLinks(pod, 'pod-1'), 'exactly the links of the namespace, each naming it')

  const text = cliIn(host, 'links', '--netns', 'pod-1', '--netns-dir', d.dir)
  t.equal(text.status, 0, text.stderr)
  t.match(text.stdout, /^NETNS +IFINDEX +NAME +KIND +STATE +UP +XDP +ALTNAMES\n/)
  t.match(text.stdout, /\npod-1 +\d+ +eth0 +veth +/)

  const all = cliIn(host, 'links', '--all-namespaces', '--netns-dir', d.dir, '--json')
  t.equal(all.status, 0, all.stderr)
  t.same(
    (JSON.parse(all.stdout) as NsLink[]).map(({ netns, ifindex, name }) => ({ netns, ifindex, name })),
    [...ipLinks(host, 'host'), ...ipLinks(pod, 'pod-1')],
    'host first, then pod-1',
  )
  const allText = cliIn(host, 'links', '--all-namespaces', '--netns-dir', d.dir)
  t.equal(allText.status, 0, allText.stderr)
  t.match(allText.stdout, /^NETNS +IFINDEX +NAME .*\nhost +1 +lo +[^\n]*\n(?:host .*\n)*pod-1 +1 +lo /)
  t.match(allText.stdout, /\nhost +\d+ +h0 +bridge /)

  // host alone: as without the option (no NETNS column), but the JSON names it.
  const plain = cliIn(host, 'links')
  const hostOnly = cliIn(host, 'links', '--netns', 'host')
  t.equal(hostOnly.status, 0, hostOnly.stderr)
  t.equal(hostOnly.stdout, plain.stdout, '--netns host prints what links prints')
  const hostJson = JSON.parse(cliIn(host, 'links', '--netns', 'host', '--json').stdout) as NsLink[]
  t.ok(hostJson.length > 0 && hostJson.every((l) => l.netns === 'host'))

  const unknown = cliIn(host, 'links', '--netns', 'pod-2', '--netns-dir', d.dir)
  t.equal(unknown.status, 1)
  t.equal(unknown.stdout, '')
  t.equal(unknown.stderr, `xdplinkd: no network namespace named "pod-2" in ${d.dir} (host is this one; --netns-dir chooses the directories)\n`)
  const defaults = cliIn(host, 'links', '--netns', 'pod-1')
  t.equal(defaults.status, 1, 'not in the default directories')
  t.match(defaults.stderr, /^xdplinkd: no network namespace named "pod-1" in \/run\/netns, \/run\/docker\/netns/)
})

t.test('--netns without CAP_SYS_ADMIN: the namespace cannot be entered, and the message says so', { skip: needsRoot }, async (t) => {
  const host = makeNetns(t)
  const pod = makeNetns(t, 'xdplp')
  const d = netnsDir(t)
  d.bind(pod.name, 'pod-1')
  const asNobody = (...args: string[]) =>
    spawnSync('ip', ['netns', 'exec', host.name, 'setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', '--', process.execPath, CLI, ...args], {
      encoding: 'utf8',
    })
  const r = asNobody('links', '--netns', 'pod-1', '--netns-dir', d.dir)
  t.equal(r.status, 1)
  t.match(r.stderr, /^xdplinkd: no network namespace named "pod-1" in \S+: \S+\/pod-1 is not used as a network namespace: entering it was refused \(setns: EPERM\)/)
  const all = asNobody('links', '--all-namespaces', '--netns-dir', d.dir, '--json')
  t.equal(all.status, 0, 'every namespace it can see: host')
  t.ok((JSON.parse(all.stdout) as NsLink[]).every((l) => l.netns === 'host'))
  t.match(all.stderr, /^xdplinkd: warning: \S+\/pod-1 is not used as a network namespace: entering it was refused/)
})
