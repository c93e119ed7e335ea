/**
 * nltest: a fake rtnetlink kernel for tests without root. After mdlayher/netlink's nltest (nltest/nltest.go), which
 * runs the real netlink.Conn over a fake Socket: here the real NetlinkSocket runs over a FakeEndpoint, so sequence
 * numbers, answer matching, request windows, dump retries and overrun handling are the daemon's own code, and every
 * answer is real encoded netlink that the real decoders read.
 *
 *   const kernel = new FakeRtnl({ programs: { 21: 501 } })      // fd 21 is program 501
 *   const [va] = kernel.addVeth('va', 'vb')
 *   const client = new RtnlClient({ open: kernel.open })
 *
 * What it models, as Linux 6.18 does it (net/core/rtnetlink.c, net/core/dev.c, net/netlink/af_netlink.c), checked
 * against captured traffic (test/fixtures/netlink/rtnl-6.18.json) and against the kernel itself
 * (test/rtnl/nltest.test.ts):
 * - RTM_GETLINK: a dump (NLM_F_MULTI parts produced as the reader reads, NLMSG_DONE, NLM_F_DUMP_INTR when links
 *   were added or removed meanwhile) and a single get (a plain RTM_NEWLINK, then the ack);
 * - RTM_SETLINK with IFLA_XDP (do_setlink, dev_change_xdp_fd, dev_xdp_attach and their errors with their
 *   extended-ack text) and IFF_UP through ifi_flags/ifi_change;
 * - acks as netlink_ack() builds them (NETLINK_CAP_ACK, NLMSGERR_ATTR_MSG/OFFS, the policy of a short attribute);
 * - RTM_NEWLINK/RTM_DELLINK notifications to subscribed connections (port id 0, sequence 0), and an overrun
 *   (ENOBUFS) on demand or when a connection's receive buffer is full.
 * Anything else a request asks for is refused with EOPNOTSUPP and listed in `unmodelled`, so a test notices.
 * Receive buffers count datagram bytes, not the kernel's skb truesize: they fill later than the kernel's.
 */
import { ERRNO } from '../../src/ffi/errno.js'
import { AttributeDecoder, AttributeEncoder, getS32, getU32, putS32, putU16, putU32 } from '../../src/netlink/attributes.js'
import {
  NETLINK_ROUTE,
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
  NLMSGERR_ATTR_POLICY,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSG_MIN_TYPE,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  RTMGRP_LINK,
  nlmsgAlign,
} from '../../src/netlink/constants.js'
import { encodeMessage, parseMessages, type NetlinkMessage } from '../../src/netlink/message.js'
import { NetlinkSocket, type NetlinkEndpoint, type NetlinkSocketOptions, type OpenNetlink } from '../../src/netlink/socket.js'
import {
  IFF_ALLMULTI,
  IFF_AUTOMEDIA,
  IFF_BROADCAST,
  IFF_DEBUG,
  IFF_DYNAMIC,
  IFF_LOOPBACK,
  IFF_LOWER_UP,
  IFF_MULTICAST,
  IFF_NOARP,
  IFF_NOTRAILERS,
  IFF_POINTOPOINT,
  IFF_PORTSEL,
  IFF_PROMISC,
  IFF_RUNNING,
  IFF_UP,
  IFINFOMSG_LEN,
  IFLA_ADDRESS,
  IFLA_ALT_IFNAME,
  IFLA_BROADCAST,
  IFLA_CARRIER,
  IFLA_EXT_MASK,
  IFLA_GROUP,
  IFLA_IFNAME,
  IFLA_INFO_KIND,
  IFLA_LINK,
  IFLA_LINKINFO,
  IFLA_LINKMODE,
  IFLA_MASTER,
  IFLA_MTU,
  IFLA_NUM_RX_QUEUES,
  IFLA_NUM_TX_QUEUES,
  IFLA_OPERSTATE,
  IFLA_PROMISCUITY,
  IFLA_PROP_LIST,
  IFLA_TXQLEN,
  IFLA_XDP,
  IFLA_XDP_ATTACHED,
  IFLA_XDP_DRV_PROG_ID,
  IFLA_XDP_EXPECTED_FD,
  IFLA_XDP_FD,
  IFLA_XDP_FLAGS,
  IFLA_XDP_HW_PROG_ID,
  IFLA_XDP_PROG_ID,
  IFLA_XDP_SKB_PROG_ID,
  IF_OPER_DOWN,
  IF_OPER_LOWERLAYERDOWN,
  IF_OPER_UNKNOWN,
  IF_OPER_UP,
  RTM_DELLINK,
  RTM_GETLINK,
  RTM_NEWLINK,
  RTM_SETLINK,
  XDP_ATTACHED_DRV,
  XDP_ATTACHED_HW,
  XDP_ATTACHED_MULTI,
  XDP_ATTACHED_NONE,
  XDP_ATTACHED_SKB,
  XDP_FLAGS_DRV_MODE,
  XDP_FLAGS_HW_MODE,
  XDP_FLAGS_MASK,
  XDP_FLAGS_MODES,
  XDP_FLAGS_REPLACE,
  XDP_FLAGS_SKB_MODE,
  XDP_FLAGS_UPDATE_IF_NOEXIST,
} from '../../src/rtnl/constants.js'
import { decodeLink, type LinkState, type OperState } from '../../src/rtnl/link.js'

/** enum bpf_xdp_mode (include/linux/netdevice.h): generic (skb), native (drv), offloaded (hw). */
export type XdpMode = 'skb' | 'drv' | 'hw'

