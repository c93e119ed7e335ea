/**
 * One list of rtnetlink requests, sent through NetlinkSocket to the kernel or to the fake one (nltest.ts), with what
 * came back: errno, extended-ack text and offset, the links of the answer and the notifications it caused. The
 * nltest test runs it on both and compares. Run as a script (inside a network namespace, as root) it sends the
 * steps of argv[2] to the kernel and prints the outcomes as JSON:
 *   node rtnl-steps.ts '{"steps": [...], "ifindex": {"va": 3}, "programs": {"pass": 501}}'
 */
import { pathToFileURL } from 'node:url'
import { progFdById } from '../../src/ffi/bpf-fd.js'
import { AttributeEncoder, getS32 } from '../../src/netlink/attributes.js'
import { RTMGRP_LINK } from '../../src/netlink/constants.js'
import { NetlinkSocket, type OpenNetlink } from '../../src/netlink/socket.js'
import { IFINFOMSG_LEN, RTM_NEWLINK } from '../../src/rtnl/constants.js'
import { decodeLink } from '../../src/rtnl/link.js'

/** An attribute: [kind, type, value]; `fd` is a program by name (a descriptor of it), or a number as is. */
export type StepAttr =
  | ['u32' | 's32' | 'u8', number, number]
  | ['fd', number, string | number]
  | ['string', number, string]
  | ['raw', number, string]
  | ['nest', number, StepAttr[]]

export interface Step {
  name: string
  type: number
  /** Beside NLM_F_REQUEST | NLM_F_ACK. */
  flags?: number
  /** The ifinfomsg's link, by name (its index) or as a number. */
  dev: string | number
  ifiFlags?: number
  ifiChange?: number
  attrs?: StepAttr[]
}

export interface Outcome {
  name: string
  errno: number
  extAck: string | null
  offset: number | null
  /** Names of the links in the answer. */
  answer: string[]
  /** The notifications the step caused: 'new va', 'del vb'. */
  notified: string[]
}

export interface StepEnv {
  ifindex: Record<string, number>
  /** Program name -> descriptor. */
  fds: Record<string, number>
}

/** A nest is flagged NLA_F_NESTED, as libbpf and iproute2 send IFLA_XDP. */
function encodeInto(e: AttributeEncoder, attrs: StepAttr[], env: StepEnv): AttributeEncoder {
  for (const [kind, type, v] of attrs) {
    switch (kind) {
      case 'u32':
        e.u32(type, v as number)
        break
      case 's32':
        e.s32(type, v as number)
        break
      case 'u8':
        e.u8(type, v as number)
        break
      case 'fd':
        e.s32(type, typeof v === 'number' ? v : fdOf(env, v as string))
        break
      case 'string':
        e.string(type, v as string)
        break
      case 'raw':
        e.bytes(type, Buffer.from(v as string, 'hex'))
        break
      case 'nest':
        e.nested(type, (n) => encodeInto(n, v as StepAttr[], env))
        break
    }
  }
  return e
}

function fdOf(env: StepEnv, name: string): number {
  const fd = env.fds[name]
  if (fd === undefined) throw new Error(`no descriptor for program ${name}`)
  return fd
}

/** Sends each step on its own connection's request socket, noting what a subscribed one heard meanwhile. */
export async function runSteps(open: OpenNetlink, steps: Step[], env: StepEnv): Promise<Outcome[]> {
  const req = open({})
  const events = open({ groups: RTMGRP_LINK })
  const names = new Map(Object.entries(env.ifindex).map(([n, i]) => [i, n]))
  let heard: string[] = []
  events.on('notification', (m) => heard.push(`${m.type === RTM_NEWLINK ? 'new' : 'del'} ${names.get(getS32(m.payload, 4)) ?? getS32(m.payload, 4)}`))
  const out: Outcome[] = []
  try {
    for (const s of steps) {
      const ifi = Buffer.alloc(IFINFOMSG_LEN)
      ifi.writeInt32LE(typeof s.dev === 'number' ? s.dev : (env.ifindex[s.dev] ?? -1), 4)
      ifi.writeUInt32LE(s.ifiFlags ?? 0, 8)
      ifi.writeUInt32LE(s.ifiChange ?? 0, 12)
      const r = await req.request({ type: s.type, flags: s.flags, payload: Buffer.concat([ifi, encodeInto(new AttributeEncoder(), s.attrs ?? [], env).encode()]) })
      // rtnetlink handles a request inside the sender's sendmsg: what it notified is queued on the other socket now.
      events.drainNow()
      out.push({
        name: s.name,
        errno: r.ok ? 0 : r.error.errno,
        extAck: r.ok ? null : (r.error.extAck ?? null),
        offset: r.ok ? null : (r.error.extAckOffset ?? null),
        answer: r.ok ? r.messages.flatMap((m) => (m.type === RTM_NEWLINK ? [decodeName(m.payload)] : [])) : [],
        notified: heard.sort(),
      })
      heard = []
    }
  } finally {
    req.close()
    events.close()
  }
  return out
}

function decodeName(payload: Buffer): string {
  const d = decodeLink({ type: RTM_NEWLINK, flags: 0, seq: 0, pid: 0, payload })
  return d.ok ? d.value.name : `(${d.error.message})`
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const input = JSON.parse(process.argv[2] ?? '{}') as { steps: Step[]; ifindex: Record<string, number>; programs: Record<string, number> }
  const fds: Record<string, number> = {}
  // Two descriptors of one program are `NAME` and `NAME2` (IFLA_XDP_EXPECTED_FD compares programs, not numbers).
  const keep = []
  for (const [name, id] of Object.entries(input.programs)) {
    for (const as of [name, `${name}2`]) {
      const fd = progFdById(id)
      if (!fd) throw new Error(`program ${id} is gone`)
      keep.push(fd)
      fds[as] = fd.raw
    }
  }
  const out = await runSteps(NetlinkSocket.open, input.steps, { ifindex: input.ifindex, fds })
  for (const fd of keep) fd.close()
  console.log(JSON.stringify(out))
}
