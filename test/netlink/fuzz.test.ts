/**
 * Malformed input must come back as an error value: never an exception, never a hang. Random and mutated inputs go
 * through every decoder; random attribute trees and message lists go through encode and back. The PRNG is seeded
 * (FUZZ_SEED=<n> to vary it) and a failure prints the seed, the case and the input in hex.
 */
import t, { type Test } from 'tap'
import { AttributeDecoder, AttributeEncoder, NetlinkDecodeError, parseAttributes } from '../../src/netlink/attributes.js'
import { NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_ACK_TLVS, NLM_F_CAPPED, nlmsgAlign } from '../../src/netlink/constants.js'
import {
  encodeMessages,
  isDone,
  isDumpInterrupted,
  parseDoneError,
  parseErrorMessage,
  parseMessages,
  type NetlinkMessage,
} from '../../src/netlink/message.js'
import { RTM_DELLINK, RTM_NEWLINK } from '../../src/rtnl/constants.js'
import { decodeLink } from '../../src/rtnl/link.js'
import { decodeXdp } from '../../src/rtnl/xdp.js'
import { captureNames, replies } from '../fixtures/netlink/kernel.js'
import { prng } from '../helpers/prng.js'

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed1e55) >>> 0

const rand = prng(SEED)
const int = (n: number): number => Math.floor(rand() * n)
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!
const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)))

type Accessor = (d: AttributeDecoder) => unknown
const ACCESSORS: Accessor[] = [
  (d) => d.u8(),
  (d) => d.u16(),
  (d) => d.u32(),
  (d) => d.s32(),
  (d) => d.u64(),
  (d) => d.string(),
  (d) => d.bytes(),
  (d) => d.type(),
  (d) => d.isNested(),
]

/** Reads every attribute with a randomly chosen accessor, descending into nests up to `max` levels. */
function walk(d: AttributeDecoder, depth: number, max = 8): number {
  let n = 0
  while (d.next()) {
    n++
    if (depth < max && rand() < 0.4) d.nested((x) => walk(x, depth + 1, max))
    else pick(ACCESSORS)(d)
  }
  const e = d.err()
  if (e !== undefined && !(e instanceof NetlinkDecodeError)) throw new Error('err() is not a NetlinkDecodeError')
  return n
}

function checkResult(r: { ok: boolean; error?: unknown }): void {
  if (!r.ok && !(r.error instanceof NetlinkDecodeError)) throw new Error('error value is not a NetlinkDecodeError')
}

/** Every decoder over one input, as a datagram, as a message payload and as an attribute run. */
function exercise(buf: Buffer): void {
  const parsed = parseMessages(buf)
  checkResult(parsed)
  if (parsed.ok) for (const m of parsed.value) exerciseMessage(m)
  exercisePayload(buf)
  checkResult(parseAttributes(buf))
  checkResult(decodeXdp(buf))
  walk(new AttributeDecoder(buf), 0)
}

/** `payload` under each message type that has a decoder, with and without NLM_F_CAPPED and NLM_F_ACK_TLVS. */
function exercisePayload(payload: Buffer): void {
  for (const type of [RTM_NEWLINK, RTM_DELLINK, NLMSG_ERROR, NLMSG_DONE]) {
    for (const flags of [0, NLM_F_CAPPED, NLM_F_ACK_TLVS, NLM_F_CAPPED | NLM_F_ACK_TLVS]) {
      exerciseMessage({ type, flags, seq: 1, pid: 0, payload })
    }
  }
}

function exerciseMessage(m: NetlinkMessage): void {
  checkResult(decodeLink(m))
  checkResult(parseErrorMessage(m))
  parseDoneError(m)
  isDone(m)
  isDumpInterrupted(m)
}

/** Runs `f` over `inputs`, turning the first exception into a failure that names the seed and the input. */
function survive(t: Test, what: string, inputs: Iterable<Buffer>, f: (b: Buffer) => void = exercise): void {
  let n = 0
  for (const b of inputs) {
    n++
    try {
      f(b)
    } catch (e) {
      t.fail(`${what}: threw on input #${n} (FUZZ_SEED=${SEED}): ${(e as Error).stack}\ninput: ${b.toString('hex')}`)
      return
    }
  }
  t.pass(`${what}: ${n} inputs, no exception`)
}

