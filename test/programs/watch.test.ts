/**
 * The object watch against real files in a temporary directory (no root: the daemon's own uid is trusted when it
 * is not root): a touch is read and hashed once and reloads nothing, other bytes do, and a file that cannot be used
 * (a FIFO, a link to /dev/zero, one too large) changes nothing and is warned of once.
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { fileVersion } from '../../src/config/fs.js'
import { walkOptions } from '../../src/config/secure-path.js'
import { ObjectFiles, openObjectFile } from '../../src/programs/objects.js'
import { ObjectWatch } from '../../src/programs/watch.js'
import { waitFor } from '../helpers/netns.js'

function setup(t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-watch-'))
  chmodSync(dir, 0o755)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const obj = join(dir, 'obj.o')
  writeFileSync(obj, 'version 1', { mode: 0o644 })
  let reads = 0
  const objects = new ObjectFiles(async (path) => {
    const f = await openObjectFile(path, walkOptions())
    return { ...f, read: () => (reads++, f.read()) }
  })
  const warnings: { fields: Record<string, unknown>; message: string }[] = []
  const said = { warn: (fields: Record<string, unknown>, message: string) => void warnings.push({ fields, message }), debug: () => {} }
  let changes = 0
  const watch = new ObjectWatch({ objects, log: said, onChange: () => changes++, debounceMs: 20 })
  t.teardown(() => watch.close())
  /** Swaps what is at obj.o by a rename, as `mv -T` does. */
  const swap = (make: (tmp: string) => void) => {
    const tmp = join(dir, '.swap')
    make(tmp)
    renameSync(tmp, obj)
  }
  return { dir, obj, objects, watch, warnings, reads: () => reads, changes: () => changes, swap }
}

t.test('a touch is one hash and no change; other bytes are a change', async (t) => {
  const s = setup(t)
  const hash1 = await s.objects.hashOf(s.obj)
  t.equal(s.reads(), 1)
  s.watch.follow([{ index: 0, object: s.obj }, { index: 1, object: s.obj }], new Map([[0, { objectHash: hash1 }], [1, { objectHash: hash1 }]]))
  t.equal(await s.watch.check(), false, 'nothing changed')
  t.equal(s.reads(), 1, 'the same version is not read again, however many entries name it')

  const later = new Date(Date.now() + 5000)
  utimesSync(s.obj, later, later)
  t.equal(await s.watch.check(), false, 'touched: the same bytes')
  t.equal(s.reads(), 2, 'read and hashed once')
  t.equal(await s.watch.check(), false)
  t.equal(s.reads(), 2, 'and not again')

  s.swap((tmp) => writeFileSync(tmp, 'version 2', { mode: 0o644 }))
  await waitFor(() => s.changes() > 0, 'the watch to call onChange after its debounce: other bytes')
  t.equal(await s.watch.check(), false, 'reported once: the reload it leads to takes it from there')
  t.same(s.warnings, [])
})

t.test('a file that cannot be used changes nothing, with one warning per reason', async (t) => {
  const s = setup(t)
  s.watch.follow([{ index: 0, object: s.obj }], new Map([[0, { objectHash: await s.objects.hashOf(s.obj) }]]))

  // Without O_NONBLOCK the open would wait for a FIFO writer forever; without the fstat, /dev/zero is read to the end of memory.
  s.swap((tmp) => execFileSync('mkfifo', ['-m', '644', tmp]))
  t.equal(await s.watch.check(), false, 'a FIFO: no change')
  t.equal(await s.watch.check(), false)
  t.equal(s.warnings.length, 1, 'one warning, not one per check')
  t.match(s.warnings[0], { fields: { object: s.obj }, message: new RegExp(`object file changed but cannot be used: .*${s.obj} is not a regular file.*; the program loaded from it stays attached`) })

  s.swap((tmp) => symlinkSync('/dev/zero', tmp))
  t.equal(await s.watch.check(), false, 'a link to /dev/zero: no change')
  t.equal(s.warnings.length, 2, 'another reason, another warning')
  t.match(s.warnings[1]!.message, /\/dev\/zero is not a regular file/)

  s.swap((tmp) => writeFileSync(tmp, 'version 1', { mode: 0o644 }))
  t.equal(await s.watch.check(), false, 'back to the bytes in use: no change')
  s.swap((tmp) => symlinkSync('/dev/zero', tmp))
  t.equal(await s.watch.check(), false)
  t.equal(s.warnings.length, 3, 'once usable again, the same problem is worth a warning again')
  t.equal(s.changes(), 0, 'never a reload')
})

