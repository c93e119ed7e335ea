import t from 'tap'
import { CLI, ROOT, lines, makeNetns, needsRoot, waitFor } from '../helpers/netns.js'

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