const kernelDatagrams = captureNames().flatMap((n) => replies(n))
const kernelMessages = kernelDatagrams.flatMap((b) => {
  const r = parseMessages(b)
  return r.ok ? r.value : []
})

t.test(`fuzz (FUZZ_SEED=${SEED})`, async (t) => {
  t.setTimeout(60000)

  t.test('random buffers', async (t) => {
    survive(t, 'uniform bytes', (function* () {
      for (let i = 0; i < 1500; i++) yield bytes(int(96))
    })())
    // Mostly plausible headers with lengths near the edges, so the walkers get past the first attribute.
    survive(t, 'attribute-shaped bytes', (function* () {
      for (let i = 0; i < 1500; i++) {
        const parts: Buffer[] = []
        for (let k = int(8); k >= 0; k--) {
          const len = pick([0, 1, 3, 4, 5, 8, 12, int(40), 0xffff])
          const hdr = Buffer.alloc(4)
          hdr.writeUInt16LE(len, 0)
          hdr.writeUInt16LE(pick([1, 2, 3, 4, 16, 18, 43, 52, 53]) | (rand() < 0.3 ? 0x8000 : 0), 2)
          parts.push(hdr, bytes(Math.max(0, Math.min(len - 4, 40) + pick([0, 0, 0, -1, 1, 3]))))
        }
        yield Buffer.concat(parts)
      }
    })())
  })

  t.test('truncations of real kernel messages, at every byte', async (t) => {
    let wrongOk = 0
    survive(t, 'datagram prefixes', (function* () {
      for (const d of kernelDatagrams) {
        // cutting at a message's end (or inside its trailing pad) leaves whole messages: the only valid prefixes
        const ends = new Set<number>([0])
        const all = parseMessages(d)
        let off = 0
        if (all.ok) {
          for (const m of all.value) {
            const len = NLMSG_HDRLEN + m.payload.length
            for (let k = off + len; k <= off + nlmsgAlign(len); k++) ends.add(k)
            off += nlmsgAlign(len)
          }
        }
        for (let n = 0; n < d.length; n++) {
          const cut = d.subarray(0, n)
          if (!ends.has(n) && parseMessages(cut).ok) wrongOk++
          yield cut
        }
      }
    })(), (b) => checkResult(parseMessages(b)))
    t.equal(wrongOk, 0, 'a datagram cut inside a message never parses')
    // a message cut short with nlmsg_len agreeing: the decoders see a short payload, not a short datagram
    const prefixes = function* (ms: NetlinkMessage[]): Generator<Buffer> {
      for (const m of ms) for (let n = 0; n <= m.payload.length; n++) yield m.payload.subarray(0, n)
    }
    const isLink = (m: NetlinkMessage): boolean => m.type === RTM_NEWLINK || m.type === RTM_DELLINK
    survive(t, 'link payload prefixes', prefixes(kernelMessages.filter(isLink)), (p) =>
      checkResult(decodeLink({ type: RTM_NEWLINK, flags: 0, seq: 0, pid: 0, payload: p })),
    )
    survive(t, 'NLMSG_ERROR/NLMSG_DONE payload prefixes', prefixes(kernelMessages.filter((m) => !isLink(m))), exercisePayload)
  })

  t.test('mutations of real kernel messages', async (t) => {
    survive(t, 'byte flips', (function* () {
      for (let i = 0; i < 600; i++) {
        const b = Buffer.from(pick(kernelDatagrams))
        for (let k = 1 + int(4); k > 0; k--) b[int(b.length)] = int(256)
        yield b
      }
    })())
    // Attribute headers of a real RTM_NEWLINK: point one at a time at 0, 1-3, past the end, 0xffff, odd sizes.
    const links = kernelMessages.filter((m) => m.type === RTM_NEWLINK)
    survive(t, 'nla_len rewrites', (function* () {
      for (let i = 0; i < 600; i++) {
        const m = pick(links)
        const p = Buffer.from(m.payload)
        const at = attributeOffsets(p, 16)
        const off = pick(at)
        p.writeUInt16LE(pick([0, 1, 2, 3, 5, 7, 0xffff, p.length - off + 1, p.length - off + 4]) & 0xffff, off)
        yield p
      }
    })(), (p) => {
      const r = decodeLink({ type: RTM_NEWLINK, flags: 0, seq: 0, pid: 0, payload: p })
      checkResult(r)
    })
  })

  t.test('misaligned and zero-length attributes', async (t) => {
    const zero = Buffer.from('0000010000000000', 'hex')
    t.notOk(parseAttributes(zero).ok, 'nla_len 0 is an error, not an endless loop')
    const odd = new AttributeEncoder().u8(1, 1).string(2, 'abc').bytes(3, Buffer.from('0102030405', 'hex')).encode()
    const shifted = Buffer.concat([Buffer.alloc(1), odd]).subarray(1) // an odd byteOffset into its ArrayBuffer
    const r = parseAttributes(shifted)
    t.same(r.ok && r.value.map((a) => a.data.toString('hex')), ['01', '61626300', '0102030405'])
    survive(t, 'odd slices of real payloads', (function* () {
      for (let i = 0; i < 600; i++) {
        const p = pick(kernelMessages).payload
        const start = int(p.length)
        yield p.subarray(start, start + int(p.length - start + 1))
      }
    })())
  })

  t.test('deeply nested garbage', async (t) => {
    const depth = 2000
    let inner = Buffer.from('ffff', 'hex') // a 2-byte leftover: a truncated attribute header at the bottom
    for (let i = 0; i < depth; i++) {
      const hdr = Buffer.alloc(4)
      hdr.writeUInt16LE(4 + inner.length, 0)
      hdr.writeUInt16LE(1 | 0x8000, 2)
      inner = Buffer.concat([hdr, inner])
    }
    const d = new AttributeDecoder(inner)
    walkAll(d)
    t.equal(d.err()?.offset, depth * 4, 'the error surfaces at the top, pointing at the bottom')
    survive(t, 'deep nests, corrupted at random depths', (function* () {
      for (let i = 0; i < 200; i++) {
        const b = Buffer.from(inner)
        const at = 4 * int(depth)
        b.writeUInt16LE(pick([0, 3, 0xffff, b.length]), at)
        yield b
      }
    })(), (b) => {
      const x = new AttributeDecoder(b)
      walkAll(x)
      if (!x.err()) throw new Error('corruption not reported')
      decodeLink({ type: RTM_NEWLINK, flags: 0, seq: 0, pid: 0, payload: Buffer.concat([Buffer.alloc(16), b]) })
    })
  })

  t.test('round trip: random attribute trees', async (t) => {
    let n = 0
    for (let i = 0; i < 1500; i++) {
      const tree = randomTree(0)
      const buf = encodeTree(new AttributeEncoder(), tree).encode()
      const back = decodeTree(new AttributeDecoder(buf), tree)
      if (!back.ok) {
        t.fail(`round trip #${i} (FUZZ_SEED=${SEED}): ${back.why}\n${buf.toString('hex')}`)
        return
      }
      n++
    }
    t.equal(n, 1500, 'every tree decoded to what was encoded')
  })

  t.test('round trip: random message lists', async (t) => {
    for (let i = 0; i < 500; i++) {
      const list: NetlinkMessage[] = Array.from({ length: 1 + int(5) }, () => ({
        type: int(0x10000),
        flags: int(0x10000),
        seq: int(2 ** 32),
        pid: int(2 ** 32),
        payload: bytes(int(40)),
      }))
      const r = parseMessages(encodeMessages(list))
      const same =
        r.ok &&
        r.value.length === list.length &&
        r.value.every((m, k) => {
          const w = list[k]!
          return m.type === w.type && m.flags === w.flags && m.seq === w.seq && m.pid === w.pid && m.payload.equals(w.payload)
        })
      if (!same) {
        t.fail(`message round trip #${i} (FUZZ_SEED=${SEED})`)
        return
      }
    }
    t.pass('500 lists')
  })
})

