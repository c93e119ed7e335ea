import t from 'tap'
import { suggest, suggestKey } from '../../src/config/suggest.js'

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

t.test('suggestKey: an alias of a key first (when that key is allowed here), else the nearest within 2 edits', async (t) => {
  const top = ['settle', 'max-settle', 'netns-dirs', 'attach']
  const entry = ['interfaces', 'exclude', 'kinds', 'netns', 'object']
  const cases: [key: string, keys: readonly string[], want: string | null][] = [
    ['namespaces', entry, 'netns'],
    ['Namespace', entry, 'netns'],
    ['network_namespaces', entry, 'netns'],
    ['ns', entry, 'netns'],
    ['netn', entry, 'netns'],
    ['namespaces', top, null],
    ['namespace-dirs', top, 'netns-dirs'],
    ['netns_dirs', top, 'netns-dirs'],
    ['netns-directories', top, 'netns-dirs'],
    ['netns-dirs', entry, null],
    ['max_settle', top, 'max-settle'],
    ['interface', entry, 'interfaces'],
    ['zzz', entry, null],
  ]
  for (const [key, keys, want] of cases) t.equal(suggestKey(key, keys), want, `${key} among ${keys.join(',')}`)
})
