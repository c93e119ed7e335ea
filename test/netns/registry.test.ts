import t from 'tap'
import {
  boundNamespaces,
  namespaceId,
  namespaceOfPath,
  newRegistry,
  observe,
  type Change,
  type NetnsEvent,
  type NsIdentity,
  type Observation,
  type RegistryState,
} from '../../src/netns/registry.js'

// nsfs inodes as the kernel hands them out (PROC_DYNAMIC_FIRST upwards); the daemon's own is the init namespace's.
const SELF: NsIdentity = { dev: 4, ino: 4026531840 }
const A: NsIdentity = { dev: 4, ino: 4026532001 }
const B: NsIdentity = { dev: 4, ino: 4026532002 }
const ids = new Map([
  [SELF.ino, 'SELF'],
  [A.ino, 'A'],
  [B.ino, 'B'],
])

const ns = (identity: NsIdentity): Observation => ({ kind: 'namespace', identity })
const pending: Observation = { kind: 'pending' }
const gone: Observation = { kind: 'gone' }
const at = (path: string, observation: Observation): Change => ({ path, observation })

/** An event as one line: `added A a [a, b]`, `renamed A b [b] was a [a, b]`, `removed A a`, `ignored /d/x A: ...`. */
function line(e: NetnsEvent): string {
  const who = (i: NsIdentity): string => ids.get(i.ino) ?? String(i.ino)
  switch (e.kind) {
    case 'added':
      return `added ${who(e.namespace.identity)} ${e.namespace.name} [${e.namespace.names.join(', ')}]`
    case 'renamed':
      return `renamed ${who(e.namespace.identity)} ${e.namespace.name} [${e.namespace.names.join(', ')}] was ${e.was.name} [${e.was.names.join(', ')}]`
    case 'removed':
      return `removed ${who(e.namespace.identity)} ${e.namespace.name}`
    case 'ignored': {
      const r = e.file.reason
      const why = r.kind === 'reserved-name' ? 'reserved name' : `name of ${r.namespace === namespaceId(SELF, SELF) ? 'SELF' : r.namespace} (${r.path ?? 'reserved'})`
      return `ignored ${e.file.path} ${who(e.file.identity)}: ${why}`
    }
  }
}

type Step = [Change[], string[]]

