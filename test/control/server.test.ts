import t, { type Test } from 'tap'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { createConnection, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ControlServer, ControlStartError, probeSocket } from '../../src/control/server.js'
import type { ControlRequest, ControlResponse, StatusJson } from '../../src/control/protocol.js'
import { lines, needsRoot } from '../helpers/netns.js'
import { NOBODY, askAs, listenAs, type Identity } from '../helpers/as-user.js'
import type { Logger } from 'pino'

const status = (links = 0): StatusJson => ({
  pid: 1,
  config: '/etc/xdplinkd/config.yaml',
  links: Array.from({ length: links }, (_, i) => ({
    ifindex: i + 1,
    name: `veth${i}`,
    kind: 'veth',
    entry: 'attach[0]',
    desiredProgId: 7,
    attached: { progId: 7, mode: 'generic', owner: 'ours' },
    state: 'attached',
    lastError: null,
  })),
  programs: [],
  counters: { attaches: 0, replaces: 0, detaches: 0, conflicts: 0, errors: {}, overruns: 0, resyncs: 1 },
})

/** A handler standing in for the daemon: status from a fake, reload accepted, `throw` on demand. */
function handler(o: { links?: number; throwOn?: string } = {}) {
  const seen: ControlRequest[] = []
  return {
    seen,
    handle(req: ControlRequest): ControlResponse {
      seen.push(req)
      if (o.throwOn === req.cmd) throw new Error('boom')
      if (req.cmd === 'reload') return { ok: true, accepted: true }
      return { ok: true, ...status(o.links ?? 2) }
    },
  }
}

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-control-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function serve(t: Test, opts: Partial<Parameters<typeof ControlServer.listen>[0]> = {}) {
  const dir = tempDir(t)
  const path = join(dir, 'run', 'control.sock')
  const h = handler()
  const srv = await ControlServer.listen({ path, handler: h, clientTimeoutMs: 400, ...opts })
  t.teardown(() => srv.close())
  return { srv, path, dir, h }
}

function connect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path)
    s.once('connect', () => resolve(s))
    s.once('error', reject)
  })
}

/** Collects what the server sends, line by line, and when it closes. */
function watch(s: Socket) {
  const out = lines(s)
  let closed = false
  s.on('error', () => {})
  const closedP = new Promise<void>((r) => s.on('close', () => ((closed = true), r())))
  return { lines: out, closed: () => closed, closedP, json: (i: number) => JSON.parse(out[i]!) as Record<string, unknown> }
}

async function until(pred: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** One request on a fresh connection; resolves with the parsed answer and how long it took. */
async function ask(path: string, line: string): Promise<{ r: Record<string, unknown>; ms: number }> {
  const t0 = performance.now()
  const s = await connect(path)
  const w = watch(s)
  s.write(line)
  await until(() => w.lines.length > 0, `answer to ${line.trim()}`)
  s.destroy()
  return { r: w.json(0), ms: performance.now() - t0 }
}

t.test('status and reload answer; the socket is 0600 in a new 0700 directory', async (t) => {
  const { path, h } = await serve(t)
  t.equal(statSync(path).mode & 0o777, 0o600, 'socket mode')
  t.equal(statSync(join(path, '..')).mode & 0o777, 0o700, 'parent directory mode')
  const st = await ask(path, '{"cmd":"status"}\n')
  t.match(st.r, { ok: true, pid: 1, links: [{ ifindex: 1, name: 'veth0' }, { ifindex: 2 }] })
  t.same((await ask(path, '{"cmd":"reload"}\n')).r, { ok: true, accepted: true })
  t.same(h.seen.map((r) => r.cmd), ['status', 'reload'])
})

t.test('several requests on one connection are answered in order; CRLF and blank lines are fine', async (t) => {
  const { path } = await serve(t)
  const s = await connect(path)
  const w = watch(s)
  s.write('{"cmd":"reload"}\r\n\n{"cmd":"status"}\n{"cmd":"reload"}\n')
  await until(() => w.lines.length === 3, 'three answers')
  t.same(w.lines.map((_, i) => Object.keys(w.json(i)).includes('accepted')), [true, false, true])
  s.destroy()
})

t.test('requests that are not understood get an error answer, and the connection stays usable', async (t) => {
  const { path, h } = await serve(t)
  const s = await connect(path)
  const w = watch(s)
  const bad = ['garbage', '[1,2]', 'null', '{"cmd":42}', '{}', '{"cmd":"frobnicate"}', '{"cmd":"__proto__"}', '\u0000\u00ff\ufffd']
  for (const b of bad) s.write(b + '\n')
  s.write('{"cmd":"status"}\n')
  await until(() => w.lines.length === bad.length + 1, 'all answers')
  for (let i = 0; i < bad.length; i++) t.match(w.json(i), { ok: false, error: String }, JSON.stringify(bad[i]))
  t.match(w.json(bad.length), { ok: true, links: Array })
  t.match(w.json(5).error, /unknown command "frobnicate"/)
  t.same(h.seen.map((r) => r.cmd), ['status'], 'the handler saw only the valid request')
  t.equal(w.closed(), false)
  s.destroy()
})

t.test('a handler that throws gives an error answer, not a crash', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'c.sock')
  const srv = await ControlServer.listen({ path, handler: handler({ throwOn: 'reload' }) })
  t.teardown(() => srv.close())
  t.same((await ask(path, '{"cmd":"reload"}\n')).r, { ok: false, error: 'reload failed: boom' })
  t.match((await ask(path, '{"cmd":"status"}\n')).r, { ok: true })
})

