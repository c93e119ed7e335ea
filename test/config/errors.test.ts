import t from 'tap'
import { ConfigError, formatKeyPath, sortErrors } from '../../src/config/errors.js'

t.test('formatKeyPath', async (t) => {
  t.equal(formatKeyPath([]), '')
  t.equal(formatKeyPath(['settle']), 'settle')
  t.equal(formatKeyPath(['attach', 1, 'mode']), 'attach[1].mode')
  t.equal(formatKeyPath(['attach', 0, 'interfaces', 2]), 'attach[0].interfaces[2]')
  t.equal(formatKeyPath(['attach', 0, 'a b']), 'attach[0]["a b"]')
  t.equal(formatKeyPath(['<<']), '["<<"]')
})

t.test('toString', async (t) => {
  const e = (line: number | null, col: number | null, path: string): string =>
    new ConfigError({ file: '/c.yaml', line, col, path, message: 'expected x' }).toString()
  t.equal(e(7, 11, 'attach[1].mode'), '/c.yaml:7:11: attach[1].mode: expected x')
  t.equal(e(7, 11, ''), '/c.yaml:7:11: expected x')
  t.equal(e(null, null, ''), '/c.yaml: expected x')
  t.equal(e(3, null, 'a'), '/c.yaml:3: a: expected x')
  t.equal(`${new ConfigError({ file: 'f', line: 1, col: 2, path: 'p', message: 'm' })}`, 'f:1:2: p: m', 'template strings use it')
})

t.test('sortErrors: file order, errors without a position first, stable', async (t) => {
  const mk = (line: number | null, col: number | null, message: string): ConfigError =>
    new ConfigError({ file: 'f', line, col, path: '', message })
  const sorted = sortErrors([mk(3, 1, 'c'), mk(1, 5, 'b'), mk(null, null, 'a'), mk(1, 2, 'a2'), mk(3, 1, 'c2')])
  t.same(sorted.map((e) => e.message), ['a', 'a2', 'b', 'c', 'c2'])
})