const cases: [string, Step[]][] = [
  [
    'ip netns add: the file first, then its bind mount; ip netns del',
    [
      [[at('/run/netns/a', pending)], []],
      [[at('/run/netns/a', ns(A))], ['added A a [a]']],
      [[at('/run/netns/a', ns(A))], []],
      [[at('/run/netns/a', gone)], ['removed A a']],
      [[at('/run/netns/a', gone)], []],
    ],
  ],
  [
    'a file that never becomes a namespace adds nothing, and its going removes nothing',
    [
      [[at('/run/netns/x', pending)], []],
      [[at('/run/netns/x', gone)], []],
    ],
  ],
  [
    'two files bind one namespace: one namespace, two names; removed with its last file',
    [
      [[at('/run/netns/a', ns(A))], ['added A a [a]']],
      [[at('/srv/ns/a2', ns(A))], ['renamed A a [a, a2] was a [a]']],
      [[at('/run/netns/a', gone)], ['renamed A a2 [a2] was a [a, a2]']],
      [[at('/srv/ns/a2', gone)], ['removed A a2']],
    ],
  ],
  [
    'the same name in two directories for the same namespace: one name, two files',
    [
      [[at('/run/netns/a', ns(A)), at('/run/docker/netns/a', ns(A))], ['added A a [a]']],
      [[at('/run/netns/a', gone)], []],
      [[at('/run/docker/netns/a', gone)], ['removed A a']],
    ],
  ],
  [
    'found in one batch: the oldest file names the namespace',
    [[[at('/run/netns/b', ns(A)), at('/run/netns/a', ns(A))], ['added A b [b, a]']]],
  ],
  [
    'the primary name stays while its file does, whichever file was seen before as something else',
    [
      [[at('/run/netns/early', pending), at('/run/netns/a', ns(A))], ['added A a [a]']],
      [[at('/run/netns/early', ns(A))], ['renamed A a [a, early] was a [a]']],
    ],
  ],
  [
    'a rename within a batch (mv a b): renamed, not removed and added',
    [
      [[at('/run/netns/a', ns(A))], ['added A a [a]']],
      [[at('/run/netns/a', gone), at('/run/netns/b', ns(A))], ['renamed A b [b] was a [a]']],
    ],
  ],
  [
    'a file that binds the daemon\'s own namespace: another name of host, nothing added',
    [
      [[at('/run/netns/default', ns(SELF))], ['renamed SELF host [host, default] was host [host]']],
      [[at('/run/netns/default', gone)], ['renamed SELF host [host] was host [host, default]']],
    ],
  ],
  [
    'a file called host that binds the daemon\'s namespace: nothing changes',
    [[[at('/run/netns/host', ns(SELF))], []]],
  ],
  [
    'a file called host that binds another namespace: ignored, reported once; gone, nothing',
    [
      [[at('/run/netns/host', ns(A))], ['ignored /run/netns/host A: reserved name']],
      [[at('/run/netns/host', ns(A))], []],
      [[at('/run/netns/host', gone)], []],
    ],
  ],
  [
    'the name of another namespace: ignored while the other has it, then managed',
    [
      [[at('/run/netns/a', ns(A))], ['added A a [a]']],
      [[at('/run/docker/netns/a', ns(B))], ['ignored /run/docker/netns/a B: name of net:[4026532001] (/run/netns/a)']],
      [[at('/run/netns/a', gone)], ['removed A a', 'added B a [a]']],
    ],
  ],
  [
    'an ignored file can still be another name of a namespace',
    [
      [[at('/run/netns/a', ns(A)), at('/run/netns/b', ns(B))], ['added A a [a]', 'added B b [b]']],
      [[at('/srv/ns/a', ns(B))], ['ignored /srv/ns/a B: name of net:[4026532001] (/run/netns/a)']],
      [[at('/run/netns/b', gone)], ['removed B b']],
    ],
  ],
  [
    'a file that comes to bind another namespace (deleted and made again between two looks)',
    [
      [[at('/run/netns/a', ns(A))], ['added A a [a]']],
      [[at('/run/netns/a', ns(B))], ['removed A a', 'added B a [a]']],
    ],
  ],
  [
    'a namespace file that stops being one (unmounted): its namespace is removed',
    [
      [[at('/run/netns/a', ns(A))], ['added A a [a]']],
      [[at('/run/netns/a', pending)], ['removed A a']],
    ],
  ],
]

t.test('observe: the namespaces the files make, as events', async (t) => {
  for (const [name, steps] of cases) {
    let state: RegistryState = newRegistry(SELF)
    steps.forEach(([changes, expected], i) => {
      const r = observe(state, changes)
      t.same(r.events.map(line), expected, `${name}: step ${i + 1}`)
      state = r.state
    })
  }
})

t.test('the state: host always there, ids, paths, descriptors to keep', async (t) => {
  let s = newRegistry(SELF)
  t.same([...s.namespaces.values()], [{ id: 'net:[4026531840]', name: 'host', names: ['host'], paths: [], identity: SELF, host: true }])
  s = observe(s, [
    at('/run/netns/a', ns(A)),
    at('/srv/ns/a2', ns(A)),
    at('/run/netns/default', ns(SELF)),
    at('/run/netns/host', ns(B)),
    at('/run/netns/new', pending),
  ]).state
  t.same(
    [...s.namespaces.values()].map((n) => [n.id, n.name, n.paths, n.host]),
    [
      ['net:[4026531840]', 'host', ['/run/netns/default'], true],
      ['net:[4026532001]', 'a', ['/run/netns/a', '/srv/ns/a2'], false],
    ],
  )
  t.equal(namespaceOfPath(s, '/srv/ns/a2')?.id, 'net:[4026532001]')
  t.equal(namespaceOfPath(s, '/run/netns/host'), null, 'an ignored file counts for no namespace')
  t.equal(namespaceOfPath(s, '/run/netns/new'), null)
  t.same([...boundNamespaces(s).keys()], ['net:[4026532001]', 'net:[4026532002]'], 'descriptors: every bound namespace but our own')
  t.equal(namespaceId({ dev: 9, ino: 5 }, SELF), 'net:[5]@9', 'another device (never seen): still unique')
  const before = s
  observe(s, [at('/run/netns/a', gone)])
  t.equal(s, before, 'the state given is not changed')
  t.equal(s.files.size, 5)
})
