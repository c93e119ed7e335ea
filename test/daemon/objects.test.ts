/**
 * The daemon's object watch against what may be renamed over a watched object: a FIFO (open(2) without O_NONBLOCK
 * waits for a writer, fs/fifo.c wait_for_partner), a symlink to /dev/zero (read without end), and a plain `touch`.
 * The daemon must keep answering and attaching, keep the program in use, say once why the file was not used, and
 * reload nothing for bytes that did not change.
 */
import t from 'tap'
import type { Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { controlRequest } from '../../src/control/client.js'
import type { StatusResponse } from '../../src/control/protocol.js'
import { needsRoot, waitFor } from '../helpers/netns.js'
import { oneManagedLink, xdpOf } from '../helpers/daemon.js'

const isWarningAbout = (obj: string) => (r: Record<string, unknown>) => r.level === 40 && r.object === obj && /cannot be used/.test(String(r.msg))

/** A status request over the control socket (what `xdplinkd status` sends), given 1 s: it rejects without an answer. */
async function statusWithin1s(socket: string): Promise<StatusResponse> {
  const r = await controlRequest(socket, { cmd: 'status' }, { timeoutMs: 1000 })
  if (!r.ok) throw new Error(`status answered an error: ${r.error}`)
  return r as StatusResponse
}

async function running(t: Test) {
  const s = await oneManagedLink(t)
  return { ...s, socket: join(s.w.dir, 'control.sock') }
}

/** After the swap: one warning, answers within a second, a new link gets the old program, which stays on va. */
async function stillServing(t: Test, s: Awaited<ReturnType<typeof running>>) {
  const warned = await s.d.waitLog(isWarningAbout(s.obj), 'the warning that the object cannot be used')
  t.match(warned.msg, /the program loaded from it stays attached/)
  t.ok((await statusWithin1s(s.socket)).links.some((l) => l.name === 'va'), 'status answers within a second')
  s.ns.ip('link', 'add', 'vc', 'type', 'veth', 'peer', 'name', 'wc')
  await waitFor(() => xdpOf(s.ns, 'vc')?.id === s.old, 'a link created meanwhile to get the program in use')
  t.equal(xdpOf(s.ns, 'va')!.id, s.old, 'the old program still attached')
  t.equal(s.d.logs().filter(isWarningAbout(s.obj)).length, 1, 'one warning')
  t.notOk(s.d.logs().some((r) => r.action === 'reload'), 'no reload tried')
  return warned
}

t.test('a FIFO renamed over the watched object does not block the daemon', { skip: needsRoot }, async (t) => {
  const s = await running(t)
  execFileSync('sh', ['-c', 'mkfifo -m 644 .f && mv -T .f xdp_pass.o'], { cwd: s.w.dir })
  const warned = await stillServing(t, s)
  t.match(warned.msg, /is not a regular file/)
})

t.test('a symlink to /dev/zero renamed over the watched object is not read', { skip: needsRoot }, async (t) => {
  const s = await running(t)
  execFileSync('sh', ['-c', 'ln -s /dev/zero .z && mv -T .z xdp_pass.o'], { cwd: s.w.dir })
  const warned = await stillServing(t, s)
  t.match(warned.msg, /\/dev\/zero is not a regular file/)
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(execFileSync('cat', [`/proc/${s.d.child.pid}/status`], { encoding: 'utf8' }))?.[1] ?? 0)
  t.ok(rss > 0 && rss < 500_000, `the daemon's resident memory stays small (${rss} kB)`)
})

t.test('a touch of the watched object reloads nothing: one hash, the same program ids', { skip: needsRoot }, async (t) => {
  const s = await running(t)
  execFileSync('touch', [s.obj])
  await s.d.waitLog((r) => r.level === 20 && /no object in use holds other usable bytes/.test(String(r.msg)), 'the watch to find the same bytes')
  t.notOk(s.d.logs().some((r) => r.action === 'reload'), 'no "reloaded" line, no reload at all')
  t.equal(xdpOf(s.ns, 'va')!.id, s.old, 'the same program')
  // and a real change still reloads
  s.w.object('xdp_drop', 'xdp_pass.o')
  await s.d.waitLog((r) => r.action === 'reload' && r.level === 30, 'the reload of other bytes')
  await waitFor(() => xdpOf(s.ns, 'va')?.id !== s.old, 'the new program attached')
})
