import t from 'tap'
import { LinkTable } from '../../src/links/table.js'
import { Reconciler, type ReconcilerEvent, type ReconcilerOptions, type XdpSetter } from '../../src/reconcile/reconciler.js'
import type { Desire, Target } from '../../src/reconcile/desire.js'
import type { RequestResult } from '../../src/netlink/socket.js'
import { NetlinkError } from '../../src/netlink/errors.js'
import type { LinkState } from '../../src/rtnl/link.js'
import type { XdpSetRequest } from '../../src/rtnl/xdp.js'
import {
  XDP_FLAGS_DRV_MODE,
  XDP_FLAGS_REPLACE,
  XDP_FLAGS_SKB_MODE,
  XDP_FLAGS_UPDATE_IF_NOEXIST,
} from '../../src/rtnl/constants.js'
import { FakeSource, link } from '../helpers/link-state.js'
import { waitFor } from '../helpers/netns.js'

/** The kernel's answer refusing a request (NLMSG_ERROR with its extended-ack text); `code` names it for the reader. */
const nlerr = (code: string, errno: number, extAck?: string): NetlinkError => {
  const e = new NetlinkError(errno, 0, extAck)
  if (e.code !== code) throw new Error(`${code} is not errno ${errno}`)
  return e
}

/** A reconciler as the daemon makes one, its outcomes and events collected in order. */
function reconciler(table: LinkTable, setter: XdpSetter, d: Desire, over: Partial<ReconcilerOptions> = {}) {
  const events: ReconcilerEvent[] = []
  const rec = new Reconciler({ table, setter, desire: d, settleMs: 2, maxSettleMs: 20, report: (e) => void events.push(e), ...over })
  return { rec, events }
}
const kinds = (events: ReconcilerEvent[], kind: ReconcilerEvent['kind']) => events.filter((e) => e.kind === kind)

/**
 * A kernel stand-in for IFLA_XDP, with the rules of net/core/dev.c dev_xdp_attach that matter here: fds are program
 * ids (fd 100+id), UPDATE_IF_NOEXIST refuses an attached program (EBUSY), REPLACE checks the expected program
 * (EEXIST), one mode at a time, native refused where `noNative`.
 */
class FakeKernel implements XdpSetter {
  batches: { ifindex: number; req: XdpSetRequest }[][] = []
  noNative = new Set<number>()
  failNext: NetlinkError[] = []
  constructor(readonly src: FakeSource) {}
  async setXdp(reqs: { ifindex: number; req: XdpSetRequest }[]): Promise<RequestResult[]> {
    this.batches.push(reqs)
    await new Promise((r) => setImmediate(r))
    return reqs.map(({ ifindex, req }) => {
      const forced = this.failNext.shift()
      if (forced) return { ok: false, error: forced }
      const l = this.src.kernel.get(ifindex)
      if (!l) return { ok: false, error: nlerr('ENODEV', 19) }
      const mode = req.flags & XDP_FLAGS_SKB_MODE ? 'generic' : req.flags & XDP_FLAGS_DRV_MODE ? 'native' : 'native'
      if (mode === 'native' && this.noNative.has(ifindex) && req.fd >= 0) return { ok: false, error: nlerr('EOPNOTSUPP', 95, 'Underlying driver does not support XDP in native mode') }
      const cur = l.xdp
      if (cur && cur.mode !== mode) return { ok: false, error: nlerr('EEXIST', 17, "Native and generic XDP can't be active at the same time.") }
      if (req.flags & XDP_FLAGS_UPDATE_IF_NOEXIST && cur) return { ok: false, error: nlerr('EBUSY', 16, 'XDP program already attached') }
      if (req.flags & XDP_FLAGS_REPLACE) {
        const expected = 'expectedFd' in req ? req.expectedFd - 100 : -1
        if ((cur?.progId ?? -1) !== expected && !(expected === -1 - 100 && !cur)) return { ok: false, error: nlerr('EEXIST', 17, 'Active program does not match expected') }
      }
      this.src.set(link(ifindex, l.name, { ...l, xdp: req.fd < 0 ? null : ({ mode, progId: req.fd - 100 } as LinkState['xdp']) }))
      return { ok: true, messages: [] }
    })
  }
  async getLink(ifindex: number) {
    return this.src.kernel.get(ifindex) ?? null
  }
  async dumpLinks() {
    this.dumps++
    return [...this.src.kernel.values()]
  }
  dumps = 0
  requests() {
    return this.batches.flat()
  }
}

