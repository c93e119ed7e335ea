/**
 * The rtnetlink client: two netlink sockets, one subscribed to RTMGRP_LINK for notifications and one for our own
 * requests. Keeping them apart means a notification storm that overflows the subscribed socket (ENOBUFS) can never
 * drop the answer to a dump or an RTM_SETLINK, and the request socket never has to skip multicast traffic.
 */
import { EventEmitter } from 'node:events'
import { DumpInterruptedError, NetlinkSocket, type NetlinkConn, type OpenNetlink, type Request, type RequestResult } from '../netlink/socket.js'
import { RTMGRP_LINK } from '../netlink/constants.js'
import type { NetlinkMessage } from '../netlink/message.js'
import { NetlinkError } from '../netlink/errors.js'
import { ERRNO } from '../ffi/errno.js'
import type { NetlinkDecodeError } from '../netlink/attributes.js'
import type { Result } from '../result.js'
import { AF_BRIDGE, RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK, RTM_SETLINK } from './constants.js'
import { decodeLink, encodeGetLink, encodeGetLinkDump, type LinkState } from './link.js'
import { PartialDumpError } from './errors.js'
import { encodeSetLinkXdp, type XdpSetRequest } from './xdp.js'

export type LinkNotification = { type: 'new'; link: LinkState } | { type: 'del'; link: LinkState }

export interface RtnlClientOptions {
  /** Receive buffer of the subscribed socket, bytes. Default 8 MiB. */
  rcvbuf?: number
  /** Open the subscribed socket (false for a command that only dumps). Default true. */
  subscribe?: boolean
  /** Opens each of the two connections: sockets in the kernel by default; a fake kernel in tests (test/helpers/nltest.ts). */
  open?: OpenNetlink
  /**
   * A descriptor of the network namespace whose links the client is about (both sockets are created there); the
   * namespace the process runs in when absent. Used only while the constructor runs. The sockets hold a reference
   * to their namespace (net/core/sock.c sk_alloc takes get_net), so a client left open keeps it alive.
   */
  netnsFd?: number
}

export interface RtnlClientEvents {
  link: [LinkNotification]
  overrun: []
  error: [Error]
}

export const DEFAULT_RCVBUF = 8 * 1024 * 1024
const REQUEST_RCVBUF = 1024 * 1024

/** What the link table and the reconciler need from the kernel; tests substitute a fake. */
export interface LinkSource extends EventEmitter<RtnlClientEvents> {
  dumpLinks(): Promise<LinkState[]>
  /** False once closed: a dump that failed then is not retried (LinkTable). Absent: always open. */
  readonly connected?: boolean
}

export class RtnlClient extends EventEmitter<RtnlClientEvents> implements LinkSource {
  readonly events: NetlinkConn | null
  readonly requests: NetlinkConn
  /** Messages that could not be decoded (counted and reported, never thrown). */
  decodeErrors = 0

  constructor(opts: RtnlClientOptions = {}) {
    super()
    // Dump datagrams and ack bursts land here; a bigger buffer than the default only adds headroom, since requests
    // are windowed (NetlinkSocket.requestBatch) and dumps advance only as we read.
    const open = opts.open ?? NetlinkSocket.open
    const netnsFd = opts.netnsFd
    this.requests = open({ groups: 0, rcvbuf: REQUEST_RCVBUF, netnsFd })
    try {
      this.events = opts.subscribe === false ? null : open({ groups: RTMGRP_LINK, rcvbuf: opts.rcvbuf ?? DEFAULT_RCVBUF, netnsFd })
    } catch (e) {
      this.requests.close()
      throw e
    }
    this.events?.on('notification', (m) => this.#notification(m))
    this.events?.on('overrun', () => this.emit('overrun'))
    this.events?.on('error', (e) => this.emit('error', e))
    this.requests.on('error', (e) => this.emit('error', e))
  }

  /** Both connections are open (the subscribed one where there is one): the receive path the watchdog vouches for. */
  get connected(): boolean {
    return !this.requests.closed && (this.events === null || !this.events.closed)
  }

  #notification(m: NetlinkMessage): void {
    if (m.type !== RTM_NEWLINK && m.type !== RTM_DELLINK) return
    // Bridge port events reuse RTM_NEWLINK/RTM_DELLINK with family AF_BRIDGE (net/bridge/br_netlink.c br_ifinfo_notify);
    // an RTM_DELLINK of that family means "left the bridge", not "the link is gone".
    if (m.payload.length > 0 && m.payload[0] === AF_BRIDGE) return
    const d = decodeLink(m)
    if (!d.ok) {
      this.decodeErrors++
      this.emit('error', d.error)
      return
    }
    this.emit('link', { type: m.type === RTM_NEWLINK ? 'new' : 'del', link: d.value })
  }