function attributeOffsets(p: Buffer, start: number): number[] {
  const out: number[] = []
  let off = start
  while (off + 4 <= p.length) {
    out.push(off)
    const len = p.readUInt16LE(off)
    if (len < 4) break
    off += (len + 3) & ~3
  }
  return out.length ? out : [start]
}

function walkAll(d: AttributeDecoder): void {
  while (d.next()) d.nested(walkAll)
}

/**
 * Leaf attribute kinds for the round trip: how to make a value, encode it and read it back. Values are compared
 * with ===, so bytes travel as hex and a flag as null.
 */
const LEAVES = {
  u8: { gen: () => int(0x100), put: (e, t, v) => e.u8(t, v as number), get: (d) => d.u8() },
  u16: { gen: () => int(0x10000), put: (e, t, v) => e.u16(t, v as number), get: (d) => d.u16() },
  u32: { gen: () => int(2 ** 32), put: (e, t, v) => e.u32(t, v as number), get: (d) => d.u32() },
  s32: { gen: () => int(2 ** 32) - 2 ** 31, put: (e, t, v) => e.s32(t, v as number), get: (d) => d.s32() },
  u64: {
    gen: () => (BigInt(int(2 ** 32)) << 32n) | BigInt(int(2 ** 32)),
    put: (e, t, v) => e.u64(t, v as bigint),
    get: (d) => d.u64(),
  },
  string: {
    gen: () => Array.from({ length: int(20) }, () => pick(['a', 'z', '0', '-', '.', 'é', '€', '😀'])).join(''),
    put: (e, t, v) => e.string(t, v as string),
    get: (d) => d.string(),
  },
  bytes: {
    gen: () => bytes(int(24)).toString('hex'),
    put: (e, t, v) => e.bytes(t, Buffer.from(v as string, 'hex')),
    get: (d) => d.bytes().toString('hex'),
  },
  flag: { gen: () => null, put: (e, t) => e.flag(t), get: (d) => (d.bytes().length === 0 ? null : 'a payload') },
} satisfies Record<string, { gen: () => unknown; put: (e: AttributeEncoder, type: number, v: unknown) => unknown; get: (d: AttributeDecoder) => unknown }>

