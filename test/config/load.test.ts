import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, posix } from 'node:path'
import t from 'tap'
import type * as Load from '../../src/config/load.js'
import { fakeFs, type FakeTree } from '../fixtures/config/fake-fs.js'

const CONFIG = '/etc/xdplinkd/config.yaml'
const TEXT = `settle: 20ms
attach:
  - name: pass
    interfaces: ["veth*"]
    object: /opt/bpf/xdp_pass.o
  - name: drop
    interfaces: ["eth*"]
    object: bpf/xdp_drop.o
  - name: pass-again
    interfaces: ["xdpl*"]
    object: /opt/bpf/xdp_pass.o
`
const file = (content?: string, extra: { uid?: number; mode?: number } = {}) => ({ type: 'file' as const, content, ...extra })
const safeTree = (): FakeTree => ({
  [CONFIG]: file(TEXT),
  '/opt/bpf/xdp_pass.o': file(),
  '/etc/xdplinkd/bpf/xdp_drop.o': file(),
})

t.test('loadConfig with an in-memory filesystem', async (t) => {
  const fs = fakeFs()
  // mockImport replaces the imports of the module it loads, not of that module's own imports: hand load.js a
  // secure-path.js that was itself loaded with the fake.
  const securePath = await t.mockImport('../../src/config/secure-path.js', { '../../src/config/fs.js': fs })
  const { loadConfig } = await t.mockImport<typeof Load>('../../src/config/load.js', {
    '../../src/config/fs.js': fs,
    '../../src/config/secure-path.js': securePath,
  })
  const strings = (r: Awaited<ReturnType<typeof loadConfig>>): string[] => (r.ok ? [] : r.error.map(String))

  t.test('safe paths: the normalized config', async (t) => {
    fs.set(safeTree())
    const r = await loadConfig(CONFIG)
    t.ok(r.ok, strings(r).join('\n'))
    if (!r.ok) return
    t.equal(r.value.path, CONFIG)
    t.equal(r.value.settleMs, 20)
    t.same(r.value.entries.map((e) => e.object), ['/opt/bpf/xdp_pass.o', '/etc/xdplinkd/bpf/xdp_drop.o', '/opt/bpf/xdp_pass.o'])
    t.equal(fs.lstats.filter((p) => p === '/opt/bpf/xdp_pass.o').length, 1, 'an object shared by two entries is walked once')
  })

  t.test('an unsafe config file is refused before it is read', async (t) => {
    fs.set({ ...safeTree(), [CONFIG]: file('attach: {{{', { mode: 0o646 }) })
    t.same(strings(await loadConfig(CONFIG)), [
      `${CONFIG}: refusing this config file: file ${CONFIG} is writable by others (mode 0646) (fix the owner or mode, or start xdplinkd with --insecure-paths)`,
    ])
  })

  t.test('every unsafe component of the config path is named', async (t) => {
    fs.set({ ...safeTree(), '/etc/xdplinkd': { type: 'dir', uid: 1000 }, [CONFIG]: file(TEXT, { uid: 1000 }) })
    const r = await loadConfig(CONFIG)
    t.same(r.ok ? null : r.error.map((e) => [e.line, e.col, e.path, e.message.replace(/ \(fix .*\)$/, '')]), [
      [null, null, '', 'refusing this config file: directory /etc/xdplinkd is owned by uid 1000, not root'],
      [null, null, '', `refusing this config file: file ${CONFIG} is owned by uid 1000, not root`],
    ])
  })

  t.test('a config file over the limit, or no regular file, is refused unread', async (t) => {
    const { MAX_CONFIG_BYTES } = await import('../../src/config/load.js')
    fs.set({ ...safeTree(), [CONFIG]: file(`# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`) })
    t.same(strings(await loadConfig(CONFIG)), [`${CONFIG}: cannot read this config file: EFBIG: ${CONFIG}`])
    fs.set({ ...safeTree(), [CONFIG]: { type: 'link', target: '/dev/zero' }, '/dev/zero': { type: 'fifo', mode: 0o666 } })
    t.same(strings(await loadConfig(CONFIG)), [
      `${CONFIG}: refusing this config file: file /dev/zero is writable by group and others (mode 0666) (fix the owner or mode, or start xdplinkd with --insecure-paths)`,
      `${CONFIG}: cannot read this config file: /dev/zero is not a regular file`,
    ])
  })

  t.test('a missing config file', async (t) => {
    fs.set({ '/etc/xdplinkd': { type: 'dir' } })
    t.same(strings(await loadConfig(CONFIG)), [`${CONFIG}: cannot read this config file: ${CONFIG} does not exist`])
  })

  t.test('validation errors come through with positions', async (t) => {
    fs.set({ ...safeTree(), [CONFIG]: file('attach:\n  - interfaces: [eth0]\n    object: x.o\n    mode: nativ\n') })
    t.same(strings(await loadConfig(CONFIG)), [`${CONFIG}:4:11: attach[0].mode: expected one of auto, native, generic, offload, got "nativ"`])
  })

  t.test('unsafe or missing objects: at the entry\'s object line, every entry', async (t) => {
    fs.set({ ...safeTree(), '/opt/bpf': { type: 'dir', mode: 0o777 }, '/etc/xdplinkd/bpf/xdp_drop.o': { type: 'dir' } })
    const hint = ' (fix the owner or mode, or start xdplinkd with --insecure-paths)'
    t.same(strings(await loadConfig(CONFIG)), [
      `${CONFIG}:5:13: attach[0].object: refusing object /opt/bpf/xdp_pass.o: directory /opt/bpf is writable by group and others without the sticky bit (mode 0777)${hint}`,
      `${CONFIG}:8:13: attach[1].object: cannot use object /etc/xdplinkd/bpf/xdp_drop.o: /etc/xdplinkd/bpf/xdp_drop.o is a directory, not a file`,
      `${CONFIG}:11:13: attach[2].object: refusing object /opt/bpf/xdp_pass.o: directory /opt/bpf is writable by group and others without the sticky bit (mode 0777)${hint}`,
    ])
  })

  t.test('a symlinked object through an unsafe directory', async (t) => {
    fs.set({
      ...safeTree(),
      '/opt/bpf/xdp_pass.o': { type: 'link', target: '/home/dev/build/xdp_pass.o' },
      '/home/dev': { type: 'dir', uid: 1000 },
      '/home/dev/build/xdp_pass.o': file(),
    })
    const r = await loadConfig(CONFIG)
    t.same(r.ok ? null : r.error.map((e) => [e.path, e.message.replace(/ \(fix .*\)$/, '')]), [
      ['attach[0].object', 'refusing object /opt/bpf/xdp_pass.o: directory /home/dev is owned by uid 1000, not root'],
      ['attach[2].object', 'refusing object /opt/bpf/xdp_pass.o: directory /home/dev is owned by uid 1000, not root'],
    ])
  })

  t.test('insecurePaths lifts the ownership and mode checks, not existence', async (t) => {
    fs.set({
      [CONFIG]: file(TEXT, { uid: 1000, mode: 0o666 }),
      '/etc/xdplinkd': { type: 'dir', mode: 0o777 },
      '/opt/bpf/xdp_pass.o': file(undefined, { uid: 1000, mode: 0o666 }),
      '/etc/xdplinkd/bpf/xdp_drop.o': file(),
    })
    const r = await loadConfig(CONFIG, { insecurePaths: true })
    t.ok(r.ok, strings(r).join('\n'))
    t.notOk((await loadConfig(CONFIG)).ok, 'refused without it')
    fs.set({ [CONFIG]: file(TEXT), '/opt/bpf/xdp_pass.o': file() })
    t.same(strings(await loadConfig(CONFIG, { insecurePaths: true })), [
      `${CONFIG}:8:13: attach[1].object: cannot use object /etc/xdplinkd/bpf/xdp_drop.o: /etc/xdplinkd/bpf does not exist`,
    ])
  })

  t.test('a control-group name is looked up in /etc/group at each load; a missing one is an error at its line', async (t) => {
    const text = `control-group: xdpops\n${TEXT}`
    fs.set({ ...safeTree(), [CONFIG]: file(text), '/etc/group': file('root:x:0:\nxdpops:x:4242:alice\n') })
    const r = await loadConfig(CONFIG)
    t.same(r.ok ? r.value.controlGroup : strings(r), { name: 'xdpops', gid: 4242 })
    fs.set({ ...safeTree(), [CONFIG]: file(text), '/etc/group': file('root:x:0:\n') })
    t.same(strings(await loadConfig(CONFIG)), [
      `${CONFIG}:1:16: control-group: expected a group in /etc/group or a group id, got "xdpops", which /etc/group does not have (for a group from LDAP or another NSS source, give its number)`,
    ])
    fs.set({ ...safeTree(), [CONFIG]: file(text) })
    t.same(strings(await loadConfig(CONFIG)), [
      `${CONFIG}:1:16: control-group: cannot look up group "xdpops": /etc/group: ENOENT: /etc/group; give the group's number instead`,
    ])
    fs.set({ ...safeTree(), [CONFIG]: file(`control-group: 4242\n${TEXT}`) })
    const n = await loadConfig(CONFIG)
    t.same(n.ok ? n.value.controlGroup : strings(n), { name: null, gid: 4242 }, 'a number needs no /etc/group')
  })

  t.test('a relative config path is taken from the working directory', async (t) => {
    const abs = posix.resolve('conf/c.yaml')
    fs.set({ [abs]: file('attach:\n  - interfaces: [a]\n    object: x.o\n'), [posix.resolve('conf/x.o')]: file() })
    const r = await loadConfig('conf/c.yaml')
    t.same(r.ok && [r.value.path, r.value.entries[0]?.object], [abs, posix.resolve('conf/x.o')])
  })
})

