/**
 * A raw netlink socket on the event loop: requests matched to their acks by sequence number, dumps that are redone
 * when the kernel flags them inconsistent, multicast notifications as events, and ENOBUFS surfaced as `overrun`.
 *
 * Receiving never blocks the event loop and uses no timer: libuv watches the non-blocking descriptor (ffi/libc
 * watchReadable) and each wake-up drains it until EAGAIN.
 *
 * The datagrams themselves go through a NetlinkEndpoint: the kernel's socket (NetlinkSocket.open) or a test's fake
 * kernel (test/helpers/nltest.ts), so that everything above the bytes runs the same code in a test without root,
 * as mdlayher/netlink's nltest puts a fake Socket under its real Conn.
 */
import { EventEmitter } from 'node:events'
import { Fd } from '../ffi/fd.js'
import { SyscallError, ERRNO } from '../ffi/errno.js'
import * as libc from '../ffi/libc.js'
import { withNetns } from '../ffi/netns.js'
import {
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NETLINK_ROUTE,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  SOL_NETLINK,
  nlmsgAlign,
} from './constants.js'
import { NetlinkError } from './errors.js'
import {
  encodeMessage,
  encodeMessageInto,
  isDumpInterrupted,
  parseDoneError,
  parseErrorMessage,
  parseMessages,
  type NetlinkMessage,
} from './message.js'

export interface NetlinkSocketOptions {
  /** Multicast groups bitmask to join at bind (e.g. RTMGRP_LINK); 0 for a request-only socket. */
  groups?: number
  /** Receive buffer in bytes. Set with SO_RCVBUFFORCE (needs CAP_NET_ADMIN), else SO_RCVBUF (capped by rmem_max). */
  rcvbuf?: number
  /** Netlink protocol; NETLINK_ROUTE by default. */
  protocol?: number
  /**
   * A descriptor of the network namespace the socket is to belong to (a namespace file, opened); the namespace the
   * process runs in when absent. Entered only around socket(): the socket keeps the namespace it was created in.
   */
  netnsFd?: number
}

export interface Request {
  type: number
  /** Extra flags beside NLM_F_REQUEST|NLM_F_ACK (e.g. NLM_F_CREATE). */
  flags?: number
  payload: Buffer
  /**
   * Goes in the same window as the request before it: the second step of a two-step change (detach, then attach in
   * another mode), so that a stop or a failed send between two windows never leaves only the first step done.
   */
  withPrevious?: boolean
}

type Failed = { ok: false; error: NetlinkError }

/** The answer to one request: the messages before its ack (copied), or the kernel's error. */
export type RequestResult = { ok: true; messages: NetlinkMessage[] } | Failed

/**
 * One attempt at a dump: what `decode` made of each message, and whether the kernel marked the walk inconsistent
 * (NLM_F_DUMP_INTR on any message of it), or the error it ended with.
 */
export type DumpResult<T> = { ok: true; items: T[]; interrupted: boolean } | Failed

/** What waits for the answer to one sequence number; each kind of request keeps its own typed result. */
interface Pending {
  /** A message of the answer before its end; its payload is valid only during the call. */
  part(m: NetlinkMessage): void
  /**
   * The answer ended: an NLMSG_ERROR or NLMSG_DONE (`intr`: it carried NLM_F_DUMP_INTR), or the socket failed.
   * `error` is null for success.
   */
  end(error: NetlinkError | null, intr: boolean): void
}

/**
 * Thrown by `dump` when the kernel kept flagging it inconsistent (NLM_F_DUMP_INTR) after every retry. `partial` is
 * what the last attempt returned (decoded): each entry is a true snapshot of its object, but objects may be missing
 * (the table changed under the walk), so it cannot stand for the whole table.
 */
export class DumpInterruptedError extends Error {
  constructor(
    readonly attempts: number,
    readonly partial: readonly unknown[] = [],
  ) {
    super(`netlink dump still inconsistent (NLM_F_DUMP_INTR) after ${attempts} attempts`)
    this.name = 'DumpInterruptedError'
  }
}

