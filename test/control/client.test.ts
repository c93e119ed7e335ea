/**
 * The CLI believes only a listener that runs as root or as its own user. A squatter is simulated by a process that
 * setpriv(1) runs as nobody, listening in a root-owned sticky directory (as /tmp is), where anyone may take a name.
 */
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ControlClientError, controlRequest } from '../../src/control/client.js'
import { NOBODY, listenAs } from '../helpers/as-user.js'
import { CLI, needsRoot } from '../helpers/netns.js'

/** A root-owned sticky directory others may create names in, like /tmp. */
function stickyDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-client-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  chmodSync(dir, 0o755)
  mkdirSync(join(dir, 'tmp'))
  chmodSync(join(dir, 'tmp'), 0o1777)
  return join(dir, 'tmp')
}

const IMPOSTOR_ANSWER = '{"ok":true,"accepted":true}'

t.test('an answer from a listener running as another user is not believed', { skip: needsRoot }, async (t) => {
  const path = join(stickyDir(t), 'x.sock')
  const impostor = await listenAs(t, NOBODY, path, IMPOSTOR_ANSWER)
  await t.rejects(controlRequest(path, { cmd: 'reload' }, { timeoutMs: 5000 }), {
    name: 'ControlClientError',
    message: `not asking the process listening on ${path} (pid ${impostor.pid}): it runs as uid 65534, not root, so it is not xdplinkd's control socket (someone else took the name?)`,
  })
  // The same listener, trusted: its answer is what `reload` would have reported.
  t.same(await controlRequest(path, { cmd: 'reload' }, { timeoutMs: 5000, trustedUids: [0, 65534] }), { ok: true, accepted: true })
})

t.test('xdplinkd reload and status refuse an impostor, exit 1 with the reason', { skip: needsRoot }, async (t) => {
  const path = join(stickyDir(t), 'x.sock')
  await listenAs(t, NOBODY, path, IMPOSTOR_ANSWER)
  for (const cmd of ['reload', 'status']) {
    const r = spawnSync(process.execPath, [CLI, cmd, '--socket', path], { encoding: 'utf8' })
    t.equal(r.status, 1, `${cmd}: exit 1`)
    t.equal(r.stdout, '', `${cmd}: nothing on stdout`)
    t.match(r.stderr, new RegExp(`^xdplinkd: not asking the process listening on ${path} \\(pid \\d+\\): it runs as uid 65534, not root`), cmd)
  }
})

t.test('a listener of our own is believed (root here, or the user running the tests)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-client-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'c.sock')
  const srv = createServer((s) => s.on('data', () => s.write(`${IMPOSTOR_ANSWER}\n`)))
  await new Promise<void>((r) => srv.listen(path, r))
  t.teardown(() => srv.close())
  t.same(await controlRequest(path, { cmd: 'reload' }, { timeoutMs: 5000 }), { ok: true, accepted: true })
  await t.rejects(controlRequest(path, { cmd: 'reload' }, { timeoutMs: 5000, trustedUids: [12345] }), ControlClientError, 'unless its uid is not trusted')
})
