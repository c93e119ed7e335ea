import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { clockMonotonicUsec } from '../../src/ffi/unix.js'
import { listen } from '../helpers/notify.js'
import { Notifier, startWatchdog } from '../../src/service/notify.js'

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

t.test('without NOTIFY_SOCKET everything is a no-op', async (t) => {
  const n = new Notifier({ env: {} })
  t.equal(n.enabled, false)
  t.equal(n.address, null)
  t.equal(n.ready('up'), false)
  t.equal(n.watchdog(), false)
  t.equal(n.watchdogIntervalMs(), null)
  t.equal(startWatchdog(n, { alive: () => true }), null)
  n.close()
})

t.test('messages arrive in order, one datagram each', async (t) => {
  const sink = listen(t)
  const n = new Notifier({ env: { NOTIFY_SOCKET: sink.address } })
  t.teardown(() => n.close())
  t.equal(n.enabled, true)
  const before = clockMonotonicUsec()
  t.equal(n.status('loading programs'), true)
  n.ready('watching 3 links')
  n.reloading()
  n.ready()
  n.status('two\nlines')
  n.extendTimeout(1500)
  n.stopping()
  const after = clockMonotonicUsec()
  await tick(20)
  t.equal(sink.messages.length, 7)
  t.same(sink.messages.slice(0, 2), ['STATUS=loading programs\n', 'READY=1\nSTATUS=watching 3 links\n'])
  const reload = sink.messages[2]!.split('\n')
  t.equal(reload[0], 'RELOADING=1')
  const m = /^MONOTONIC_USEC=(\d+)$/.exec(reload[1] ?? '')
  t.ok(m, 'MONOTONIC_USEC follows RELOADING=1')
  const usec = BigInt(m![1]!)
  t.ok(usec >= before && usec <= after, 'MONOTONIC_USEC is CLOCK_MONOTONIC at the time of the call')
  t.same(sink.messages.slice(3), ['READY=1\n', 'STATUS=two lines\n', 'EXTEND_TIMEOUT_USEC=1500000\n', 'STOPPING=1\n'])
  n.close()
  t.equal(n.ready(), false, 'nothing is sent after close')
})

t.test('an abstract-namespace NOTIFY_SOCKET (@name)', async (t) => {
  const name = `@xdplinkd-test-${process.pid}-${randomBytes(4).toString('hex')}`
  const sink = listen(t, name)
  const n = new Notifier({ env: { NOTIFY_SOCKET: name } })
  t.teardown(() => n.close())
  n.ready()
  await tick(20)
  t.same(sink.messages, ['READY=1\n'])
})

t.test('a NOTIFY_SOCKET nobody listens on fails loudly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xdplinkd-notify-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const n = new Notifier({ env: { NOTIFY_SOCKET: join(dir, 'absent') } })
  t.teardown(() => n.close())
  t.throws(() => n.ready(), { code: 'ENOENT' })
})

t.test('a NOTIFY_SOCKET we cannot speak is refused at construction', async (t) => {
  t.throws(() => new Notifier({ env: { NOTIFY_SOCKET: 'vsock:2:1234' } }), RangeError)
  t.throws(() => new Notifier({ env: { NOTIFY_SOCKET: 'relative/path' } }), RangeError)
  t.throws(() => new Notifier({ env: { NOTIFY_SOCKET: '/' + 'x'.repeat(200) } }), RangeError)
})

t.test('watchdogIntervalMs: half of WATCHDOG_USEC, only for our PID', async (t) => {
  const sock = '/run/unused-notify'
  const interval = (env: NodeJS.ProcessEnv, pid = 4242): number | null =>
    new Notifier({ env: { NOTIFY_SOCKET: sock, ...env }, pid }).watchdogIntervalMs()
  t.equal(interval({ WATCHDOG_USEC: '30000000' }), 15000)
  t.equal(interval({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4242' }), 15000)
  t.equal(interval({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' }), null, 'meant for another process')
  t.equal(interval({}), null)
  t.equal(interval({ WATCHDOG_USEC: '0' }), null)
  t.equal(interval({ WATCHDOG_USEC: '-5' }), null)
  t.equal(interval({ WATCHDOG_USEC: '3s' }), null)
  t.equal(new Notifier({ env: { WATCHDOG_USEC: '30000000' } }).watchdogIntervalMs(), null, 'no socket, no pings')
})

t.test('the watchdog pings at half WATCHDOG_USEC while alive() holds, then stops', async (t) => {
  const sink = listen(t)
  // 40 ms: a ping every 20 ms.
  const n = new Notifier({ env: { NOTIFY_SOCKET: sink.address, WATCHDOG_USEC: '40000', WATCHDOG_PID: String(process.pid) } })
  t.teardown(() => n.close())
  let healthy = true
  let checks = 0
  let withheld = 0
  const wd = startWatchdog(n, {
    alive: () => {
      checks++
      return healthy
    },
    onWithheld: () => withheld++,
  })
  t.ok(wd)
  t.teardown(() => wd!.stop())
  t.equal(wd!.intervalMs, 20)
  t.equal(wd!.pings, 1, 'the first ping goes at once')
  await tick(150)
  const whileAlive = wd!.pings
  t.ok(whileAlive >= 3, `pinged ${whileAlive} times in 150 ms`)
  healthy = false
  const checksAtFailure = checks
  await tick(150)
  t.equal(wd!.pings, whileAlive, 'no ping once alive() is false')
  t.ok(checks > checksAtFailure, 'alive() is still asked')
  t.ok(withheld >= 3, 'each withheld ping is reported')
  await tick(20)
  t.equal(sink.messages.length, whileAlive)
  t.ok(sink.messages.every((m) => m === 'WATCHDOG=1\n'))
  wd!.stop()
})

t.test('a throwing liveness check withholds the ping and is reported', async (t) => {
  const sink = listen(t)
  const n = new Notifier({ env: { NOTIFY_SOCKET: sink.address, WATCHDOG_USEC: '40000' } })
  t.teardown(() => n.close())
  const errors: unknown[] = []
  const wd = startWatchdog(n, {
    alive: () => {
      throw new Error('netlink receive path stuck')
    },
    onWithheld: (e) => errors.push(e),
  })
  t.teardown(() => wd!.stop())
  await tick(70)
  t.equal(wd!.pings, 0)
  t.ok(errors.length >= 2)
  t.match(errors[0], { message: 'netlink receive path stuck' })
  t.same(sink.messages, [])
})