function desire(targets: Record<string, Target>, ours: number[]): Desire {
  return {
    targetFor: (l) => {
      for (const [prefix, tg] of Object.entries(targets)) if (l.name.startsWith(prefix)) return tg
      return null
    },
    isOurs: (id) => ours.includes(id),
    fdForProgId: (id) => ({ fd: 100 + id, release: () => {} }),
  }
}
const target = (progId: number, over: Partial<Target> = {}): Target => ({
  entry: 'attach[0]',
  progId,
  fd: 100 + progId,
  mode: 'auto',
  replaceForeign: false,
  ...over,
})

async function setup(t: { teardown(fn: () => void): void }, links: LinkState[], d: Desire) {
  const src = new FakeSource()
  for (const l of links) src.set(l, false)
  const kernel = new FakeKernel(src)
  const table = new LinkTable(src)
  const { rec, events } = reconciler(table, kernel, d)
  t.teardown(() => rec.stop())
  // As the daemon starts: the dump's links are touched one by one as the table learns them, and reconcileAll()
  // makes them all due at once, so they go in one batch however slowly a loaded machine runs the touches.
  await table.start()
  rec.reconcileAll()
  await rec.idle()
  return { src, kernel, events, table, rec }
}

const xdpOf = (src: FakeSource, i: number) => src.kernel.get(i)?.xdp ?? null

t.test('start-up: attaches matching links in one batch, leaves the rest', async (t) => {
  const { src, kernel, rec } = await setup(t, [link(1, 'lo', { kind: null }), link(2, 'veth0'), link(3, 'veth1'), link(4, 'eth0')], desire({ veth: target(7) }, [7]))
  t.equal(kernel.batches.length, 1, 'one batch')
  t.same(kernel.batches[0]!.map((r) => [r.ifindex, r.req.fd, r.req.flags]), [
    [2, 107, XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_DRV_MODE],
    [3, 107, XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_DRV_MODE],
  ])
  t.same(xdpOf(src, 2), { mode: 'native', progId: 7 })
  t.same(Object.fromEntries(rec.records().map((r) => [r.name, r.state])), { lo: 'unmanaged', veth0: 'attached', veth1: 'attached', eth0: 'unmanaged' })
  t.equal(rec.counters.attaches, 2)
})

t.test('desired equals observed: zero requests', async (t) => {
  const { kernel, src, rec } = await setup(t, [link(2, 'veth0', { xdp: { mode: 'generic', progId: 7 } as never })], desire({ veth: target(7) }, [7]))
  t.equal(kernel.batches.length, 0)
  // events that do not change the outcome cost nothing either
  src.set(link(2, 'veth0', { operState: 'up', xdp: { mode: 'generic', progId: 7 } as never }))
  await new Promise((r) => setTimeout(r, 10))
  await rec.idle()
  t.equal(kernel.batches.length, 0)
})

t.test('a link that appears later is attached before it is up', async (t) => {
  const { src, rec } = await setup(t, [], desire({ veth: target(7) }, [7]))
  src.set(link(5, 'veth5', { up: false, operState: 'down' }))
  await new Promise((r) => setTimeout(r, 10))
  await rec.idle()
  t.same(xdpOf(src, 5), { mode: 'native', progId: 7 })
})

