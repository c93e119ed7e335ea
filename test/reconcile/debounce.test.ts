import t from 'tap'
import { Debouncer } from '../../src/reconcile/debounce.js'
import { FakeClock } from '../helpers/clock.js'

function setup(settleMs = 50, maxSettleMs = 1000) {
  const clock = new FakeClock()
  const batches: { at: number; keys: number[] }[] = []
  const d = new Debouncer<number>({ settleMs, maxSettleMs, clock }, (keys) => batches.push({ at: clock.t, keys }))
  return { clock, batches, d }
}

t.test('a key is due after it has been quiet for settle', async (t) => {
  const { clock, batches, d } = setup()
  d.touch(1)
  clock.advance(30)
  d.touch(1)
  clock.advance(40)
  t.same(batches, [], 'touched again at 30: not due at 70')
  clock.advance(20)
  t.same(batches, [{ at: 80, keys: [1] }])
  t.equal(d.size, 0)
})

t.test('a flapping key is due at max-settle after its first change', async (t) => {
  const { clock, batches, d } = setup(50, 200)
  for (let i = 0; i < 20; i++) {
    d.touch(7)
    clock.advance(20)
  }
  t.same(batches[0], { at: 200, keys: [7] })
})

t.test('keys due together come as one batch; one timer for all', async (t) => {
  const { clock, batches, d } = setup()
  for (let k = 0; k < 500; k++) d.touch(k)
  t.equal(clock.live(), 1, 'one live timer for 500 keys')
  clock.advance(50)
  t.equal(batches.length, 1)
  t.equal(batches[0]!.keys.length, 500)
})

t.test('touch with delay 0 is due at once; cancel forgets', async (t) => {
  const { clock, batches, d } = setup()
  d.touch(1)
  d.touch(2, 0)
  clock.advance(0)
  t.same(batches, [{ at: 0, keys: [2] }])
  d.cancel(1)
  clock.advance(100)
  t.equal(batches.length, 1, 'cancelled key never fires')
})

t.test('stop drops everything', async (t) => {
  const { clock, batches, d } = setup()
  d.touch(1)
  d.stop()
  clock.advance(5000)
  t.same(batches, [])
})
