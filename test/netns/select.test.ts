import t from 'tap'
import { netnsName, selectNamespaces, selects, showOrder, unknownNetnsText, type Named, type NetnsSelector } from '../../src/netns/select.js'

const ns = (name: string, ...more: string[]): Named => ({ name, names: [name, ...more], host: name === 'host' })

t.test('selects: --all-namespaces takes every one, --netns NAME any of its names', async (t) => {
  const cases: [sel: NetnsSelector, ns: Named, taken: boolean][] = [
    [{ kind: 'all' }, ns('host'), true],
    [{ kind: 'all' }, ns('pod-1'), true],
    [{ kind: 'one', name: 'pod-1' }, ns('pod-1'), true],
    [{ kind: 'one', name: 'pod-1' }, ns('pod-2'), false],
    [{ kind: 'one', name: 'alias' }, ns('pod-1', 'alias'), true], // two files bind one namespace
    [{ kind: 'one', name: 'pod' }, ns('pod-1'), false], // a name, not a glob or a prefix
    [{ kind: 'one', name: 'host' }, ns('host'), true],
    [{ kind: 'one', name: 'mine' }, { name: 'host', names: ['host', 'mine'], host: true }, true], // a file binding host
  ]
  for (const [sel, n, taken] of cases) t.equal(selects(sel, n), taken, `${JSON.stringify(sel)} ${n.names.join('|')}`)
})

t.test('showOrder: host first, then by name in code point order', async (t) => {
  const cases: [input: string[], shown: string[]][] = [
    [[], []],
    [['host'], ['host']],
    [['b', 'host', 'a'], ['host', 'a', 'b']],
    [['cni-2', 'cni-10', 'Z', 'host'], ['host', 'Z', 'cni-10', 'cni-2']],
    [['é', 'e', 'f'], ['e', 'f', 'é']],
  ]
  for (const [input, shown] of cases) t.same(showOrder(input.map((n) => ns(n))).map((n) => n.name), shown, input.join(' '))
})

t.test('netnsName: a name, never a path or nothing', async (t) => {
  const cases: [input: string, out: string | RegExp][] = [
    ['pod-1', 'pod-1'],
    ['host', 'host'],
    ['cni-5f2a', 'cni-5f2a'],
    ['with space', 'with space'],
    ['', /^expected the name of a network namespace, got an empty string$/],
    ['/run/netns/x', /^expected the name .* got the path "\/run\/netns\/x": use --netns x --netns-dir \/run\/netns$/],
    ['a/b', /got the path "a\/b": use --netns b --netns-dir a$/],
    ['a\0b', /with NUL in it/],
  ]
  for (const [input, out] of cases) {
    const r = netnsName(input)
    if (typeof out === 'string') t.same(r, { ok: true, value: out }, JSON.stringify(input))
    else t.match(r, { ok: false, error: out }, JSON.stringify(input))
  }
})

t.test('selectNamespaces: the picked ones in show order; an unknown name says where it looked, and why when known', async (t) => {
  const all = [ns('pod-2'), ns('host'), ns('pod-1', 'alias')]
  const dirs = ['/run/netns', '/srv/ns']
  const names = (r: ReturnType<typeof selectNamespaces<Named>>) => (r.ok ? r.value.map((n) => n.name) : r.error)
  t.same(names(selectNamespaces(all, { kind: 'all' }, dirs)), ['host', 'pod-1', 'pod-2'])
  t.same(names(selectNamespaces(all, { kind: 'one', name: 'alias' }, dirs)), ['pod-1'])
  t.same(names(selectNamespaces([ns('host')], { kind: 'all' }, [])), ['host'], 'all with nothing but host: host')
  t.same(
    names(selectNamespaces(all, { kind: 'one', name: 'pod-3' }, dirs)),
    'no network namespace named "pod-3" in /run/netns, /srv/ns (host is this one; --netns-dir chooses the directories)',
  )
  t.same(names(selectNamespaces(all, { kind: 'one', name: 'x' }, dirs, 'it could not be entered')), 'no network namespace named "x" in /run/netns, /srv/ns: it could not be entered')
  t.equal(unknownNetnsText('a\u001b', []), 'no network namespace named "a\\u001b" in no directory (host is this one; --netns-dir chooses the directories)')
})