// A dump datagram is at most 32 KiB today (net/netlink/af_netlink.c netlink_dump, max_recvmsg_len); notifications are
// far smaller. 256 KiB leaves room for bigger future messages; a larger one is detected by MSG_TRUNC and grown into.
const RECV_BUFFER = 256 * 1024
// sendmsg of a netlink datagram is bounded by sk_sndbuf; keep batches well below the default 208 KiB.
const MAX_BATCH_BYTES = 64 * 1024
// Requests whose acks may be queued at once: an ack costs about 1 KiB of receive buffer (skb truesize), and the
// default buffer is 208 KiB (net.core.rmem_default).
const MAX_IN_FLIGHT = 128
// Datagrams drained per wake-up before yielding to the event loop, so a storm cannot starve timers and I/O.
const DRAIN_PER_TICK = 512
// ... and milliseconds: a dump of 1,000 links is ~25 ms of datagrams that the kernel refills as they are read, and
// what waits meanwhile (a program load finishing on its worker thread at start-up, the control socket, timers) should
// not wait for all of it.
const DRAIN_SLICE_MS = 1

/**
 * Where requestBatch's windows start: every `max` requests, a boundary moved back to the start of a chain of
 * requests `withPrevious` that it would cut (unless the chain alone fills the window). Pure.
 */
export function windowStarts(reqs: readonly { withPrevious?: boolean }[], max = MAX_IN_FLIGHT): number[] {
  const starts: number[] = []
  for (let i = 0; i < reqs.length; ) {
    starts.push(i)
    let end = Math.min(i + max, reqs.length)
    let cut = end
    while (cut < reqs.length && cut > i && reqs[cut]!.withPrevious) cut--
    if (cut > i) end = cut
    i = end
  }
  return starts
}

export interface NetlinkSocketEvents {
  /**
   * A message that answers none of our requests. Its payload is a view into the receive buffer, valid only during
   * the call (the next datagram overwrites it): a listener that keeps bytes copies them. Not copying is what lets a
   * storm of 1.5 KiB link messages cost no allocation beyond what the listener decodes.
   */
  notification: [NetlinkMessage]
  overrun: []
  error: [Error]
  close: []
}

/**
 * Where a NetlinkSocket's datagrams come from and go to. The socket expects the kernel's behaviour of each call;
 * a fake must keep it (test/helpers/nltest.ts does).
 */
export interface NetlinkEndpoint {
  /** The port id the socket is bound to (nl_pid): answers to our requests carry it. */
  readonly portId: number
  readonly closed: boolean
  /** Sends one datagram; throws SyscallError when the send fails. */
  send(datagram: Buffer): void
  /**
   * recv(MSG_DONTWAIT | MSG_TRUNC) into `buf`: the datagram's full length (above buf.length: the rest is lost), or
   * -errno: -EAGAIN when nothing is queued, -ENOBUFS once after messages were dropped for want of room.
   */
  recv(buf: Buffer): number
  /** Calls `onReadable` from the event loop whenever datagrams may be waiting, until close(). */
  watch(onReadable: () => void): void
  /** The receive buffer granted, bytes. */
  receiveBufferSize(): number
  close(): void
}

/** A netlink socket in the kernel. */
class KernelEndpoint implements NetlinkEndpoint {
  readonly #fd: Fd
  readonly portId: number
  #watch: libc.Watch | null = null

  constructor(opts: NetlinkSocketOptions) {
    const create = (): number =>
      libc.socket(libc.AF_NETLINK, libc.SOCK_RAW | libc.SOCK_NONBLOCK | libc.SOCK_CLOEXEC, opts.protocol ?? NETLINK_ROUTE)
    // bind, the options and everything after act on the socket's own namespace (sock_net), wherever the thread is.
    const raw = opts.netnsFd === undefined ? create() : withNetns(opts.netnsFd, create)
    this.#fd = new Fd(raw, 'netlink socket')
    try {
      if (opts.rcvbuf !== undefined) setReceiveBuffer(raw, opts.rcvbuf)
      // Extended acks carry the kernel's reason ("Native and generic XDP can't be active at the same time");
      // capped acks echo only the header of a failed request instead of the whole message.
      libc.setsockoptInt(raw, SOL_NETLINK, NETLINK_EXT_ACK, 1)
      libc.setsockoptInt(raw, SOL_NETLINK, NETLINK_CAP_ACK, 1)
      libc.bind(raw, libc.sockaddrNl(0, opts.groups ?? 0))
      this.portId = libc.getsockname(raw, 12).readUInt32LE(4)
    } catch (e) {
      this.#fd.close()
      throw e
    }
  }

