import t, { type Test } from 'tap'
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SyscallError } from '../../src/ffi/errno.js'
import type { Fd } from '../../src/ffi/fd.js'
import { bindUnix, receiveDatagram, unixDatagramSocket } from '../../src/ffi/unix.js'
import { JournalStream, encodeJournalEntry, journalFieldName, journalPriority } from '../../src/log/journal.js'
import { createLoggerWithOutput, detectOutput, journalStreamMatches } from '../../src/log/logger.js'

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'xdplinkd-log-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A stand-in for journald's socket. Records are read right after each log call: the logger writes synchronously. */
function fakeJournal(t: Test): { path: string; fd: Fd } {
  const path = join(tempDir(t), 'journal.socket')
  const fd = unixDatagramSocket({ nonblocking: true, label: 'fake-journal' })
  bindUnix(fd, path)
  t.teardown(() => fd.close())
  return { path, fd }
}

/** Resolves after the current event-loop turn's setImmediate callbacks, i.e. once coalesced log lines are out. */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r))

type Entry = [name: string, value: string][]

/** journald's side of the native protocol: NAME=value\n, or NAME\n + 64-bit LE length + value + \n. */
function parseEntry(buf: Buffer): Entry {
  const out: Entry = []
  let i = 0
  while (i < buf.length) {
    const nl = buf.indexOf(0x0a, i)
    if (nl < 0) throw new Error(`unterminated field at ${i}`)
    const eq = buf.indexOf(0x3d, i)
    if (eq >= 0 && eq < nl) {
      out.push([buf.toString('ascii', i, eq), buf.toString('utf8', eq + 1, nl)])
      i = nl + 1
      continue
    }
    const len = Number(buf.readBigUInt64LE(nl + 1))
    const start = nl + 9
    if (buf[start + len] !== 0x0a) throw new Error(`binary field ${buf.toString('ascii', i, nl)} not followed by a newline`)
    out.push([buf.toString('ascii', i, nl), buf.toString('utf8', start, start + len)])
    i = start + len + 1
  }
  return out
}

interface Received {
  entry: Entry
  raw: Buffer
  viaMemfd: boolean
  /** For a memfd: whether writing to it fails (F_SEAL_WRITE), as journald requires. */
  sealed?: boolean
}

/** Every entry queued on the fake journal, following memfds the way journald does. */
function drain(fd: Fd): Received[] {
  const out: Received[] = []
  for (let d = receiveDatagram(fd, 1 << 20); d; d = receiveDatagram(fd, 1 << 20)) {
    if (d.fds.length === 0) {
      out.push({ entry: parseEntry(d.data), raw: d.data, viaMemfd: false })
      continue
    }
    const memfd = d.fds[0]!
    const raw = readFileSync(`/proc/self/fd/${memfd.raw}`)
    let sealed = false
    try {
      writeSync(memfd.raw, 'x', 0)
    } catch (e) {
      sealed = (e as NodeJS.ErrnoException).code === 'EPERM'
    }
    for (const f of d.fds) f.close()
    out.push({ entry: parseEntry(raw), raw, viaMemfd: true, sealed })
  }
  return out
}

const get = (e: Entry, name: string): string | undefined => e.find(([n]) => n === name)?.[1]

function journalLogger(t: Test, level = 'trace') {
  const journal = fakeJournal(t)
  const made = createLoggerWithOutput({ level, destination: 'journal', journalSocket: journal.path })
  t.teardown(() => made.journal?.close())
  return { ...made, sink: journal.fd }
}

t.test('priorities follow pino levels', async (t) => {
  const { logger, sink, output } = journalLogger(t)
  t.equal(output, 'journal')
  logger.trace('t')
  logger.debug('d')
  logger.info('i')
  logger.warn('w')
  logger.error('e')
  logger.fatal('f')
  const got = drain(sink).map(({ entry }) => [get(entry, 'MESSAGE'), get(entry, 'PRIORITY')])
  t.same(got, [
    ['t', '7'],
    ['d', '7'],
    ['i', '6'],
    ['w', '4'],
    ['e', '3'],
    ['f', '2'],
  ])
  t.equal(journalPriority(35), 6, 'a custom level between info and warn is info')
})