t.test('a request sent with a half-close and no newline is still answered', async (t) => {
  const { path } = await serve(t)
  const s = await connect(path)
  const w = watch(s)
  s.end('{"cmd":"status"}')
  await w.closedP
  t.equal(w.lines.length, 1)
  t.match(w.json(0), { ok: true })
})

t.test('a client that connects and says nothing is dropped; others are answered promptly meanwhile', async (t) => {
  const { srv, path } = await serve(t, { clientTimeoutMs: 300 })
  const idle = await Promise.all(Array.from({ length: 10 }, () => connect(path)))
  const watched = idle.map(watch)
  t.teardown(() => idle.forEach((s) => s.destroy()))
  const { r, ms } = await ask(path, '{"cmd":"status"}\n')
  t.match(r, { ok: true })
  t.ok(ms < 200, `status answered in ${ms.toFixed(1)} ms with 10 silent clients`)
  const t0 = Date.now()
  await Promise.all(watched.map((w) => w.closedP))
  const waited = Date.now() - t0
  t.ok(waited >= 200 && waited < 2000, `silent clients closed after the timeout (${waited} ms)`)
  await until(() => srv.clients === 0, 'no connections left')
})

t.test('half a line, then silence: dropped at the deadline', async (t) => {
  const { path } = await serve(t, { clientTimeoutMs: 300 })
  const s = await connect(path)
  const w = watch(s)
  s.write('{"cmd":"sta')
  await w.closedP
  t.equal(w.lines.length, 0, 'nothing answered to half a request')
})

t.test('a slow client (one byte at a time) is cut off: partial data does not extend the deadline', async (t) => {
  const { path } = await serve(t, { clientTimeoutMs: 300 })
  const s = await connect(path)
  const w = watch(s)
  const line = '{"cmd":"status"}                                                                  \n'
  let i = 0
  const trickle = setInterval(() => {
    if (!s.destroyed && i < line.length) s.write(line[i++]!)
  }, 20)
  t.teardown(() => clearInterval(trickle))
  const t0 = Date.now()
  await w.closedP
  clearInterval(trickle)
  t.ok(Date.now() - t0 < 1000, 'closed near the deadline')
  t.ok(i < line.length, `cut off after ${i} of ${line.length} bytes`)
  t.equal(w.lines.length, 0)
  const { r, ms } = await ask(path, '{"cmd":"status"}\n')
  t.match(r, { ok: true })
  t.ok(ms < 200)
})

t.test('an oversized line is refused before it is all buffered; the connection is closed', async (t) => {
  const { path, h } = await serve(t, { maxRequestBytes: 64 * 1024 })
  const s = await connect(path)
  const w = watch(s)
  // 1 MiB without a newline: the server answers once it holds more than the limit, and stops reading.
  const chunk = 'x'.repeat(16 * 1024)
  for (let i = 0; i < 64 && !s.destroyed; i++) s.write(chunk)
  await w.closedP
  t.equal(w.lines.length, 1)
  t.same(w.json(0), { ok: false, error: 'request longer than 65536 bytes' })
  t.equal(h.seen.length, 0)
  // and a line over the limit that does end in a newline
  const s2 = await connect(path)
  const w2 = watch(s2)
  s2.write(JSON.stringify({ cmd: 'status', pad: 'y'.repeat(70 * 1024) }) + '\n')
  await w2.closedP
  t.match(w2.json(0), { ok: false, error: /longer than/ })
  t.match((await ask(path, '{"cmd":"status"}\n')).r, { ok: true })
})

