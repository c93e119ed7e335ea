/**
 * The BPF filesystem calls of the libc edge against the kernel: statfs's f_type, mount and umount of a bpffs.
 */
import { mkdtempSync, rmdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { BPF_FS_MAGIC, isBpffs, mountBpffs, statfsType, umount } from '../../src/ffi/libc.js'
import { needsRoot } from '../helpers/netns.js'

t.test('kernel', { skip: needsRoot }, async (t) => {
  t.test('errors name the errno', async (t) => {
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
