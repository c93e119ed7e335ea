/**
 * Pins across processes: a second process asked for the same content and program finds the pin and uses the same
 * program and maps; with the program pin gone, a fresh load still reuses the pinned maps, so what an operator put
 * in a blocklist survives. The other process is a real child `node` (test/fixtures/bpf/acquire.ts).
 */
import { join } from 'node:path'
import { unlinkSync } from 'node:fs'
import t from 'tap'
import { needsRoot } from '../helpers/netns.js'
import { FIXTURES, bpftool, bpftoolJson, buildObjects, runChild, tempBpffs } from '../helpers/bpf.js'

interface Child {
  id: number
  tag: string
  name: string
  source: 'loaded' | 'pinned'
  pinDirName: string
  pinPath: string
  maps: Record<string, string>
  ms: number
}

const CHILD = join(FIXTURES, 'acquire.ts')
// 192.168.1.0/24 in the LPM key layout {__u32 prefixlen (host order); __u8 addr[4]} (see bpf/xdp_blocklist.c)
const KEY = ['18', '00', '00', '00', 'c0', 'a8', '01', '00']

/** `bpftool -j map lookup` gives raw bytes plus, with BTF, the decoded entry under `formatted`. */
function lookup(pin: string): { key: { prefixlen: number; addr: number[] }; value: number } {
  return bpftoolJson<{ formatted: { key: { prefixlen: number; addr: number[] }; value: number } }>(
    'map', 'lookup', 'pinned', pin, 'key', 'hex', ...KEY,
  ).formatted
}

t.test('pins across processes', { skip: needsRoot }, async (t) => {
  const objs = buildObjects(t)
  const bpffs = join(tempBpffs(t), 'xdplinkd')
  const obj = objs.bundled('xdp_blocklist')

  const first = runChild<Child>(CHILD, [bpffs, obj])
  t.equal(first.source, 'loaded')
  t.equal(first.name, 'xdp_blocklist')
  const v4 = first.maps['blocklist_v4']
  if (!v4) throw new Error('no blocklist_v4 pin')

  // The operator's command from the header of bpf/xdp_blocklist.c, verbatim.
  bpftool('map', 'update', 'pinned', v4, 'key', 'hex', ...KEY, 'value', 'hex', '01')
  const mapId = bpftoolJson<{ id: number }>('map', 'show', 'pinned', v4).id

  t.test('the second process reuses the pinned program and its maps', async (t) => {
    const second = runChild<Child>(CHILD, [bpffs, obj, 'xdp_blocklist'])
    t.equal(second.source, 'pinned')
    t.equal(second.id, first.id)
    t.equal(second.tag, first.tag)
    t.same(second.maps, first.maps)
    t.match(lookup(v4), { key: { prefixlen: 24, addr: [192, 168, 1, 0] }, value: 1 })
    const prog = bpftoolJson<{ map_ids: number[] }>('prog', 'show', 'id', String(first.id))
    t.ok(prog.map_ids.includes(mapId), 'the program uses the pinned map')
  })

  t.test('with the program pin gone, a fresh load reuses the pinned maps', async (t) => {
    unlinkSync(first.pinPath)
    const third = runChild<Child>(CHILD, [bpffs, obj])
    t.equal(third.source, 'loaded')
    t.not(third.id, first.id, 'a new program')
    t.equal(third.tag, first.tag, 'the same instructions')
    t.equal(bpftoolJson<{ id: number }>('map', 'show', 'pinned', v4).id, mapId, 'the same map')
    const prog = bpftoolJson<{ map_ids: number[] }>('prog', 'show', 'id', String(third.id))
    t.ok(prog.map_ids.includes(mapId), 'the new program uses the old map')
    t.equal(lookup(v4).value, 1, 'the blocklist entry survived the reload')
  })
})
