/**
 * Every kind of link `ip link add` / `ip tuntap` can make here, matched by one entry per XDP mode: `auto` puts the
 * program on each natively where the driver has XDP and generically where it does not (issue 11: a link without
 * native XDP stayed in error instead), `native` leaves the others in error with the kernel's refusal, `generic`
 * attaches every one generically. The kernel, through `ip -j -d link show`, says what runs where.
 *
 * Which kinds have native XDP is a table with the reason from the kernel source; the first test checks it against
 * this kernel with iproute2 alone, so that the daemon's tests below rest on what the kernel does, not on a guess.
 * Kinds the kernel lacks are found by trying to make one, and skipped by name.
 */
import { existsSync, readFileSync } from 'node:fs'
import { release } from 'node:os'
import { gunzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import type { LinkStatusJson, StatusJson } from '../../src/control/protocol.js'
import { ERRNO } from '../../src/ffi/errno.js'
import { buildObjects } from '../helpers/bpf.js'
import { actions, startDaemon, statusOf, workdir, type Running } from '../helpers/daemon.js'
import { makeNetns, needsRoot, waitFor, type Netns } from '../helpers/netns.js'

/** `ip -j -d link show`'s `xdp.mode` (include/uapi/linux/if_link.h). */
const XDP_ATTACHED_DRV = 1
const XDP_ATTACHED_SKB = 2

/** What a native attach (XDP_FLAGS_DRV_MODE) gets on a kind: the program, or the kernel's refusal. */
type Native = { attached: true } | { attached: false; errno: number; extAck: RegExp }

/** net/core/dev.c dev_xdp_attach: a driver without `ndo_bpf` has native mode refused before it is asked. */
const NO_NDO_BPF: Native = { attached: false, errno: ERRNO.EOPNOTSUPP, extAck: /Underlying driver does not support XDP in native mode/ }

interface Kind {
  name: string
  /** The link the daemon's entry matches (`k-*`); lower devices and peers are named otherwise and left alone. */
  dev: string
  /** `ip` commands, in order; the last one makes `dev` (and is the one whose failure means the kernel lacks it). */
  create: string[][]
  native: Native
  /** Why, from the kernel source. */
  why: string
  /**
   * The module of a driver that makes links in the host's namespace when it loads (its Kconfig symbol is
   * CONFIG_<MODULE>): `ip link add` would load it (net/core/rtnetlink.c rtnl_newlink -> request_module).
   */
  module?: string
}

/** A veth pair for the kinds that need a lower device: one each, since macvlan and ipvlan both take the lower's rx_handler. */
const lower = (name: string): string[] => ['link', 'add', `l-${name}`, 'type', 'veth', 'peer', 'name', `m-${name}`]

const KINDS: Kind[] = [
  {
    name: 'veth',
    dev: 'k-veth',
    create: [['link', 'add', 'k-veth', 'type', 'veth', 'peer', 'name', 'p-veth']],
    native: { attached: true },
    why: 'drivers/net/veth.c: veth_netdev_ops.ndo_bpf = veth_xdp',
  },
  {
    name: 'jumbo-MTU veth',
    dev: 'k-jumbo',
    create: [['link', 'add', 'k-jumbo', 'mtu', '9000', 'type', 'veth', 'peer', 'name', 'p-jumbo', 'mtu', '9000']],
    native: { attached: false, errno: ERRNO.ERANGE, extAck: /Peer MTU is too large to set XDP/ },
    why: 'drivers/net/veth.c veth_xdp_set: a peer MTU above a page less headroom needs a program that takes frags (xdp.frags); ours does not',
  },
  {
    name: 'bridge',
    dev: 'k-bridge',
    create: [['link', 'add', 'k-bridge', 'type', 'bridge']],
    native: NO_NDO_BPF,
    why: 'net/bridge/br_device.c: br_netdev_ops has no ndo_bpf',
  },
  {
    name: 'macvlan',
    dev: 'k-macvlan',
    create: [lower('macvlan'), ['link', 'add', 'link', 'l-macvlan', 'name', 'k-macvlan', 'type', 'macvlan']],
    native: NO_NDO_BPF,
    why: 'drivers/net/macvlan.c: macvlan_netdev_ops has no ndo_bpf',
  },
  {
    name: 'macvtap',
    dev: 'k-macvtap',
    create: [lower('macvtap'), ['link', 'add', 'link', 'l-macvtap', 'name', 'k-macvtap', 'type', 'macvtap']],
    native: NO_NDO_BPF,
    why: "drivers/net/macvtap.c: macvtap_setup -> macvlan_common_setup, so macvlan's ops, no ndo_bpf",
  },
  {
    name: 'vxlan',
    dev: 'k-vxlan',
    create: [lower('vxlan'), ['link', 'add', 'k-vxlan', 'type', 'vxlan', 'id', '42', 'dev', 'l-vxlan', 'dstport', '4789']],
    native: NO_NDO_BPF,
    why: 'drivers/net/vxlan/vxlan_core.c: vxlan_netdev_ether_ops has no ndo_bpf',
  },
  {
    name: 'tun',
    dev: 'k-tun',
    create: [['tuntap', 'add', 'dev', 'k-tun', 'mode', 'tun']],
    native: NO_NDO_BPF,
    why: 'drivers/net/tun.c: tun_netdev_ops has no ndo_bpf (only tap_netdev_ops has)',
  },
  {
    name: 'tap',
    dev: 'k-tap',
    create: [['tuntap', 'add', 'dev', 'k-tap', 'mode', 'tap']],
    native: { attached: true },
    why: 'drivers/net/tun.c: tap_netdev_ops.ndo_bpf = tun_xdp',
  },
  {
    name: 'ifb',
    dev: 'k-ifb',
    create: [['link', 'add', 'k-ifb', 'type', 'ifb']],
    native: NO_NDO_BPF,
    why: 'drivers/net/ifb.c: ifb_netdev_ops has no ndo_bpf',
    module: 'ifb', // numifbs=2
  },
  {
    name: 'dummy',
    dev: 'k-dummy',
    create: [['link', 'add', 'k-dummy', 'type', 'dummy']],
    native: NO_NDO_BPF,
    why: 'drivers/net/dummy.c: dummy_netdev_ops has no ndo_bpf',
    module: 'dummy', // numdummies=1
  },
  {
    name: 'vlan',
    dev: 'k-vlan',
    create: [lower('vlan'), ['link', 'add', 'link', 'l-vlan', 'name', 'k-vlan', 'type', 'vlan', 'id', '5']],
    native: NO_NDO_BPF,
    why: 'net/8021q/vlan_dev.c: vlan_netdev_ops has no ndo_bpf',
  },
  {
    name: 'ipvlan',
    dev: 'k-ipvlan',
    create: [lower('ipvlan'), ['link', 'add', 'link', 'l-ipvlan', 'name', 'k-ipvlan', 'type', 'ipvlan', 'mode', 'l2']],
    native: NO_NDO_BPF,
    why: 'drivers/net/ipvlan/ipvlan_main.c: ipvlan_netdev_ops has no ndo_bpf',
  },
  {
    name: 'geneve',
    dev: 'k-geneve',
    create: [['link', 'add', 'k-geneve', 'type', 'geneve', 'id', '5', 'remote', '192.0.2.1']],
    native: NO_NDO_BPF,
    why: 'drivers/net/geneve.c: geneve_netdev_ops has no ndo_bpf',
  },
  {
    name: 'bond',
    dev: 'k-bond',
    create: [['link', 'add', 'k-bond', 'type', 'bond', 'mode', 'balance-rr']],
    native: { attached: true },
    why: 'drivers/net/bonding/bond_main.c: bond_netdev_ops.ndo_bpf = bond_xdp; bond_xdp_check takes balance-rr, and with no slave none refuses',
    module: 'bonding', // max_bonds=1
  },
]

/** What `ip` says when the kernel has no such kind (rtnl_newlink), or no tun driver (`ip tuntap` opens /dev/net/tun). */
const LACKS = /Unknown device type|Operation not supported|No such device|open: No such file or directory/

/** What a failed `ns.ip` wrote to stderr (execFileSync's error carries it). */
const stderrOf = (e: unknown): string => String((e as { stderr?: unknown }).stderr ?? e).trim()

function readText(path: string): string | null {
  try {
    return path.endsWith('.gz') ? gunzipSync(readFileSync(path)).toString('utf8') : readFileSync(path, 'utf8')
  } catch {
    return null
  }
}

/**
 * Why a kind whose module makes links in the host's namespace (ifb: numifbs, dummy: numdummies, bonding: max_bonds)
 * must not be probed: trying one would load the module, and tests never add links to the host. Null when it may:
 * the driver is already in the kernel (loaded or built in), or is not built at all (then the probe fails harmlessly).
 */
function loadsIntoHost(k: Kind): string | null {
  if (!k.module) return null
  const name = k.module
  const config = `CONFIG_${name.toUpperCase()}`
  if (existsSync(`/sys/module/${name}`)) return null
  if (readText('/proc/modules')?.split('\n').some((l) => l.startsWith(`${name} `))) return null
  const kconfig = readText('/proc/config.gz') ?? readText(`/boot/config-${release()}`)
  if (kconfig === null) return `cannot tell whether making one loads the ${name} module, which would add links to the host's namespace`
  if (new RegExp(`^${config}=m$`, 'm').test(kconfig)) return `the ${name} module is not loaded, and loading it would add links to the host's namespace`
  return null
}

/** Makes every kind in `ns`; returns why each one that was not made was skipped. */
function makeKinds(ns: Netns): Map<Kind, string> {
  const skipped = new Map<Kind, string>()
  for (const k of KINDS) {
    const no = loadsIntoHost(k)
    if (no !== null) {
      skipped.set(k, no)
      continue
    }
    for (const [i, cmd] of k.create.entries()) {
      try {
        ns.ip(...cmd)
      } catch (e) {
        const stderr = stderrOf(e)
        if (i === k.create.length - 1 && LACKS.test(stderr)) {
          skipped.set(k, `this kernel lacks ${k.name} (ip ${cmd.join(' ')}: ${stderr})`)
          break
        }
        throw e
      }
    }
  }
  return skipped
}

interface IpLink {
  ifname: string
  xdp?: { mode: number; prog?: { id: number } }
  linkinfo?: { info_kind?: string }
}

/** Every link in the namespace as `ip -j -d link show` has it, by name. */
function ipLinks(ns: Netns): Map<string, IpLink> {
  return new Map(ns.ipJson<IpLink[]>('-d', 'link', 'show').map((l) => [l.ifname, l]))
}

/** `{mode, id}` of what the kernel runs on a link, null for nothing. */
function xdpOn(l: IpLink | undefined): { mode: number; id: number } | null {
  return l?.xdp?.prog ? { mode: l.xdp.mode, id: l.xdp.prog.id } : null
}

/** One subtest per kind, skipped by name with its reason where the kernel lacks it. */
async function eachKind(t: Test, skipped: Map<Kind, string>, check: (t: Test, k: Kind) => void): Promise<void> {
  for (const k of KINDS) await t.test(k.name, { skip: skipped.get(k) ?? false }, async (t) => check(t, k))
}

t.test('the table of native XDP is what this kernel does (iproute2 alone)', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const obj = buildObjects(t).bundled('xdp_pass')
  const skipped = makeKinds(ns)
  await eachKind(t, skipped, (t, k) => {
    let refused: string | null = null
    try {
      ns.ip('link', 'set', 'dev', k.dev, 'xdpdrv', 'obj', obj, 'sec', 'xdp')
    } catch (e) {
      refused = stderrOf(e)
    }
    if (k.native.attached) {
      t.equal(refused, null, `native attach taken: ${k.why}`)
      t.equal(xdpOn(ipLinks(ns).get(k.dev))?.mode, XDP_ATTACHED_DRV, 'runs natively')
      ns.ip('link', 'set', 'dev', k.dev, 'xdpdrv', 'off')
    } else {
      t.match(refused, k.native.extAck, `native attach refused: ${k.why}`)
      t.equal(xdpOn(ipLinks(ns).get(k.dev)), null, 'nothing attached')
    }
    ns.ip('link', 'set', 'dev', k.dev, 'xdpgeneric', 'obj', obj, 'sec', 'xdp')
    t.equal(xdpOn(ipLinks(ns).get(k.dev))?.mode, XDP_ATTACHED_SKB, 'generic attach taken (net/core/dev.c generic_xdp_install: any device)')
  })
})