type LeafKind = keyof typeof LEAVES
type Node = { type: number; leaf: LeafKind; value: unknown } | { type: number; children: Node[] }

function randomTree(depth: number): Node[] {
  return Array.from({ length: int(6) }, (): Node => {
    const type = int(0x4000)
    if (depth < 4 && rand() < 0.2) return { type, children: randomTree(depth + 1) }
    const leaf = pick(Object.keys(LEAVES) as LeafKind[])
    return { type, leaf, value: LEAVES[leaf].gen() }
  })
}

function encodeTree(e: AttributeEncoder, nodes: Node[]): AttributeEncoder {
  for (const n of nodes) {
    if ('children' in n) e.nested(n.type, (x) => encodeTree(x, n.children))
    else LEAVES[n.leaf].put(e, n.type, n.value)
  }
  return e
}

function decodeTree(d: AttributeDecoder, nodes: Node[]): { ok: true } | { ok: false; why: string } {
  for (const [i, n] of nodes.entries()) {
    if (!d.next()) return { ok: false, why: `attribute ${i} missing: ${d.err()?.message ?? 'end of buffer'}` }
    if (d.type() !== n.type) return { ok: false, why: `attribute ${i}: type ${d.type()} != ${n.type}` }
    if (d.isNested() !== 'children' in n) return { ok: false, why: `attribute ${i}: NLA_F_NESTED` }
    if ('children' in n) {
      const r = d.nested((x) => decodeTree(x, n.children))
      if (!r || !r.ok) return r ?? { ok: false, why: `attribute ${i}: ${d.err()?.message}` }
      continue
    }
    const got = LEAVES[n.leaf].get(d)
    if (got !== n.value) return { ok: false, why: `attribute ${i} (${n.leaf}): ${String(got)} != ${String(n.value)}` }
  }
  if (d.next()) return { ok: false, why: 'extra attributes' }
  return d.err() ? { ok: false, why: d.err()!.message } : { ok: true }
}