t.test('EOPNOTSUPP in auto mode falls back to generic, once', async (t) => {
  const src0 = [link(2, 'veth0')]
  const d = desire({ veth: target(7) }, [7])
  const src = new FakeSource()
  for (const l of src0) src.set(l, false)
  const kernel = new FakeKernel(src)
  kernel.noNative.add(2)
  const table = new LinkTable(src)
  const { rec, events } = reconciler(table, kernel, d)
  t.teardown(() => rec.stop())
  await table.start()
  await rec.idle()
  t.same(xdpOf(src, 2), { mode: 'generic', progId: 7 })
  t.same(kernel.requests().map((r) => r.req.flags), [XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_DRV_MODE, XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_SKB_MODE])
  t.equal(kinds(events, 'fallback').length, 1)
  t.match(kinds(events, 'fallback'), [{ native: 'unsupported', failure: { source: 'kernel', errno: 95, extAck: 'Underlying driver does not support XDP in native mode' } }])
})

t.test('auto mode: a driver refusing native XDP as configured (ERANGE, EINVAL, ENOMEM, ENOSPC) means generic, with a warning', async (t) => {
  for (const [code, errno, extAck] of [
    ['ERANGE', 34, 'veth: Peer MTU is too large to set XDP'],
    ['EINVAL', 22, 'MTU too large for XDP'],
    ['ENOMEM', 12, undefined],
    ['ENOSPC', 28, undefined],
  ] as const) {
    const { src, kernel, events } = await setup(t, [], desire({ veth: target(7) }, [7]))
    kernel.failNext.push(nlerr(code, errno, extAck))
    src.set(link(2, 'veth0'))
    await waitFor(() => xdpOf(src, 2) !== null, 'veth0 attached')
    t.same(xdpOf(src, 2), { mode: 'generic', progId: 7 }, `${code}: attached in generic mode`)
    t.same(kernel.requests().map((r) => r.req.flags), [XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_DRV_MODE, XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_SKB_MODE])
    // its warning's text: test/log/outcomes.test.ts
    t.same(kinds(events, 'fallback'), [
      { kind: 'fallback', link: { ifindex: 2, name: 'veth0', entry: 'attach[0]' }, native: 'refused', failure: { source: 'kernel', errno, extAck: extAck ?? null } },
    ])
    t.equal(kinds(events, 'failed').length, 0, `${code}: no error`)
  }
})

t.test('auto mode: refused for its configuration, generic; once that program is detached by hand, native again', async (t) => {
  const { src, kernel, events } = await setup(t, [], desire({ veth: target(7) }, [7]))
  kernel.failNext.push(nlerr('ERANGE', 34, 'veth: Peer MTU is too large to set XDP'))
  src.set(link(2, 'veth0'))
  await waitFor(() => xdpOf(src, 2) !== null, 'veth0 attached')
  t.same(xdpOf(src, 2), { mode: 'generic', progId: 7 })
  // The operator lowers the MTU and detaches the generic program.
  src.set(link(2, 'veth0', { xdp: null }))
  await waitFor(() => xdpOf(src, 2) !== null, 'veth0 attached again')
  t.same(xdpOf(src, 2), { mode: 'native', progId: 7 }, 'native this time')
  t.equal(kinds(events, 'fallback').length, 1)
  // Without a support problem, EOPNOTSUPP stays final: a detach by hand brings generic back, no native attempt.
  const n = await setup(t, [], desire({ veth: target(7) }, [7]))
  n.kernel.noNative.add(3)
  n.src.set(link(3, 'veth1'))
  await waitFor(() => xdpOf(n.src, 3) !== null, 'veth1 attached')
  n.src.set(link(3, 'veth1', { xdp: null }))
  await waitFor(() => xdpOf(n.src, 3) !== null, 'veth1 attached again')
  t.same(n.kernel.requests().map((r) => r.req.flags & (XDP_FLAGS_DRV_MODE | XDP_FLAGS_SKB_MODE)), [XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE, XDP_FLAGS_SKB_MODE])
})

