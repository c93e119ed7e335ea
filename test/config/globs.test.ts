import t from 'tap'
import { compileGlobs, globProblem, LINK_NAMES, minMatchBytes, NETNS_NAMES } from '../../src/config/globs.js'

t.test('globProblem accepts shell globs', async (t) => {
  const ok = ['eth0', 'eth*', 'ens[0-9]*', '[!0-9]*', '[^x]', 'veth?', '{eth,ens}*', '*', '**', 'eth0.100', 'br-*', 'a\\*',
    '\\!x', 'x!', '[[:digit:]]', '[]a]', 'a@b', 'x+', 'a|b', 'tap-é', 'a\\(b', '[(]', 'b'.repeat(16), 'c'.repeat(127)]
  for (const g of ok) t.equal(globProblem(g), null, g)
})

t.test('globProblem rejects what can never match or does not mean what it says', async (t) => {
  const bad: [string, RegExp][] = [
    ['', /^an empty glob matches nothing$/],
    ['!eth0', /^a leading "!" would negate the glob/],
    ['eth/0', /^interface names cannot contain "\/"$/],
    ['a\0b', /NUL/],
    ['(eth|ens)0', /^"\(" is not glob syntax here/],
    ['@(a|b)', /^"\(" is not glob syntax here/],
    ['x)', /^"\)" is not glob syntax here/],
    ['ens[0-9', /^invalid glob: Missing closing: "\]"/],
    ['a]', /^invalid glob: Missing opening: "\["/],
    ['eth{0', /^invalid glob: Missing closing: "\}"/],
    ['[z-a]', /^invalid glob \(a reversed range/],
    ['eth\\', /^invalid glob/],
    ['a'.repeat(128), /^can never match: it needs at least 128 bytes, but link names have at most 15 and alternative names at most 127$/],
    ['é'.repeat(64), /^can never match: it needs at least 128 bytes/],
    [`${'a'.repeat(64)}*${'b'.repeat(64)}`, /^can never match/],
    [`${'?'.repeat(100)}[ab]${'x'.repeat(27)}`, /^can never match: it needs at least 128 bytes/],
  ]
  for (const [g, re] of bad) t.match(globProblem(g), re, JSON.stringify(g))
})

t.test('globProblem on namespace names: the same syntax, their own words and limit (NAME_MAX)', async (t) => {
  const ok = ['host', 'cni-*', 'cni-[0-9a-f]*', '*', '{host,myns}', 'a.b', '.hidden', 'ns with spaces', '\\!x', 'n'.repeat(255), `${'n'.repeat(255)}*`]
  for (const g of ok) t.equal(globProblem(g, NETNS_NAMES), null, g)
  const table: [glob: string, links: string | RegExp, netns: string | RegExp | null][] = [
    ['', 'an empty glob matches nothing', 'an empty glob matches nothing'],
    ['a/b', 'interface names cannot contain "/"', 'namespace names cannot contain "/"'],
    ['a\0b', 'interface names cannot contain NUL', 'namespace names cannot contain NUL'],
    ['!x', /: list the links to leave out under "exclude" \(write "\\!" for a literal "!"\)$/, /: list the namespaces to manage instead \(write "\\!" for a literal "!"\)$/],
    ['(a|b)', /^"\(" is not glob syntax here/, /^"\(" is not glob syntax here/],
    ['[z-a]', /^invalid glob \(a reversed range/, /^invalid glob \(a reversed range/],
    ['a'.repeat(128), /^can never match: it needs at least 128 bytes, but link names have at most 15/, null],
    ['a'.repeat(256), /^can never match: it needs at least 256 bytes, but link names/, 'can never match: it needs at least 256 bytes, but namespace names are file names, of at most 255 bytes (NAME_MAX)'],
  ]
  for (const [g, links, netns] of table) {
    t.match(globProblem(g, LINK_NAMES), links, `links: ${JSON.stringify(g.slice(0, 20))}`)
    t.equal(globProblem(g), globProblem(g, LINK_NAMES), 'interface names by default')
    if (netns === null) t.equal(globProblem(g, NETNS_NAMES), null, `netns: ${g.length} bytes fit a file name`)
    else t.match(globProblem(g, NETNS_NAMES), netns, `netns: ${JSON.stringify(g.slice(0, 20))}`)
  }
})

t.test('minMatchBytes is a lower bound on the length of a match', async (t) => {
  const table: [string, number][] = [
    ['eth0', 4],
    ['eth*', 3],
    ['*', 0],
    ['e?h', 3],
    ['ens[0-9]', 4],
    ['[]a]x', 2],
    ['[!]]x', 2],
    ['[[:digit:]]x', 2],
    ['a\\*', 2],
    ['{eth,ens}0', 1],
    ['{a,{b,c}}x', 1],
    ['é', 2],
    ['😀', 4],
  ]
  for (const [g, n] of table) t.equal(minMatchBytes(g), n, g)
})

t.test('compileGlobs', async (t) => {
  const table: [globs: string[], matches: string[], misses: string[]][] = [
    [['eth*'], ['eth', 'eth0', 'eth0.100', 'eth0.100.200'], ['veth0', 'Eth0', 'ens3']],
    [['*.100'], ['eth0.100', 'bond0.100'], ['eth0.1000', 'eth0']],
    [['*'], ['.hidden', 'eth0.100', 'x'], []],
    [['ens[0-9]*'], ['ens3', 'ens33f0', 'ens0.5'], ['ens', 'ensa']],
    [['[!v]*'], ['eth0', 'lo', '!x'], ['veth0']],
    [['[^v]*'], ['eth0'], ['veth0']],
    [['[!0-9]x'], ['ax', '!x'], ['1x']],
    [['eth[[:digit:]]'], ['eth7'], ['ethx']],
    [['[]a]'], [']', 'a'], ['b']],
    [['veth?'], ['veth0', 'veth.'], ['veth', 'veth10']],
    [['{eth,ens}*'], ['eth0', 'ens3'], ['enp0s3']],
    [['a\\*'], ['a*'], ['ab']],
    [['br-*', 'docker0'], ['br-1234', 'docker0'], ['docker1', 'br']],
    [[], [], ['eth0', '']],
  ]
  for (const [globs, matches, misses] of table) {
    const m = compileGlobs(globs)
    for (const n of matches) t.ok(m(n), `${JSON.stringify(globs)} matches ${n}`)
    for (const n of misses) t.notOk(m(n), `${JSON.stringify(globs)} does not match ${n}`)
  }
})