t.test('a list file in a ConfigMap volume: the kubelet swapping `..data` is a change, though no event names the file', async (t) => {
  const s = setup(t)
  const volume = (name: string, text: string): void => {
    mkdirSync(join(s.dir, name))
    writeFileSync(join(s.dir, name, 'list.txt'), text, { mode: 0o644 })
  }
  volume('..2026_12_04_01', '192.0.2.0/24\n')
  symlinkSync('..2026_12_04_01', join(s.dir, '..data'))
  const list = join(s.dir, 'list.txt')
  symlinkSync('..data/list.txt', list)
  s.watch.follow([{ index: 0, object: s.obj }], new Map([[0, { objectHash: await s.objects.hashOf(s.obj) }]]), new Map([[list, fileVersion(statSync(list, { bigint: true }))]]))
  t.equal(await s.watch.check(), false, 'nothing changed yet')

  // pkg/volume/util/atomic_writer.go: a new timestamped directory, `..data_tmp` pointed at it, renamed over `..data`.
  volume('..2026_12_04_02', '192.0.2.0/24\n198.51.100.0/24\n')
  symlinkSync('..2026_12_04_02', join(s.dir, '..data_tmp'))
  execFileSync('mv', ['-T', join(s.dir, '..data_tmp'), join(s.dir, '..data')])
  await waitFor(() => s.changes() > 0, 'the watch to call onChange after the swap')
  t.same(s.warnings, [])
})

t.test('bytes reported once: a rejected reload is not tried again for the same bytes', async (t) => {
  const s = setup(t)
  s.watch.follow([{ index: 0, object: s.obj }], new Map([[0, { objectHash: await s.objects.hashOf(s.obj) }]]))
  s.swap((tmp) => writeFileSync(tmp, 'version 2 (broken)', { mode: 0o644 }))
  t.equal(await s.watch.check(), true, 'other bytes: a change')
  // The reload is rejected: follow() is not called, version 1 stays in force.
  t.equal(await s.watch.check(), false, 'the same bytes again (an unrelated event of the directory): not reported twice')
  s.swap((tmp) => writeFileSync(tmp, 'version 3', { mode: 0o644 }))
  t.equal(await s.watch.check(), true, 'new bytes: a change')
  s.swap((tmp) => writeFileSync(tmp, 'version 1', { mode: 0o644 }))
  t.equal(await s.watch.check(), false, 'back to the bytes in force')
  s.swap((tmp) => writeFileSync(tmp, 'version 3', { mode: 0o644 }))
  t.equal(await s.watch.check(), true, 'and away from them again: a change')
  s.watch.follow([{ index: 0, object: s.obj }], new Map([[0, { objectHash: await s.objects.hashOf(s.obj) }]]))
  t.equal(await s.watch.check(), false, 'the new generation holds them')
})

t.test('closed: no more checks, no callback', async (t) => {
  const s = setup(t)
  s.watch.follow([{ index: 0, object: s.obj }], new Map([[0, { objectHash: 'other' }]]))
  s.swap((tmp) => writeFileSync(tmp, 'version 2', { mode: 0o644 }))
  s.watch.close()
  await new Promise((r) => setTimeout(r, 100))
  t.equal(s.changes(), 0)
})