interface Run {
  ns: Netns
  skipped: Map<Kind, string>
  d: Running
  status: StatusJson
  /** The daemon's one program. */
  progId: number
  links: Map<string, IpLink>
  started: Record<string, unknown>
}

/** Every kind made in a fresh namespace, then a daemon with one `k-*` entry in `mode`, started and asked for its status. */
async function runDaemon(t: Test, mode: 'auto' | 'native' | 'generic'): Promise<Run> {
  const ns = makeNetns(t)
  const w = workdir(t)
  const skipped = makeKinds(ns)
  const cfg = w.config(`settle: 20ms\nbpffs: ${w.bpffs}\nattach:\n  - interfaces: ["k-*"]\n    object: ${w.object('xdp_pass')}\n    mode: ${mode}\n`)
  const d = await startDaemon(ns, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  const started = d.logs().find((r) => typeof r.msg === 'string' && r.msg.startsWith('started:'))!
  // A link in error is retried with backoff, and `pending` while the retry is in flight: read a status between two.
  let status!: StatusJson
  await waitFor(() => !(status = statusOf(ns, `${w.dir}/control.sock`)).links.some((l) => l.state === 'pending'), 'a status with no link pending')
  t.equal(status.programs.length, 1, 'one program loaded')
  const progId = status.programs[0]!.id
  const links = ipLinks(ns)
  const others = [...links.values()].filter((l) => !l.ifname.startsWith('k-') && xdpOn(l) !== null).map((l) => l.ifname)
  t.same(others, [], 'links the entry does not match (peers, lower devices) carry nothing')
  return { ns, skipped, d, status, progId, links, started }
}

function linkStatus(t: Test, r: Run, k: Kind): LinkStatusJson | undefined {
  const s = r.status.links.find((l) => l.name === k.dev)
  t.ok(s, `status lists ${k.dev}`)
  t.equal(s?.kind, r.links.get(k.dev)?.linkinfo?.info_kind, "status gives the kernel's kind")
  t.equal(s?.desiredProgId, r.progId, "the entry wants the daemon's program")
  return s
}

const made = (r: Run): Kind[] => KINDS.filter((k) => !r.skipped.has(k))

t.test('mode: auto: every kind carries the program, natively where the driver has XDP, generically where not', { skip: needsRoot }, async (t) => {
  const r = await runDaemon(t, 'auto')
  t.match(r.started, { attached: made(r).length, errors: 0 }, 'started with every link attached, none in error')
  t.same(r.status.links.filter((l) => l.state === 'error').map((l) => `${l.name}: ${l.lastError}`), [], 'no link in error')
  await eachKind(t, r.skipped, (t, k) => {
    const native = k.native.attached
    t.same(xdpOn(r.links.get(k.dev)), { mode: native ? XDP_ATTACHED_DRV : XDP_ATTACHED_SKB, id: r.progId }, `${native ? 'native' : 'generic'}: ${k.why}`)
    t.match(linkStatus(t, r, k), { state: 'attached', lastError: null, attached: { progId: r.progId, mode: native ? 'native' : 'generic', owner: 'ours' } })
    const fallbacks = actions(r.d, 'fallback').filter((l) => l.ifname === k.dev)
    if (k.native.attached) t.same(fallbacks, [], 'no fallback')
    else {
      t.equal(fallbacks.length, 1, 'one fallback line')
      t.match(fallbacks[0], { mode: 'generic', msg: k.native.extAck }, "with the kernel's reason")
    }
  })
})

t.test('mode: native: where the driver has no XDP (or refuses it), the link is in error, not attached generically', { skip: needsRoot }, async (t) => {
  const r = await runDaemon(t, 'native')
  const refused = made(r).filter((k) => !k.native.attached)
  t.match(r.started, { attached: made(r).length - refused.length, errors: refused.length }, 'started with the refused links in error')
  t.same(actions(r.d, 'fallback'), [], 'never falls back')
  await eachKind(t, r.skipped, (t, k) => {
    const s = linkStatus(t, r, k)
    if (k.native.attached) {
      t.same(xdpOn(r.links.get(k.dev)), { mode: XDP_ATTACHED_DRV, id: r.progId }, `native: ${k.why}`)
      t.match(s, { state: 'attached', lastError: null, attached: { progId: r.progId, mode: 'native' } })
      return
    }
    const { errno, extAck } = k.native
    t.equal(xdpOn(r.links.get(k.dev)), null, `nothing attached: ${k.why}`)
    t.match(s, { state: 'error', attached: null, lastError: extAck }, "in error with the kernel's text")
    const errnos = actions(r.d, 'error').filter((l) => l.ifname === k.dev).map((l) => l.errno)
    t.ok(errnos.length > 0 && errnos.every((e) => e === errno), `failed with errno ${errno} (${errnos.join(',')})`)
  })
})

t.test('mode: generic: every kind carries the program generically', { skip: needsRoot }, async (t) => {
  const r = await runDaemon(t, 'generic')
  t.match(r.started, { attached: made(r).length, errors: 0 })
  t.same(actions(r.d, 'fallback'), [], 'no fallback')
  await eachKind(t, r.skipped, (t, k) => {
    t.same(xdpOn(r.links.get(k.dev)), { mode: XDP_ATTACHED_SKB, id: r.progId }, 'generic')
    t.match(linkStatus(t, r, k), { state: 'attached', lastError: null, attached: { progId: r.progId, mode: 'generic' } })
  })
})
