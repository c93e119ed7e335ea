import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { makeNetns, needsRoot, waitFor } from '../helpers/netns.js'
import { startDaemon, workdir, xdpOf } from '../helpers/daemon.js'

/** Sums the per-CPU {packets, bytes} of a pinned xdp_stats map, read with bpftool. */
function packets(mapPin: string): number {
  const dump = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', mapPin], { encoding: 'utf8' })) as {
    formatted?: { values: { value: { packets: number } }[] }
    values?: { value: { packets: number } }[]
  }[]
  let n = 0
  for (const e of dump) for (const v of e.formatted?.values ?? e.values ?? []) n += Number(v.value.packets)
  return n
}

t.test('xdp_drop on one end of a veth pair: ping fails and the drop counter rises; detached, ping passes', { skip: needsRoot }, async (t) => {
  const a = makeNetns(t, 'xdpa')
  const b = makeNetns(t, 'xdpb')
  a.ip('link', 'add', 'vdrop', 'type', 'veth', 'peer', 'name', 'peer0', 'netns', b.name)
  a.ip('addr', 'add', '10.199.0.1/24', 'dev', 'vdrop')
  b.ip('addr', 'add', '10.199.0.2/24', 'dev', 'peer0')
  a.ip('link', 'set', 'vdrop', 'up')
  b.ip('link', 'set', 'peer0', 'up')
  const ping = () => {
    try {
      b.exec('ping', ['-c', '3', '-i', '0.2', '-W', '1', '10.199.0.1'])
      return true
    } catch {
      return false
    }
  }
  t.ok(ping(), 'ping passes before')

  const w = workdir(t)
  const cfg = w.config(`settle: 10ms\nbpffs: ${w.bpffs}\nattach:\n  - interfaces: ["vdrop"]\n    object: ${w.object('xdp_drop')}\n    mode: generic\n`)
  const d = await startDaemon(a, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  t.equal(xdpOf(a, 'vdrop')?.mode, 'generic')
  const pinDir = readdirSync(w.bpffs).find((n) => n.endsWith('-xdp_drop'))!
  const statsPin = join(w.bpffs, pinDir, 'maps', 'xdp_stats')
  const before = packets(statsPin)
  t.notOk(ping(), 'ping fails through xdp_drop')
  const after = packets(statsPin)
  t.ok(after >= before + 3, `drop counter rose from ${before} to ${after}`)

  // an empty attach list detaches ours
  w.config(`settle: 10ms\nbpffs: ${w.bpffs}\nattach: []\n`)
  d.child.kill('SIGHUP')
  await waitFor(() => xdpOf(a, 'vdrop') === null, 'the program to be detached')
  t.ok(ping(), 'ping passes again')
})
