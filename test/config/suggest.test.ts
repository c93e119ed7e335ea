import t from 'tap'
import { suggest } from '../../src/config/suggest.js'

t.test('the nearest candidate within the allowed edits, the first of equals, or null', async (t) => {
  const keys = ['settle', 'max-settle', 'bpffs', 'on-exit']
  const cases: [word: string, candidates: readonly string[], maxEdits: number, want: string | null][] = [
    ['max_settle', keys, 2, 'max-settle'],
    ['setle', keys, 2, 'settle'],
    ['bpfs', keys, 1, 'bpffs'],
    ['onexit', keys, 1, 'on-exit'],
    ['zzzzzz', keys, 2, null],
    ['bpffs', keys, 0, 'bpffs'],
    ['ab', ['ac', 'ad'], 1, 'ac'],
    ['x', [], 5, null],
  ]
  for (const [word, candidates, maxEdits, want] of cases) t.equal(suggest(word, candidates, maxEdits), want, `${word} (<= ${maxEdits})`)
})
