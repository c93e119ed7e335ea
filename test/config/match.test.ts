import t from 'tap'
import { compileMatcher, matchLink, netnsMatches } from '../../src/config/match.js'
import { HOST_NETNS, type AttachEntry, type Config, type LinkIdentity } from '../../src/config/types.js'
import { parseConfig } from '../../src/config/validate.js'

function config(yaml: string): Config {
  const r = parseConfig(yaml, '/etc/xdplinkd/config.yaml')
  if (!r.ok) throw new Error(r.error.map(String).join('\n'))
  return r.value
}

const link = (name: string, altNames: string[] = [], kind: string | null = null): LinkIdentity => ({ name, altNames, kind })

const cfg = config(`
attach:
  - name: excluded-by-altname
    interfaces: ["eth*"]
    exclude: ["mgmt*"]
    object: a.o
  - name: veth-only
    interfaces: ["veth*", "xdpl*"]
    kinds: [veth]
    object: b.o
  - name: physical
    interfaces: ["ens[0-9]*", "enp*"]
    exclude: [ens9]
    kinds: [device]
    object: c.o
  - name: vlans
    interfaces: ["*.100"]
    kinds: [vlan, device]
    object: d.o
  - name: by-altname
    interfaces: ["uplink-*"]
    object: e.o
  - name: catch-eth
    interfaces: ["eth*"]
    object: f.o
`)

t.test('matchLink: first entry that matches by name or alt name, not excluded, of a listed kind', async (t) => {
  const table: [why: string, link: LinkIdentity, entry: string | null][] = [
    ['name glob', link('eth0'), 'excluded-by-altname'],
    ['names with dots: * crosses the dot', link('eth0.100', [], 'vlan'), 'excluded-by-altname'],
    ['an exclude on an alt name excludes; the next entry that matches decides', link('eth1', ['mgmt0']), 'catch-eth'],
    ['an exclude on the name excludes', link('mgmt0', ['eth5']), 'catch-eth'],
    ['kinds: veth matches veth', link('veth0', [], 'veth'), 'veth-only'],
    ['kinds: veth does not match a bridge', link('veth0', [], 'bridge'), null],
    ['kinds: veth does not match a kindless link', link('xdpl0'), null],
    ['device means no kind', link('ens3'), 'physical'],
    ['device does not match a kind', link('ens3', [], 'veth'), null],
    ['exclude on the name', link('ens9'), null],
    ['exclude on the name, even if an alt name is fine', link('ens9', ['enp0s9']), null],
    ['alt name matches interfaces', link('eth9x', ['enp3s0']), 'excluded-by-altname'],
    ['alt name matches when the name does not', link('wlan0', ['enp3s0']), 'physical'],
    ['alt name longer than 15 bytes', link('abc', ['uplink-to-the-core-router']), 'by-altname'],
    ['*.100 with a vlan kind', link('bond0.100', [], 'vlan'), 'vlans'],
    ['*.100 kindless', link('x.100'), 'vlans'],
    ['*.100 with another kind', link('x.100', [], 'veth'), null],
    ['*.100 does not match .1000', link('x.1000'), null],
    ['nothing matches', link('lo'), null],
    ['case matters', link('ETH0'), null],
  ]
  for (const [why, l, want] of table) t.equal(matchLink(cfg, l)?.name ?? null, want, `${why}: ${JSON.stringify(l)}`)
})

t.test('order decides: the first matching entry wins, even if a later one is more specific', async (t) => {
  const c = config(`
attach:
  - interfaces: ["*"]
    object: all.o
  - interfaces: [eth0]
    object: eth0.o
`)
  t.equal(matchLink(c, link('eth0'))?.index, 0)
  const reversed = config(`
attach:
  - interfaces: [eth0]
    object: eth0.o
  - interfaces: ["*"]
    object: all.o
`)
  t.equal(matchLink(reversed, link('eth0'))?.index, 0)
  t.equal(matchLink(reversed, link('eth1'))?.index, 1)
})

t.test('an empty attach list matches nothing', async (t) => {
  t.equal(matchLink(config('attach: []\n'), link('eth0')), null)
})

t.test('returns the entry object itself', async (t) => {
  const e = matchLink(cfg, link('veth1', [], 'veth')) as AttachEntry
  t.equal(e, cfg.entries[1])
})

