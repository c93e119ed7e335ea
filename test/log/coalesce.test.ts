import t from 'tap'
import { spawnSync } from 'node:child_process'
import { TurnCoalescer } from '../../src/log/coalesce.js'

/** A sink that records each write, and a scheduler the test runs by hand. */
function setup(): { writes: string[]; run: () => void; pending: () => number; c: TurnCoalescer } {
  const writes: string[] = []
  let queue: (() => void)[] = []
  const c = new TurnCoalescer({ write: (d: string) => writes.push(d) }, (fn) => queue.push(fn))
  return {
    writes,
    c,
    pending: () => queue.length,
    run: () => {
      const q = queue
      queue = []
      for (const fn of q) fn()
    },
  }
}

t.test('the lines of one turn go out in one write, in order, at the end of the turn', async (t) => {
  const s = setup()
  s.c.write('a\n')
  s.c.write('b\n')
  s.c.write('c\n')
  t.same(s.writes, [], 'nothing before the turn ends')
  t.equal(s.pending(), 1, 'one flush scheduled for the turn, not one per line')
  s.run()
  t.same(s.writes, ['a\nb\nc\n'])
  s.c.write('d\n')
  t.equal(s.pending(), 1, 'the next turn schedules again')
  s.run()
  t.same(s.writes, ['a\nb\nc\n', 'd\n'])
  s.run()
  t.equal(s.writes.length, 2, 'an empty turn writes nothing')
  s.c.close()
})

t.test('flush writes at once and calls back; close flushes', async (t) => {
  const s = setup()
  s.c.write('x\n')
  let called = false
  s.c.flush(() => (called = true))
  t.same(s.writes, ['x\n'])
  t.ok(called)
  s.run()
  t.same(s.writes, ['x\n'], 'the scheduled flush finds nothing left')
  s.c.write('y\n')
  s.c.close()
  t.same(s.writes, ['x\n', 'y\n'])
})

t.test('with setImmediate, a line is out before the next turn', async (t) => {
  const writes: string[] = []
  const c = new TurnCoalescer({ write: (d: string) => writes.push(d) })
  c.write('now\n')
  await new Promise((r) => setImmediate(r))
  t.same(writes, ['now\n'])
  c.close()
})

// The claim that matters for a daemon: the last lines before an exit are written, whether the process exits on its
// own in the same turn or dies of an uncaught exception. A child process, since both end the process.
const CHILD = (ending: string): string => `
import { writeSync } from 'node:fs'
import { TurnCoalescer } from ${JSON.stringify(new URL('../../src/log/coalesce.ts', import.meta.url).href)}
const c = new TurnCoalescer({ write: (d) => writeSync(1, d) })
c.write('first\\n')
c.write('last words\\n')
${ending}
`

for (const [what, ending, status] of [
  ['process.exit in the same turn', 'process.exit(3)', 3],
  ['an uncaught exception', "throw new Error('boom')", 1],
] as const) {
  t.test(`pending lines are written at exit: ${what}`, async (t) => {
    const r = spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', CHILD(ending)], { encoding: 'utf8' })
    t.equal(r.status, status, r.stderr)
    t.equal(r.stdout, 'first\nlast words\n')
  })
}
