/**
 * `run --watch-config` under the kubelet's ConfigMap update, reproduced in a temporary directory as
 * pkg/volume/util/atomic_writer.go does it: the config path is a symlink to `..data/config.yaml`, `..data` a symlink
 * to a timestamped directory, and an update writes a new directory, points `..data_tmp` at it, renames that over
 * `..data` and removes the old directory. The daemon reloads once per swap, keeps the old config on a broken one,
 * and does not reload for other files.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeNetns, needsRoot, waitFor } from '../helpers/netns.js'
import { startDaemon, workdir, xdpOf, type Running } from '../helpers/daemon.js'

/** A ConfigMap volume at `dir` holding config.yaml; update() swaps in new contents the kubelet's way. */
function configMapVolume(dir: string) {
  let n = 0
  let current: string | null = null
  const update = (yaml: string): void => {
    const ts = join(dir, `..2026_12_04_13_00_00.${String(++n).padStart(9, '0')}`)
    mkdirSync(ts, { mode: 0o755 })
    writeFileSync(join(ts, 'config.yaml'), yaml, { mode: 0o644 })
    chmodSync(join(ts, 'config.yaml'), 0o644)
    if (current === null) {
      symlinkSync(ts.slice(dir.length + 1), join(dir, '..data'))
      symlinkSync('..data/config.yaml', join(dir, 'config.yaml'))
    } else {
      symlinkSync(ts.slice(dir.length + 1), join(dir, '..data_tmp'))
      execFileSync('mv', ['-T', join(dir, '..data_tmp'), join(dir, '..data')])
      rmSync(current, { recursive: true })
    }
    current = ts
  }
  return { path: join(dir, 'config.yaml'), update }
}

/** A workdir, a ConfigMap volume in a temporary directory, and the config that attaches xdp_pass to `links`. */
function setup(t: Parameters<typeof workdir>[0]) {
  const w = workdir(t)
  const obj = w.object('xdp_pass')
  const dir = mkdtempSync('/tmp/xdpl-cm-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const config = (links: string): string =>
    `settle: 10ms\nbpffs: ${w.bpffs}\ncontrol-socket: ${join(w.dir, 'control.sock')}\nattach:\n  - interfaces: [${links}]\n    object: ${obj}\n    mode: generic\n`
  return { dir, volume: configMapVolume(dir), config }
}

const reloads = (d: Running, ok: boolean): number =>
  d.logs().filter((r) => r.action === 'reload' && typeof r.msg === 'string' && r.msg.startsWith(ok ? 'reloaded' : 'reload rejected')).length

t.test('a ConfigMap swap reloads once; a broken one is rejected with the old config kept; other files change nothing', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  for (const [a, b] of [['va', 'wa'], ['vb', 'wb']]) ns.ip('link', 'add', a!, 'type', 'veth', 'peer', 'name', b!)
  const { dir, volume, config } = setup(t)
  volume.update(config('va'))
  const d = await startDaemon(ns, volume.path, ['--watch-config'])
  t.teardown(() => d.stop('SIGKILL'))
  t.ok(xdpOf(ns, 'va'), 'va attached')
  t.equal(xdpOf(ns, 'vb'), null, 'vb not matched yet')

  volume.update(config('va, vb'))
  await waitFor(() => reloads(d, true) === 1, 'the reload after the swap')
  await waitFor(() => xdpOf(ns, 'vb') !== null, 'vb attached')
  t.match(d.logs().find((r) => r.action === 'reload'), { reason: 'config file changed', msg: /^reloaded/ })

  // Unrelated files in the volume's directory, and a touch of the directory: no reload.
  writeFileSync(join(dir, 'unrelated.txt'), 'x')
  rmSync(join(dir, 'unrelated.txt'))
  mkdirSync(join(dir, '..tmp'))
  rmSync(join(dir, '..tmp'), { recursive: true })
  await new Promise((r) => setTimeout(r, 800))
  t.equal(reloads(d, true) + reloads(d, false), 1, 'other files: no reload')

  volume.update('attach: [\n')
  await waitFor(() => reloads(d, false) === 1, 'the broken config to be rejected')
  t.ok(xdpOf(ns, 'va') && xdpOf(ns, 'vb'), 'the old config stays in force')
  await new Promise((r) => setTimeout(r, 500))
  t.equal(reloads(d, false), 1, 'rejected once, not again and again')

  volume.update(config('vb'))
  await waitFor(() => reloads(d, true) === 2, 'the next good swap reloads')
  await waitFor(() => xdpOf(ns, 'va') === null, 'va detached')
  t.ok(xdpOf(ns, 'vb'))
  t.equal(reloads(d, true), 2, 'one reload per swap')
})

t.test('without --watch-config a swap changes nothing until SIGHUP', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'wa')
  const { dir, volume, config } = setup(t)
  volume.update(config('nothing'))
  const d = await startDaemon(ns, volume.path)
  t.teardown(() => d.stop('SIGKILL'))
  volume.update(config('va'))
  await new Promise((r) => setTimeout(r, 800))
  t.equal(xdpOf(ns, 'va'), null, 'not reloaded')
  d.child.kill('SIGHUP')
  await waitFor(() => xdpOf(ns, 'va') !== null, 'attached after SIGHUP')
})