t.test('netnsMatches: an entry\'s netns globs on a namespace name; host is a name like any other', async (t) => {
  t.equal(HOST_NETNS, 'host')
  const c = config(`
attach:
  - name: default
    interfaces: [eth0]
    object: a.o
  - name: pods
    interfaces: [eth0]
    object: a.o
    netns: ["cni-*", myns]
  - name: everywhere
    interfaces: [eth0]
    object: a.o
    netns: ["*"]
  - name: host-and-docker
    interfaces: [eth0]
    object: a.o
    netns: [host, "[0-9a-f]*"]
  - name: braces
    interfaces: [eth0]
    object: a.o
    netns: ["{host,cni-?}"]
`)
  const entry = (name: string): AttachEntry => c.entries.find((e) => e.name === name)!
  const table: [entry: string, netns: string, want: boolean][] = [
    ['default', 'host', true],
    ['default', 'cni-1234', false],
    ['default', 'Host', false],
    ['default', 'hostx', false],
    ['pods', 'cni-5f2a-11ee', true],
    ['pods', 'cni-', true],
    ['pods', 'myns', true],
    ['pods', 'myns2', false],
    ['pods', 'host', false],
    ['everywhere', 'host', true],
    ['everywhere', 'cni-1', true],
    ['everywhere', '.hidden', true],
    ['everywhere', 'ns with spaces', true],
    ['host-and-docker', 'host', true],
    ['host-and-docker', 'a1b2c3d4e5f6', true],
    ['host-and-docker', 'pod-1', false],
    ['braces', 'host', true],
    ['braces', 'cni-7', true],
    ['braces', 'cni-77', false],
  ]
  for (const [name, netns, want] of table) t.equal(netnsMatches(entry(name), netns), want, `${name} in ${netns}`)
})

t.test('matchLink in a namespace: the first entry for that namespace whose link conditions hold', async (t) => {
  const c = config(`
attach:
  - name: host-eth0
    interfaces: [eth0]
    object: a.o
  - name: pod-eth0
    interfaces: [eth0]
    object: b.o
    netns: ["cni-*"]
  - name: pod-any
    interfaces: ["*"]
    exclude: [lo]
    object: c.o
    netns: ["cni-*", myns]
  - name: catch-all
    interfaces: ["eth*"]
    object: d.o
    netns: ["*"]
`)
  const table: [netns: string, link: LinkIdentity, entry: string | null][] = [
    ['host', link('eth0'), 'host-eth0'],
    ['host', link('eth1'), 'catch-all'],
    ['host', link('veth0', [], 'veth'), null],
    ['cni-1', link('eth0', [], 'veth'), 'pod-eth0'],
    ['cni-1', link('eth1', [], 'veth'), 'pod-any'],
    ['cni-1', link('lo'), null],
    ['myns', link('eth0'), 'pod-any'],
    ['myns', link('lo'), null],
    ['other', link('eth0'), 'catch-all'],
    ['other', link('veth0'), null],
  ]
  for (const [netns, l, want] of table) {
    t.equal(matchLink(c, l, netns)?.name ?? null, want, `${l.name} in ${netns}`)
    t.equal(compileMatcher(c, netns)(l)?.name ?? null, want, `compileMatcher: ${l.name} in ${netns}`)
  }
  t.equal(matchLink(c, link('eth0'))?.name, 'host-eth0', 'without a namespace: the own (host)')
  t.equal(compileMatcher(c)(link('eth1'))?.name, 'catch-all', 'compileMatcher without a namespace: host')
})

t.test('a config without netns keys means what it meant: every entry is for host, and only host', async (t) => {
  for (const e of cfg.entries) t.same(e.netns, ['host'], e.name)
  t.equal(matchLink(cfg, link('eth0'), 'cni-1'), null, 'a link in another namespace gets nothing')
  t.equal(matchLink(cfg, link('eth0'), HOST_NETNS)?.name, 'excluded-by-altname')
})

t.test('compileMatcher gives the same answers, and matchLink compiles once per config', async (t) => {
  const m = compileMatcher(cfg)
  for (const l of [link('eth0'), link('ens9'), link('veth0', [], 'veth'), link('q', ['uplink-a'])]) {
    t.equal(m(l), matchLink(cfg, l), l.name)
  }
  // a new Config object (a reload) is compiled afresh
  const other = config('attach:\n  - interfaces: [eth0]\n    object: z.o\n')
  t.equal(matchLink(other, link('eth0'))?.object, '/etc/xdplinkd/z.o')
  t.equal(matchLink(cfg, link('eth0'))?.object, '/etc/xdplinkd/a.o')
})
