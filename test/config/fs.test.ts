import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { lstatPath, readLinkTarget, readTextFile } from '../../src/config/fs.js'

t.test('the thin fs layer returns Results, never throws', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xdplinkd-fs-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'ok.yaml'), 'attach: [] # é\n')
  writeFileSync(join(dir, 'latin1.yaml'), Buffer.from([0x61, 0x3a, 0x20, 0xe9, 0x0a]))
  symlinkSync('ok.yaml', join(dir, 'link'))

  t.same(await readTextFile(join(dir, 'ok.yaml')), { ok: true, value: 'attach: [] # é\n' })
  t.match(await readTextFile(join(dir, 'latin1.yaml')), { ok: false, error: { code: 'EILSEQ' } }, 'invalid UTF-8 is an error')
  t.match(await readTextFile(join(dir, 'missing')), { ok: false, error: { code: 'ENOENT' } })
  t.match(await readTextFile(dir), { ok: false, error: { code: 'EISDIR' } })

  const st = await lstatPath(join(dir, 'link'))
  t.match(st, { ok: true, value: { isSymlink: true, isFile: false, isDir: false } }, 'lstat does not follow')
  t.match(await lstatPath(dir), { ok: true, value: { isDir: true } })
  t.match(await lstatPath(join(dir, 'ok.yaml', 'x')), { ok: false, error: { code: 'ENOTDIR' } })
  t.same(await readLinkTarget(join(dir, 'link')), { ok: true, value: 'ok.yaml' })
  t.match(await readLinkTarget(join(dir, 'ok.yaml')), { ok: false, error: { code: 'EINVAL' } })
})
