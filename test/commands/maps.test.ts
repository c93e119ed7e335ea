/** The text of `xdplinkd maps`: a table per program, each map's MANAGED column in every state. Pure. */
import t from 'tap'
import { managedText, mapsText } from '../../src/commands/maps.js'
import type { MapJson, MapsJson } from '../../src/control/protocol.js'

const DIR = '/sys/fs/bpf/xdplinkd/0f8ddd9113ab36cd-xdp_blocklist'
const map = (name: string, over: Partial<MapJson> = {}): MapJson => ({
  name,
  pin: `${DIR}/maps/${name}`,
  id: 17,
  type: 'lpm_trie',
  keySize: 8,
  valueSize: 1,
  maxEntries: 65536,
  flags: 1,
  count: 2,
  countExact: true,
  managed: null,
  ...over,
})

t.test('managedText', async (t) => {
  const base = { declaredBy: ['uplink', 'pods'], declared: 2 }
  const table: [m: Parameters<typeof managedText>[0], shown: string][] = [
    [null, '-'],
    [{ ...base, holdsDeclared: true, missing: 0, changed: 0, extra: 0 }, '2 declared by uplink,pods; holds them'],
    [{ ...base, holdsDeclared: false, missing: 1, changed: 0, extra: 3 }, '2 declared by uplink,pods; differs: 1 missing, 0 changed, 3 extra'],
    [{ ...base, holdsDeclared: false, holdsProblem: 'it holds more than 100000 entries' }, '2 declared by uplink,pods; differs: it holds more than 100000 entries'],
    [{ ...base, holdsDeclared: null, holdsProblem: 'cannot open /x: ENOENT' }, '2 declared by uplink,pods; not checked: cannot open /x: ENOENT'],
  ]
  for (const [m, shown] of table) t.equal(managedText(m), shown, shown)
})

t.test('mapsText: a table per program, counts past the limit with +, problems under the table, names escaped', async (t) => {
  const s: MapsJson = {
    pid: 1234,
    config: '/etc/xdplinkd/config.yaml',
    countLimit: 100000,
    programs: [
      {
        id: 42,
        name: 'xdp_blocklist',
        object: '/opt/xdp_blocklist.o',
        pin: `${DIR}/prog`,
        entries: ['uplink', 'pods'],
        maps: [
          map('blocklist_v4', { managed: { declaredBy: ['uplink'], declared: 2, holdsDeclared: true, missing: 0, changed: 0, extra: 0 } }),
          map('blocklist_v6', { id: 18, keySize: 20, count: 100000, countExact: false }),
          map('evil\u001b[2J', { id: null, type: null, keySize: null, valueSize: null, maxEntries: null, flags: null, count: null, countExact: false, problem: 'cannot open: ENOENT' }),
        ],
      },
      { id: 43, name: 'xdp_own', object: '/opt/own.o', pin: '/sys/fs/bpf/xdplinkd/1111111111111111-xdp_own/prog', entries: ['lab'], maps: [] },
    ],
  }
  t.equal(
    mapsText(s),
    `xdplinkd (pid 1234), config /etc/xdplinkd/config.yaml

program xdp_blocklist (id 42) of /opt/xdp_blocklist.o, entries uplink,pods; maps pinned in ${DIR}/maps/
NAME          TYPE      ID  KEY  VALUE  MAX    ENTRIES  MANAGED
blocklist_v4  lpm_trie  17  8    1      65536  2        2 declared by uplink; holds them
blocklist_v6  lpm_trie  18  20   1      65536  100000+  -
evil\\x1b[2J   ?         ?   ?    ?      ?      ?        -
evil\\x1b[2J: cannot open: ENOENT

program xdp_own (id 43) of /opt/own.o, entries lab; maps pinned in /sys/fs/bpf/xdplinkd/1111111111111111-xdp_own/maps/
no maps
`,
  )
  t.equal(mapsText({ ...s, programs: [] }), 'xdplinkd (pid 1234), config /etc/xdplinkd/config.yaml\n\nno programs (the config attaches nothing)\n')
})