t.test('a client that sends requests but never reads is dropped, holding at most one answer', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'c.sock')
  const h = handler({ links: 20000 }) // a few MiB per answer: more than the socket buffers hold
  const srv = await ControlServer.listen({ path, handler: h, clientTimeoutMs: 300 })
  t.teardown(() => srv.close())
  const s = await connect(path)
  s.on('error', () => {})
  s.pause() // never read
  for (let i = 0; i < 50; i++) s.write('{"cmd":"status"}\n')
  t.teardown(() => s.destroy())
  // Meanwhile another client is served.
  await new Promise((r) => setTimeout(r, 50))
  const { r, ms } = await ask(path, '{"cmd":"reload"}\n')
  t.same(r, { ok: true, accepted: true })
  t.ok(ms < 200, `answered in ${ms.toFixed(1)} ms`)
  // (A paused client does not notice the close until it reads: watch the server's side.)
  await until(() => srv.clients === 0, 'the stuck client dropped')
  t.ok(h.seen.length < 5, `the stuck client got ${h.seen.filter((x) => x.cmd === 'status').length} status answers computed, not 50`)
})

t.test('concurrent clients are capped; the one over the cap is told so', async (t) => {
  const { srv, path } = await serve(t, { maxClients: 4, clientTimeoutMs: 500 })
  const held = await Promise.all(Array.from({ length: 4 }, () => connect(path)))
  t.teardown(() => held.forEach((s) => s.destroy()))
  await until(() => srv.clients === 4, 'four connections')
  const extra = await connect(path)
  const w = watch(extra)
  await w.closedP
  t.same(w.json(0), { ok: false, error: 'too many clients' })
  held.forEach((s) => s.destroy())
  await until(() => srv.clients === 0, 'held connections gone')
  t.match((await ask(path, '{"cmd":"status"}\n')).r, { ok: true })
})

t.test('refused clients are warned about once per interval, with a count, not once each', async (t) => {
  const warns: { obj: Record<string, unknown>; msg: string }[] = []
  const log = { debug() {}, warn: (obj: Record<string, unknown>, msg: string) => void warns.push({ obj, msg }) } as unknown as Logger
  const { srv, path } = await serve(t, { maxClients: 1, clientTimeoutMs: 500, refusalLogIntervalMs: 300, log })
  const held = await connect(path)
  t.teardown(() => held.destroy())
  await until(() => srv.clients === 1, 'one connection')
  const refuse = async (n: number) => {
    for (let i = 0; i < n; i++) await watch(await connect(path)).closedP
  }
  await refuse(20)
  t.same(warns.map((w) => w.obj), [{ clients: 1, refused: 1 }], 'the first refusal is warned about at once, the next 19 are counted')
  t.match(warns[0]!.msg, /too many clients \(1\), refused one$/)
  await new Promise((r) => setTimeout(r, 350))
  await refuse(1)
  t.same(warns.map((w) => w.obj.refused), [1, 20], 'after the interval, one warning for the 19 and this one')
  t.match(warns[1]!.msg, /refused 20 since the last warning$/)
})

t.test('start-up: a stale socket is replaced, a live one refused, a regular file left alone', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'c.sock')

  // stale: a socket file nobody listens on (a daemon killed with SIGKILL leaves one)
  const dead = createServer()
  await new Promise<void>((r) => dead.listen(path, () => r()))
  // close the listening descriptor without removing the file: libuv unlinks on close, so re-create the situation
  // by renaming the live file away first and back after close.
  renameSync(path, `${path}.keep`)
  await new Promise<void>((r) => dead.close(() => r()))
  renameSync(`${path}.keep`, path)
  t.equal(await probeSocket(path), 'stale')
  const srv = await ControlServer.listen({ path, handler: handler() })
  t.match((await ask(path, '{"cmd":"status"}\n')).r, { ok: true }, 'stale socket replaced')

  // live: a second server on the same path refuses, and the first keeps working
  t.equal(await probeSocket(path), 'listening')
  await t.rejects(ControlServer.listen({ path, handler: handler() }), { name: 'ControlStartError', message: /another process .* is listening on/ })
  t.match((await ask(path, '{"cmd":"status"}\n')).r, { ok: true }, 'the first server still answers')
  await srv.close()
  t.equal(existsSync(path), false, 'close removes the socket file')

  // not a socket: never removed
  writeFileSync(path, 'precious')
  await t.rejects(ControlServer.listen({ path, handler: handler() }), ControlStartError)
  t.equal(statSync(path).isFile(), true)
  t.equal(await probeSocket(join(dir, 'absent.sock')), 'absent')
})

