import t from 'tap'
import { expectedProgId, requestsFor, type SendAction } from '../../src/reconcile/requests.js'
import { XDP_FLAGS_DRV_MODE, XDP_FLAGS_REPLACE, XDP_FLAGS_SKB_MODE, XDP_FLAGS_UPDATE_IF_NOEXIST } from '../../src/rtnl/constants.js'

const NOEXIST = XDP_FLAGS_UPDATE_IF_NOEXIST
const REPLACE = XDP_FLAGS_REPLACE
const DRV = XDP_FLAGS_DRV_MODE
const SKB = XDP_FLAGS_SKB_MODE

t.test('requestsFor: a planned action as RTM_SETLINK requests (program fd 11, attached program fd 10)', async (t) => {
  const attach: SendAction = { kind: 'attach', progId: 7, mode: 'native' }
  const replace: SendAction = { kind: 'replace', progId: 7, expectedProgId: 6, mode: 'generic', foreign: false }
  const detach: SendAction = { kind: 'detach', expectedProgId: 6, mode: 'native' }
  const remode: SendAction = { kind: 'remode', progId: 7, expectedProgId: 7, from: 'generic', mode: 'native' }
  const cases: [string, SendAction, number | null, unknown][] = [
    ['attach: only where nothing runs', attach, null, [{ ifindex: 3, req: { fd: 11, flags: NOEXIST | DRV } }]],
    ['attach ignores an expected fd', attach, 10, [{ ifindex: 3, req: { fd: 11, flags: NOEXIST | DRV } }]],
    ['replace: atomic, in the mode it runs in', replace, 10, [{ ifindex: 3, req: { fd: 11, expectedFd: 10, flags: REPLACE | SKB } }]],
    ['replace without XDP_FLAGS_REPLACE: a plain set', replace, null, [{ ifindex: 3, req: { fd: 11, flags: SKB } }]],
    ['detach: fd -1, only if still the expected program', detach, 10, [{ ifindex: 3, req: { fd: -1, expectedFd: 10, flags: REPLACE | DRV } }]],
    ['detach without XDP_FLAGS_REPLACE', detach, null, [{ ifindex: 3, req: { fd: -1, flags: DRV } }]],
    [
      'remode: detach in the old mode, then attach in the new one in the same window',
      remode,
      10,
      [
        { ifindex: 3, req: { fd: -1, expectedFd: 10, flags: REPLACE | SKB } },
        { ifindex: 3, req: { fd: 11, flags: NOEXIST | DRV }, withPrevious: true },
      ],
    ],
  ]
  for (const [name, action, expectedFd, want] of cases) t.same(requestsFor(3, action, 11, expectedFd), want, name)
})

t.test('expectedProgId: which attached program a request must name', async (t) => {
  const cases: [SendAction, boolean, number | null][] = [
    [{ kind: 'attach', progId: 7, mode: 'native' }, true, null],
    [{ kind: 'replace', progId: 7, expectedProgId: 6, mode: 'generic', foreign: true }, true, 6],
    [{ kind: 'replace', progId: 7, expectedProgId: 6, mode: 'generic', foreign: true }, false, null],
    [{ kind: 'detach', expectedProgId: 6, mode: 'native' }, true, 6],
    [{ kind: 'remode', progId: 7, expectedProgId: 5, from: 'generic', mode: 'native' }, true, 5],
  ]
  for (const [action, replace, want] of cases) t.equal(expectedProgId(action, replace), want, `${action.kind}, REPLACE ${replace}`)
})
