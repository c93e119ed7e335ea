import t from 'tap'
import { NetlinkError } from '../../src/netlink/errors.js'
import type { RequestResult } from '../../src/netlink/socket.js'
import { probeXdpReplace, REPLACE_PROBE, replaceSupport } from '../../src/rtnl/features.js'
import { XDP_FLAGS_REPLACE, XDP_FLAGS_SKB_MODE } from '../../src/rtnl/constants.js'
import { encodeSetLinkXdp } from '../../src/rtnl/xdp.js'
import { buildObjects } from '../helpers/bpf.js'
import { makeNetns, needsRoot } from '../helpers/netns.js'

const DIST = new URL('../../dist', import.meta.url).pathname

const refused = (errno: number, extAck?: string): RequestResult => ({ ok: false, error: new NetlinkError(-errno, 1, extAck) })

t.test('XDP_FLAGS_REPLACE, from the kernel\'s answer to the probe', async (t) => {
  const cases: [string, RequestResult, boolean | 'error'][] = [
    ['accepted: nothing attached on lo, nothing done', { ok: true, messages: [] }, true],
    ['EEXIST: a program runs on lo and is not the one expected (the flag was understood)', refused(17, 'Active program does not match expected'), true],
    ['EBUSY: a bpf_link holds lo\'s hook (checked after the flags)', refused(16, "Can't replace active BPF XDP link"), true],
    ['EINVAL: do_setlink refuses the unknown flag bit (Linux < 5.7)', refused(22), false],
    ['EPERM: says nothing about the flag', refused(1), 'error'],
  ]
  for (const [name, answer, want] of cases) {
    const r = replaceSupport(answer)
    t.same(r.ok ? r.value : 'error', want, name)
  }
})

t.test('the probe: one request on loopback, fd -1 expecting none, generic mode, that the encoder accepts', async (t) => {
  t.same(REPLACE_PROBE, { ifindex: 1, req: { fd: -1, expectedFd: -1, flags: XDP_FLAGS_REPLACE | XDP_FLAGS_SKB_MODE } })
  t.ok(encodeSetLinkXdp(REPLACE_PROBE.ifindex, REPLACE_PROBE.req).ok)
  const sent: unknown[] = []
  const r = await probeXdpReplace({ setXdp: async (reqs) => (sent.push(...reqs), [refused(22)]) })
  t.same(sent, [REPLACE_PROBE])
  t.same(r, { ok: true, value: false })
})

t.test('the probe against this kernel: it has the flag, and the probe changes nothing on loopback', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const objects = buildObjects(t)
  const probe = (): unknown =>
    JSON.parse(
      ns.exec(process.execPath, [
        '--input-type=module',
        '-e',
        `import { RtnlClient } from '${DIST}/rtnl/client.js'
         import { probeXdpReplace } from '${DIST}/rtnl/features.js'
         const c = new RtnlClient({ subscribe: false })
         const r = await probeXdpReplace(c)
         c.close()
         console.log(JSON.stringify(r.ok ? r.value : r.error.code))`,
      ]),
    )
  const loXdp = (): unknown => ns.ipJson<{ xdp?: { prog?: { id: number } } }[]>('-d', 'link', 'show', 'dev', 'lo')[0]!.xdp?.prog?.id ?? null
  t.equal(probe(), true, 'lo down, nothing attached')
  ns.ip('link', 'set', 'lo', 'up')
  t.equal(probe(), true, 'lo up, nothing attached')
  t.equal(loXdp(), null, 'still nothing attached')
  ns.ip('link', 'set', 'dev', 'lo', 'xdpgeneric', 'obj', objects.bundled('xdp_pass'), 'sec', 'xdp')
  const id = loXdp()
  t.type(id, 'number', 'a generic program on lo')
  t.equal(probe(), true, 'with a program attached (EEXIST)')
  t.equal(loXdp(), id, 'the program attached on lo is untouched')
})