  get closed(): boolean {
    return this.#fd.closed
  }

  send(datagram: Buffer): void {
    libc.sendto(this.#fd.raw, datagram, 0, libc.sockaddrNl(0, 0))
  }

  recv(buf: Buffer): number {
    return libc.recv(this.#fd.raw, buf, libc.MSG_DONTWAIT | libc.MSG_TRUNC)
  }

  watch(onReadable: () => void): void {
    this.#watch = libc.watchReadable(this.#fd.raw, onReadable)
  }

  /** What the kernel granted: twice the requested size (socket(7)). */
  receiveBufferSize(): number {
    return libc.getsockoptInt(this.#fd.raw, libc.SOL_SOCKET, libc.SO_RCVBUF)
  }

  close(): void {
    this.#watch?.close()
    this.#watch = null
    this.#fd.close()
  }
}

/**
 * What RtnlClient uses of a netlink socket. NetlinkSocket is the implementation, over the kernel or over a test's
 * endpoint; the interface lets a client be handed either (RtnlClientOptions.open).
 */
export interface NetlinkConn {
  readonly closed: boolean
  request(req: Request): Promise<RequestResult>
  requestBatch(reqs: Request[]): Promise<RequestResult[]>
  dumpDecoded<T>(type: number, payload: Buffer, decode: (m: NetlinkMessage) => T, attempts?: number): Promise<T[]>
  drainNow(): void
  close(): void
  on<K extends keyof NetlinkSocketEvents>(event: K, listener: (...args: NetlinkSocketEvents[K]) => void): unknown
}

/** Opens one netlink connection (RtnlClient opens two: one subscribed, one for requests). */
export type OpenNetlink = (opts: NetlinkSocketOptions) => NetlinkConn

export class NetlinkSocket extends EventEmitter<NetlinkSocketEvents> implements NetlinkConn {
  readonly #io: NetlinkEndpoint
  #seq: number
  #pending = new Map<number, Pending>()
  #buf = Buffer.allocUnsafe(RECV_BUFFER)
  #draining = false
  /** Datagrams and bytes received; overruns seen. Read by status and benchmarks. */
  readonly stats = { datagrams: 0, messages: 0, overruns: 0, discarded: 0, decodeErrors: 0 }

  /** A socket in the kernel. */
  static open(opts: NetlinkSocketOptions = {}): NetlinkSocket {
    return new NetlinkSocket(new KernelEndpoint(opts))
  }

  constructor(endpoint: NetlinkEndpoint) {
    super()
    this.#io = endpoint
    // Start sequence numbers away from 0: notifications carry seq 0.
    this.#seq = 1 + Math.floor(Math.random() * 0x7fff_0000)
    endpoint.watch(() => this.#drain())
  }

  get portId(): number {
    return this.#io.portId
  }

  get closed(): boolean {
    return this.#io.closed
  }

  /** The receive buffer the kernel actually granted (it reports twice the requested size, see socket(7)). */
  receiveBufferSize(): number {
    return this.#io.receiveBufferSize()
  }

  #nextSeq(): number {
    this.#seq = this.#seq >= 0xffff_fff0 ? 1 : this.#seq + 1
    return this.#seq
  }

  /** Sends one request and waits for its ack (or its dump). Never rejects on a kernel error: returns it. */
  request(req: Request): Promise<RequestResult> {
    return this.requestBatch([req]).then((r) => r[0]!)
  }

  /**
   * Sends many requests, several per datagram, each with its own sequence number and NLM_F_ACK, and resolves once
   * every ack has arrived, in the order given. rtnetlink handles a request inside the sender's sendmsg
   * (net/netlink/af_netlink.c netlink_unicast_kernel -> rtnetlink_rcv), so all the acks of a datagram are queued on
   * our socket before the send returns: at most MAX_IN_FLIGHT requests are sent before their acks are read, or a big
   * batch would overflow the receive buffer and lose acks (ENOBUFS) for requests the kernel did carry out.
   */
  async requestBatch(reqs: Request[]): Promise<RequestResult[]> {
    const out: RequestResult[] = []
    const starts = windowStarts(reqs)
    for (let k = 0; k < starts.length; k++) out.push(...(await this.#window(reqs.slice(starts[k], starts[k + 1] ?? reqs.length))))
    return out
  }

  #window(reqs: Request[]): Promise<RequestResult[]> {
    if (this.closed) return Promise.resolve(reqs.map(() => closedResult()))
    // Messages are written straight into their datagram, each on an NLMSG_ALIGN boundary (netlink_rcv_skb() steps
    // by NLMSG_ALIGN(nlmsg_len)), and the window waits on one promise, not one per request.
    const ends: number[] = []
    let bytes = 0
    for (const r of reqs) {
      const size = NLMSG_HDRLEN + r.payload.length
      if (bytes > 0 && nlmsgAlign(bytes) + size > MAX_BATCH_BYTES) {
        ends.push(bytes)
        bytes = 0
      }
      bytes = nlmsgAlign(bytes) + size
    }
    ends.push(bytes)
    const datagrams = ends.map((n) => Buffer.alloc(n))
    const results: RequestResult[] = new Array(reqs.length)
    let left = reqs.length
    let resolveAll!: (r: RequestResult[]) => void
    const all = new Promise<RequestResult[]>((resolve) => (resolveAll = resolve))
    let d = 0
    let off = 0
    reqs.forEach((r, i) => {
      const size = NLMSG_HDRLEN + r.payload.length
      if (off > 0 && nlmsgAlign(off) + size > datagrams[d]!.length) {
        d++
        off = 0
      }
      off = nlmsgAlign(off)
      const seq = this.#nextSeq()
      const flags = NLM_F_REQUEST | NLM_F_ACK | (r.flags ?? 0)
      off += encodeMessageInto(datagrams[d]!, off, { type: r.type, flags, seq, pid: 0 }, r.payload)
      const messages: NetlinkMessage[] = []
      this.#pending.set(seq, {
        part: (m) => messages.push(copyMessage(m)),
        end: (error) => {
          results[i] = error ? { ok: false, error } : { ok: true, messages }
          if (--left === 0) resolveAll(results)
        },
      })
    })
    try {
      for (const b of datagrams) this.#send(b)
    } catch (e) {
      // The send itself failed: nothing of what is still pending will ever be answered.
      const error = e instanceof SyscallError ? NetlinkError.fromErrno(e.errno, 0, e.message) : asNetlinkError(e)
      this.#failAll(error)
    }
    return all
  }

  /**
   * A dump (NLM_F_DUMP). When the kernel marks it inconsistent (NLM_F_DUMP_INTR: the table changed while it was
   * being walked, net/netlink/af_netlink.c nl_dump_check_consistent) it is redone, up to `attempts` times.
   */
  async dump(type: number, payload: Buffer, attempts = 10): Promise<NetlinkMessage[]> {
    return this.dumpDecoded(type, payload, copyMessage, attempts)
  }

  /**
   * A dump whose messages are decoded as they arrive, in the receive buffer: `decode` sees each message once (also
   * those of an attempt that is then redone) and must not keep its payload. A dump of 10,000 links keeps 10,000
   * decoded links, not 15 MB of message copies waiting for NLMSG_DONE.
   */
  async dumpDecoded<T>(type: number, payload: Buffer, decode: (m: NetlinkMessage) => T, attempts = 10): Promise<T[]> {
    let partial: T[] = []
    for (let i = 1; i <= attempts; i++) {
      const r = await this.#dumpOnce(type, payload, decode)
      if (!r.ok) {
        // A dump answered with ENOBUFS lost datagrams on the way: redo it like an interrupted one.
        if (r.error.errno === ERRNO.ENOBUFS || r.error.errno === ERRNO.EINTR || r.error.errno === ERRNO.EBUSY) continue
        throw r.error
      }
      if (!r.interrupted) return r.items
      partial = r.items
    }
    throw new DumpInterruptedError(attempts, partial)
  }

  /** Sends one dump request and waits for its end. Rejects only when the send fails. */
  #dumpOnce<T>(type: number, payload: Buffer, decode: (m: NetlinkMessage) => T): Promise<DumpResult<T>> {
    return new Promise((settle) => {
      const seq = this.#nextSeq()
      const items: T[] = []
      let interrupted = false
      this.#pending.set(seq, {
        part: (m) => {
          if (isDumpInterrupted(m)) interrupted = true
          items.push(decode(m))
        },
        end: (error, intr) => settle(error ? { ok: false, error } : { ok: true, items, interrupted: interrupted || intr }),
      })
      try {
        this.#send(encodeMessage({ type, flags: NLM_F_REQUEST | NLM_F_DUMP, seq, pid: 0 }, payload))
      } catch (e) {
        this.#pending.delete(seq)
        throw e
      }
    })
  }

  #send(buf: Buffer): void {
    this.#io.send(buf)
  }

  /**
   * Reads everything the kernel has queued right now, synchronously. The link table calls this when a dump on the
   * other socket has finished, so that every notification queued before the dump's snapshot is seen before it.
   */
  drainNow(): void {
    this.#drain(Infinity)
  }

  #drain(limit = DRAIN_PER_TICK): void {
    if (this.#draining || this.closed) return
    this.#draining = true
    const until = limit === Infinity ? Infinity : performance.now() + DRAIN_SLICE_MS
    try {
      for (let i = 0; i < limit && (i === 0 || performance.now() < until); i++) {
        if (this.closed) return
        const n = this.#io.recv(this.#buf)
        if (n === -ERRNO.EAGAIN || n === -ERRNO.EINTR) return
        if (n === -ERRNO.ENOBUFS) {
          // The receive queue overflowed: the kernel dropped messages (net/netlink/af_netlink.c netlink_overrun).
          // Answers to our own requests may be among them, so fail those; listeners must resync.
          this.stats.overruns++
          this.#failAll(NetlinkError.fromErrno(ERRNO.ENOBUFS, 0, 'receive queue overflowed; messages were lost'))
          this.#discardQueued()
          this.emit('overrun')
          continue
        }
        if (n < 0) {
          this.emit('error', new SyscallError('recv', -n))
          return
        }
        if (n > this.#buf.length) {
          // Truncated: the rest of this datagram is gone. Grow for the next one and treat it as lost messages.
          this.#buf = Buffer.allocUnsafe(Math.max(n, this.#buf.length * 2))
          this.stats.overruns++
          this.#failAll(NetlinkError.fromErrno(ERRNO.EMSGSIZE, 0, `datagram of ${n} bytes truncated`))
          this.emit('overrun')
          continue
        }
        this.stats.datagrams++
        this.#dispatch(this.#buf.subarray(0, n))
      }
      // More may be waiting: continue after the event loop has had a turn.
      setImmediate(() => this.#drain())
    } catch (e) {
      this.emit('error', e instanceof Error ? e : new Error(String(e)))
    } finally {
      this.#draining = false
    }
  }

  /**
   * Drops what is queued at an overrun. The kernel reports the error before the messages still queued
   * (net/core/datagram.c __skb_try_recv_datagram checks sock_error() first), so everything in the queue now is older
   * than a message that was lost. Applied after a resync's snapshot, such a message (an RTM_NEWLINK of a link whose
   * RTM_DELLINK was the one dropped) would bring back a state the kernel has left. The resync that follows covers
   * all of it; messages queued from here on are newer than the loss.
   */
  #discardQueued(): void {
    for (;;) {
      const n = this.#io.recv(this.#buf)
      if (n === -ERRNO.ENOBUFS) {
        this.stats.overruns++
        continue
      }
      if (n < 0) return
      this.stats.discarded++
    }
  }

  #dispatch(datagram: Buffer): void {
    const parsed = parseMessages(datagram)
    if (!parsed.ok) {
      this.stats.decodeErrors++
      this.emit('error', parsed.error)
      return
    }
    // Payloads are views into the reused receive buffer: what is kept past this loop is copied or decoded first.
    for (const m of parsed.value) {
      this.stats.messages++
      const pending = isOurs(m, this.portId) ? this.#pending.get(m.seq) : undefined
      if (pending) this.#answer(m, pending)
      else this.emit('notification', m)
    }
  }

  #answer(m: NetlinkMessage, p: Pending): void {
    if (m.type !== NLMSG_ERROR && m.type !== NLMSG_DONE) {
      p.part(m)
      return
    }
    this.#pending.delete(m.seq)
    p.end(m.type === NLMSG_ERROR ? ackError(m) : parseDoneError(m), isDumpInterrupted(m))
  }

  #failAll(error: NetlinkError): void {
    const all = [...this.#pending.values()]
    this.#pending.clear()
    for (const p of all) p.end(error, false)
  }

  /** Stops watching, closes the descriptor and fails whatever is still pending. Idempotent. */
  close(): void {
    if (this.closed) return
    // Acks already queued answer requests the kernel has carried out (rtnetlink handles them inside our sendmsg):
    // read them first, so that what was done is reported as done. Only what has no answer yet is cancelled.
    if (this.#pending.size > 0) this.#drain(Infinity)
    this.#io.close()
    this.#failAll(NetlinkError.fromErrno(ERRNO.ECANCELED, 0, 'netlink socket closed'))
    this.emit('close')
  }
}