t.test('credentials: only root and the group may ask; the rest are told so and warned about once per interval', { skip: needsRoot }, async (t) => {
  const warns: { obj: Record<string, unknown>; msg: string }[] = []
  const log = { debug() {}, warn: (obj: Record<string, unknown>, msg: string) => void warns.push({ obj, msg }) } as unknown as Logger
  const { srv, path, dir, h } = await serve(t, { log, refusalLogIntervalMs: 60_000, access: { uids: [0], group: { name: 'xdpops', gid: 4242 } } })
  // The file mode is the kernel's gate, before the daemon sees anyone: open it, as an operator would for a group.
  chmodSync(dir, 0o711)
  chmodSync(join(dir, 'run'), 0o711)
  chmodSync(path, 0o666)

  const answer = async (id: Identity): Promise<Record<string, unknown>> => JSON.parse((await askAs(id, path))[0]!) as Record<string, unknown>
  t.match(await answer({ uid: 65534, gid: 4242 }), { ok: true, links: Array }, 'the group as primary gid')
  t.match(await answer({ uid: 65534, gid: 65534, groups: [27, 4242] }), { ok: true, links: Array }, 'the group as a supplementary group')
  t.same(warns.filter((w) => /refused/.test(w.msg)), [], 'members are not warned about')

  const denied = { ok: false, error: 'permission denied: only root or members of group xdpops (gid 4242) may use this socket' }
  t.same(await answer(NOBODY), denied, 'nobody')
  t.same(await answer({ uid: 1000, gid: 1000, groups: [27] }), denied, 'a user in other groups')
  t.same(await answer({ uid: 65534, gid: 0, groups: [0] }), denied, 'gid 0 is not root')
  t.equal(h.seen.length, 2, 'the handler saw only the members\' requests')
  const refusals = warns.filter((w) => /refused/.test(w.msg))
  t.equal(refusals.length, 1, 'one warning for three refusals within the interval')
  t.match(refusals[0], { obj: { uid: 65534, refused: 1 }, msg: /^control socket: refused uid 65534 \(pid \d+\): only root or members of group xdpops \(gid 4242\) may ask; refused one$/ })
  t.equal(srv.clients, 0, 'refused clients hold no slot')

  // A reload that drops the group: members are refused from then on (by the daemon, with the file opened again).
  srv.setAccess({ uids: [0], group: null })
  chmodSync(path, 0o666)
  t.same(await answer({ uid: 65534, gid: 4242 }), { ok: false, error: 'permission denied: only root may use this socket' })
  t.match((await ask(path, '{"cmd":"status"}\n')).r, { ok: true }, 'root still may')
})

t.test('control-group: the socket file is 0660 and the group\'s, so members can connect without a chmod', { skip: needsRoot }, async (t) => {
  const warns: { obj: Record<string, unknown>; msg: string }[] = []
  const log = { debug() {}, info() {}, warn: (obj: Record<string, unknown>, msg: string) => void warns.push({ obj, msg }) } as unknown as Logger
  const group = { name: 'xdpops', gid: 4242 }
  const { srv, path, dir } = await serve(t, { log, access: { uids: [0], group } })
  const st = statSync(path)
  t.equal(st.mode & 0o777, 0o660, 'mode 0660')
  t.equal(st.gid, 4242, 'the group\'s')
  t.match(warns, [{ msg: new RegExp(`^control socket: members of group xdpops \\(gid 4242\\) cannot reach ${path}: ${dir}/run does not let them search it \\(mode 0700; 0711 would\\)$`) }])
  chmodSync(dir, 0o711)
  chmodSync(join(dir, 'run'), 0o711)
  const answer = async (id: Identity): Promise<Record<string, unknown>> => JSON.parse((await askAs(id, path))[0]!) as Record<string, unknown>
  t.match(await answer({ uid: 65534, gid: 4242 }), { ok: true }, 'a member connects: the file mode lets it in')
  srv.setAccess({ uids: [0], group: null })
  t.equal(statSync(path).mode & 0o777, 0o600, 'the group dropped at a reload: 0600 again')
  t.same(await askAs({ uid: 65534, gid: 4242 }, path), ['error: EACCES'], 'the kernel refuses the connection now')
})

