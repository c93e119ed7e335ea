import t from 'tap'
import { mkdtempSync, rmSync, existsSync, writeFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { DaemonControl, ControlStartError, type ControlledDaemon } from '../../src/control/index.js'
import { controlRequest } from '../../src/control/client.js'
import type { LinkRecord } from '../../src/reconcile/record.js'

/** A daemon stand-in: no links, one reload outcome queued at a time. */
function fakeDaemon() {
  const d = {
    reloads: [] as string[],
    nextReload: true,
    lastReloadError: null as string | null,
    config: { path: '/etc/xdplinkd/config.yaml' },
    namespaces: () => [
      {
        name: 'host',
        inode: 4026531833,
        table: { links: () => [], stats: { overruns: 0, resyncs: 1 } },
        reconciler: { records: (): LinkRecord[] => [], counters: { attaches: 0, replaces: 0, detaches: 0, conflicts: 0, errors: {}, batches: 0, requests: 0 } },
      },
    ],
    registry: { ownedProgramIds: () => new Set<number>() },
    programs: () => [],
    declaredMaps: () => new Map(),
    async reload(reason?: string) {
      d.reloads.push(reason ?? '')
      d.lastReloadError = d.nextReload ? null : 'config.yaml:3:11: attach[0].mode: expected one of auto, native, generic, offload'
      return d.nextReload
    },
  }
  return d satisfies ControlledDaemon
}

const log = pino({ level: 'silent' })

t.test('answers "starting" until ready; reload reports the daemon\'s verdict and reason', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-ctl-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const d = fakeDaemon()
  const c = new DaemonControl()
  const socket = join(dir, 'c.sock')
  await c.start({ socketPath: socket, metrics: null, log })
  t.teardown(() => c.close())
  t.equal(c.metricsAddress(), null)
  const ask = (cmd: 'status' | 'reload' | 'maps') => controlRequest(socket, { cmd }, { timeoutMs: 2000 })
  t.same(await ask('status'), { ok: false, error: 'xdplinkd is starting; ask again in a moment' })
  t.same(await ask('maps'), { ok: false, error: 'xdplinkd is starting; ask again in a moment' })
  t.same(await ask('reload'), { ok: false, error: 'xdplinkd is starting; ask again in a moment' })
  t.same(d.reloads, [], 'no reload before ready')
  c.ready(d)
  t.match(await ask('status'), { ok: true, pid: process.pid, links: [], programs: [], counters: { resyncs: 1 } })
  t.same(await ask('maps'), { ok: true, pid: process.pid, config: '/etc/xdplinkd/config.yaml', countLimit: 100000, programs: [] })
  t.same(await ask('reload'), { ok: true, accepted: true })
  d.nextReload = false
  t.same(await ask('reload'), { ok: true, accepted: false, reason: d.lastReloadError })
  t.same(d.reloads, ['control socket', 'control socket'])
  await c.close()
  t.notOk(existsSync(socket), 'closed: socket removed')
})

t.test('metrics on the configured address; a port in use fails start and releases the socket', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-ctl-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const c = new DaemonControl()
  await c.start({ socketPath: join(dir, 'a.sock'), metrics: { host: '127.0.0.1', port: 0 }, log })
  t.teardown(() => c.close())
  c.ready(fakeDaemon())
  c.observeLatency(12)
  const { port } = c.metricsAddress()!
  const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  t.match(body, /\nxdplinkd_reconcile_latency_seconds_count 1\n/)
  t.match(body, /\nxdplinkd_resyncs_total{netns="host"} 1\n/)

  const taken = createServer()
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()))
  t.teardown(() => taken.close())
  const busy = (taken.address() as { port: number }).port
  const c2 = new DaemonControl()
  const sock2 = join(dir, 'b.sock')
  await t.rejects(c2.start({ socketPath: sock2, metrics: { host: '127.0.0.1', port: busy }, log }), {
    name: 'ControlStartError',
    exitCode: 73,
    message: new RegExp(`^cannot serve metrics on 127\\.0\\.0\\.1:${busy}: .*EADDRINUSE`),
  })
  t.notOk(existsSync(sock2), 'the control socket bound before is closed again')
  t.type(new ControlStartError('x'), Error)
})

