/**
 * libbpf's objects, programs and maps, and the descriptor calls on what they load, against the real library and
 * kernel: the ELF's parts are listed, loaded and pinned, descriptors read back as bpftool sees them, and nothing
 * reaches freed memory after close.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { captureLibbpfLog } from '../../src/ffi/libbpf-log.js'
import { BPF_PROG_TYPE_XDP, BpfObject } from '../../src/ffi/bpf-object.js'
import { bpfFdKind, mapDeleteElem, mapGetNextKey, mapInfo, mapLookupElem, mapUpdateElem, objGet, progInfo, progTestRun } from '../../src/ffi/bpf-fd.js'
import { needsRoot } from '../helpers/netns.js'
import { bpftoolJson, buildObjects, tempBpffs } from '../helpers/bpf.js'

// <linux/bpf.h> enum bpf_map_type, map flags
const BPF_MAP_TYPE_LPM_TRIE = 11
const BPF_F_NO_PREALLOC = 1

t.test('kernel', { skip: needsRoot }, async (t) => {
  const objs = buildObjects(t)

  t.test('objects, programs, maps; descriptors and info', async (t) => {
    const bpffs = tempBpffs(t)
    const obj = BpfObject.open(readFileSync(objs.bundled('xdp_blocklist')), 'xdp_blocklist')
    t.teardown(() => obj.close())
    t.equal(obj.name, 'xdp_blocklist')
    const [prog, ...others] = obj.programs()
    t.equal(others.length, 0)
    t.match(prog, { name: 'xdp_blocklist', sectionName: 'xdp', type: BPF_PROG_TYPE_XDP, typeName: 'xdp' })
    t.same(obj.maps().map((m) => [m.name, m.internal]), [
      ['blocklist_v4', false],
      ['blocklist_v6', false],
      ['xdp_stats', false],
      ['xdp_link_stats', false],
      // LINUX_KERNEL_VERSION (bpf/xdp_stats.h): libbpf keeps __kconfig externs in an internal map of its own.
      ['xdp_blo.kconfig', true],
    ])
    t.throws(() => prog!.fd(), { name: 'SyscallError', syscall: 'bpf_program__fd' }, 'no descriptor before load')
    captureLibbpfLog(() => {}, () => obj.load())
    prog!.pin(join(bpffs, 'prog'))
    const v4 = obj.maps().find((m) => m.name === 'blocklist_v4')!
    v4.pin(join(bpffs, 'v4'))

    const fd = objGet(join(bpffs, 'prog'))
    t.teardown(() => fd.close())
    t.equal(bpfFdKind(fd), 'prog')
    const info = progInfo(fd)
    const shown = bpftoolJson<{ id: number; tag: string; name: string; map_ids: number[] }>('prog', 'show', 'pinned', join(bpffs, 'prog'))
    t.equal(info.id, shown.id)
    t.equal(info.tag, shown.tag)
    t.equal(info.name, 'xdp_blocklist')
    t.equal(info.type, BPF_PROG_TYPE_XDP)
    t.same([...info.mapIds].sort(), [...shown.map_ids].sort())

    const mfd = objGet(join(bpffs, 'v4'))
    t.teardown(() => mfd.close())
    t.equal(bpfFdKind(mfd), 'map')
    t.match(mapInfo(mfd), {
      type: BPF_MAP_TYPE_LPM_TRIE,
      keySize: 8,
      valueSize: 1,
      maxEntries: 1 << 20,
      flags: BPF_F_NO_PREALLOC,
      name: 'blocklist_v4',
    })
    t.equal(mapLookupElem(mfd, Buffer.from('200000000a000001', 'hex'), Buffer.alloc(1)), false, 'absent key')
    const keys = ['180000000a000100', '200000000a000001'].map((h) => Buffer.from(h, 'hex'))
    for (const k of keys) mapUpdateElem(mfd, k, Buffer.from([1]))
    const walked: string[] = []
    const next = Buffer.alloc(8)
    for (let k: Buffer | null = null; mapGetNextKey(mfd, k, next); k = Buffer.from(next)) walked.push(next.toString('hex'))
    t.same(walked.sort(), keys.map((k) => k.toString('hex')).sort(), 'bpf_map_get_next_key walks every key once, then ENOENT')
    t.equal(mapDeleteElem(mfd, keys[0]!), true)
    t.equal(mapDeleteElem(mfd, keys[0]!), false, 'deleting an absent key: false')
    t.equal(mapGetNextKey(mfd, null, next) && next.toString('hex'), keys[1]!.toString('hex'), 'the other key is left')
    t.equal(mapDeleteElem(mfd, keys[1]!), true)

    // A second copy of the object, told to use the first one's blocklist_v4 instead of creating its own.
    const again = BpfObject.open(readFileSync(objs.bundled('xdp_blocklist')), 'xdp_blocklist')
    t.teardown(() => again.close())
    again.maps().find((m) => m.name === 'blocklist_v4')!.reuseFd(mfd)
    captureLibbpfLog(() => {}, () => again.load())
    again.programs()[0]!.pin(join(bpffs, 'prog2'))
    const fd2 = objGet(join(bpffs, 'prog2'))
    t.teardown(() => fd2.close())
    t.ok(progInfo(fd2).mapIds.includes(mapInfo(mfd).id), 'bpf_map__reuse_fd: the new program uses the old map')

    // A small Buffer lives inside Node's shared pool at an offset: the kernel must get that exact slice.
    const pooled = Buffer.from('ffffffffffff0200000000010800' + '45000014000000004011000001020304' + '0a000001', 'hex')
    const run = progTestRun(fd, pooled)
    t.equal(run.retval, 2 /* XDP_PASS */)
    t.same(run.dataOut, pooled)
  })

  t.test('after close, nothing reaches freed memory', async (t) => {
    const obj = BpfObject.open(readFileSync(objs.bundled('xdp_pass')), 'xdp_pass')
    const [prog] = obj.programs()
    const [map] = obj.maps()
    obj.close()
    obj.close()
    t.ok(obj.closed)
    t.throws(() => obj.programs(), /used after close/)
    t.throws(() => prog!.setAutoload(false), /used after close/)
    t.throws(() => map!.fd(), /used after close/)
  })
})