t.test('auto mode: EBUSY on a native attach is a race, not a reason for generic', async (t) => {
  const { src, kernel, events } = await setup(t, [], desire({ veth: target(7) }, [7]))
  kernel.failNext.push(nlerr('EBUSY', 16, 'XDP program already attached'))
  src.set(link(2, 'veth0'))
  await waitFor(() => xdpOf(src, 2) !== null, 'veth0 attached')
  t.same(xdpOf(src, 2), { mode: 'native', progId: 7 }, 're-read, planned again, attached natively')
  t.equal(kinds(events, 'fallback').length, 0)
})

t.test('EOPNOTSUPP with mode: native is an error, not a fallback: the entry asked for native', async (t) => {
  const src = new FakeSource()
  src.set(link(2, 'veth0'), false)
  const kernel = new FakeKernel(src)
  kernel.noNative.add(2)
  const table = new LinkTable(src)
  const d = desire({ veth: target(7, { mode: 'native' }) }, [7])
  const { rec, events } = reconciler(table, kernel, d)
  t.teardown(() => rec.stop())
  await table.start()
  await rec.idle()
  t.equal(xdpOf(src, 2), null, 'nothing attached in another mode')
  t.same(kernel.requests().map((r) => r.req.flags), [XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_DRV_MODE], 'one native attempt, no generic one')
  t.equal(kinds(events, 'fallback').length, 0, 'no fallback to generic mode')
  t.match(rec.records()[0], { state: 'error', lastError: /^EOPNOTSUPP/ })
  t.match(kinds(events, 'failed')[0], { repeated: false, failure: { errno: 95 }, link: { name: 'veth0' } })
})

t.test('tally: the states of records() counted in one pass, and kept as links go', async (t) => {
  const { src, rec } = await setup(
    t,
    [link(1, 'lo', { kind: null }), link(2, 'veth0'), link(3, 'veth1', { xdp: { mode: 'generic', progId: 99 } as never }), link(4, 'eth0')],
    desire({ veth: target(7) }, [7]),
  )
  const fromRecords = () => {
    const t = { links: 0, managed: 0, attached: 0, pending: 0, conflict: 0, error: 0, unmanaged: 0 }
    for (const r of rec.records()) {
      t.links++
      if (r.entry !== null) t.managed++
      t[r.state]++
    }
    return t
  }
  t.same(rec.tally(), { links: 4, managed: 2, attached: 1, pending: 0, conflict: 1, error: 0, unmanaged: 2 })
  t.same(rec.tally(), fromRecords())
  src.del(2)
  src.set(link(5, 'veth5'))
  t.same(rec.tally(), { links: 4, managed: 1, attached: 0, pending: 1, conflict: 1, error: 0, unmanaged: 2 }, 'a new link is pending, its entry unknown until planned')
  await new Promise((r) => setTimeout(r, 10))
  await rec.idle()
  t.same(rec.tally(), { links: 4, managed: 2, attached: 1, pending: 0, conflict: 1, error: 0, unmanaged: 2 })
  t.same(rec.tally(), fromRecords())
})

t.test('an older program of ours is replaced atomically', async (t) => {
  const { src, kernel } = await setup(t, [link(2, 'veth0', { xdp: { mode: 'generic', progId: 6 } as never })], desire({ veth: target(7) }, [6, 7]))
  t.same(kernel.requests().map((r) => r.req), [{ fd: 107, expectedFd: 106, flags: XDP_FLAGS_REPLACE | XDP_FLAGS_SKB_MODE }])
  t.same(xdpOf(src, 2), { mode: 'generic', progId: 7 })
})