  /**
   * Every link of the namespace, from a consistent dump (redone on NLM_F_DUMP_INTR). Throws PartialDumpError, with
   * the links the last attempt saw, when every attempt came back inconsistent.
   */
  async dumpLinks(): Promise<LinkState[]> {
    // Decoded as the datagrams arrive; problems are reported once the dump is complete (an attempt that is redone
    // decodes its messages again).
    let decoded: readonly (Result<LinkState, NetlinkDecodeError> | null)[]
    let interrupted: DumpInterruptedError | null = null
    try {
      decoded = await this.requests.dumpDecoded(RTM_GETLINK, encodeGetLinkDump(), (m) => (m.type === RTM_NEWLINK ? decodeLink(m) : null))
    } catch (e) {
      if (!(e instanceof DumpInterruptedError)) throw e
      interrupted = e
      decoded = e.partial as typeof decoded
    }
    // Notifications queued before the dump finished must reach the table (which is buffering them) before it merges;
    // they sit on the other socket, whose wake-up may come after this one.
    this.events?.drainNow()
    const links: LinkState[] = []
    for (const d of decoded) {
      if (d === null) continue
      if (d.ok) links.push(d.value)
      else {
        this.decodeErrors++
        this.emit('error', d.error)
      }
    }
    if (interrupted) throw new PartialDumpError(links, interrupted)
    return links
  }

  /** One link's current state, or null when it does not exist (ENODEV). Throws RangeError for an index no link has. */
  async getLink(ifindex: number): Promise<LinkState | null> {
    const payload = encodeGetLink(ifindex)
    if (!payload.ok) throw payload.error
    const r = await this.requests.request({ type: RTM_GETLINK, payload: payload.value })
    if (!r.ok) {
      if (r.error.errno === ERRNO.ENODEV) return null
      throw r.error
    }
    const m = r.messages.find((x) => x.type === RTM_NEWLINK)
    if (!m) return null
    const d = decodeLink(m)
    if (!d.ok) throw d.error
    return d.value
  }

  /** Many RTM_SETLINK/IFLA_XDP requests in as few datagrams as fit; one result per request, in order. */
  async setXdp(reqs: { ifindex: number; req: XdpSetRequest; withPrevious?: boolean }[]): Promise<RequestResult[]> {
    const out: RequestResult[] = new Array(reqs.length)
    const wire: Request[] = []
    const at: number[] = []
    reqs.forEach((r, i) => {
      const enc = encodeSetLinkXdp(r.ifindex, r.req)
      if (!enc.ok) out[i] = { ok: false, error: NetlinkError.fromErrno(ERRNO.EINVAL, 0, enc.error.message) }
      else {
        wire.push({ type: RTM_SETLINK, payload: enc.value, withPrevious: r.withPrevious })
        at.push(i)
      }
    })
    const results = await this.requests.requestBatch(wire)
    results.forEach((r, j) => (out[at[j]!] = r))
    return out
  }

  close(): void {
    this.events?.close()
    this.requests.close()
  }
}
