/**
 * The journal output against the real systemd-journald, not a stand-in: journald runs in a private mount namespace
 * (tmpfs over /run/systemd, /run/log and /var/log/journal, so the host's journal is neither used nor touched),
 * the logger reaches its socket through /proc/<pid>/root, and journalctl reads back what journald stored.
 * Needs root (mounts) and systemd's journald; skipped elsewhere.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { SyscallError } from '../../src/ffi/errno.js'
import { JournalStream } from '../../src/log/journal.js'
import { createLoggerWithOutput } from '../../src/log/logger.js'

const isRoot = process.getuid?.() === 0

/** Polls `ready` every 20 ms for up to 10 s. */
async function until(ready: () => boolean, what: string): Promise<void> {
  for (const end = Date.now() + 10_000; !ready(); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
  }
}

const JOURNALD = ['/lib/systemd/systemd-journald', '/usr/lib/systemd/systemd-journald'].find((p) => existsSync(p))
const has = (cmd: string): boolean => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0
const skip = !isRoot
  ? 'needs root (mounts tmpfs in a private mount namespace)'
  : !JOURNALD
    ? 'systemd-journald is not installed'
    : !has('journalctl') || !has('unshare')
      ? 'needs journalctl and unshare'
      : false

t.test('records as journald stores them', { skip }, async (t) => {
  const script = [
    'set -e',
    'mount -t tmpfs tmpfs /run/systemd',
    'mkdir -p /run/systemd/journal /run/log',
    'mount -t tmpfs tmpfs /run/log',
    'if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi',
    `exec ${JOURNALD}`,
  ].join('\n')
  const env = { ...process.env }
  delete env.NOTIFY_SOCKET
  const journald = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { env, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  journald.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  t.teardown(() => {
    if (journald.exitCode === null) journald.kill('SIGTERM')
  })
  // unshare and sh exec in place: the pid is journald's, and /proc/<pid>/root walks its mount namespace.
  const root = `/proc/${journald.pid}/root`
  const socket = `${root}/run/systemd/journal/socket`
  await until(() => journald.exitCode === null && existsSync(socket), `journald's socket (${stderr})`)

  const identifier = `xdplinkd-test-${randomBytes(4).toString('hex')}`
  const { logger, journal } = createLoggerWithOutput({ destination: 'journal', journalSocket: socket, identifier, level: 'debug' })
  t.teardown(() => journal?.close())
  logger.info({ ifname: 'eth0', ifindex: 3, progId: 42, action: 'attach', entry: 'edge', mode: 'native' }, 'eth0: attached')
  logger.debug('multi\nline')
  logger.warn({ note: 'a=b\nc=d', errno: -105 }, 'with = and a newline')
  logger.error({ err: new SyscallError('sendto', 111) }, 'failed')
  const small = new JournalStream({ socketPath: socket, identifier, sendBufferBytes: 4096 })
  t.teardown(() => small.close())
  const big = `${'y'.repeat(100_000)}\nend`
  small.write(JSON.stringify({ level: 60, msg: big }) + '\n')
  t.same(small.stats, { datagrams: 0, memfds: 1, fallbacks: 0, lost: 0 }, 'the large one went as a memfd')

  let entries: Record<string, unknown>[] = []
  await until(
    () => {
      const r = spawnSync('journalctl', ['--directory', `${root}/run/log/journal`, '-t', identifier, '-o', 'json', '--all'], { encoding: 'utf8', maxBuffer: 64 << 20 })
      entries = r.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, unknown>)
      return entries.length >= 5
    },
    'five entries in the journal',
  )
  const [attached, multi, warn, failed, large] = entries
  t.match(attached, {
    MESSAGE: 'eth0: attached',
    PRIORITY: '6',
    SYSLOG_IDENTIFIER: identifier,
    IFNAME: 'eth0',
    IFINDEX: '3',
    PROG_ID: '42',
    ACTION: 'attach',
    ENTRY: 'edge',
    MODE: 'native',
    _TRANSPORT: 'journal',
    _PID: String(process.pid),
  })
  t.match(multi, { MESSAGE: 'multi\nline', PRIORITY: '7' })
  t.match(warn, { MESSAGE: 'with = and a newline', PRIORITY: '4', NOTE: 'a=b\nc=d', ERRNO: '105' })
  t.match(failed, { MESSAGE: 'failed', PRIORITY: '3', ERRNO: '111', ERR_SYSCALL: 'sendto' })
  t.match(failed?.ERR_STACK, /^SyscallError: sendto: ECONNREFUSED\n/)
  t.match(large, { MESSAGE: big, PRIORITY: '2' })
})