t.test('context becomes journal fields', async (t) => {
  const { logger, sink } = journalLogger(t)
  const child = logger.child({ entry: 'edge' })
  child.info(
    {
      ifname: 'eth0',
      ifindex: 3,
      progId: 42,
      action: 'attach',
      mode: 'native',
      objectPath: '/usr/local/lib/xdplinkd/bpf/xdp_pass.o',
      'weird-key.x': true,
      _private: 'p',
      '9lives': 'c',
      nothing: null,
      counts: [1, 2],
      message: 'not the MESSAGE',
    },
    'eth0: attached program 42 (native)',
  )
  const [rec] = drain(sink)
  t.ok(rec)
  const e = rec!.entry
  t.same(e.slice(0, 3), [
    ['PRIORITY', '6'],
    ['MESSAGE', 'eth0: attached program 42 (native)'],
    ['SYSLOG_IDENTIFIER', 'xdplinkd'],
  ])
  t.equal(get(e, 'ENTRY'), 'edge', 'child bindings are fields too')
  t.equal(get(e, 'IFNAME'), 'eth0')
  t.equal(get(e, 'IFINDEX'), '3')
  t.equal(get(e, 'PROG_ID'), '42')
  t.equal(get(e, 'ACTION'), 'attach')
  t.equal(get(e, 'MODE'), 'native')
  t.equal(get(e, 'OBJECT_PATH'), '/usr/local/lib/xdplinkd/bpf/xdp_pass.o')
  t.equal(get(e, 'WEIRD_KEY_X'), 'true')
  t.equal(get(e, 'PRIVATE'), 'p', 'a leading _ (journald-trusted fields) is dropped')
  t.equal(get(e, 'LIVES'), 'c', 'a name may not start with a digit')
  t.equal(get(e, 'NOTHING'), undefined)
  t.equal(get(e, 'COUNTS'), '[1,2]')
  t.equal(get(e, 'X_MESSAGE'), 'not the MESSAGE', 'a context key never overrides our own fields')
  for (const [name] of e) t.match(name, /^[A-Z][A-Z0-9_]{0,63}$/, `${name} is a valid journal field name`)
  t.notOk(e.some(([n]) => n === 'PID' || n === 'HOSTNAME' || n === 'TIME' || n === 'LEVEL'), "pino's own keys are not repeated")
})

t.test('errno and code become a numeric ERRNO', async (t) => {
  const { logger, sink } = journalLogger(t)
  logger.warn({ ifname: 'eth1', errno: -105 }, 'netlink: ENOBUFS')
  logger.warn({ code: 'EBUSY' }, 'busy')
  logger.error({ err: new SyscallError('sendto', 111) }, 'notify failed')
  logger.error({ code: 'CONFIG_INVALID' }, 'bad config')
  const [a, b, c, d] = drain(sink).map((r) => r.entry)
  t.equal(get(a!, 'ERRNO'), '105')
  t.equal(get(a!, 'IFNAME'), 'eth1')
  t.equal(get(b!, 'ERRNO'), '16')
  t.equal(get(b!, 'CODE'), undefined)
  t.equal(get(c!, 'ERRNO'), '111', "from err's errno")
  t.equal(get(c!, 'ERR_CODE'), 'ECONNREFUSED')
  t.equal(get(c!, 'ERR_SYSCALL'), 'sendto')
  t.match(get(c!, 'ERR_STACK'), /^SyscallError: sendto: ECONNREFUSED\n\s+at /, 'the stack, multi-line, in one field')
  t.equal(get(d!, 'ERRNO'), undefined, 'a code that is no errno name')
  t.equal(get(d!, 'CODE'), 'CONFIG_INVALID')
})

