/**
 * RtnlClient against the kernel, in a private network namespace.
 */
import t from 'tap'
import { makeNetns, needsRoot } from '../helpers/netns.js'

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