export interface FakeLinkSpec {
  name: string
  /** IFLA_INFO_KIND; null for a device without rtnl_link_ops (lo, a physical NIC). Default 'veth'. */
  kind?: string | null
  /** An index of its own (it must be free); by default the next one, as dev_index_reserve() hands them out. */
  ifindex?: number
  /** Default false, as `ip link add` leaves a link. */
  up?: boolean
  /** Carrier while up. Default: a veth's peer is up; any other link has it. */
  carrier?: boolean
  mtu?: number
  /** 'aa:bb:...'; null for a link without one (addr_len 0). Default 02:00:00:00:hh:ll from the index. */
  address?: string | null
  altNames?: string[]
  master?: number | null
  /** Whether the driver has ndo_bpf (native XDP). Default: a veth has it (veth_xdp), others do not. */
  native?: boolean
  /** What the driver answers a native attach with when it refuses the link's setup (veth: ERANGE, "Peer MTU is too large to set XDP"). */
  nativeRefusal?: { errno: number; extAck: string } | null
  /** ifi_flags and operstate as given, for links whose flags the fake does not derive (a bridge waiting on STP). */
  flags?: number
  operState?: OperState
  /** Programs attached, by mode (program ids). */
  xdp?: Partial<Record<XdpMode, number>>
}

interface FakeLink {
  /** The namespace's own loopback (flags, type and operstate of its own). */
  loopback: boolean
  ifindex: number
  name: string
  kind: string | null
  up: boolean
  carrier: boolean | undefined
  mtu: number
  address: Buffer | null
  altNames: string[]
  master: number | null
  peer: number | null
  native: boolean
  nativeRefusal: { errno: number; extAck: string } | null
  flags: number | undefined
  operState: OperState | undefined
  xdp: Record<XdpMode, number>
}

/** A refusal, as the kernel answers it in NLMSG_ERROR (or in NLMSG_DONE for a dump). */
class KernelError extends Error {
  constructor(
    readonly errno: number,
    /** NL_SET_ERR_MSG text, when the kernel sets one. */
    readonly extAck?: string,
    /** NL_SET_BAD_ATTR: the offending attribute, from the start of the request's nlmsghdr. */
    readonly offset?: number,
    /** For NLMSGERR_ATTR_POLICY: the size of the unsigned integer the offending attribute should have been. */
    readonly policyUint?: 1 | 4,
  ) {
    super(`errno ${errno}${extAck ? `: ${extAck}` : ''}`)
  }
}

const OPER: Record<OperState, number> = { unknown: 0, notpresent: 1, down: 2, lowerlayerdown: 3, testing: 4, dormant: 5, up: 6 }
const ARPHRD_ETHER = 1
const ARPHRD_LOOPBACK = 772
const ARPHRD_NONE = 65534

// include/uapi/linux/netlink.h enum netlink_attribute_type / netlink_policy_type_attr
const NL_ATTR_TYPE_U8 = 2
const NL_ATTR_TYPE_U32 = 4
const NL_POLICY_TYPE_ATTR_TYPE = 1
const NL_POLICY_TYPE_ATTR_MIN_VALUE_U = 4
const NL_POLICY_TYPE_ATTR_MAX_VALUE_U = 5

/** ifla_policy entries with a fixed size (net/core/rtnetlink.c): a shorter attribute fails validation with ERANGE. */
const IFLA_SIZES = new Map<number, 1 | 4>([
  [IFLA_MTU, 4],
  [IFLA_LINK, 4],
  [IFLA_MASTER, 4],
  [IFLA_TXQLEN, 4],
  [IFLA_GROUP, 4],
  [IFLA_EXT_MASK, 4],
  [IFLA_PROMISCUITY, 4],
  [IFLA_NUM_TX_QUEUES, 4],
  [IFLA_NUM_RX_QUEUES, 4],
  [IFLA_OPERSTATE, 1],
  [IFLA_LINKMODE, 1],
  [IFLA_CARRIER, 1],
])
/** ifla_xdp_policy: parsed with no extack, so a short one is ERANGE without text. */
const IFLA_XDP_SIZES = new Map<number, 1 | 4>([
  [IFLA_XDP_FD, 4],
  [IFLA_XDP_EXPECTED_FD, 4],
  [IFLA_XDP_ATTACHED, 1],
  [IFLA_XDP_FLAGS, 4],
  [IFLA_XDP_PROG_ID, 4],
])
/** The ifi_flags bits __dev_change_flags() (net/core/dev.c) lets a request change. */
const IFF_USER_SETTABLE =
  IFF_UP | IFF_DEBUG | IFF_NOTRAILERS | IFF_NOARP | IFF_DYNAMIC | IFF_MULTICAST | IFF_PORTSEL | IFF_AUTOMEDIA | IFF_PROMISC | IFF_ALLMULTI
/** What RTM_SETLINK may carry here: IFLA_XDP, and IFLA_EXT_MASK, which do_setlink() ignores. */
const SETLINK_MODELLED = new Set([IFLA_XDP, IFLA_EXT_MASK])

/** A dump's datagrams are at most this big (netlink_dump() allocates up to 32 KiB, net/netlink/af_netlink.c). */
const DUMP_DATAGRAM = 32 * 1024
/** net.core.rmem_default. */
const RMEM_DEFAULT = 212992

/** One connection's side of the fake: what NetlinkSocket reads and writes. */
export class FakeEndpoint implements NetlinkEndpoint {
  readonly portId: number
  readonly groups: number
  /** NETLINK_CAP_ACK: acks of failed requests echo only the request's header. */
  readonly capAck: boolean
  readonly #kernel: FakeRtnl
  readonly #rcvbuf: number
  #queue: Buffer[] = []
  #queued = 0
  #error = 0
  #closed = false
  #onReadable: (() => void) | null = null
  #scheduled = false
  /** The dump in progress (netlink_sock cb_running): more datagrams are made as the reader reads. */
  dump: Dump | null = null

  constructor(kernel: FakeRtnl, portId: number, opts: NetlinkSocketOptions & { capAck?: boolean }) {
    this.#kernel = kernel
    this.portId = portId
    this.groups = opts.groups ?? 0
    this.capAck = opts.capAck ?? true
    // SO_RCVBUF(FORCE) doubles what it is given (socket(7)).
    this.#rcvbuf = opts.rcvbuf !== undefined ? 2 * opts.rcvbuf : RMEM_DEFAULT
  }

