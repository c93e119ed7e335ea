/**
 * Finding or making the BPF filesystem the pins live in.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { BPF_FS_MAGIC, isBpffs, statfsType } from '../../src/ffi/libc.js'
import { SYSFS_MAGIC, ensureBpffs, listPinDirs, removePinDir } from '../../src/programs/bpffs.js'
import { makeNetns, needsRoot } from '../helpers/netns.js'
import { FIXTURES, buildObjects, nodeCommand, tempBpffs, tempPlainDir } from '../helpers/bpf.js'

t.test('bpffs', { skip: needsRoot }, async (t) => {
  t.test('a directory on a bpffs, or to be made on one: nothing is mounted', async (t) => {
    const bpffs = tempBpffs(t)
    t.same(ensureBpffs(bpffs), { mounted: null })
    const deep = join(bpffs, 'a', 'b')
    t.same(ensureBpffs(deep), { mounted: null })
    t.ok(existsSync(deep))
    t.ok(isBpffs(deep))
  })

  t.test('a directory on an ordinary filesystem gets a bpffs mounted on it', async (t) => {
    const plain = tempPlainDir(t)
    t.not(statfsType(plain), BPF_FS_MAGIC)
    const existing = join(plain, 'existing')
    mkdirSync(existing)
    t.same(ensureBpffs(existing), { mounted: existing })
    t.ok(isBpffs(existing))
    t.same(ensureBpffs(existing), { mounted: null }, 'and the second time finds it')
    const missing = join(plain, 'not', 'yet')
    t.same(ensureBpffs(missing), { mounted: missing })
    t.ok(isBpffs(missing))
  })

  t.test('listing and removing touch only our directories', async (t) => {
    const bpffs = tempBpffs(t)
    for (const d of ['0123456789abcdef-xdp_pass', 'someone-else', 'fedcba9876543210-x']) mkdirSync(join(bpffs, d))
    mkdirSync(join(bpffs, '0123456789abcdef-xdp_pass', 'maps'))
    t.same(listPinDirs(bpffs), ['0123456789abcdef-xdp_pass', 'fedcba9876543210-x'])
    t.same(listPinDirs(join(bpffs, 'missing')), [])
    removePinDir(bpffs, '0123456789abcdef-xdp_pass')
    t.notOk(existsSync(join(bpffs, '0123456789abcdef-xdp_pass')))
    t.throws(() => removePinDir(bpffs, 'someone-else'), RangeError)
    mkdirSync(join(bpffs, 'fedcba9876543210-x', 'foreign'))
    t.throws(() => removePinDir(bpffs, 'fedcba9876543210-x'), { code: 'ENOTEMPTY' }, 'foreign content is never deleted')
    t.ok(existsSync(join(bpffs, 'fedcba9876543210-x', 'foreign')))
  })

  t.test('under `ip netns exec` /sys/fs/bpf is a bare sysfs directory: the bpffs is mounted there, privately', async (t) => {
    const objs = buildObjects(t)
    const hostType = statfsType('/sys/fs/bpf')
    const ns = makeNetns(t)
    t.equal(Number(ns.exec('stat', ['-f', '-c', '%t', '/sys/fs/bpf']).trim().replace(/^/, '0x')), SYSFS_MAGIC)
    const [node, args] = nodeCommand(join(FIXTURES, 'acquire.ts'), ['/sys/fs/bpf/xdplinkd', objs.bundled('xdp_pass')])
    const out = JSON.parse(ns.exec(node, args)) as { mounted: string | null; source: string; pinPath: string }
    t.equal(out.mounted, '/sys/fs/bpf')
    t.equal(out.source, 'loaded')
    t.match(out.pinPath, /^\/sys\/fs\/bpf\/xdplinkd\/[0-9a-f]{16}-xdp_pass\/prog$/)
    t.equal(statfsType('/sys/fs/bpf'), hostType, "the host's /sys/fs/bpf is untouched")
  })
})
