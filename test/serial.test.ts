import t from 'tap'
import { SerialJob } from '../src/serial.js'

/** A job whose runs are finished by hand, recording the argument of each run. */
function manualJob() {
  const runs: { arg: string; finish: (v: string) => void; fail: (e: Error) => void }[] = []
  const job = new SerialJob<string, string>(
    (arg) =>
      new Promise((resolve, reject) => {
        runs.push({ arg, finish: resolve, fail: reject })
      }),
  )
  return { job, runs }
}

const tick = () => new Promise((r) => setImmediate(r))

t.test('one run at a time; requests during a run share one run after it, with the latest argument', async (t) => {
  const { job, runs } = manualJob()
  const first = job.run('a')
  t.equal(runs.length, 1)
  const second = job.run('b')
  const third = job.run('c')
  t.equal(second, third, 'requests during a run share the follow-up')
  await tick()
  t.equal(runs.length, 1, 'no second run while the first is in progress')
  runs[0]!.finish('done a')
  t.equal(await first, 'done a')
  await tick()
  t.same(runs.map((r) => r.arg), ['a', 'c'], 'one follow-up run, with the last reason given')
  runs[1]!.finish('done c')
  t.equal(await second, 'done c', 'a request during the first run gets the follow-up\'s result')
  const fourth = job.run('d')
  t.equal(runs.length, 3, 'idle again: runs at once')
  runs[2]!.finish('done d')
  t.equal(await fourth, 'done d')
})

t.test('a failed run still lets the follow-up run', async (t) => {
  const { job, runs } = manualJob()
  const first = job.run('a')
  const second = job.run('b')
  runs[0]!.fail(new Error('boom'))
  await t.rejects(first, /boom/)
  await tick()
  t.equal(runs.length, 2)
  runs[1]!.finish('ok')
  t.equal(await second, 'ok')
})