  get closed(): boolean {
    return this.#closed
  }

  send(datagram: Buffer): void {
    if (this.#closed) throw new Error('nltest: send on a closed endpoint')
    this.#kernel.receive(this, datagram)
  }

  recv(buf: Buffer): number {
    if (this.#closed) return -ERRNO.EBADF
    // sock_error() comes before the queue (net/core/datagram.c __skb_try_recv_datagram), and is reported once.
    if (this.#error) {
      const e = this.#error
      this.#error = 0
      return -e
    }
    const d = this.#queue.shift()
    if (!d) return -ERRNO.EAGAIN
    this.#queued -= d.length
    d.copy(buf, 0, 0, Math.min(d.length, buf.length))
    // netlink_recvmsg() runs the dump on once the queue has room again.
    if (this.dump) this.#kernel.continueDump(this)
    return d.length
  }

  watch(onReadable: () => void): void {
    this.#onReadable = onReadable
    if (this.#queue.length > 0 || this.#error) this.#wake()
  }

  receiveBufferSize(): number {
    return this.#rcvbuf
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#queue = []
    this.#queued = 0
    this.dump = null
    this.#kernel.forget(this)
  }

  /** Queues one datagram, or drops it and records ENOBUFS when it does not fit (netlink_overrun). */
  deliver(datagram: Buffer): boolean {
    if (this.#closed) return false
    if (this.#queued + datagram.length > this.#rcvbuf) {
      this.overrun()
      return false
    }
    this.#queue.push(datagram)
    this.#queued += datagram.length
    this.#wake()
    return true
  }

  /** Messages were lost: the next recv() says ENOBUFS. */
  overrun(): void {
    this.#error = ERRNO.ENOBUFS
    this.#wake()
  }

  /** Datagrams queued and not read yet. */
  get pending(): number {
    return this.#queue.length
  }

  #wake(): void {
    if (this.#scheduled || !this.#onReadable) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      if (!this.#closed) this.#onReadable?.()
    })
  }
}

interface Dump {
  seq: number
  /** Links with a higher index are still to come (for_each_netdev_dump walks by index). */
  after: number
  /** cb->prev_seq of nl_dump_check_consistent(): the generation the previous datagram was made in. */
  prevGeneration: number
  /** Datagrams made so far. */
  datagrams: number
  /** Set when the dump failed to start: NLMSG_DONE carries it. */
  error: KernelError | null
}

/** A request the fake received: its header, payload (copied) and the connection's port id. */
export interface ReceivedRequest extends NetlinkMessage {
  portId: number
}

export class FakeRtnl {
  /** Program descriptors a request may name: fd -> program id (bpf_prog_get_type_dev). Others are EBADF. */
  readonly programs: Map<number, number>
  /** Every request message received, in order. */
  readonly requests: ReceivedRequest[] = []
  /** Requests the fake does not model (they were refused with EOPNOTSUPP). */
  readonly unmodelled: string[] = []
  /** Called before each dump datagram after the first is made (n = 1, 2, ...): a test changes links mid-dump. */
  beforeDumpDatagram: ((n: number) => void) | null = null
  /** Links per dump datagram at most (besides the 32 KiB bound), to make small dumps span datagrams. */
  dumpLinksPerDatagram = Infinity

  #links = new Map<number, FakeLink>()
  #endpoints = new Set<FakeEndpoint>()
  #nextIndex = 1
  #nextPort = 0x1000
  /** net->dev_base_seq: changes when a link is listed or unlisted (list_netdevice/unlist_netdevice). */
  #generation = 1
  #losing = false

  constructor(opts: { programs?: Record<number, number> | Iterable<[number, number]> } = {}) {
    const p = opts.programs ?? []
    this.programs = new Map(Symbol.iterator in p ? (p as Iterable<[number, number]>) : Object.entries(p).map(([fd, id]) => [Number(fd), id]))
    // Every network namespace starts with its loopback, down (drivers/net/loopback.c loopback_net_init).
    this.#add({ name: 'lo', kind: null, mtu: 65536, address: '00:00:00:00:00:00', native: false }, true)
  }

  /** An OpenNetlink for RtnlClient: a real NetlinkSocket over a FakeEndpoint of this kernel. */
  readonly open: OpenNetlink = (opts) => new NetlinkSocket(this.endpoint(opts))

  /** A connection's endpoint, bound as NetlinkSocket.open binds (NETLINK_EXT_ACK and NETLINK_CAP_ACK set). */
  endpoint(opts: NetlinkSocketOptions & { portId?: number; capAck?: boolean } = {}): FakeEndpoint {
    if ((opts.protocol ?? NETLINK_ROUTE) !== NETLINK_ROUTE) throw new Error(`nltest: protocol ${opts.protocol} is not NETLINK_ROUTE`)
    const ep = new FakeEndpoint(this, opts.portId ?? this.#nextPort++, opts)
    this.#endpoints.add(ep)
    return ep
  }

  /** Sends one datagram as a connection bound with `opts` would, and returns every datagram of the answer. */
  transact(datagram: Buffer, opts: { portId?: number; capAck?: boolean } = {}): Buffer[] {
    const ep = this.endpoint(opts)
    const out: Buffer[] = []
    const buf = Buffer.alloc(1 << 20)
    try {
      ep.send(datagram)
      for (let n = ep.recv(buf); n !== -ERRNO.EAGAIN; n = ep.recv(buf)) if (n > 0) out.push(Buffer.from(buf.subarray(0, n)))
    } finally {
      ep.close()
    }
    return out
  }

  /** Connections open now (closed ones are forgotten). */
  get openEndpoints(): number {
    return this.#endpoints.size
  }

  /** @internal FakeEndpoint.close */
  forget(ep: FakeEndpoint): void {
    this.#endpoints.delete(ep)
  }

  // ---- the test's side: links appear, change and go, as `ip` would make them ----------------------------------

  /** Adds a link (NETDEV_REGISTER: an RTM_NEWLINK to subscribers); returns its ifindex. */
  add(spec: FakeLinkSpec): number {
    const l = this.#add(spec, false)
    this.#notify(RTM_NEWLINK, l, 0xffffffff)
    return l.ifindex
  }

  /** A link in the table, not announced yet. */
  #add(spec: FakeLinkSpec, loopback: boolean): FakeLink {
    if (this.#byName(spec.name)) throw new Error(`nltest: a link named ${spec.name} exists`)
    const ifindex = spec.ifindex ?? this.#nextIndex
    if (this.#links.has(ifindex)) throw new Error(`nltest: ifindex ${ifindex} is taken`)
    this.#nextIndex = Math.max(this.#nextIndex, ifindex + 1)
    const kind = spec.kind === undefined ? 'veth' : spec.kind
    const l: FakeLink = {
      loopback,
      ifindex,
      name: spec.name,
      kind,
      up: spec.up ?? false,
      carrier: spec.carrier,
      mtu: spec.mtu ?? 1500,
      address: spec.address === null ? null : parseMac(spec.address ?? `02:00:00:00:${hex2(ifindex >> 8)}:${hex2(ifindex)}`),
      altNames: [...(spec.altNames ?? [])],
      master: spec.master ?? null,
      peer: null,
      native: spec.native ?? kind === 'veth',
      nativeRefusal: spec.nativeRefusal ?? null,
      flags: spec.flags,
      operState: spec.operState,
      xdp: { skb: spec.xdp?.skb ?? 0, drv: spec.xdp?.drv ?? 0, hw: spec.xdp?.hw ?? 0 },
    }
    this.#links.set(ifindex, l)
    this.#generation++
    return l
  }

  /** A veth pair, the peer registered first as veth_newlink() does; returns [ifindex of name, of peer]. */
  addVeth(name: string, peer: string, spec: Omit<FakeLinkSpec, 'name' | 'kind'> = {}, peerSpec: Omit<FakeLinkSpec, 'name' | 'kind'> = {}): [number, number] {
    if (name === peer || this.#byName(name)) throw new Error(`nltest: a link named ${name} exists`)
    const b = this.#add({ ...peerSpec, name: peer, kind: 'veth' }, false)
    const a = this.#add({ ...spec, name, kind: 'veth' }, false)
    a.peer = b.ifindex
    b.peer = a.ifindex
    this.#notify(RTM_NEWLINK, b, 0xffffffff)
    this.#notify(RTM_NEWLINK, a, 0xffffffff)
    return [a.ifindex, b.ifindex]
  }

  /** `ip link set NAME name NEW` (NETDEV_CHANGENAME: notified whether up or not). */
  rename(ifindex: number, name: string): void {
    if (this.#byName(name)) throw new Error(`nltest: a link named ${name} exists`)
    const l = this.#link(ifindex)
    l.name = name
    this.#notify(RTM_NEWLINK, l, 0)
  }

  /** `ip link set NAME up|down`: the link, then its veth peer's carrier. */
  setUp(ifindex: number, up: boolean): void {
    this.#changeUp(this.#link(ifindex), up)
  }

  /** `ip link del`: a veth takes its peer along; a bridge's ports leave it. */
  remove(ifindex: number): void {
    const l = this.#link(ifindex)
    const gone = [l, ...(l.peer !== null && this.#links.has(l.peer) ? [this.#link(l.peer)] : [])]
    for (const g of gone) {
      for (const port of this.#links.values()) {
        if (port.master !== g.ifindex) continue
        port.master = null
        this.#notify(RTM_NEWLINK, port, 0)
      }
      this.#links.delete(g.ifindex)
      this.#generation++
      this.#notify(RTM_DELLINK, g, 0xffffffff)
    }
  }

  /**
   * Someone else's attach or detach (`ip link set NAME xdpgeneric obj ...`, or `off`): the program runs in `mode`
   * from now on (0: none), notified if the link is up. No rule is checked: the test says what happened.
   */
  setXdp(ifindex: number, mode: XdpMode, progId: number): void {
    const l = this.#link(ifindex)
    l.xdp[mode] = progId
    if (l.up) this.#notify(RTM_NEWLINK, l, 0)
  }

  /**
   * Notifications lost for want of room: what `during` changes is not told to subscribed connections, which read
   * ENOBUFS next (net/netlink/af_netlink.c netlink_overrun). Without `during`, only the ENOBUFS.
   */
  overrun(during?: () => void): void {
    this.#losing = true
    try {
      during?.()
    } finally {
      this.#losing = false
    }
    for (const ep of this.#endpoints) if (ep.groups & RTMGRP_LINK) ep.overrun()
  }

  /** A link as the fake encodes it, decoded by the daemon's own decoder; null when there is none. */
  link(ifindex: number): LinkState | null {
    const l = this.#links.get(ifindex)
    if (!l) return null
    const d = decodeLink({ type: RTM_NEWLINK, flags: 0, seq: 0, pid: 0, payload: this.#linkPayload(l, 0) })
    if (!d.ok) throw d.error
    return d.value
  }

  links(): LinkState[] {
    return [...this.#links.keys()].sort((a, b) => a - b).map((i) => this.link(i)!)
  }

  /** The ifindex of a link by name (or altname). */
  indexOf(name: string): number {
    const l = this.#byName(name)
    if (!l) throw new Error(`nltest: no link ${name}`)
    return l.ifindex
  }

  // ---- the kernel's side: netlink_rcv_skb() and rtnetlink -----------------------------------------------------

  /** @internal FakeEndpoint.send: netlink_rcv_skb(), one message after the other, inside the sender's sendmsg. */
  receive(ep: FakeEndpoint, datagram: Buffer): void {
    // A datagram with a malformed message is dropped from there on, silently, as netlink_rcv_skb() stops.
    const parsed = parseMessages(datagram)
    if (!parsed.ok) return
    for (const m of parsed.value) {
      this.requests.push({ ...m, payload: Buffer.from(m.payload), portId: ep.portId })
      let error: KernelError | null = null
      if ((m.flags & NLM_F_REQUEST) !== 0 && m.type >= NLMSG_MIN_TYPE) {
        try {
          // A dump that started is answered by its datagrams, not acked (-EINTR in netlink_rcv_skb).
          if (this.#rtnetlinkRcvMsg(ep, m)) continue
        } catch (e) {
          if (!(e instanceof KernelError)) throw e
          error = e
        }
      }
      if (error || (m.flags & NLM_F_ACK) !== 0) ep.deliver(this.#ack(ep, m, error))
    }
  }

  /** rtnetlink_rcv_msg(): true when a dump started. */
  #rtnetlinkRcvMsg(ep: FakeEndpoint, m: NetlinkMessage): boolean {
    if (m.type === RTM_GETLINK && (m.flags & NLM_F_DUMP) !== 0) {
      this.#startDump(ep, m)
      return true
    }
    if (m.type === RTM_GETLINK) this.#getlink(ep, m)
    else if (m.type === RTM_SETLINK) this.#setlink(m)
    else this.#unmodelled(`message type ${m.type}`)
    return false
  }

  /** rtnl_getlink(): the link as a plain RTM_NEWLINK (no NLM_F_MULTI) with the request's seq, before the ack. */
  #getlink(ep: FakeEndpoint, m: NetlinkMessage): void {
    const { ifindex, tb } = this.#parseIfla(m)
    const l = this.#lookup(ifindex, tb)
    ep.deliver(encodeMessage({ type: RTM_NEWLINK, flags: 0, seq: m.seq, pid: ep.portId }, this.#linkPayload(l, 0)))
  }

  #startDump(ep: FakeEndpoint, m: NetlinkMessage): void {
    // netlink_dump_start(): one dump per socket at a time.
    if (ep.dump) throw new KernelError(ERRNO.EBUSY)
    let error: KernelError | null = null
    try {
      this.#parseIfla(m, true)
    } catch (e) {
      if (!(e instanceof KernelError)) throw e
      error = e
    }
    ep.dump = { seq: m.seq, after: 0, prevGeneration: 0, datagrams: 0, error }
    this.continueDump(ep)
  }

  /** @internal netlink_dump(): the next datagram of the endpoint's dump, when its queue has room for it. */
  continueDump(ep: FakeEndpoint): void {
    const dump = ep.dump
    if (!dump || ep.pending > 0) return
    if (dump.datagrams > 0) this.beforeDumpDatagram?.(dump.datagrams)
    if (ep.dump !== dump) return
    dump.datagrams++
    // nl_dump_check_consistent(): from the datagram after a change on, every message is flagged.
    const intr = dump.prevGeneration !== 0 && dump.prevGeneration !== this.#generation ? NLM_F_DUMP_INTR : 0
    dump.prevGeneration = this.#generation
    const parts: Buffer[] = []
    let bytes = 0
    let count = 0
    if (!dump.error) {
      for (const l of [...this.#links.values()].filter((x) => x.ifindex > dump.after).sort((a, b) => a.ifindex - b.ifindex)) {
        const msg = encodeMessage({ type: RTM_NEWLINK, flags: NLM_F_MULTI | intr, seq: dump.seq, pid: ep.portId }, this.#linkPayload(l, 0))
        if (count >= this.dumpLinksPerDatagram || (count > 0 && nlmsgAlign(bytes) + msg.length > DUMP_DATAGRAM)) {
          ep.deliver(joinMessages(parts))
          return
        }
        parts.push(msg)
        bytes = nlmsgAlign(bytes) + msg.length
        count++
        dump.after = l.ifindex
      }
    }
    // netlink_dump_done(): NLMSG_DONE with the dump's result (and the extack TLVs of a failure), in the same datagram
    // when it fits.
    const err = dump.error
    const done = encodeMessage(
      { type: NLMSG_DONE, flags: NLM_F_MULTI | intr | (err && tlvsOf(err).length > 0 ? NLM_F_ACK_TLVS : 0), seq: dump.seq, pid: ep.portId },
      Buffer.concat([s32(err ? -err.errno : 0), err ? tlvsOf(err) : Buffer.alloc(0)]),
    )
    ep.dump = null
    parts.push(done)
    ep.deliver(joinMessages(parts))
  }

  /** rtnl_setlink() and do_setlink(), for IFF_UP and IFLA_XDP. */
  #setlink(m: NetlinkMessage): void {
    const { ifindex, tb, ifiFlags, ifiChange } = this.#parseIfla(m)
    const l = this.#lookup(ifindex, tb)
    for (const type of tb.keys()) if (!SETLINK_MODELLED.has(type)) this.#unmodelled(`RTM_SETLINK attribute ${type}`)
    if (ifiFlags !== 0 || ifiChange !== 0) {
      // rtnl_dev_combine_flags(): ifi_change selects the bits that ifi_flags sets (all of them when it is 0); of
      // those, __dev_change_flags() changes the user-settable ones. Only IFF_UP is modelled.
      const flags = ifiChange !== 0 ? (ifiFlags & ifiChange) | (this.#flags(l) & ~ifiChange) : ifiFlags
      if ((flags ^ this.#flags(l)) & IFF_USER_SETTABLE & ~IFF_UP) this.#unmodelled(`ifi_flags ${flags.toString(16)}`)
      if (((flags & IFF_UP) !== 0) !== l.up) this.#changeUp(l, (flags & IFF_UP) !== 0)
    }
    const xdp = tb.get(IFLA_XDP)
    // DO_SETLINK_NOTIFY: an IFLA_XDP_FD request, whether it changed anything or not, ends in netdev_state_change(),
    // which notifies only a link that is up.
    if (xdp && this.#doSetlinkXdp(l, xdp.data) && l.up) this.#notify(RTM_NEWLINK, l, 0)
  }

  /** The IFLA_XDP part of do_setlink(): whether it carried IFLA_XDP_FD (and so was carried out). */
  #doSetlinkXdp(l: FakeLink, nest: Buffer): boolean {
    // nla_parse_nested_deprecated(..., ifla_xdp_policy, NULL): no extack, so no text.
    const xdp = parseAttrs(nest, IFLA_XDP_SIZES, 0, () => new KernelError(ERRNO.ERANGE))
    if (xdp.has(IFLA_XDP_ATTACHED) || xdp.has(IFLA_XDP_PROG_ID)) throw new KernelError(ERRNO.EINVAL)
    const flags = xdp.has(IFLA_XDP_FLAGS) ? getU32(xdp.get(IFLA_XDP_FLAGS)!.data, 0) : 0
    if ((flags & ~XDP_FLAGS_MASK) !== 0 || popcount(flags & XDP_FLAGS_MODES) > 1) throw new KernelError(ERRNO.EINVAL)
    const fd = xdp.get(IFLA_XDP_FD)
    if (!fd) return false
    let expectedFd = -1
    if (flags & XDP_FLAGS_REPLACE) {
      const e = xdp.get(IFLA_XDP_EXPECTED_FD)
      if (!e) throw new KernelError(ERRNO.EINVAL)
      expectedFd = getS32(e.data, 0)
    }
    this.#devChangeXdpFd(l, getS32(fd.data, 0), expectedFd, flags)
    return true
  }

  /** net/core/dev.c dev_change_xdp_fd() and dev_xdp_attach(), in their order of checks. */
  #devChangeXdpFd(l: FakeLink, fd: number, expectedFd: number, flags: number): void {
    const newProg = fd >= 0 ? this.#progGet(fd) : 0
    const oldProg = expectedFd >= 0 ? this.#progGet(expectedFd) : 0
    const numModes = popcount(flags & XDP_FLAGS_MODES)
    if (numModes > 1) throw new KernelError(ERRNO.EINVAL, 'Only one XDP mode flag can be set')
    const count = (x: FakeLink): number => (x.xdp.skb ? 1 : 0) + (x.xdp.drv ? 1 : 0) + (x.xdp.hw ? 1 : 0)
    if (numModes === 0 && count(l) > 1) throw new KernelError(ERRNO.EINVAL, 'More than one program loaded, unset mode is ambiguous')
    if (oldProg && !(flags & XDP_FLAGS_REPLACE)) throw new KernelError(ERRNO.EINVAL, 'XDP_FLAGS_REPLACE is not specified')
    const mode = this.#xdpMode(l, flags)
    if (l.master !== null && count(this.#link(l.master)) > 0) {
      throw new KernelError(ERRNO.EEXIST, 'Cannot attach when an upper device already has a program')
    }
    const cur = l.xdp[mode]
    if (flags & XDP_FLAGS_REPLACE && cur !== oldProg) throw new KernelError(ERRNO.EEXIST, 'Active program does not match expected')
    if (newProg) {
      if (flags & XDP_FLAGS_UPDATE_IF_NOEXIST && cur) throw new KernelError(ERRNO.EBUSY, 'XDP program already attached')
      const other: XdpMode = mode === 'skb' ? 'drv' : 'skb'
      if (mode !== 'hw' && l.xdp[other]) throw new KernelError(ERRNO.EEXIST, "Native and generic XDP can't be active at the same time")
    }
    // The driver is called only when the program changes.
    if (newProg === cur) return
    if (mode !== 'skb' && !l.native) throw new KernelError(ERRNO.EOPNOTSUPP, 'Underlying driver does not support XDP in native mode')
    // Drivers without offload answer XDP_SETUP_PROG_HW with EINVAL (veth_xdp, tun_xdp: "default: return -EINVAL").
    if (mode === 'hw') throw new KernelError(ERRNO.EINVAL)
    if (mode === 'drv' && newProg && l.nativeRefusal) throw new KernelError(l.nativeRefusal.errno, l.nativeRefusal.extAck)
    l.xdp[mode] = newProg
    // drivers/net/veth.c veth_xdp_set(): the first native program, and the removal of the last, change the peer's
    // features (hw_features, max_mtu); the peer's RTM_NEWLINK goes out whether it is up or not (seen on 6.18).
    if (mode === 'drv' && l.kind === 'veth' && l.peer !== null && !cur !== !newProg) this.#notify(RTM_NEWLINK, this.#link(l.peer), 0)
  }

  /** dev_xdp_mode(): the flag's mode, or native where the driver has ndo_bpf, else generic. */
  #xdpMode(l: FakeLink, flags: number): XdpMode {
    if (flags & XDP_FLAGS_SKB_MODE) return 'skb'
    if (flags & XDP_FLAGS_DRV_MODE) return 'drv'
    if (flags & XDP_FLAGS_HW_MODE) return 'hw'
    return l.native ? 'drv' : 'skb'
  }

  /** bpf_prog_get_type_dev(): a descriptor that is not a program is EBADF. */
  #progGet(fd: number): number {
    const id = this.programs.get(fd)
    if (id === undefined) throw new KernelError(ERRNO.EBADF)
    return id
  }

  /**
   * The ifinfomsg and attributes of a link request, checked as nlmsg_parse_deprecated() does against ifla_policy: a
   * fixed-size attribute that is too short fails with ERANGE, the attribute's offset and its policy.
   */
  #parseIfla(m: NetlinkMessage, dump = false): { ifindex: number; ifiFlags: number; ifiChange: number; tb: Map<number, Attr> } {
    // A dump may carry a bare struct rtgenmsg (rtnl_dump_ifinfo: the header length depends on the request's).
    if (m.payload.length < IFINFOMSG_LEN) {
      if (dump) return { ifindex: 0, ifiFlags: 0, ifiChange: 0, tb: new Map() }
      throw new KernelError(ERRNO.EINVAL)
    }
    const base = NLMSG_HDRLEN + IFINFOMSG_LEN
    const tb = parseAttrs(m.payload.subarray(IFINFOMSG_LEN), IFLA_SIZES, base, (a, size) =>
      new KernelError(ERRNO.ERANGE, 'Attribute failed policy validation', a.offset, size),
    )
    return { ifindex: getS32(m.payload, 4), ifiFlags: getU32(m.payload, 8), ifiChange: getU32(m.payload, 12), tb }
  }

  /** By index, else by IFLA_IFNAME or IFLA_ALT_IFNAME; EINVAL without either, ENODEV when there is no such link. */
  #lookup(ifindex: number, tb: Map<number, Attr>): FakeLink {
    let l: FakeLink | undefined
    if (ifindex > 0) l = this.#links.get(ifindex)
    else {
      const name = tb.get(IFLA_IFNAME) ?? tb.get(IFLA_ALT_IFNAME)
      if (!name) throw new KernelError(ERRNO.EINVAL)
      const nul = name.data.indexOf(0)
      l = this.#byName(name.data.toString('utf8', 0, nul < 0 ? name.data.length : nul))
    }
    if (!l) throw new KernelError(ERRNO.ENODEV)
    return l
  }

  #unmodelled(what: string): never {
    this.unmodelled.push(what)
    throw new KernelError(ERRNO.EOPNOTSUPP, `nltest: ${what} is not modelled`)
  }

  /** netlink_ack(): struct nlmsgerr (error, the request's header, its payload unless capped), then extack TLVs. */
  #ack(ep: FakeEndpoint, m: NetlinkMessage, e: KernelError | null): Buffer {
    // A success is always capped; a failure when the socket set NETLINK_CAP_ACK.
    const capped = !e || ep.capAck
    const tlvs = e ? tlvsOf(e) : Buffer.alloc(0)
    const header = Buffer.alloc(NLMSG_HDRLEN)
    putU32(header, NLMSG_HDRLEN + m.payload.length, 0)
    putU16(header, m.type, 4)
    putU16(header, m.flags, 6)
    putU32(header, m.seq, 8)
    putU32(header, m.pid, 12)
    const echoed = capped ? Buffer.alloc(0) : padded(m.payload)
    const flags = (capped ? NLM_F_CAPPED : 0) | (tlvs.length > 0 ? NLM_F_ACK_TLVS : 0)
    return encodeMessage({ type: NLMSG_ERROR, flags, seq: m.seq, pid: ep.portId }, Buffer.concat([s32(e ? -e.errno : 0), header, echoed, tlvs]))
  }

  // ---- state changes and what they tell subscribers -------------------------------------------------------------

  #changeUp(l: FakeLink, up: boolean): void {
    if (l.up === up) return
    l.up = up
    this.#notify(RTM_NEWLINK, l, IFF_UP)
    // A veth's carrier follows both ends (veth_open/veth_close); linkwatch notifies the peer if it is up.
    if (l.peer !== null) {
      const p = this.#links.get(l.peer)
      if (p?.up) this.#notify(RTM_NEWLINK, p, 0)
    }
  }

  /** rtmsg_ifinfo(): port id 0 and sequence 0 (no NLM_F_ECHO here), to every connection subscribed to RTMGRP_LINK. */
  #notify(type: number, l: FakeLink, change: number): void {
    const msg = encodeMessage({ type, flags: 0, seq: 0, pid: 0 }, this.#linkPayload(l, change))
    for (const ep of this.#endpoints) {
      if (!(ep.groups & RTMGRP_LINK)) continue
      if (this.#losing) ep.overrun()
      else ep.deliver(msg)
    }
  }

  #carrier(l: FakeLink): boolean {
    if (!l.up) return false
    if (l.carrier !== undefined) return l.carrier
    if (l.kind === 'veth') return l.peer !== null && this.#links.get(l.peer)?.up === true
    return true
  }

  /** dev_get_flags(): the link's own flags with IFF_RUNNING and IFF_LOWER_UP from its carrier. */
  #flags(l: FakeLink): number {
    if (l.flags !== undefined) return l.flags
    const base = l.loopback ? IFF_LOOPBACK : l.kind === 'tun' ? IFF_POINTOPOINT | IFF_NOARP | IFF_MULTICAST : IFF_BROADCAST | IFF_MULTICAST
    return base | (l.up ? IFF_UP : 0) | (this.#carrier(l) ? IFF_RUNNING | IFF_LOWER_UP : 0)
  }

  /** IF_OPER_* as rfc2863_policy()/default_operstate() set it: the loopback reports none. */
  #operState(l: FakeLink): number {
    if (l.operState !== undefined) return OPER[l.operState]
    if (!l.up) return IF_OPER_DOWN
    if (l.loopback) return IF_OPER_UNKNOWN
    if (this.#carrier(l)) return IF_OPER_UP
    // A link on top of another (iflink != ifindex: a veth's peer) is down because of the lower layer.
    return l.peer !== null ? IF_OPER_LOWERLAYERDOWN : IF_OPER_DOWN
  }

  /** ifinfomsg and attributes in rtnl_fill_ifinfo()'s order (those the fake knows of). */
  #linkPayload(l: FakeLink, change: number): Buffer {
    const ifi = Buffer.alloc(IFINFOMSG_LEN)
    putU16(ifi, l.loopback ? ARPHRD_LOOPBACK : l.address ? ARPHRD_ETHER : ARPHRD_NONE, 2)
    putS32(ifi, l.ifindex, 4)
    putU32(ifi, this.#flags(l), 8)
    putU32(ifi, change, 12)
    const e = new AttributeEncoder()
      .string(IFLA_IFNAME, l.name)
      .u32(IFLA_TXQLEN, 1000)
      .u8(IFLA_OPERSTATE, this.#operState(l))
      .u8(IFLA_LINKMODE, 0)
      .u32(IFLA_MTU, l.mtu)
      .u32(IFLA_GROUP, 0)
      .u32(IFLA_PROMISCUITY, 0)
      .u32(IFLA_NUM_TX_QUEUES, 1)
      .u32(IFLA_NUM_RX_QUEUES, 1)
      .u8(IFLA_CARRIER, this.#carrier(l) ? 1 : 0)
    if (l.peer !== null) e.u32(IFLA_LINK, l.peer)
    if (l.master !== null) e.u32(IFLA_MASTER, l.master)
    if (l.address) e.bytes(IFLA_ADDRESS, l.address).bytes(IFLA_BROADCAST, Buffer.alloc(l.address.length, l.address.some((b) => b) ? 0xff : 0))
    // rtnl_xdp_fill(): a nest opened without NLA_F_NESTED, the per-mode ids (skb, drv, hw), IFLA_XDP_ATTACHED, then
    // IFLA_XDP_PROG_ID when exactly one mode has a program.
    const x = new AttributeEncoder()
    let attached = XDP_ATTACHED_NONE
    let progId = 0
    for (const [mode, attr, value] of [
      ['skb', IFLA_XDP_SKB_PROG_ID, XDP_ATTACHED_SKB],
      ['drv', IFLA_XDP_DRV_PROG_ID, XDP_ATTACHED_DRV],
      ['hw', IFLA_XDP_HW_PROG_ID, XDP_ATTACHED_HW],
    ] as const) {
      if (!l.xdp[mode]) continue
      x.u32(attr, l.xdp[mode])
      progId = l.xdp[mode]
      attached = attached === XDP_ATTACHED_NONE ? value : XDP_ATTACHED_MULTI
    }
    x.u8(IFLA_XDP_ATTACHED, attached)
    if (progId && attached !== XDP_ATTACHED_MULTI) x.u32(IFLA_XDP_PROG_ID, progId)
    e.bytes(IFLA_XDP, x.encode())
    // rtnl_link_fill(): IFLA_LINKINFO (no NLA_F_NESTED) is there for every link, empty without rtnl_link_ops.
    e.bytes(IFLA_LINKINFO, l.kind === null ? Buffer.alloc(0) : new AttributeEncoder().string(IFLA_INFO_KIND, l.kind).encode())
    // rtnl_fill_prop_list(): only when there are alternative names.
    if (l.altNames.length > 0) e.nested(IFLA_PROP_LIST, (p) => l.altNames.forEach((n) => p.string(IFLA_ALT_IFNAME, n)))
    return Buffer.concat([ifi, e.encode()])
  }

  #link(ifindex: number): FakeLink {
    const l = this.#links.get(ifindex)
    if (!l) throw new Error(`nltest: no link ${ifindex}`)
    return l
  }

  #byName(name: string): FakeLink | undefined {
    for (const l of this.#links.values()) if (l.name === name || l.altNames.includes(name)) return l
    return undefined
  }
}

interface Attr {
  data: Buffer
  /** From the start of the request's nlmsghdr. */
  offset: number
}

/**
 * The attributes of a run by type (the last of a type wins, as nla_parse() keeps it), each checked against `sizes`:
 * shorter than its fixed size is `tooShort`. A run that does not parse is EINVAL.
 */
function parseAttrs(buf: Buffer, sizes: ReadonlyMap<number, 1 | 4>, base: number, tooShort: (a: Attr, size: 1 | 4) => KernelError): Map<number, Attr> {
  const tb = new Map<number, Attr>()
  const d = new AttributeDecoder(buf, base)
  while (d.next()) {
    const a = { data: d.bytes(), offset: d.offset() }
    const size = sizes.get(d.type())
    if (size !== undefined && a.data.length < size) throw tooShort(a, size)
    tb.set(d.type(), a)
  }
  if (d.err()) throw new KernelError(ERRNO.EINVAL)
  return tb
}

/**
 * netlink_ack_tlv_fill(): NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS, then NLMSGERR_ATTR_POLICY as
 * netlink_policy_dump_write_attr() writes an unsigned integer with no range but its type's.
 */
function tlvsOf(e: KernelError): Buffer {
  const t = new AttributeEncoder()
  if (e.extAck !== undefined) t.string(NLMSGERR_ATTR_MSG, e.extAck)
  if (e.offset !== undefined) t.u32(NLMSGERR_ATTR_OFFS, e.offset)
  const size = e.policyUint
  if (size !== undefined) {
    t.nested(NLMSGERR_ATTR_POLICY, (p) =>
      p
        .u64(NL_POLICY_TYPE_ATTR_MIN_VALUE_U, 0n)
        .u64(NL_POLICY_TYPE_ATTR_MAX_VALUE_U, size === 1 ? 0xffn : 0xffffffffn)
        .u32(NL_POLICY_TYPE_ATTR_TYPE, size === 1 ? NL_ATTR_TYPE_U8 : NL_ATTR_TYPE_U32),
    )
  }
  return t.encode()
}

function joinMessages(parts: Buffer[]): Buffer {
  return Buffer.concat(parts.flatMap((p, i) => (i < parts.length - 1 ? [padded(p)] : [p])))
}

function padded(b: Buffer): Buffer {
  const n = nlmsgAlign(b.length)
  return n === b.length ? b : Buffer.concat([b, Buffer.alloc(n - b.length)])
}

function s32(v: number): Buffer {
  const b = Buffer.alloc(4)
  putS32(b, v, 0)
  return b
}

function popcount(v: number): number {
  let n = 0
  for (let x = v; x; x &= x - 1) n++
  return n
}

function parseMac(s: string): Buffer {
  const b = Buffer.from(s.split(':').map((h) => Number.parseInt(h, 16)))
  if (b.length === 0 || s.split(':').some((h) => !/^[0-9a-f]{2}$/i.test(h))) throw new Error(`nltest: bad address ${s}`)
  return b
}

const hex2 = (v: number): string => (v & 0xff).toString(16).padStart(2, '0')
