/**
 * The libc edge against the kernel: statfs's f_type, mount and umount of a bpffs; peerCredentials against what the
 * process at the other end really is (this process, and a child started by setpriv(1) with another uid, gid and
 * supplementary groups: root only).
 */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, rmdirSync } from 'node:fs'
import { createConnection, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BPF_FS_MAGIC, isBpffs, mountBpffs, peerCredentials, statfsType, umount, type PeerCredentials } from '../../src/ffi/libc.js'
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

const fdOf = (s: Socket): number => (s as unknown as { _handle: { fd: number } })._handle.fd

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-peer-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('both ends see this process: pid, uid, gid and supplementary groups', async (t) => {
  const path = join(tempDir(), 's.sock')
  let onPeer: (c: PeerCredentials) => void
  const seen = new Promise<PeerCredentials>((resolve) => (onPeer = resolve))
  const srv = createServer((s) => {
    onPeer(peerCredentials(fdOf(s)))
    s.destroy()
  })
  await new Promise<void>((r) => srv.listen(path, r))
  t.teardown(() => srv.close())
  const c = createConnection(path)
  const client = await new Promise<PeerCredentials>((resolve) => c.once('connect', () => resolve(peerCredentials(fdOf(c)))))
  c.destroy()
  const me = { pid: process.pid, uid: process.geteuid!(), gid: process.getegid!() }
  t.match(await seen, me, 'the server sees the client')
  t.match(client, me, 'the client sees the listener')
  // Node's getgroups() adds the egid; the kernel's list is /proc's
  const groups = /^Groups:[ \t]*([^\n]*)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]!.split(/\s+/).filter(Boolean).map(Number)
  t.same([...(await seen).groups!].sort((a, b) => a - b), groups.sort((a, b) => a - b), 'supplementary groups, as /proc/self/status lists them')
})

t.test('a peer with another uid, gid and groups (setpriv), more groups than the first buffer holds', { skip: needsRoot }, async (t) => {
  const dir = tempDir()
  chmodSync(dir, 0o711)
  const path = join(dir, 's.sock')
  const groups = Array.from({ length: 100 }, (_, i) => 5000 + i)
  let child: ChildProcess | undefined
  const seen = await new Promise<PeerCredentials>((resolve, reject) => {
    const srv = createServer((s) => {
      resolve(peerCredentials(fdOf(s)))
      s.destroy()
      srv.close()
    })
    srv.listen(path, () => {
      chmodSync(path, 0o666)
      child = spawn('setpriv', ['--reuid', '65534', '--regid', '4321', '--groups', groups.join(','), '--', process.execPath, '-e', `require('net').createConnection(${JSON.stringify(path)}).on('connect', () => setTimeout(() => {}, 10000))`])
      child.on('error', reject)
    })
  })
  t.teardown(() => child?.kill('SIGKILL'))
  t.same({ ...seen, groups: [...seen.groups!].sort((a, b) => a - b) }, { pid: child!.pid, uid: 65534, gid: 4321, groups })
})
