import { execFileSync } from 'node:child_process'
import { appendFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { lstatPath, openRegularFile, readLinkTarget, READ_CHUNK } from '../../src/config/fs.js'

t.test('the thin fs layer returns Results, never throws', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xdplinkd-fs-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'ok.yaml'), 'attach: []\n')
  symlinkSync('ok.yaml', join(dir, 'link'))

  const st = await lstatPath(join(dir, 'link'))
  t.match(st, { ok: true, value: { isSymlink: true, isFile: false, isDir: false } }, 'lstat does not follow')
  t.match(await lstatPath(dir), { ok: true, value: { isDir: true } })
  t.match(await lstatPath(join(dir, 'ok.yaml', 'x')), { ok: false, error: { code: 'ENOTDIR' } })
  t.same(await readLinkTarget(join(dir, 'link')), { ok: true, value: 'ok.yaml' })
  t.match(await readLinkTarget(join(dir, 'ok.yaml')), { ok: false, error: { code: 'EINVAL' } })
})

t.test('openRegularFile: one descriptor, judged by fstat before a byte is read', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xdplinkd-fs-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const limits = { maxBytes: 1000 }
  const read = async (path: string, l = limits) => {
    const f = await openRegularFile(path, l)
    if (!f.ok) return f
    try {
      return await f.value.read()
    } finally {
      await f.value.close()
    }
  }

  writeFileSync(join(dir, 'ok'), 'hello')
  const opened = await openRegularFile(join(dir, 'ok'), limits)
  t.match(opened, { ok: true, value: { stat: { isFile: true, size: 5, version: /^\d+:\d+:5:\d+:\d+$/ } } })
  if (opened.ok) {
    const chunks: string[] = []
    t.same(await opened.value.read((c) => chunks.push(c.toString())), { ok: true, value: Buffer.from('hello') })
    t.same(chunks, ['hello'], 'each chunk handed over')
    await opened.value.close()
    await opened.value.close() // twice: harmless
  }

  t.match(await read(join(dir, 'missing')), { ok: false, error: { code: 'ENOENT' } })
  t.match(await read(dir), { ok: false, error: { code: 'ENOTREG', message: `${dir} is a directory` } })

  symlinkSync('ok', join(dir, 'link'))
  t.match(await read(join(dir, 'link')), { ok: false, error: { code: 'ELOOP', message: `${join(dir, 'link')} is a symbolic link (not followed)` } })
  symlinkSync('/dev/zero', join(dir, 'zero'))
  t.match(await read(join(dir, 'zero')), { ok: false, error: { code: 'ELOOP' } }, 'a link to /dev/zero is not followed')
  t.match(await read('/dev/zero'), { ok: false, error: { code: 'ENOTREG' } }, '/dev/zero itself: a device, not read')

  // Without O_NONBLOCK, open(2) of a FIFO waits for a writer (fs/fifo.c, wait_for_partner): this would hang.
  execFileSync('mkfifo', ['-m', '644', join(dir, 'fifo')])
  t.match(await read(join(dir, 'fifo')), { ok: false, error: { code: 'ENOTREG', message: `${join(dir, 'fifo')} is a FIFO` } })

  writeFileSync(join(dir, 'big'), Buffer.alloc(1001))
  t.match(await read(join(dir, 'big')), { ok: false, error: { code: 'EFBIG', message: /is 1001 bytes, more than the 1000 accepted/ } })
  writeFileSync(join(dir, 'exact'), Buffer.alloc(1000, 1))
  t.match(await read(join(dir, 'exact')), { ok: true, value: Buffer.alloc(1000, 1) })

  // A file read in several chunks comes back whole.
  const big = Buffer.alloc(READ_CHUNK * 2 + 17)
  for (let i = 0; i < big.length; i += 4096) big[i] = i % 251
  writeFileSync(join(dir, 'chunks'), big)
  let pieces = 0
  const f = await openRegularFile(join(dir, 'chunks'), { maxBytes: big.length })
  t.ok(f.ok)
  if (f.ok) {
    t.same(await f.value.read(() => pieces++), { ok: true, value: big })
    await f.value.close()
  }
  t.equal(pieces, 3, 'in READ_CHUNK pieces')

  // One that grows after fstat is still being written: refused, not read without end or taken half-written.
  writeFileSync(join(dir, 'growing'), 'abc')
  const g = await openRegularFile(join(dir, 'growing'), limits)
  appendFileSync(join(dir, 'growing'), 'def')
  t.match(g.ok && (await g.value.read()), { ok: false, error: { code: 'EAGAIN', message: /grew while it was read/ } })
  if (g.ok) await g.value.close()
})
