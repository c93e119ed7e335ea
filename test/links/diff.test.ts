import t from 'tap'
import { linkEvents, tableEvents, changedFields } from '../../src/links/diff.js'
import { link } from '../helpers/link-state.js'

t.test('linkEvents: one ifindex, before and after', async (t) => {
  const a = link(5, 'veth0')
  const cases: [string, Parameters<typeof linkEvents>[0], Parameters<typeof linkEvents>[1], string[]][] = [
    ['nothing', undefined, undefined, []],
    ['appears', undefined, a, ['add veth0']],
    ['vanishes', a, undefined, ['remove veth0']],
    ['same', a, link(5, 'veth0'), []],
    ['renamed', a, link(5, 'veth1'), ['rename veth1<-veth0']],
    ['oper up', a, link(5, 'veth0', { operState: 'up', running: true }), ['change veth0 running,operState']],
    ['renamed and down', a, link(5, 'x', { up: false }), ['rename x<-veth0', 'change x up']],
    ['xdp attached', a, link(5, 'veth0', { xdp: { mode: 'generic', progId: 7 } as never }), ['change veth0 xdp']],
    ['alt name added', a, link(5, 'veth0', { altNames: ['long-name'] }), ['change veth0 altNames']],
    // a rename cannot change the kind: a freed ifindex reused by a new link
    ['index reused', a, link(5, 'vlan9', { kind: 'vlan' }), ['remove veth0', 'add vlan9']],
  ]
  for (const [name, prev, next, want] of cases) {
    const got = linkEvents(prev, next).map((e) =>
      e.event === 'rename' ? `rename ${e.name}<-${e.oldName}` : e.event === 'change' ? `change ${e.name} ${e.changed.join(',')}` : `${e.event} ${e.name}`,
    )
    t.same(got, want, name)
  }
})

t.test('changedFields compares nested values by content', async (t) => {
  t.same(changedFields(link(1, 'a', { altNames: ['x'] }), link(1, 'a', { altNames: ['x'] })), [])
  t.same(changedFields(link(1, 'a', { xdp: { mode: 'native', progId: 3 } as never }), link(1, 'a', { xdp: { mode: 'native', progId: 4 } as never })), ['xdp'])
})

t.test('tableEvents: removals come first, then by ifindex', async (t) => {
  const prev = new Map([
    [3, link(3, 'a')],
    [4, link(4, 'b')],
    [9, link(9, 'c')],
  ])
  // b deleted and re-created under the same name with a new index; c renamed; d new
  const next = new Map([
    [3, link(3, 'a')],
    [12, link(12, 'b')],
    [9, link(9, 'c2')],
    [10, link(10, 'd')],
  ])
  const got = tableEvents(prev, next).map((e) => `${e.event} ${e.ifindex} ${e.name}`)
  t.same(got, ['remove 4 b', 'rename 9 c2', 'add 10 d', 'add 12 b'])
})
