import t from 'tap'
import { formatDuration, parseDuration } from '../../src/config/durations.js'

t.test('parseDuration', async (t) => {
  const good: [unknown, number][] = [
    [0, 0], ['0ms', 0], [50, 50], ['50ms', 50], ['1s', 1000], ['1.5s', 1500], ['0.1s', 100], ['0.3s', 300],
    ['2m', 120000], ['1.25m', 75000], [2147483647, 2147483647], ['2147483647ms', 2147483647],
  ]
  for (const [v, ms] of good) t.same(parseDuration(v), { ok: true, value: ms }, JSON.stringify(v))
  const bad: [unknown, RegExp][] = [
    [-1, /^expected a duration .*, got -1$/],
    [1.5, /got 1.5$/],
    [NaN, /got NaN$/],
    [Infinity, /got Infinity$/],
    ['-1ms', /got "-1ms"$/],
    ['1h', /got "1h"$/],
    ['1 s', /got "1 s"$/],
    ['1S', /got "1S"$/],
    ['', /got ""$/],
    ['0.5ms', /^expected a whole number of milliseconds, got "0.5ms" \(0.5ms\)$/],
    ['2147483648ms', /^expected at most 2147483647ms/],
    [2147483648, /^expected at most 2147483647ms/],
    [true, /^expected a duration/],
    [null, /^expected a duration/],
  ]
  for (const [v, re] of bad) {
    const r = parseDuration(v)
    t.match(r.ok ? null : r.error, re, String(v))
  }
})

t.test('formatDuration', async (t) => {
  t.equal(formatDuration(50), '50ms')
  t.equal(formatDuration(1000), '1s')
  t.equal(formatDuration(1500), '1.5s')
  t.equal(formatDuration(120000), '2m')
  t.equal(formatDuration(90000), '90s')
})