t.test('the refusal warnings share the interval logic with "too many clients", each kind counted apart', { skip: needsRoot }, async (t) => {
  const warns: string[] = []
  const log = { debug() {}, warn: (_: unknown, msg: string) => void warns.push(msg) } as unknown as Logger
  const { path, dir } = await serve(t, { log, refusalLogIntervalMs: 1000, maxClients: 1 })
  chmodSync(dir, 0o711)
  chmodSync(join(dir, 'run'), 0o711)
  chmodSync(path, 0o666)
  const held = await connect(path)
  t.teardown(() => held.destroy())
  await ask(path, '{"cmd":"status"}\n') // over the cap: one "too many clients" warning
  t.same(await askAs(NOBODY, path, 3), Array(3).fill('{"ok":false,"error":"permission denied: only root may use this socket"}'))
  await new Promise((r) => setTimeout(r, 1100))
  await askAs(NOBODY, path)
  t.same(
    warns.map((w) => w.replace(/\(pid \d+\)/, '(pid N)')),
    [
      'control socket: too many clients (1), refused one',
      'control socket: refused uid 65534 (pid N): only root may ask; refused one',
      'control socket: refused uid 65534 (pid N): only root may ask; refused 3 since the last warning',
    ],
  )
})

t.test('where the socket goes: its directory is checked like config paths; a socket someone else left there is refused', { skip: needsRoot }, async (t) => {
  const dir = tempDir(t)
  const h = handler()
  const reject = (path: string, message: RegExp, opts: Partial<Parameters<typeof ControlServer.listen>[0]> = {}) =>
    t.rejects(ControlServer.listen({ path, handler: h, ...opts }), { name: 'ControlStartError', exitCode: 73, message }, path)

  mkdirSync(join(dir, 'users'))
  chownSync(join(dir, 'users'), 65534, 65534)
  await reject(join(dir, 'users', 'c.sock'), new RegExp(`^refusing control socket ${dir}/users/c\\.sock: directory ${dir}/users is owned by uid 65534, not root \\(fix the owner or mode, or start xdplinkd with --insecure-paths\\)$`))
  mkdirSync(join(dir, 'open'), { mode: 0o777 })
  chmodSync(join(dir, 'open'), 0o777)
  await reject(join(dir, 'open', 'c.sock'), /directory .*\/open is writable by group and others without the sticky bit \(mode 0777\)/)
  symlinkSync(join(dir, 'open'), join(dir, 'link'))
  await reject(join(dir, 'link', 'c.sock'), /directory .*\/open is writable by group and others/, {})
  const lax = await ControlServer.listen({ path: join(dir, 'open', 'c.sock'), handler: h, insecurePaths: true })
  t.teardown(() => lax.close())
  t.match((await ask(join(dir, 'open', 'c.sock'), '{"cmd":"status"}\n')).r, { ok: true }, '--insecure-paths lifts the check')

  // A root-owned sticky directory is as good as /tmp for files, but anyone may take a name in it first.
  mkdirSync(join(dir, 'sticky'))
  chmodSync(join(dir, 'sticky'), 0o1777)
  chmodSync(dir, 0o755)
  const squat = join(dir, 'sticky', 'c.sock')
  await listenAs(t, NOBODY, squat, '{"ok":true,"accepted":true}')
  await reject(squat, new RegExp(`^refusing control socket ${squat}: what is there is owned by uid 65534, not root \\(someone else took the name`))
  const ok = await ControlServer.listen({ path: join(dir, 'sticky', 'mine.sock'), handler: h })
  t.teardown(() => ok.close())
  t.match((await ask(join(dir, 'sticky', 'mine.sock'), '{"cmd":"status"}\n')).r, { ok: true }, 'a name of its own there is fine')
})
