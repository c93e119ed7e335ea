import { execFileSync } from 'node:child_process'
import { chmodSync, chownSync, lchownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type * as SecurePath from '../../src/config/secure-path.js'
import { fakeFs, type FakeTree } from '../fixtures/config/fake-fs.js'

const STRICT = { strict: true, trustedUids: [0] }
const LAX = { strict: false, trustedUids: [0] }
const SHARED_DIR = { ...STRICT, want: 'dir' as const, shared: true }

t.test('walkPath over an in-memory tree', async (t) => {
  const fs = fakeFs()
  const { walkPath } = await t.mockImport<typeof SecurePath>('../../src/config/secure-path.js', { '../../src/config/fs.js': fs })

  const file = { type: 'file' } as const
  type Want = { ok: string } | { findings: [unsafe: boolean, text: string][] }
  const table: [why: string, tree: FakeTree, path: string, want: Want, opts?: Parameters<typeof walkPath>[1]][] = [
    ['root-owned all the way', { '/etc/xdplinkd/config.yaml': file }, '/etc/xdplinkd/config.yaml', { ok: '/etc/xdplinkd/config.yaml' }],
    ['the file owned by a user', { '/etc/c.yaml': { type: 'file', uid: 1000 } }, '/etc/c.yaml',
      { findings: [[true, 'file /etc/c.yaml is owned by uid 1000, not root']] }],
    ['the file group-writable', { '/etc/c.yaml': { type: 'file', mode: 0o664 } }, '/etc/c.yaml',
      { findings: [[true, 'file /etc/c.yaml is writable by group (mode 0664)']] }],
    ['the file world-writable', { '/etc/c.yaml': { type: 'file', mode: 0o646 } }, '/etc/c.yaml',
      { findings: [[true, 'file /etc/c.yaml is writable by others (mode 0646)']] }],
    ['an ancestor world-writable', { '/srv': { type: 'dir', mode: 0o777 }, '/srv/x/c.yaml': file }, '/srv/x/c.yaml',
      { findings: [[true, 'directory /srv is writable by group and others without the sticky bit (mode 0777)']] }],
    ['an ancestor owned by a user', { '/home/u': { type: 'dir', uid: 1000, mode: 0o700 }, '/home/u/c.yaml': file }, '/home/u/c.yaml',
      { findings: [[true, 'directory /home/u is owned by uid 1000, not root']] }],
    ['/ itself', { '/': { type: 'dir', mode: 0o777 }, '/c.yaml': file }, '/c.yaml',
      { findings: [[true, 'directory / is writable by group and others without the sticky bit (mode 0777)']] }],
    ['an ancestor world-writable on a read-only mount (a ConfigMap volume)', { '/etc/xdplinkd': { type: 'dir', mode: 0o777, readOnly: true }, '/etc/xdplinkd/c.yaml': file }, '/etc/xdplinkd/c.yaml', { ok: '/etc/xdplinkd/c.yaml' }],
    ['a root-owned sticky directory (/tmp)', { '/tmp': { type: 'dir', mode: 0o1777 }, '/tmp/c.yaml': file }, '/tmp/c.yaml', { ok: '/tmp/c.yaml' }],
    ['a user-owned sticky directory', { '/tmp': { type: 'dir', uid: 1000, mode: 0o1777 }, '/tmp/c.yaml': file }, '/tmp/c.yaml',
      { findings: [[true, 'directory /tmp is owned by uid 1000, not root and writable by group and others (mode 1777)']] }],
    ['a user file in a sticky directory', { '/tmp': { type: 'dir', mode: 0o1777 }, '/tmp/c.yaml': { type: 'file', uid: 1000 } }, '/tmp/c.yaml',
      { findings: [[true, 'file /tmp/c.yaml is owned by uid 1000, not root']] }],
    ['every problem on the way, top down', {
      '/srv': { type: 'dir', mode: 0o777 }, '/srv/u': { type: 'dir', uid: 1000 }, '/srv/u/c.yaml': { type: 'file', uid: 1000, mode: 0o666 },
    }, '/srv/u/c.yaml', { findings: [
      [true, 'directory /srv is writable by group and others without the sticky bit (mode 0777)'],
      [true, 'directory /srv/u is owned by uid 1000, not root'],
      [true, 'file /srv/u/c.yaml is owned by uid 1000, not root and writable by group and others (mode 0666)'],
    ] }],
    ['a root-owned symlink to a safe file', { '/etc/c.yaml': { type: 'link', target: '/usr/share/c.yaml' }, '/usr/share/c.yaml': file },
      '/etc/c.yaml', { ok: '/usr/share/c.yaml' }],
    ['a user-owned symlink in a sticky directory (its owner may replace it)', {
      '/tmp': { type: 'dir', mode: 0o1777 }, '/tmp/c.yaml': { type: 'link', uid: 1000, target: '/etc/c.yaml' }, '/etc/c.yaml': file,
    }, '/tmp/c.yaml', { findings: [[true, 'symlink /tmp/c.yaml is owned by uid 1000, not root']] }],
    ['a symlink into an unsafe directory', {
      '/etc/c.yaml': { type: 'link', target: '/home/u/c.yaml' }, '/home/u': { type: 'dir', uid: 1000 }, '/home/u/c.yaml': file,
    }, '/etc/c.yaml', { findings: [[true, 'directory /home/u is owned by uid 1000, not root']] }],
    ['a symlink in an unsafe directory pointing somewhere safe', {
      '/home/u': { type: 'dir', uid: 1000 }, '/home/u/c.yaml': { type: 'link', target: '/etc/c.yaml' }, '/etc/c.yaml': file,
    }, '/home/u/c.yaml', { findings: [[true, 'directory /home/u is owned by uid 1000, not root']] }],
    ['a chain of links: the middle link\'s directory counts too (realpath alone would miss it)', {
      '/etc/x/c.yaml': { type: 'link', target: '../y/next' },
      '/etc/y': { type: 'dir', mode: 0o775 },
      '/etc/y/next': { type: 'link', target: '/srv/real.yaml' },
      '/srv/real.yaml': file,
    }, '/etc/x/c.yaml', { findings: [[true, 'directory /etc/y is writable by group without the sticky bit (mode 0775)']] }],
    ['a chain of links, all safe', {
      '/etc/x/c.yaml': { type: 'link', target: '../y/next' }, '/etc/y/next': { type: 'link', target: '/srv/real.yaml' }, '/srv/real.yaml': file,
    }, '/etc/x/c.yaml', { ok: '/srv/real.yaml' }],
    ['a symlinked directory in the middle', {
      '/opt/bpf': { type: 'link', target: '/srv/bpf' }, '/srv/bpf': { type: 'dir', mode: 0o777 }, '/srv/bpf/x.o': file,
    }, '/opt/bpf/x.o', { findings: [[true, 'directory /srv/bpf is writable by group and others without the sticky bit (mode 0777)']] }],
    ['.. after a symlinked directory is the physical parent', {
      '/a/link': { type: 'link', target: '/b/c' }, '/b/c': { type: 'dir' }, '/b/x.o': file, '/a/x.o': { type: 'file', uid: 1000 },
    }, '/a/link/../x.o', { ok: '/b/x.o' }],
    ['. and // are ignored', { '/etc/c.yaml': file }, '/etc/./..//etc/c.yaml', { ok: '/etc/c.yaml' }],
    ['each component is judged once', {
      '/': { type: 'dir', mode: 0o775 }, '/a': { type: 'link', target: '/b' }, '/b': { type: 'link', target: '/c.yaml' }, '/c.yaml': file,
    }, '/a', { findings: [[true, 'directory / is writable by group without the sticky bit (mode 0775)']] }],
    ['a symlink loop', { '/a': { type: 'link', target: '/b' }, '/b': { type: 'link', target: 'a' } }, '/a',
      { findings: [[false, '/a leads through more than 40 symbolic links']] }],
    ['missing', { '/etc': { type: 'dir' } }, '/etc/c.yaml', { findings: [[false, '/etc/c.yaml does not exist']] }],
    ['a dangling symlink', { '/etc/c.yaml': { type: 'link', target: 'gone.yaml' } }, '/etc/c.yaml', { findings: [[false, '/etc/gone.yaml does not exist']] }],
    ['a file used as a directory', { '/etc/c.yaml': file }, '/etc/c.yaml/x', { findings: [[false, '/etc/c.yaml is not a directory']] }],
    ['a directory', { '/etc/xdplinkd': { type: 'dir' } }, '/etc/xdplinkd', { findings: [[false, '/etc/xdplinkd is a directory, not a file']] }],
    ['a fifo', { '/etc/c.yaml': { type: 'fifo' } }, '/etc/c.yaml', { findings: [[false, '/etc/c.yaml is not a regular file']] }],
    ['a relative path', {}, 'etc/c.yaml', { findings: [[false, 'etc/c.yaml is not an absolute path']] }],
    ['unsafe findings come before the failure that stopped the walk', { '/srv': { type: 'dir', mode: 0o777 } }, '/srv/c.yaml',
      { findings: [[true, 'directory /srv is writable by group and others without the sticky bit (mode 0777)'], [false, '/srv/c.yaml does not exist']] }],
    ['not strict: unsafe is fine', {
      '/home/u': { type: 'dir', uid: 1000, mode: 0o777 }, '/home/u/c.yaml': { type: 'link', uid: 1000, target: 'real.yaml' }, '/home/u/real.yaml': { type: 'file', uid: 1000, mode: 0o666 },
    }, '/home/u/c.yaml', { ok: '/home/u/real.yaml' }, LAX],
    ['not strict: missing is still an error', { '/etc': { type: 'dir' } }, '/etc/c.yaml', { findings: [[false, '/etc/c.yaml does not exist']] }, LAX],
    ['not strict: a directory is still an error', { '/etc': { type: 'dir' } }, '/etc', { findings: [[false, '/etc is a directory, not a file']] }, LAX],
    ['want a directory: a safe one', { '/run/xdplinkd': { type: 'dir' } }, '/run/xdplinkd', { ok: '/run/xdplinkd' }, SHARED_DIR],
    ['want a directory: through a symlink', { '/var/run': { type: 'link', target: '../run' }, '/run/xdplinkd': { type: 'dir' } }, '/var/run/xdplinkd',
      { ok: '/run/xdplinkd' }, SHARED_DIR],
    ['want a directory: the directory itself is judged', { '/run/x': { type: 'dir', uid: 65534 } }, '/run/x',
      { findings: [[true, 'directory /run/x is owned by uid 65534, not root']] }, SHARED_DIR],
    ['want a directory: root-owned sticky /tmp passes', { '/tmp': { type: 'dir', mode: 0o1777 } }, '/tmp', { ok: '/tmp' }, SHARED_DIR],
    ['want a directory: a file is an error', { '/run/x': file }, '/run/x', { findings: [[false, '/run/x is not a directory']] }, SHARED_DIR],
  ]
  for (const [why, tree, path, want, opts] of table) {
    fs.set(tree)
    const r = await walkPath(path, opts ?? STRICT)
    if ('ok' in want) t.same(r, { ok: true, value: want.ok }, why)
    else t.same(r.ok ? r.value : r.error.map((f) => [f.unsafe, f.text]), want.findings, why)
  }

  const DIR = { ...STRICT, want: 'dir' as const }
  const dirTable: [why: string, tree: FakeTree, path: string, want: Want, opts?: typeof DIR | typeof SHARED_DIR][] = [
    ['a root-owned 0700 directory', { '/sys/fs/bpf/x': { type: 'dir', mode: 0o700 } }, '/sys/fs/bpf/x', { ok: '/sys/fs/bpf/x' }],
    ['under a sticky world-writable root (`mount -t bpf`): fine as an ancestor', {
      '/sys/fs/bpf': { type: 'dir', mode: 0o1777 }, '/sys/fs/bpf/x': { type: 'dir', mode: 0o700 },
    }, '/sys/fs/bpf/x', { ok: '/sys/fs/bpf/x' }],
    ['the sticky world-writable root itself: refused', { '/sys/fs/bpf': { type: 'dir', mode: 0o1777 } }, '/sys/fs/bpf',
      { findings: [[true, 'directory /sys/fs/bpf is writable by group and others (mode 1777)']] }],
    ['ending at a directory it passed through as an ancestor', { '/b': { type: 'dir', mode: 0o1777 }, '/b/x': { type: 'dir' } }, '/b/x/..',
      { findings: [[true, 'directory /b is writable by group and others (mode 1777)']] }],
    ['owned by nobody', { '/b/x': { type: 'dir', uid: 65534, mode: 0o700 } }, '/b/x', { findings: [[true, 'directory /b/x is owned by uid 65534, not root']] }],
    ['mode 0777', { '/b/x': { type: 'dir', mode: 0o777 } }, '/b/x', { findings: [[true, 'directory /b/x is writable by group and others (mode 0777)']] }],
    ['a root-owned symlink to a safe directory', { '/b/x': { type: 'link', target: '/c/y' }, '/c/y': { type: 'dir', mode: 0o700 } }, '/b/x', { ok: '/c/y' }],
    ['a file', { '/b/x': file }, '/b/x', { findings: [[false, '/b/x is not a directory']] }],
    ['not strict: the mode is fine, a file still is not', { '/b/x': file, '/b/y': { type: 'dir', mode: 0o777 } }, '/b/x', { findings: [[false, '/b/x is not a directory']] }, { ...LAX, want: 'dir' }],
  ]
  for (const [why, tree, path, want, opts] of dirTable) {
    fs.set(tree)
    const r = await walkPath(path, opts ?? DIR)
    if ('ok' in want) t.same(r, { ok: true, value: want.ok }, `want dir: ${why}`)
    else t.same(r.ok ? r.value : r.error.map((f) => [f.unsafe, f.text]), want.findings, `want dir: ${why}`)
  }

  fs.set({ '/etc/c.yaml': file })
  await walkPath('/etc/c.yaml', STRICT)
  t.same(fs.lstats, ['/', '/etc', '/etc/c.yaml'], 'one lstat per component')
})

/** Why the real-filesystem tests cannot run here, or false. */
async function realFsSkip(): Promise<string | false> {
  if (process.getuid?.() !== 0) return 'needs root (chown)'
  // The temp dir's own ancestors must pass, or every case would fail for a reason outside the test.
  const { walkPath } = await import('../../src/config/secure-path.js')
  const dir = mkdtempSync(join(tmpdir(), 'xdplinkd-probe-'))
  try {
    writeFileSync(join(dir, 'probe'), 'x', { mode: 0o644 })
    const r = await walkPath(join(dir, 'probe'), STRICT)
    return r.ok ? false : `${tmpdir()} is not itself safe: ${r.error.map((f) => f.text).join('; ')}`
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

t.test('walkPath on the real filesystem', { skip: await realFsSkip() }, async (t) => {
  const { walkPath } = await import('../../src/config/secure-path.js')
  const NOBODY = 65534
  const base = mkdtempSync(join(tmpdir(), 'xdplinkd-perm-'))
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  chmodSync(base, 0o755)

  let n = 0
  /** A fresh directory under base, set up by `setup`, then walked; returns the findings' texts or the real path. */
  const check = async (setup: (dir: string) => string): Promise<{ dir: string; got: string | string[] }> => {
    const dir = join(base, `case${n++}`)
    mkdirSync(dir, { mode: 0o755 })
    const target = setup(dir)
    const r = await walkPath(target, STRICT)
    return { dir, got: r.ok ? r.value : r.error.map((f) => f.text) }
  }
  const mkfile = (p: string, mode = 0o644, uid = 0): string => {
    writeFileSync(p, 'attach: []\n')
    chmodSync(p, mode)
    chownSync(p, uid, 0)
    return p
  }

  let c = await check((d) => mkfile(join(d, 'ok.yaml')))
  t.equal(c.got, join(c.dir, 'ok.yaml'), 'root-owned 0644 in root-owned 0755 directories')

  c = await check((d) => mkfile(join(d, 'f'), 0o644, NOBODY))
  t.same(c.got, [`file ${join(c.dir, 'f')} is owned by uid ${NOBODY}, not root`], 'owner')

  c = await check((d) => mkfile(join(d, 'f'), 0o664))
  t.same(c.got, [`file ${join(c.dir, 'f')} is writable by group (mode 0664)`], 'g+w')

  c = await check((d) => mkfile(join(d, 'f'), 0o646))
  t.same(c.got, [`file ${join(c.dir, 'f')} is writable by others (mode 0646)`], 'o+w')

  c = await check((d) => {
    mkdirSync(join(d, 'open'))
    chmodSync(join(d, 'open'), 0o777)
    mkdirSync(join(d, 'open', 'inner'), { mode: 0o755 })
    return mkfile(join(d, 'open', 'inner', 'f'))
  })
  t.same(c.got, [`directory ${join(c.dir, 'open')} is writable by group and others without the sticky bit (mode 0777)`], 'ancestor o+w')

  c = await check((d) => {
    mkdirSync(join(d, 'home'), { mode: 0o755 })
    chownSync(join(d, 'home'), NOBODY, 0)
    return mkfile(join(d, 'home', 'f'))
  })
  t.same(c.got, [`directory ${join(c.dir, 'home')} is owned by uid ${NOBODY}, not root`], 'ancestor owned by nobody')

  c = await check((d) => {
    mkdirSync(join(d, 'tmp'))
    chmodSync(join(d, 'tmp'), 0o1777)
    return mkfile(join(d, 'tmp', 'f'))
  })
  t.equal(c.got, join(c.dir, 'tmp', 'f'), 'root-owned sticky 1777 directory is fine')

  c = await check((d) => {
    mkdirSync(join(d, 'tmp'))
    chmodSync(join(d, 'tmp'), 0o1777)
    chownSync(join(d, 'tmp'), NOBODY, 0)
    return mkfile(join(d, 'tmp', 'f'))
  })
  t.same(c.got, [`directory ${join(c.dir, 'tmp')} is owned by uid ${NOBODY}, not root and writable by group and others (mode 1777)`], 'sticky but not root-owned')

  c = await check((d) => {
    mkdirSync(join(d, 'tmp'))
    chmodSync(join(d, 'tmp'), 0o1777)
    mkfile(join(d, 'real'))
    symlinkSync(join(d, 'real'), join(d, 'tmp', 'link'))
    lchownSync(join(d, 'tmp', 'link'), NOBODY, 0)
    return join(d, 'tmp', 'link')
  })
  t.same(c.got, [`symlink ${join(c.dir, 'tmp', 'link')} is owned by uid ${NOBODY}, not root`], 'symlink owned by nobody in a sticky dir')

  c = await check((d) => {
    mkdirSync(join(d, 'open'))
    chmodSync(join(d, 'open'), 0o775)
    mkfile(join(d, 'open', 'real'))
    symlinkSync('open/real', join(d, 'link'))
    return join(d, 'link')
  })
  t.same(c.got, [`directory ${join(c.dir, 'open')} is writable by group without the sticky bit (mode 0775)`], 'root-owned symlink into a g+w dir')

  c = await check((d) => {
    mkfile(join(d, 'real'))
    symlinkSync('real', join(d, 'link'))
    return join(d, 'link')
  })
  t.equal(c.got, join(c.dir, 'real'), 'root-owned relative symlink to a safe file')

  c = await check((d) => join(d, 'missing'))
  t.same(c.got, [`${join(c.dir, 'missing')} does not exist`], 'missing')

  const lax = await walkPath(join(base, 'case1', 'f'), LAX)
  t.equal(lax.ok, true, 'not strict: the nobody-owned file passes')
})

t.test('openWalked on the real filesystem: the walk, then one open of the real path, judged on the descriptor', { skip: await realFsSkip() }, async (t) => {
  const { openWalked } = await import('../../src/config/secure-path.js')
  const base = mkdtempSync(join(tmpdir(), 'xdplinkd-open-'))
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  chmodSync(base, 0o755)
  const opts = { ...STRICT, maxBytes: 64 }
  const texts = async (path: string, o = opts) => {
    const r = await openWalked(path, o)
    if (r.ok) {
      const bytes = await r.value.read()
      await r.value.close()
      return bytes.ok ? bytes.value.toString() : bytes.error.message
    }
    return r.error.map((f) => [f.unsafe, f.text, f.code])
  }
  writeFileSync(join(base, 'real'), 'attach: []\n', { mode: 0o644 })
  symlinkSync('real', join(base, 'link'))
  t.equal(await texts(join(base, 'link')), 'attach: []\n', 'a safe link is followed by the walk, and the real path opened')

  execFileSync('mkfifo', ['-m', '644', join(base, 'fifo')])
  t.same(await texts(join(base, 'fifo')), [[false, `${join(base, 'fifo')} is not a regular file`, 'ENOTREG']], 'a FIFO: refused by the walk, never opened')
  symlinkSync('/dev/zero', join(base, 'zero'))
  t.same(
    await texts(join(base, 'zero')),
    [
      [true, 'file /dev/zero is writable by group and others (mode 0666)', undefined],
      [false, '/dev/zero is not a regular file', 'ENOTREG'],
    ],
    'a link to /dev/zero: where it leads is judged, and it is no regular file',
  )
  writeFileSync(join(base, 'big'), Buffer.alloc(65), { mode: 0o644 })
  t.same(await texts(join(base, 'big')), [[false, `${join(base, 'big')} is 65 bytes, more than the 64 accepted`, 'EFBIG']], 'over the limit')
  writeFileSync(join(base, 'open'), 'x', { mode: 0o644 })
  chmodSync(join(base, 'open'), 0o666)
  t.same(await texts(join(base, 'open')), [[true, `file ${join(base, 'open')} is writable by group and others (mode 0666)`, undefined]])
  t.equal(await texts(join(base, 'open'), { ...opts, strict: false }), 'x', 'not strict: mode not judged')
})

t.test('a directory others could write, on a read-only mount, is no problem (a ConfigMap volume); writable, it is', { skip: await realFsSkip() }, async (t) => {
  const { walkPath } = await import('../../src/config/secure-path.js')
  const { mounts } = await import('../helpers/mounts.js')
  const base = mkdtempSync(join(tmpdir(), 'xdplinkd-ro-'))
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  chmodSync(base, 0o755)
  const vol = join(base, 'volume')
  mkdirSync(vol)
  chmodSync(vol, 0o777)
  writeFileSync(join(vol, 'config.yaml'), 'attach: []\n', { mode: 0o644 })
  const before = await walkPath(join(vol, 'config.yaml'), STRICT)
  t.match(before.ok ? 'accepted' : before.error.map((f) => f.text).join('; '), /writable by group and others without the sticky bit \(mode 0777\)/, 'refused while writable')
  mounts(t).readOnly(vol)
  const after = await walkPath(join(vol, 'config.yaml'), STRICT)
  t.same(after, { ok: true, value: join(vol, 'config.yaml') }, 'accepted once nobody can write there')
})