t.test('a multi-line message uses the length-prefixed form', async (t) => {
  const { logger, sink } = journalLogger(t)
  const text = 'config reloaded:\n  eth0: xdp_pass\n  eth1: xdp_drop'
  logger.info(text)
  const [rec] = drain(sink)
  t.equal(get(rec!.entry, 'MESSAGE'), text)
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(text)))
  t.ok(rec!.raw.includes(Buffer.concat([Buffer.from('MESSAGE\n'), len, Buffer.from(text), Buffer.from('\n')])))
  t.notOk(rec!.raw.includes('MESSAGE='), 'never the NAME=value form for a value with a newline')
})

t.test("a value with '=' and a newline", async (t) => {
  const { logger, sink } = journalLogger(t)
  logger.info({ filter: 'a=b', note: 'x=1\ny=2\n', unicode: 'ümlaut=ß' }, 'fields')
  const [rec] = drain(sink)
  t.equal(get(rec!.entry, 'FILTER'), 'a=b')
  t.ok(rec!.raw.includes('FILTER=a=b\n'), "'=' alone keeps the NAME=value form: journald splits at the first '='")
  t.equal(get(rec!.entry, 'NOTE'), 'x=1\ny=2\n')
  t.equal(get(rec!.entry, 'UNICODE'), 'ümlaut=ß')
  const unicode = Buffer.from('ümlaut=ß')
  t.same(parseEntry(encodeJournalEntry([['U', 'ümlaut=ß\n']])), [['U', 'ümlaut=ß\n']], 'lengths count bytes, not characters')
  t.ok(unicode.length > 'ümlaut=ß'.length)
})

t.test('a record larger than the socket allows goes as a sealed memfd', async (t) => {
  const journal = fakeJournal(t)
  // A small send buffer stands in for a huge record: unix_dgram_sendmsg fails with EMSGSIZE past sk_sndbuf.
  const stream = new JournalStream({ socketPath: journal.path, sendBufferBytes: 4096 })
  t.teardown(() => stream.close())
  const { logger } = createLoggerWithOutput({ destination: stream })
  const big = 'x'.repeat(200_000)
  logger.info({ ifname: 'eth0' }, big)
  logger.info('small')
  const [a, b] = drain(journal.fd)
  t.equal(a!.viaMemfd, true)
  t.equal(a!.sealed, true, 'sealed against writes')
  t.equal(a!.raw.length > 200_000, true)
  t.equal(get(a!.entry, 'MESSAGE'), big, 'not truncated')
  t.equal(get(a!.entry, 'IFNAME'), 'eth0')
  t.equal(b!.viaMemfd, false)
  t.equal(get(b!.entry, 'MESSAGE'), 'small')
  t.same(stream.stats, { datagrams: 1, memfds: 1, fallbacks: 0, lost: 0 })
})

t.test('without a journal to talk to, records go to the fallback', async (t) => {
  const lines: string[] = []
  const stream = new JournalStream({ socketPath: join(tempDir(t), 'absent.socket'), fallback: (l) => lines.push(l) })
  t.teardown(() => stream.close())
  const { logger } = createLoggerWithOutput({ destination: stream })
  logger.warn({ ifname: 'eth0' }, 'still here')
  t.equal(lines.length, 1)
  t.match(JSON.parse(lines[0]!), { msg: 'still here', ifname: 'eth0', level: 40 })
  t.equal(stream.stats.fallbacks, 1)
})

t.test('a failing fallback loses the record instead of throwing into the caller', async (t) => {
  const stream = new JournalStream({
    socketPath: join(tempDir(t), 'absent.socket'),
    fallback: () => {
      throw new Error('EAGAIN')
    },
  })
  t.teardown(() => stream.close())
  const { logger } = createLoggerWithOutput({ destination: stream })
  t.doesNotThrow(() => logger.error('into the void'))
  t.same(stream.stats, { datagrams: 0, memfds: 0, fallbacks: 0, lost: 1 })
})