/** Connection refused or the socket file gone: nobody answers at `path`. */
async function unreachable(path: string): Promise<boolean> {
  try {
    await controlRequest(path, { cmd: 'status' }, { timeoutMs: 1000 })
    return false
  } catch {
    return true
  }
}

t.test('rebind at a reload: new listeners first; commit retires the old ones, abort drops the new ones', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-ctl-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const c = new DaemonControl()
  const a = join(dir, 'a.sock')
  await c.start({ socketPath: a, metrics: null, log })
  t.teardown(() => c.close())
  c.ready(fakeDaemon())

  t.test('nothing moved: nothing bound, nothing retired', async (t) => {
    const r = await c.rebind({ socketPath: a, metrics: null, log })
    t.same(r.changes, [])
    r.commit()
    t.match(await controlRequest(a, { cmd: 'status' }, { timeoutMs: 2000 }), { ok: true })
  })

  t.test('a socket that cannot be bound: an error, and the old one serves on', async (t) => {
    writeFileSync(join(dir, 'file'), '')
    await t.rejects(c.rebind({ socketPath: join(dir, 'file', 'b.sock'), metrics: null, log }), { name: 'ControlStartError', message: /file is not a directory/ })
    t.match(await controlRequest(a, { cmd: 'status' }, { timeoutMs: 2000 }), { ok: true })
  })

  t.test('abort: the new socket goes, the old one stays', async (t) => {
    const b = join(dir, 'b.sock')
    const r = await c.rebind({ socketPath: b, metrics: null, log })
    t.match(await controlRequest(b, { cmd: 'status' }, { timeoutMs: 2000 }), { ok: true }, 'both answer until decided')
    await r.abort()
    t.notOk(existsSync(b))
    t.match(await controlRequest(a, { cmd: 'status' }, { timeoutMs: 2000 }), { ok: true })
  })

  t.test('commit: the new socket serves, the old file is gone, a connection open on it is still answered', async (t) => {
    const b = join(dir, 'b.sock')
    const r = await c.rebind({ socketPath: b, metrics: null, log })
    t.same(r.changes, [`control socket moved to ${b}`])
    const open = createConnection(a)
    await new Promise((res) => open.once('connect', res))
    r.commit()
    t.notOk(existsSync(a), 'the old socket file is removed at once')
    t.ok(await unreachable(a))
    t.match(await controlRequest(b, { cmd: 'status' }, { timeoutMs: 2000 }), { ok: true })
    const answer = new Promise<string>((res) => {
      let buf = ''
      open.on('data', (d: Buffer) => (buf += d.toString()))
      open.on('end', () => res(buf))
    })
    open.end('{"cmd":"status"}\n')
    t.match(JSON.parse(await answer), { ok: true }, 'answered on the retired socket')
  })

  t.test('metrics: opened, moved, closed', async (t) => {
    const b = join(dir, 'b.sock')
    const m1 = await c.rebind({ socketPath: b, metrics: { host: '127.0.0.1', port: 0 }, log })
    t.same(m1.changes, ['metrics moved to http://127.0.0.1:0/metrics'])
    m1.commit()
    const first = c.metricsAddress()!
    t.equal((await fetch(`http://127.0.0.1:${first.port}/metrics`)).status, 200)

    const taken = createServer()
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()))
    t.teardown(() => taken.close())
    const busy = (taken.address() as { port: number }).port
    await t.rejects(c.rebind({ socketPath: b, metrics: { host: '127.0.0.1', port: busy }, log }), { message: /EADDRINUSE/ })
    t.equal((await fetch(`http://127.0.0.1:${first.port}/metrics`)).status, 200, 'a port in use: the old endpoint serves on')

    const off = await c.rebind({ socketPath: b, metrics: null, log })
    t.same(off.changes, ['metrics endpoint closed'])
    off.commit()
    t.equal(c.metricsAddress(), null)
    await t.rejects(fetch(`http://127.0.0.1:${first.port}/metrics`))
  })
})
