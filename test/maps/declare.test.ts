/**
 * declaredContents and sameContents over hand-made BTF: what an operator's declaration becomes, and every problem
 * located where the operator wrote it.
 */
import t from 'tap'
import type { MapDeclaration, Place } from '../../src/config/types.js'
import type { BtfType, MapSpec } from '../../src/maps/btf.js'
import { declaredContents, describePlace, sameContents } from '../../src/maps/declare.js'
import { keyHex, valueAt } from '../../src/maps/entries.js'
import { parseListFile } from '../../src/maps/listfile.js'
import { BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_DEVMAP, BPF_MAP_TYPE_LPM_TRIE } from '../../src/maps/map-types.js'

const FILE = '/etc/xdplinkd/config.yaml'
const u32: BtfType = { kind: 'int', id: 1, name: 'unsigned int', size: 4, signed: false, char: false, bool: false, bitOffset: 0, bits: 32 }
const u8: BtfType = { kind: 'int', id: 2, name: 'unsigned char', size: 1, signed: false, char: false, bool: false, bitOffset: 0, bits: 8 }
const addr4: BtfType = { kind: 'array', id: 3, elem: 2, nelems: 4 }
const key4: BtfType = {
  kind: 'struct',
  id: 4,
  name: 'lpm_key_v4',
  size: 8,
  members: [
    { name: 'prefixlen', type: 1, bitOffset: 0, bitfieldSize: 0 },
    { name: 'addr', type: 3, bitOffset: 32, bitfieldSize: 0 },
  ],
}
const btf = new Map([u32, u8, addr4, key4].map((x) => [x.id, x]))
const LPM: MapSpec = { name: 'blocklist_v4', type: BPF_MAP_TYPE_LPM_TRIE, keySize: 8, valueSize: 1, maxEntries: 3, flags: 1, keyType: 4, valueType: 2, btf }
const ARRAY: MapSpec = { name: 'limits', type: BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 4, maxEntries: 2, flags: 0, keyType: 1, valueType: 1, btf }

const at = (line: number, path: string): Place => ({ file: FILE, line, col: 7, path })
/** A declaration whose keys are on lines 10, 11, ... */
function decl(keys: unknown[], extra: Partial<MapDeclaration> = {}): MapDeclaration {
  return {
    map: 'blocklist_v4',
    at: at(9, 'attach[0].maps.blocklist_v4'),
    items: keys.map((key, i) => ({ key, at: at(10 + i, `attach[0].maps.blocklist_v4[${i}]`) })),
    file: null,
    fileAt: null,
    ...extra,
  }
}
const hexes = (r: ReturnType<typeof declaredContents>): string[] =>
  r.ok ? Array.from({ length: r.value.count }, (_, i) => `${keyHex(r.value, i)}=${valueAt(r.value, i).toString('hex')}`) : r.error.map(String)

t.test('keys get the value of "value", or zero bytes', async (t) => {
  t.same(hexes(declaredContents(LPM, decl(['192.168.1.0/24', '10.0.0.1']))), ['18000000c0a80100=00', '200000000a000001=00'])
  t.same(hexes(declaredContents(LPM, decl(['192.168.1.0/24'], { value: 1, valueAt: at(20, 'attach[0].maps.blocklist_v4.value') }))), ['18000000c0a80100=01'])
})

t.test('an entry with its own value keeps it', async (t) => {
  const d = decl([])
  d.items.push({ key: '10.0.0.0/8', value: 7, at: at(10, 'k'), valueAt: at(10, 'v') })
  t.same(hexes(declaredContents(LPM, d, undefined)), ['080000000a000000=07'])
})

t.test('errors are located at the key or value, with the path inside it', async (t) => {
  const r = declaredContents(LPM, decl(['192.0.2.0/24', '192.0.2.0/33', '192.0.2.0/24']))
  if (r.ok) return void t.fail('accepted')
  t.equal(r.error.length, 2, r.error.map(String).join('\n'))
  t.match(String(r.error[0]), /^\/etc\/xdplinkd\/config\.yaml:11:7: attach\[0\]\.maps\.blocklist_v4\[1\]: .*33/)
  t.equal(
    String(r.error[1]),
    '/etc/xdplinkd/config.yaml:12:7: attach[0].maps.blocklist_v4[2]: the same key as attach[0].maps.blocklist_v4[0] (line 10); give each key once',
  )
  const v = declaredContents(LPM, decl(['10.0.0.0/8'], { value: 300, valueAt: at(20, 'attach[0].maps.blocklist_v4.value') }))
  t.match(v.ok ? 'accepted' : String(v.error[0]), /^\/etc\/xdplinkd\/config\.yaml:20:7: attach\[0\]\.maps\.blocklist_v4\.value: .*255/, 'a value out of range, once')
  t.equal(v.ok ? 0 : v.error.length, 1)
})