t.test('a foreign program is left alone and reported once', async (t) => {
  const { src, kernel, events, rec } = await setup(t, [link(2, 'veth0', { xdp: { mode: 'generic', progId: 99 } as never })], desire({ veth: target(7) }, [7]))
  src.set(link(2, 'veth0', { operState: 'up', xdp: { mode: 'generic', progId: 99 } as never }))
  await new Promise((r) => setTimeout(r, 10))
  await rec.idle()
  t.equal(kernel.batches.length, 0, 'never touched')
  t.same(kinds(events, 'conflict'), [{ kind: 'conflict', link: { ifindex: 2, name: 'veth0', entry: 'attach[0]' }, foreignProgId: 99, mode: 'generic' }], 'reported once')
  t.equal(rec.records()[0]!.state, 'conflict')
})

t.test('replace-foreign takes over', async (t) => {
  const { src } = await setup(t, [link(2, 'veth0', { xdp: { mode: 'generic', progId: 99 } as never })], desire({ veth: target(7, { replaceForeign: true }) }, [7]))
  t.same(xdpOf(src, 2), { mode: 'generic', progId: 7 })
})

t.test('no entry matches any more: only our program is detached', async (t) => {
  const { src, kernel, rec } = await setup(
    t,
    [link(2, 'veth0', { xdp: { mode: 'generic', progId: 7 } as never }), link(3, 'veth1', { xdp: { mode: 'native', progId: 99 } as never })],
    desire({}, [7]),
  )
  await rec.idle()
  t.same(kernel.requests().map((r) => [r.ifindex, r.req]), [[2, { fd: -1, expectedFd: 107, flags: XDP_FLAGS_REPLACE | XDP_FLAGS_SKB_MODE }]])
  t.equal(xdpOf(src, 2), null)
  t.same(xdpOf(src, 3), { mode: 'native', progId: 99 })
})

t.test('someone attaches in between (EBUSY): re-read and plan again', async (t) => {
  const src = new FakeSource()
  src.set(link(2, 'veth0'), false)
  const kernel = new FakeKernel(src)
  const table = new LinkTable(src)
  // the kernel gets a foreign program just before our attach arrives, without us having seen the notification yet
  const orig = kernel.setXdp.bind(kernel)
  let first = true
  kernel.setXdp = async (reqs) => {
    if (first) {
      first = false
      src.kernel.set(2, link(2, 'veth0', { xdp: { mode: 'native', progId: 99 } as never }))
    }
    return orig(reqs)
  }
  const { rec } = reconciler(table, kernel, desire({ veth: target(7) }, [7]))
  t.teardown(() => rec.stop())
  await table.start()
  await rec.idle()
  t.equal(kernel.batches.length, 1, 'the foreign program found on re-read is not fought')
  t.equal(rec.records()[0]!.state, 'conflict')
})

t.test('a notification older than our own set, read after it: the table ends on the kernel\'s word, and a later detach happens', async (t) => {
  const { src, kernel, table, rec } = await setup(t, [link(2, 'veth0', { up: false })], desire({ veth: target(7) }, [7]))
  t.match(xdpOf(src, 2), { progId: 7 }, 'attached')
  // Sent by the kernel before our RTM_SETLINK (the link without a program), read only now: it arrives on the event
  // socket while the ack came on the request socket.
  src.emit('link', { type: 'new', link: link(2, 'veth0', { up: false }) })
  t.equal(table.get(2)!.xdp, null, 'for a moment the table believes it')
  await new Promise((r) => setTimeout(r, 10))
  await rec.idle()
  t.match(table.get(2)!.xdp, { progId: 7 }, 'the re-read after EBUSY put the kernel\'s state back in the table')
  t.match(xdpOf(src, 2), { progId: 7 }, 'nothing changed in the kernel')
  const before = kernel.requests().length
  rec.setDesire(desire({}, [7]))
  await new Promise((r) => setTimeout(r, 10))
  await rec.idle()
  t.equal(xdpOf(src, 2), null, 'no entry matches any more: our program is detached')
  t.match(kernel.requests().slice(before), [{ ifindex: 2, req: { fd: -1 } }])
})

