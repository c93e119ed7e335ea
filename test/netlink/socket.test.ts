/**
 * NetlinkSocket: its pure parts, and its answer matching over a scripted endpoint. The socket is exercised against
 * the kernel by the rtnl and daemon tests, and against the fake kernel (test/helpers/nltest.ts) by test/rtnl/nltest.
 */
import t from 'tap'
import { ERRNO } from '../../src/ffi/errno.js'
import { NLMSG_ERROR, NLM_F_MULTI } from '../../src/netlink/constants.js'
import { encodeMessages, parseMessages, type NetlinkMessage } from '../../src/netlink/message.js'
import { NetlinkSocket, windowStarts, type NetlinkEndpoint } from '../../src/netlink/socket.js'

/** A request list from a picture: '.' a request, '+' one that goes with the one before it. */
const reqs = (picture: string) => [...picture].map((c) => ({ withPrevious: c === '+' }))

t.test('windowStarts: every max requests, never between a request and one that goes with it', async (t) => {
  const cases: [string, number, number[], string][] = [
    ['', 4, [], 'nothing to send'],
    ['...', 4, [0], 'fewer than a window'],
    ['........', 4, [0, 4], 'whole windows'],
    ['.........', 4, [0, 4, 8], 'a short last window'],
    ['...+....', 4, [0, 4], 'the pair at 2-3 ends the first window: no cut needed'],
    ['....+...', 4, [0, 3, 7], 'the pair at 3-4 would be cut at 4: the window ends before it'],
    ['..+.+...', 4, [0, 3, 7], 'a pair at 1-2 stays whole; the one at 3-4 starts the next window'],
    ['.+++++..', 4, [0, 4], 'a chain longer than a window is cut at max: nothing else can be done'],
    ['.+.+.+.+', 2, [0, 2, 4, 6], 'pairs that fit exactly'],
    ['+...', 2, [0, 2], 'a first request marked withPrevious has nothing before it'],
  ]
  for (const [picture, max, starts, why] of cases) t.same(windowStarts(reqs(picture), max), starts, `${picture || '(empty)'}/${max}: ${why}`)
})

t.test('windowStarts: every request is in exactly one window, in order, none over max, no pair split where it fits', async (t) => {
  for (let seed = 1; seed <= 200; seed++) {
    let x = seed
    const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    const picture = Array.from({ length: Math.floor(rnd() * 40) }, (_, i) => (i > 0 && rnd() < 0.3 ? '+' : '.')).join('')
    const max = 1 + Math.floor(rnd() * 8)
    const s = windowStarts(reqs(picture), max)
    const ends = [...s.slice(1), picture.length]
    const ok = s.every((start, k) => ends[k]! > start && ends[k]! - start <= max) && (picture.length === 0 ? s.length === 0 : s[0] === 0)
    if (!ok) t.fail(`seed ${seed}: ${picture}/${max} -> ${s}`)
    for (const start of s) {
      // a cut before a '+' only when the chain it belongs to is longer than a window
      if (picture[start] !== '+') continue
      let chainStart = start
      while (chainStart > 0 && picture[chainStart] === '+') chainStart--
      let chainEnd = start
      while (chainEnd + 1 < picture.length && picture[chainEnd + 1] === '+') chainEnd++
      if (chainEnd - chainStart + 1 <= max) t.fail(`seed ${seed}: ${picture}/${max} cut a chain of ${chainEnd - chainStart + 1} at ${start}`)
    }
  }
  t.pass('200 random pictures')
})

/** An endpoint whose answers the test writes: what was sent is kept, what is pushed is read at the next wake-up. */
class Scripted implements NetlinkEndpoint {
  readonly portId = 4242
  closed = false
  sent: NetlinkMessage[] = []
  #queue: Buffer[] = []
  #wake: (() => void) | null = null
  send(d: Buffer): void {
    const m = parseMessages(Buffer.from(d))
    if (!m.ok) throw m.error
    this.sent.push(...m.value)
  }
  recv(b: Buffer): number {
    const d = this.#queue.shift()
    if (!d) return -ERRNO.EAGAIN
    d.copy(b)
    return d.length
  }
  watch(cb: () => void): void {
    this.#wake = cb
  }
  receiveBufferSize(): number {
    return 0
  }
  close(): void {
    this.closed = true
  }
  push(...msgs: NetlinkMessage[]): void {
    this.#queue.push(encodeMessages(msgs))
    setImmediate(() => this.#wake?.())
  }
}

t.test('answers are matched by port id and sequence number, whatever their type', async (t) => {
  const ep = new Scripted()
  const s = new NetlinkSocket(ep)
  const notes: string[] = []
  s.on('notification', (m) => notes.push(`type ${m.type} seq ${m.seq} pid ${m.pid}`))
  const p = s.request({ type: 18, payload: Buffer.alloc(16) })
  const { seq } = ep.sent[0]!
  const msg = (type: number, flags: number, mseq: number, pid: number, byte = 0): NetlinkMessage => ({ type, flags, seq: mseq, pid, payload: Buffer.from([byte]) })
  const ack: NetlinkMessage = { type: NLMSG_ERROR, flags: 0x100, seq, pid: ep.portId, payload: Buffer.concat([Buffer.alloc(4), Buffer.alloc(16)]) }
  ep.push(
    msg(16, 0, seq, ep.portId, 1), // the answer to a single RTM_GETLINK: a plain RTM_NEWLINK
    msg(16, 0, 0, 0, 2), // a notification: port id 0, sequence 0
    msg(16, 0, seq, 99, 3), // a notification another socket's NLM_F_ECHO request caused: its port id, not ours
    msg(16, NLM_F_MULTI, seq, ep.portId, 4), // part of a multipart answer
    ack,
  )
  const r = await p
  if (!r.ok) throw r.error
  t.strictSame(r.messages.map((m) => [m.type, m.payload[0]]), [[16, 1], [16, 4]], 'ours, plain and multipart, are the answer')
  t.strictSame(notes, ['type 16 seq 0 pid 0', `type 16 seq ${seq} pid 99`], 'the others are notifications')
  s.close()
})
