import t from 'tap'
import { KNOWN_KINDS, kindHints } from '../../src/config/kinds.js'
import { NO_KIND } from '../../src/config/types.js'

const config = (kinds: string[] | null, name = 'attach[0]') => ({ entries: [{ index: 0, name, kinds }] }) as Parameters<typeof kindHints>[0]

t.test('a kind one or two edits from a known one gets a suggestion', async (t) => {
  const cases: [kind: string, suggestion: string | null][] = [
    ['vet', 'veth'],
    ['veh', 'veth'],
    ['vlans', 'vlan'],
    ['brige', 'bridge'],
    ['devices', NO_KIND],
    ['wiregaurd', 'wireguard'],
    ['vxlam', 'vxlan'],
    // known kinds, and no kind at all
    ['veth', null],
    [NO_KIND, null],
    ['bond', null],
    // far from everything: a module's own kind, taken as meant
    ['mykind', null],
    ['fancytunnel', null],
    // short kinds get one edit only: 'ab' is two from 'amt'
    ['ab', null],
    ['tap', null],
    ['gree', 'gre'],
    // a swap is two edits: too many for a short kind
    ['veht', null],
  ]
  for (const [kind, suggestion] of cases) {
    const hints = kindHints(config([kind]))
    if (suggestion === null) t.same(hints, [], `${kind}: no hint`)
    else t.match(hints, [{ index: 0, kind, suggestion }], `${kind} -> ${suggestion}`)
  }
})

t.test('the message names the entry, the kind and the suggestion', async (t) => {
  const [h] = kindHints(config(['veth', 'vet'], 'lab'))
  t.equal(h!.message, 'attach[0] (lab): kinds: "vet" is not a known link kind; did you mean "veth"? As written it matches only links whose IFLA_INFO_KIND is exactly "vet"')
  t.same(kindHints(config(null)), [], 'no kinds: nothing to say')
})

t.test('every known kind is a plausible IFLA_INFO_KIND, listed once', async (t) => {
  t.equal(new Set(KNOWN_KINDS).size, KNOWN_KINDS.length)
  for (const k of KNOWN_KINDS) t.match(k, /^[a-z][a-z0-9_]*$/, k)
})
