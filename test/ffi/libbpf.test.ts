/**
 * The libbpf bindings against the real library and kernel: the print callback formats libbpf's printf-style
 * messages (va_list through vsnprintf), errors carry names, descriptors read back, and the bpffs calls work.
 */
import { mkdtempSync, readFileSync, rmdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { SyscallError } from '../../src/ffi/errno.js'
import {
  BPF_FS_MAGIC,
  BPF_PROG_TYPE_XDP,
  BpfObject,
  LibbpfError,
  bpfFdKind,
  captureLibbpfLog,
  isBpffs,
  libbpfVersion,
  mapInfo,
  mapLookupElem,
  mountBpffs,
  objGet,
  progInfo,
  progTestRun,
  setLibbpfLogger,
  statfsType,
  umount,
  type LibbpfMessage,
} from '../../src/ffi/libbpf.js'
import { needsRoot } from '../helpers/netns.js'
import { bpftoolJson, buildObjects, tempBpffs } from '../helpers/bpf.js'

// <linux/bpf.h> enum bpf_map_type, map flags
const BPF_MAP_TYPE_LPM_TRIE = 11
const BPF_F_NO_PREALLOC = 1

t.test('libbpf is 1.x', async (t) => {
  t.match(libbpfVersion(), /^[1-9]\d*\.\d+$/)
})

t.test('messages are formatted from their va_list, and bad ELF is a named libbpf error', async (t) => {
  const got: LibbpfMessage[] = []
  const e = t.throws(() =>
    captureLibbpfLog(
      (m) => got.push(m),
      () => BpfObject.open(Buffer.from('this is not an ELF file'), 'junk_name'),
    ),
  ) as unknown
  t.ok(e instanceof LibbpfError && e instanceof SyscallError)
  t.match(e, { code: 'LIBBPF_ERRNO__FORMAT', syscall: 'bpf_object__open_mem', message: /BPF object format invalid/ })
  // %s filled in from the va_list, at the right levels
  t.same(got, [
    { level: 'debug', text: "libbpf: loading object 'junk_name' from buffer\n" },
    { level: 'warn', text: "libbpf: elf: 'junk_name' is not a proper ELF object\n" },
  ])
})

t.test('outside a capture messages go to the logger; captures nest', async (t) => {
  const outside: string[] = []
  const outer: string[] = []
  const inner: string[] = []
  setLibbpfLogger((m) => outside.push(m.text))
  t.teardown(() => setLibbpfLogger(null))
  const junk = Buffer.from('nope')
  t.throws(() => BpfObject.open(junk, 'first'))
  captureLibbpfLog(
    (m) => outer.push(m.text),
    () => {
      t.throws(() => captureLibbpfLog((m) => inner.push(m.text), () => BpfObject.open(junk, 'second')))
      t.throws(() => BpfObject.open(junk, 'third'))
    },
  )
  t.match(outside.join(''), /'first'/)
  t.match(inner.join(''), /'second'/)
  t.notMatch(inner.join(''), /'third'/)
  t.match(outer.join(''), /'third'/)
  t.notMatch(outer.join(''), /'second'/)
})

t.test('kernel', { skip: needsRoot }, async (t) => {
  const objs = buildObjects(t)

  t.test('a message far longer than the first formatting buffer arrives whole', async (t) => {
    const obj = BpfObject.open(readFileSync(objs.fixture('xdp_big_bad')), 'xdp_big_bad')
    t.teardown(() => obj.close())
    const got: LibbpfMessage[] = []
    t.throws(() => captureLibbpfLog((m) => got.push(m), () => obj.load()), { code: 'EACCES', syscall: 'bpf_object__load' })
    const log = got.find((m) => m.text.includes('BEGIN PROG LOAD LOG'))
    t.ok(log, 'the verifier log came through')
    if (!log) return
    t.ok(log.text.length > 64 * 1024, `${log.text.length} bytes`)
    t.match(log.text, /^libbpf: prog 'xdp_big_bad': -- BEGIN PROG LOAD LOG --\n0: R1=ctx/)
    t.match(log.text, /R1 offset is outside of the packet\nprocessed \d+ insns .*\n-- END PROG LOAD LOG --\n$/)
    t.notMatch(log.text, /%[sd]/, 'no conversion left unformatted')
  })

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
      maxEntries: 65536,
      flags: BPF_F_NO_PREALLOC,
      name: 'blocklist_v4',
    })
    t.equal(mapLookupElem(mfd, Buffer.from('200000000a000001', 'hex'), Buffer.alloc(1)), false, 'absent key')

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

  t.test('errors name the errno', async (t) => {
    t.throws(() => objGet('/nonexistent/pin'), { name: 'SyscallError', code: 'ENOENT', syscall: 'bpf_obj_get' })
    t.throws(() => statfsType('/nonexistent/dir'), { code: 'ENOENT', syscall: 'statfs' })
  })

  t.test('statfs, mount and umount of a bpffs', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'xdpl-mnt-'))
    t.teardown(() => rmdirSync(dir))
    t.notOk(isBpffs(dir))
    mountBpffs(dir)
    t.equal(statfsType(dir), BPF_FS_MAGIC)
    t.ok(isBpffs(dir))
    umount(dir)
    t.notOk(isBpffs(dir))
    t.throws(() => umount(dir), { code: 'EINVAL', syscall: 'umount2' }, 'not a mount point any more')
  })
})
