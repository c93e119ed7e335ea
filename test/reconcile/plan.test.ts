import t from 'tap'
import { plan, observed, type Desired } from '../../src/reconcile/plan.js'
import type { XdpState } from '../../src/rtnl/xdp.js'

const OURS = new Set([10, 11, 12])
const isOurs = (id: number) => OURS.has(id)
const want = (progId: number, over: Partial<Desired> = {}): Desired => ({
  progId,
  mode: 'auto',
  replaceForeign: false,
  entry: 'attach[0]',
  ...over,
})
const xdp = (mode: XdpState['mode'], progId: number, over: Partial<XdpState> = {}): XdpState =>
  ({ mode, progId, ...over }) as XdpState

t.test('plan: desired vs observed', async (t) => {
  const cases: [string, Desired | null, XdpState | null, boolean, unknown][] = [
    ['nothing wanted, nothing there', null, null, false, { kind: 'none' }],
    ['nothing wanted, foreign there: leave it', null, xdp('generic', 99), false, { kind: 'none' }],
    ['nothing wanted, ours there: detach', null, xdp('generic', 10), false, { kind: 'detach', expectedProgId: 10, mode: 'generic' }],
    ['wanted, nothing there (auto -> native first)', want(11), null, false, { kind: 'attach', progId: 11, mode: 'native' }],
    ['wanted, nothing there, native refused before', want(11), null, true, { kind: 'attach', progId: 11, mode: 'generic' }],
    ['wanted generic', want(11, { mode: 'generic' }), null, false, { kind: 'attach', progId: 11, mode: 'generic' }],
    ['already attached (generic satisfies auto)', want(11), xdp('generic', 11), false, { kind: 'none' }],
    ['already attached native', want(11, { mode: 'native' }), xdp('native', 11), false, { kind: 'none' }],
    ['older program of ours: atomic replace in its mode', want(11), xdp('generic', 10), false,
      { kind: 'replace', progId: 11, expectedProgId: 10, mode: 'generic', foreign: false }],
    ['foreign there: conflict', want(11), xdp('native', 99), false, { kind: 'conflict', foreignProgId: 99, mode: 'native' }],
    ['foreign there, replace-foreign', want(11, { replaceForeign: true }), xdp('native', 99), false,
      { kind: 'replace', progId: 11, expectedProgId: 99, mode: 'native', foreign: true }],
    ['ours in the wrong mode: remode', want(11, { mode: 'native' }), xdp('generic', 11), false,
      { kind: 'remode', progId: 11, expectedProgId: 11, from: 'generic', mode: 'native' }],
    ['foreign in the wrong mode, no replace-foreign: conflict', want(11, { mode: 'native' }), xdp('generic', 99), false,
      { kind: 'conflict', foreignProgId: 99, mode: 'generic' }],
    ['offload wanted, ours native', want(12, { mode: 'offload' }), xdp('native', 12), false,
      { kind: 'remode', progId: 12, expectedProgId: 12, from: 'native', mode: 'offload' }],
    ['multi: native counts first', want(11), xdp('multi', 0, { progId: undefined, drvProgId: 11, hwProgId: 50 } as never), false, { kind: 'none' }],
  ]
  for (const [name, desired, state, nativeUnsupported, expected] of cases) {
    t.same(plan({ desired, xdp: state, isOurs, nativeUnsupported }), expected, name)
  }
})

t.test('observed: which id and mode a query reports', async (t) => {
  t.same(observed(null), null)
  t.same(observed(xdp('generic', 5)), { progId: 5, mode: 'generic' })
  t.same(observed(xdp('native', 0, { progId: undefined, drvProgId: 6 } as never)), { progId: 6, mode: 'native' })
  t.same(observed(xdp('multi', 0, { progId: undefined, skbProgId: 7, hwProgId: 8 } as never)), { progId: 7, mode: 'generic' })
})