t.test('other errors: logged with the kernel text, retried with backoff, logged once while unchanged', async (t) => {
  const { src, kernel, events, rec } = await setup(t, [], desire({ veth: target(7) }, [7]))
  kernel.failNext.push(nlerr('EIO', 5, 'bad thing'), nlerr('EIO', 5, 'bad thing'))
  src.set(link(2, 'veth0'))
  await new Promise((r) => setTimeout(r, 10))
  await rec.idle()
  const errs = kinds(events, 'failed')
  t.equal(errs.length, 1)
  t.match(errs[0], { failure: { source: 'kernel', errno: 5, extAck: 'bad thing' }, retryInMs: 1000, repeated: false })
  t.equal(rec.records()[0]!.state, 'error')
  t.match(rec.records()[0]!.lastError, /bad thing/)
  // first retry after 1 s fails again (debug, not warn), second after 2 s succeeds
  await new Promise((r) => setTimeout(r, 3300))
  await rec.idle()
  t.same(xdpOf(src, 2), { mode: 'native', progId: 7 })
  t.same(kinds(events, 'failed').map((e) => e.kind === 'failed' && [e.repeated, e.retryInMs]), [[false, 1000], [true, 2000]], 'reported as new once for the same reason')
  t.equal(kinds(events, 'recovered').length, 1)
  t.equal(rec.records()[0]!.state, 'attached')
})

t.test('a batch answered after stop(): what the kernel did is logged, what was cut off is no error and not retried', async (t) => {
  const { src, kernel, events, rec } = await setup(t, [], desire({ veth: target(7) }, [7]))
  let open!: () => void
  const gate = new Promise<void>((r) => (open = r))
  const real = kernel.setXdp.bind(kernel)
  let sent: number[] = []
  // The first request is carried out; the others never left (the socket closed under them: ECANCELED).
  kernel.setXdp = async (reqs) => {
    sent = reqs.map((r) => r.ifindex)
    await gate
    const cut = reqs.slice(1).map((): RequestResult => ({ ok: false, error: nlerr('ECANCELED', 125, 'netlink socket closed') }))
    return [...(await real(reqs.slice(0, 1))), ...cut]
  }
  src.set(link(2, 'veth0'))
  src.set(link(3, 'veth1'))
  while (sent.length === 0) await new Promise((r) => setTimeout(r, 1))
  t.equal(sent.length, 2, 'one batch for both links')
  rec.stop()
  open()
  await new Promise((r) => setTimeout(r, 20))
  const done = src.kernel.get(sent[0]!)!.name
  t.same(kinds(events, 'attached').map((e) => e.kind === 'attached' && e.link.name), [done], 'the attach that happened is reported')
  t.same(kinds(events, 'failed'), [], 'no error')
  t.same(kinds(events, 'cut-off'), [{ kind: 'cut-off', links: 1 }])
  const cutRecord = rec.records().find((r) => r.ifindex === sent[1])!
  t.equal(cutRecord.failures, 0, 'not counted as a failure')
  t.equal(cutRecord.retryAt, null, 'no retry armed')
})

t.test('a link removed while pending is forgotten (ENODEV is quiet)', async (t) => {
  const { src, kernel, events, rec } = await setup(t, [], desire({ veth: target(7) }, [7]))
  src.set(link(2, 'veth0'))
  src.kernel.delete(2) // gone before the request, its RTM_DELLINK not yet read
  await new Promise((r) => setTimeout(r, 10))
  await rec.idle()
  t.equal(kernel.batches.length, 1)
  t.equal(kinds(events, 'failed').length, 0)
})

t.test('kernel without XDP_FLAGS_REPLACE (< 5.7): replace is a plain set', async (t) => {
  const src = new FakeSource()
  src.set(link(2, 'veth0', { xdp: { mode: 'generic', progId: 6 } as never }), false)
  const kernel = new FakeKernel(src)
  const table = new LinkTable(src)
  const { rec, events } = reconciler(table, kernel, desire({ veth: target(7) }, [6, 7]), { replaceSupported: false })
  t.teardown(() => rec.stop())
  await table.start()
  await rec.idle()
  t.same(kernel.requests().map((r) => r.req), [{ fd: 107, flags: XDP_FLAGS_SKB_MODE }])
  t.same(kinds(events, 'not-atomic'), [{ kind: 'not-atomic', link: { ifindex: 2, name: 'veth0' } }])
})