t.test('a list file: repeats are one entry; its errors name the file and line', async (t) => {
  const text = '# blocked\n192.168.1.0/24\n\n  10.0.0.0/8   # rfc1918\n192.168.1.0/24\nnot-an-address\n'
  const list = parseListFile('/etc/xdplinkd/v4.txt', text)
  t.same([...list.keys], [
    { key: '192.168.1.0/24', line: 2 },
    { key: '10.0.0.0/8', line: 4 },
    { key: '192.168.1.0/24', line: 5 },
    { key: 'not-an-address', line: 6 },
  ])
  const r = declaredContents(LPM, decl(['10.0.0.0/8']), list)
  if (r.ok) return void t.fail('accepted')
  t.equal(r.error.length, 1)
  t.match(String(r.error[0]), /^\/etc\/xdplinkd\/v4\.txt:6: "not-an-address": /)
  const good = parseListFile('/etc/xdplinkd/v4.txt', text.replace('not-an-address\n', ''))
  t.same(hexes(declaredContents(LPM, decl(['10.0.0.0/8']), good)), ['080000000a000000=00', '18000000c0a80100=00'], 'the config and the file may both give a key, with one value')
})

t.test('more entries than max_entries; an array index past the end', async (t) => {
  const r = declaredContents(LPM, decl(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']))
  t.match(r.ok ? 'accepted' : String(r.error[0]), /config\.yaml:9:7: attach\[0\]\.maps\.blocklist_v4: declares 4 entries; map blocklist_v4 holds at most 3/)
  const a = declaredContents(ARRAY, { ...decl([]), items: [{ key: 1, value: 5, at: at(10, 'a[0]') }, { key: 2, value: 5, at: at(11, 'a[1]') }] })
  t.match(a.ok ? 'accepted' : String(a.error[0]), /:11:7: a\[1\]: index 2 is past the end of array map limits \(max_entries 2: 0 to 1\)/)
  t.same(hexes(declaredContents(ARRAY, { ...decl([]), items: [{ key: 1, value: 5, at: at(10, 'a[0]') }] })), ['01000000=05000000'])
})

t.test('maps that cannot be declared', async (t) => {
  const r = declaredContents({ ...LPM, type: BPF_MAP_TYPE_DEVMAP }, decl(['1']))
  t.match(r.ok ? 'accepted' : String(r.error[0]), /blocklist_v4: map blocklist_v4 is a devmap map, whose contents cannot be declared/)
  const n = declaredContents({ ...LPM, keyType: null }, decl(['1']))
  t.match(n.ok ? 'accepted' : String(n.error[0]), /has no BTF type for its key, .*__type\(key/)
})

t.test('sameContents: one program, one map, two declarations that differ', async (t) => {
  const a = decl(['10.0.0.0/8'])
  const b = { ...decl(['10.0.0.0/8']), at: at(30, 'attach[2].maps.blocklist_v4') }
  const c = { ...decl(['10.0.0.0/16']), at: at(40, 'attach[3].maps.blocklist_v4') }
  const enc = (d: MapDeclaration) => {
    const r = declaredContents(LPM, d)
    if (!r.ok) throw new Error(r.error.map(String).join('\n'))
    return { decl: d, contents: r.value }
  }
  t.same(sameContents([enc(a), enc(b)]), [], 'the same contents twice')
  const errors = sameContents([enc(a), enc(b), enc(c)])
  t.equal(errors.length, 1)
  t.equal(
    String(errors[0]),
    '/etc/xdplinkd/config.yaml:40:7: attach[3].maps.blocklist_v4: declares other contents for map blocklist_v4 than attach[0].maps.blocklist_v4 (line 9); the two entries share one program, and so its maps: declare the contents once, or give one entry another object or program',
  )
  t.equal(describePlace({ file: '/x.txt', line: 3, col: null, path: '' }), 'line 3 of /x.txt')
})

t.test('the declared entries: keys in one buffer, values in another, in order; an index by key', async (t) => {
  const r = declaredContents(LPM, decl(['10.0.0.0/8', '192.0.2.7'], { value: 1, valueAt: at(8, 'attach[0].maps.blocklist_v4.value') }))
  if (!r.ok) throw new Error(r.error.join('\n'))
  t.same(
    { count: r.value.count, keys: r.value.keys.toString('hex'), values: r.value.values.toString('hex') },
    { count: 2, keys: '080000000a000000' + '20000000c0000207', values: '0101' },
    '8-byte keys back to back, 1-byte values',
  )
  t.same([0, 1].map((i) => r.value.index.find(r.value.keys, i * 8)), [0, 1], 'each key found at its place')
  const list = parseListFile('/x.txt', '10.0.0.0/8\n10.1.0.0/16\n10.0.0.0/8\n10.2.0.0/16\n')
  const f = declaredContents(LPM, { ...decl([]), file: '/x.txt', fileAt: at(9, 'f') }, list)
  t.same(hexes(f), ['080000000a000000=00', '100000000a010000=00', '100000000a020000=00'], 'a repeat leaves no gap behind it')
  t.equal(f.ok && f.value.keys.length, 24, 'the keys end with the last entry')
})