/**
 * Whether a message answers one of our requests: it carries our port id and a sequence number of ours, whatever its
 * type. The answer to a single RTM_GETLINK is a plain RTM_NEWLINK (no NLM_F_MULTI) before the ack, a dump's parts
 * are NLM_F_MULTI, then NLMSG_DONE or NLMSG_ERROR. A notification never looks like that: rtmsg_ifinfo_build_skb()
 * (net/core/rtnetlink.c) zeroes its port id and sequence number unless the request that caused it set NLM_F_ECHO
 * (nlmsg_report), which we never do; even then nlmsg_notify() multicasts it to everyone but the requester, whose own
 * copy is the echo it asked for. Seen on 6.18: an RTM_NEWLINK created from one socket reaches a subscribed socket
 * with port id 0 and sequence 0, or with NLM_F_ECHO the requester's port id (not the subscriber's) and sequence.
 */
function isOurs(m: NetlinkMessage, portId: number): boolean {
  return m.seq !== 0 && m.pid === portId
}

function setReceiveBuffer(fd: number, bytes: number): void {
  try {
    libc.setsockoptInt(fd, libc.SOL_SOCKET, libc.SO_RCVBUFFORCE, bytes)
  } catch (e) {
    if (!(e instanceof SyscallError) || e.errno !== ERRNO.EPERM) throw e
    // Without CAP_NET_ADMIN the kernel caps SO_RCVBUF at net.core.rmem_max.
    libc.setsockoptInt(fd, libc.SOL_SOCKET, libc.SO_RCVBUF, bytes)
  }
}

/** The error an NLMSG_ERROR carries, null for an ack; one that cannot be read is EPROTO. */
function ackError(m: NetlinkMessage): NetlinkError | null {
  const e = parseErrorMessage(m)
  return e.ok ? e.value : NetlinkError.fromErrno(ERRNO.EPROTO, m.seq, e.error.message)
}

/** A message with its own copy of the payload (the receive buffer is reused). */
function copyMessage(m: NetlinkMessage): NetlinkMessage {
  return { ...m, payload: Buffer.from(m.payload) }
}

function closedResult(): RequestResult {
  return { ok: false, error: NetlinkError.fromErrno(ERRNO.ECANCELED, 0, 'netlink socket closed') }
}

function asNetlinkError(e: unknown): NetlinkError {
  return NetlinkError.fromErrno(ERRNO.EIO, 0, e instanceof Error ? e.message : String(e))
}
