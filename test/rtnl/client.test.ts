/**
 * RtnlClient against the kernel, in a private network namespace.
 */
import t from 'tap'
import { makeNetns, needsRoot } from '../helpers/netns.js'
import { buildObjects } from '../helpers/bpf.js'

const DIST = new URL('../../dist', import.meta.url).pathname

t.test('close() right after a batch: requests the kernel carried out are answered ok, not cancelled', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb')
  const ifindex = ns.ipJson<{ ifindex: number }[]>('link', 'show', 'dev', 'va')[0]!.ifindex
  // A detach where nothing is attached succeeds and changes nothing. The batch is sent inside setXdp(), before its
  // first await; close() comes before any ack has been read.
  const script = `
    import { RtnlClient } from '${DIST}/rtnl/client.js'
    import { XDP_FLAGS_SKB_MODE } from '${DIST}/rtnl/constants.js'
    const c = new RtnlClient()
    const p = c.setXdp([${ifindex}, ${ifindex}, 999999].map((ifindex) => ({ ifindex, req: { fd: -1, flags: XDP_FLAGS_SKB_MODE } })))
    c.close()
    console.log(JSON.stringify((await p).map((r) => (r.ok ? 'ok' : r.error.code))))
  `
  const out = JSON.parse(ns.exec(process.execPath, ['--input-type=module', '-e', script])) as string[]
  t.same(out, ['ok', 'ok', 'ENODEV'], 'both detaches ok and the kernel\'s own error for the missing link')
})

t.test('getLink: an existing link as the kernel reports it (name, index, XDP); null for a missing one', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const objects = buildObjects(t)
  ns.ip('link', 'add', 'ga', 'type', 'veth', 'peer', 'name', 'gb')
  ns.ip('link', 'set', 'dev', 'ga', 'xdpgeneric', 'obj', objects.bundled('xdp_pass'), 'sec', 'xdp')
  const [ga] = ns.ipJson<{ ifindex: number; xdp: { prog: { id: number } } }[]>('-d', 'link', 'show', 'dev', 'ga')
  const gb = ns.ipJson<{ ifindex: number }[]>('link', 'show', 'dev', 'gb')[0]!.ifindex
  // The answer to a single RTM_GETLINK is a plain RTM_NEWLINK (no NLM_F_MULTI) carrying our port id and sequence
  // number, followed by the ack.
  const script = `
    import { RtnlClient } from '${DIST}/rtnl/client.js'
    const c = new RtnlClient({ subscribe: false })
    const pick = (l) => l && { ifindex: l.ifindex, name: l.name, kind: l.kind, xdp: l.xdp }
    const out = [pick(await c.getLink(${ga!.ifindex})), pick(await c.getLink(${gb})), await c.getLink(999999)]
    c.close()
    console.log(JSON.stringify(out))
  `
  const [a, b, missing] = JSON.parse(ns.exec(process.execPath, ['--input-type=module', '-e', script])) as unknown[]
  t.same(a, { ifindex: ga!.ifindex, name: 'ga', kind: 'veth', xdp: { mode: 'generic', progId: ga!.xdp.prog.id, skbProgId: ga!.xdp.prog.id } }, 'ga with its generic program')
  t.same(b, { ifindex: gb, name: 'gb', kind: 'veth', xdp: null }, 'gb without a program')
  t.equal(missing, null, 'no link 999999: null (ENODEV)')
})
