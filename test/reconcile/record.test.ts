import t from 'tap'
import { decide, errored, failed, newLinkRecord, succeeded, type LinkRecord } from '../../src/reconcile/record.js'
import type { LinkFailure } from '../../src/reconcile/failure.js'
import type { Action, Desired } from '../../src/reconcile/plan.js'
import { link } from '../helpers/link-state.js'

const OURS = new Set([7])
const isOurs = (id: number) => OURS.has(id)
const rec = (over: Partial<LinkRecord> = {}): LinkRecord => ({ ...newLinkRecord(2, 'veth0'), ...over })
const want = (over: Partial<Desired> = {}): Desired => ({ progId: 7, mode: 'auto', replaceForeign: false, entry: 'e', ...over })
const kernel = (errno: number, extAck: string | null = null): LinkFailure => ({ source: 'kernel', errno, extAck })
const ref = { ifindex: 2, name: 'veth0', entry: 'e' }

t.test('decide: the status a link has while its plan is carried out, and what is reported', async (t) => {
  const foreign = link(2, 'veth0', { xdp: { mode: 'generic', progId: 99 } as never })
  const ours = link(2, 'veth0', { xdp: { mode: 'generic', progId: 7 } as never })
  const bare = link(2, 'veth0')
  const cases: [string, LinkRecord, ReturnType<typeof link>, Desired | null, Partial<LinkRecord>, string, unknown[]][] = [
    ['no entry, nothing ours: unmanaged', rec(), bare, null, { state: 'unmanaged', entry: null }, 'none', []],
    ['no entry, ours attached: detach pending (state kept)', rec({ state: 'attached' }), ours, null, { state: 'attached' }, 'detach', []],
    ['wanted, nothing there: pending', rec(), bare, want(), { state: 'pending', entry: 'e', desiredProgId: 7 }, 'attach', []],
    ['wanted and there: attached', rec(), ours, want(), { state: 'attached' }, 'none', []],
    ['in error, then found right (someone fixed it): attached', rec({ state: 'error', failures: 2 }), ours, want(), { state: 'attached', failures: 2 }, 'none', []],
    [
      'foreign: conflict, reported',
      rec(),
      foreign,
      want(),
      { state: 'conflict', conflictProgId: 99 },
      'conflict',
      [{ kind: 'conflict', link: ref, foreignProgId: 99, mode: 'generic' }],
    ],
    ['the same foreign program again: not reported again', rec({ conflictProgId: 99 }), foreign, want(), { state: 'conflict' }, 'conflict', []],
    ['native refused earlier, attached generic, then detached by hand: native again', rec({ native: 'refused', state: 'attached' }), bare, want(), { native: 'try' }, 'attach', []],
    ['native refused, still falling back (pending): generic', rec({ native: 'refused', state: 'pending' }), bare, want(), { native: 'refused' }, 'attach', []],
    ['no native at all: stays generic', rec({ native: 'unsupported', state: 'attached' }), bare, want(), { native: 'unsupported' }, 'attach', []],
  ]
  for (const [name, r, l, desired, record, action, outcomes] of cases) {
    const d = decide(r, l, desired, isOurs)
    t.match(d.record, record, `${name}: record`)
    t.equal(d.action.kind, action, `${name}: action`)
    t.same(d.outcomes, outcomes, `${name}: outcomes`)
  }
  const d = decide(rec({ native: 'unsupported', state: 'attached' }), bare, want(), isOurs)
  t.match(d.action, { kind: 'attach', mode: 'generic' }, 'no native XDP: auto attaches in generic mode')
})

t.test('succeeded: the outcome of each action, and a recovery first', async (t) => {
  const cases: [string, LinkRecord, Action, string, unknown[]][] = [
    ['attach', rec(), { kind: 'attach', progId: 7, mode: 'native' }, 'attached', [{ kind: 'attached', link: ref, progId: 7, mode: 'native' }]],
    [
      'replace',
      rec(),
      { kind: 'replace', progId: 7, expectedProgId: 6, mode: 'generic', foreign: true },
      'attached',
      [{ kind: 'replaced', link: ref, progId: 7, oldProgId: 6, mode: 'generic', foreign: true }],
    ],
    [
      'remode',
      rec(),
      { kind: 'remode', progId: 7, expectedProgId: 7, from: 'generic', mode: 'native' },
      'attached',
      [{ kind: 'remoded', link: ref, progId: 7, oldProgId: 7, from: 'generic', mode: 'native' }],
    ],
    ['detach', rec(), { kind: 'detach', expectedProgId: 7, mode: 'native' }, 'unmanaged', [{ kind: 'detached', link: ref, progId: 7, mode: 'native' }]],
    [
      'after 3 failures',
      rec({ failures: 3, state: 'error', lastError: 'EIO', retryAt: 5 }),
      { kind: 'attach', progId: 7, mode: 'native' },
      'attached',
      [
        { kind: 'recovered', link: ref, failures: 3 },
        { kind: 'attached', link: ref, progId: 7, mode: 'native' },
      ],
    ],
  ]
  for (const [name, r, action, state, outcomes] of cases) {
    const s = succeeded({ ...r, entry: 'e' }, action)
    t.match(s.record, { state, failures: 0, lastError: null, retryAt: null }, `${name}: record`)
    t.same(s.outcomes, outcomes, `${name}: outcomes`)
  }
})