/** Why the real-filesystem test cannot run here, or false. */
async function realFsSkip(): Promise<string | false> {
  if (process.getuid?.() !== 0) return 'needs root (root-owned files)'
  const { walkPath } = await import('../../src/config/secure-path.js')
  const r = await walkPath(tmpdir() + '/.', { strict: true, trustedUids: [0] })
  // a directory is "not a file"; anything unsafe on the way is what makes the test meaningless here
  const unsafe = r.ok ? [] : r.error.filter((f) => f.unsafe)
  return unsafe.length === 0 ? false : `${tmpdir()} is not itself safe: ${unsafe.map((f) => f.text).join('; ')}`
}

t.test('loadConfig on the real filesystem', { skip: await realFsSkip() }, async (t) => {
  const { loadConfig } = await import('../../src/config/load.js')
  const base = mkdtempSync(join(tmpdir(), 'xdplinkd-load-'))
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  chmodSync(base, 0o755)
  mkdirSync(join(base, 'bpf'), { mode: 0o755 })
  writeFileSync(join(base, 'bpf', 'xdp_pass.o'), 'not really ELF', { mode: 0o644 })
  const config = join(base, 'config.yaml')
  writeFileSync(config, 'attach:\n  - interfaces: ["veth*"]\n    object: bpf/xdp_pass.o\n    mode: generic\n', { mode: 0o644 })

  const probe = await loadConfig(config)
  t.ok(probe.ok, probe.ok ? 'loads' : probe.error.map(String).join('\n'))
  if (probe.ok) t.equal(probe.value.entries[0]?.object, join(base, 'bpf', 'xdp_pass.o'))

  chmodSync(join(base, 'bpf'), 0o775)
  const bad = await loadConfig(config)
  t.same(bad.ok ? [] : bad.error.map((e) => [e.line, e.col, e.path]), [[3, 13, 'attach[0].object']], 'g+w object dir')
  t.ok((await loadConfig(config, { insecurePaths: true })).ok, 'insecurePaths')
  chmodSync(join(base, 'bpf'), 0o755)

  chmodSync(config, 0o666)
  const badConfig = await loadConfig(config)
  t.match(badConfig.ok ? '' : String(badConfig.error[0]), `${config}: refusing this config file: file ${config} is writable by group and others (mode 0666)`)
})