t.test('journalFieldName', async (t) => {
  t.equal(journalFieldName('progId'), 'PROG_ID')
  t.equal(journalFieldName('rxQueueIndex'), 'RX_QUEUE_INDEX')
  t.equal(journalFieldName('a.b-c d'), 'A_B_C_D')
  t.equal(journalFieldName('__x'), 'X')
  t.equal(journalFieldName('123'), null)
  t.equal(journalFieldName('___'), null)
  t.equal(journalFieldName('k'.repeat(100))?.length, 64)
})

t.test('JOURNAL_STREAM detection compares fstat of the descriptor', async (t) => {
  const file = join(tempDir(t), 'out.log')
  const fd = openSync(file, 'w')
  t.teardown(() => closeSync(fd))
  const st = fstatSync(fd, { bigint: true })
  const matching = { JOURNAL_STREAM: `${st.dev}:${st.ino}` }
  t.equal(journalStreamMatches(matching, fd), true)
  t.equal(detectOutput(matching, fd), 'journal')
  t.equal(journalStreamMatches({ JOURNAL_STREAM: `${st.dev}:${st.ino + 1n}` }, fd), false, 'another inode')
  t.equal(journalStreamMatches({ JOURNAL_STREAM: `${st.dev + 1n}:${st.ino}` }, fd), false, 'another device')
  t.equal(journalStreamMatches({ JOURNAL_STREAM: `${st.dev}:${st.ino}:0` }, fd), false, 'malformed')
  t.equal(journalStreamMatches({ JOURNAL_STREAM: '' }, fd), false)
  t.equal(journalStreamMatches({}, fd), false)
  t.equal(detectOutput({}, fd), 'json', 'a file is no terminal')
  t.equal(journalStreamMatches(matching, 987654), false, 'a closed descriptor')
})

t.test('auto: journal when JOURNAL_STREAM matches, JSON on the descriptor otherwise', async (t) => {
  const journal = fakeJournal(t)
  const file = join(tempDir(t), 'stdout.log')
  const fd = openSync(file, 'w')
  t.teardown(() => closeSync(fd))
  const st = fstatSync(fd, { bigint: true })
  const env = { JOURNAL_STREAM: `${st.dev}:${st.ino}` }

  const under = createLoggerWithOutput({ env, fd, journalSocket: journal.path, identifier: 'xdplinkd-test' })
  t.teardown(() => under.journal?.close())
  t.equal(under.output, 'journal')
  under.logger.info({ ifindex: 7 }, 'to the journal')
  under.logger.debug('below the level')
  const recs = drain(journal.fd)
  t.equal(recs.length, 1)
  t.equal(get(recs[0]!.entry, 'SYSLOG_IDENTIFIER'), 'xdplinkd-test')
  t.equal(readFileSync(file, 'utf8'), '', 'nothing on the descriptor')

  const plain = createLoggerWithOutput({ env: {}, fd, level: 'debug' })
  t.equal(plain.output, 'json')
  plain.logger.debug({ ifindex: 7 }, 'to stdout')
  // The lines of one event-loop turn are written together at its end (log/coalesce.ts).
  await turn()
  const lines = readFileSync(file, 'utf8').trim().split('\n')
  t.equal(lines.length, 1)
  t.match(JSON.parse(lines[0]!), { level: 20, msg: 'to stdout', ifindex: 7, pid: process.pid })
  t.same(drain(journal.fd), [])
})

t.test('on a terminal-less descriptor, pretty output is readable lines', async (t) => {
  const file = join(tempDir(t), 'pretty.log')
  const fd = openSync(file, 'w')
  t.teardown(() => closeSync(fd))
  const { logger, output } = createLoggerWithOutput({ destination: 'pretty', fd })
  t.equal(output, 'pretty', 'pino-pretty is installed here')
  logger.warn({ ifname: 'eth0' }, 'link flapped')
  await turn()
  const text = readFileSync(file, 'utf8')
  t.match(text, /WARN.*link flapped/)
  t.match(text, /ifname: "eth0"/)
  t.notOk(text.includes('\u001b['), 'no colours when the descriptor is no terminal')
  t.throws(() => JSON.parse(text))
})