t.test('failed: fall back, read again, forget, or back off', async (t) => {
  const attachNative: Action = { kind: 'attach', progId: 7, mode: 'native' }
  const attachGeneric: Action = { kind: 'attach', progId: 7, mode: 'generic' }
  const replace: Action = { kind: 'replace', progId: 7, expectedProgId: 6, mode: 'native', foreign: false }
  const auto = { auto: true, depth: 0, now: 1000 }
  const cases: [string, LinkRecord, Action, LinkFailure, typeof auto, string, Partial<LinkRecord>][] = [
    ['ENODEV: gone, its RTM_DELLINK ends it', rec(), attachNative, kernel(19), auto, 'gone', { state: 'pending', failures: 0 }],
    ['EOPNOTSUPP, auto: no native XDP, generic now', rec(), attachNative, kernel(95, 'Underlying driver does not support XDP in native mode'), auto, 'replan', { native: 'unsupported' }],
    ['ERANGE, auto: refused as set up, generic now', rec(), attachNative, kernel(34, 'Peer MTU is too large to set XDP'), auto, 'replan', { native: 'refused' }],
    ['EINVAL, auto', rec(), attachNative, kernel(22), auto, 'replan', { native: 'refused' }],
    ['EOPNOTSUPP, mode native: an error', rec(), attachNative, kernel(95), { ...auto, auto: false }, 'backoff', { state: 'error', failures: 1 }],
    ['EOPNOTSUPP on a generic attach: an error', rec(), attachGeneric, kernel(95), auto, 'backoff', { state: 'error' }],
    ['EOPNOTSUPP after the fallback already happened: an error', rec({ native: 'unsupported' }), attachNative, kernel(95), auto, 'backoff', { state: 'error' }],
    ['EBUSY: raced, read again', rec(), attachNative, kernel(16), auto, 'reread', { state: 'pending' }],
    ['EEXIST on a replace: raced, read again', rec(), replace, kernel(17), auto, 'reread', { state: 'pending' }],
    ['ENOBUFS: acks lost, read again', rec(), attachNative, { source: 'local', errno: 105, message: 'receive queue overflowed' }, auto, 'reread', {}],
    ['EBUSY 3 rounds deep: back off', rec(), attachNative, kernel(16), { ...auto, depth: 3 }, 'backoff', { state: 'error', lastError: 'EBUSY' }],
    ['EIO: back off', rec(), attachNative, kernel(5, 'bad'), auto, 'backoff', { state: 'error', lastError: 'EIO: bad', retryAt: 2000 }],
  ]
  for (const [name, r, action, f, ctx, next, record] of cases) {
    const out = failed({ ...r, entry: 'e' }, action, f, ctx)
    t.equal(out.next, next, `${name}: next`)
    t.match(out.record, record, `${name}: record`)
  }
  t.same(failed(rec({ entry: 'e' }), attachNative, kernel(95, 'no'), auto).outcomes, [
    { kind: 'fallback', link: ref, native: 'unsupported', failure: kernel(95, 'no') },
  ])
})

t.test('errored: backoff doubles from 1 s to 60 s; a repeated reason is marked repeated', async (t) => {
  let r = rec({ entry: 'e' })
  const delays: number[] = []
  const repeated: boolean[] = []
  for (let i = 0; i < 9; i++) {
    const e = errored(r, 'attach', kernel(5, i < 2 ? 'bad' : 'worse'), 0)
    r = e.record
    const o = e.outcomes[0]!
    if (o.kind !== 'failed') throw new Error('not failed')
    delays.push(o.retryInMs)
    repeated.push(o.repeated)
    t.equal(r.retryAt, o.retryInMs, 'due at now + the delay')
  }
  t.same(delays, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000])
  t.same(repeated, [false, true, false, true, true, true, true, true, true])
  t.match(r, { state: 'error', failures: 9, lastError: 'EIO: worse' })
})
