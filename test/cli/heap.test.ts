/**
 * The daemon changes V8 flags at run time (src/cli/heap.ts), which makes node compile every built-in module loaded
 * afterwards from its source instead of taking it from the code cache in the node binary. So it loads the built-ins
 * it needs first (DAEMON_BUILTINS). This runs a real daemon through start-up, a link event, a status request, a
 * reload and a stop, and names every built-in it loaded after the flags changed: a new `import 'node:...'` on the
 * daemon's path fails here until the list has it.
 */
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { isBuiltin } from 'node:module'
import { DAEMON_BUILTINS } from '../../src/cli/heap.js'
import { makeNetns, needsRoot, waitFor } from '../helpers/netns.js'
import { startDaemon, statusOf, workdir, xdpOf } from '../helpers/daemon.js'

// Loaded into the daemon with NODE_OPTIONS=--require (a node option, not a V8 flag: the flag hash stays as it is).
// It notes how many modules were loaded when the first flag is set, and at exit writes what came after. Loading it
// loads node's package resolver itself (internal/modules/esm/*), so that part of heap.ts is not checked here.
const PROBE = `'use strict'
const v8 = require('node:v8')
const { writeFileSync } = require('node:fs')
const set = v8.setFlagsFromString
let at = -1
v8.setFlagsFromString = function (flags) {
  if (at < 0) at = process.moduleLoadList.length
  return set.call(this, flags)
}
process.on('exit', () => {
  const after = at < 0 ? [] : process.moduleLoadList.slice(at).filter((m) => m.startsWith('NativeModule '))
  writeFileSync(process.env.XDPL_BUILTINS_OUT, JSON.stringify({ tuned: at >= 0, after }))
})
`

t.test('DAEMON_BUILTINS names built-in modules', async (t) => {
  for (const m of DAEMON_BUILTINS) t.ok(isBuiltin(m), m)
})

t.test('a daemon loads no built-in module after it changes V8 flags', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  const probe = join(w.dir, 'probe.cjs')
  const out = join(w.dir, 'builtins.json')
  writeFileSync(probe, PROBE)
  const obj = w.object('xdp_pass')
  const config = (s: string): string =>
    w.config(`settle: ${s}\nbpffs: ${w.bpffs}\nattach:\n  - { interfaces: ["v*"], object: ${obj}, mode: generic }\n`)
  ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'wa')
  const d = await startDaemon(ns, config('10ms'), [], { NODE_OPTIONS: `--require ${probe}`, XDPL_BUILTINS_OUT: out })
  t.teardown(() => d.stop('SIGKILL'))
  t.ok(xdpOf(ns, 'va'), 'attached at start-up')

  ns.ip('link', 'add', 'vb', 'type', 'veth', 'peer', 'name', 'wb')
  await waitFor(() => xdpOf(ns, 'vb') !== null, 'vb attached')
  const managed = statusOf(ns, join(w.dir, 'control.sock')).links.filter((l) => l.name.startsWith('v'))
  t.equal(managed.length, 2, 'status answered')
  config('20ms')
  d.child.kill('SIGHUP')
  await d.waitLog((l) => l.action === 'reload', 'the reload')
  t.equal(await d.stop('SIGTERM'), 0)

  const seen = JSON.parse(readFileSync(out, 'utf8')) as { tuned: boolean; after: string[] }
  t.ok(seen.tuned, 'the daemon set its V8 flags')
  t.same(seen.after, [], 'built-ins loaded after the flags changed (add them to DAEMON_BUILTINS)')
})