t.test('the attached program cannot be opened (EPERM): that link is in error, nothing crashes', async (t) => {
  const d = desire({ veth: target(7, { replaceForeign: true }) }, [7])
  d.fdForProgId = () => {
    throw Object.assign(new Error('bpf_prog_get_fd_by_id: EPERM'), { errno: 1 })
  }
  const { kernel, rec, events } = await setup(t, [link(2, 'veth0', { xdp: { mode: 'generic', progId: 99 } as never }), link(3, 'veth1')], d)
  t.equal(kernel.requests().length, 1, 'only the other link got a request')
  const r2 = rec.records().find((r) => r.ifindex === 2)!
  t.equal(r2.state, 'error')
  t.match(r2.lastError, /EPERM/)
  t.equal(rec.counters.errors.EPERM, 1)
  t.match(kinds(events, 'failed'), [{ link: { name: 'veth0' }, failure: { source: 'libbpf', errno: 1 } }], 'an error of libbpf\'s, not the kernel\'s')
})

t.test('acks lost (ENOBUFS) for a big batch: the links are read again with one dump, and nothing is sent twice', async (t) => {
  const links = Array.from({ length: 40 }, (_, i) => link(10 + i, `veth${i}`))
  const src = new FakeSource()
  for (const l of links) src.set(l, false)
  const kernel = new FakeKernel(src)
  const orig = kernel.setXdp.bind(kernel)
  let first = true
  // the kernel carries out every request of the first batch but the acks are lost, and (links being down) no
  // notification tells the table
  kernel.setXdp = async (reqs) => {
    if (!first) return orig(reqs)
    first = false
    const src2 = kernel.src
    for (const { ifindex, req } of reqs) src2.kernel.set(ifindex, link(ifindex, src2.kernel.get(ifindex)!.name, { xdp: { mode: 'native', progId: req.fd - 100, drvProgId: req.fd - 100 } as never }))
    kernel.batches.push(reqs)
    return reqs.map(() => ({ ok: false as const, error: nlerr('ENOBUFS', 105) }))
  }
  const table = new LinkTable(src)
  const { rec } = reconciler(table, kernel, desire({ veth: target(7) }, [7]), { settleMs: 20, maxSettleMs: 200 })
  t.teardown(() => rec.stop())
  await table.start()
  await rec.idle()
  t.equal(kernel.batches.length, 1, 'one batch, nothing sent again')
  t.equal(kernel.dumps, 1, 'one dump to read 40 links again')
  t.ok(rec.records().every((r) => r.state === 'attached'), 'every link attached, none in error')
})

t.test('the mode changed in the config: detach in the old mode, then attach in the new one, in one batch', async (t) => {
  const { src, kernel, events } = await setup(t, [link(2, 'veth0', { xdp: { mode: 'generic', progId: 7 } as never })], desire({ veth: target(7, { mode: 'native' }) }, [7]))
  t.equal(kernel.batches.length, 1)
  t.same(kernel.batches[0]!.map((r) => r.req), [
    { fd: -1, expectedFd: 107, flags: XDP_FLAGS_REPLACE | XDP_FLAGS_SKB_MODE },
    { fd: 107, flags: XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_DRV_MODE },
  ])
  t.same(kernel.batches[0]!.map((r) => Boolean((r as { withPrevious?: boolean }).withPrevious)), [false, true], 'the attach goes in one window with its detach')
  t.same(xdpOf(src, 2), { mode: 'native', progId: 7 })
  t.match(kinds(events, 'remoded'), [{ from: 'generic', mode: 'native', progId: 7, oldProgId: 7 }])
})
