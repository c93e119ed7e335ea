/**
 * Races with someone else attaching at the same time: after EBUSY the daemon reads the link again and must end in
 * what the kernel shows (issue 15, bug 3). Judged by `ip -j -d link show` and each daemon's `status --json`.
 */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { LinkStatusJson, StatusJson } from '../../src/control/protocol.js'
import { tempBpffs } from '../helpers/bpf.js'
import { actions, startDaemon, statusOf, workdir, xdpOf, type Running } from '../helpers/daemon.js'
import { makeNetns, needsRoot, waitFor } from '../helpers/netns.js'

const entry = (bpffs: string, obj: string, settle: string, extra = '') =>
  `settle: ${settle}\nbpffs: ${bpffs}\n${extra}attach:\n  - interfaces: ["r*", "x*"]\n    object: ${obj}\n    mode: generic\n`

const linkIn = (s: StatusJson, name: string): LinkStatusJson | undefined => s.links.find((l) => l.name === name)

t.test('a foreign program attached inside the settle window: a conflict, reported once, never stuck pending', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  const socket = join(w.dir, 'control.sock')
  const d = await startDaemon(ns, w.config(entry(w.bpffs, w.object('xdp_pass'), '2s', 'max-settle: 4s\n')))
  t.teardown(() => d.stop('SIGKILL'))

  // Created down: the kernel announces an XDP change only on a link that is up (do_setlink -> netdev_state_change),
  // so the daemon's table still shows nothing attached when the settle window ends, and its attach
  // (XDP_FLAGS_UPDATE_IF_NOEXIST) meets the foreign program: EBUSY.
  ns.ip('link', 'add', 'x0', 'type', 'veth', 'peer', 'name', 'y0')
  try {
    ns.ip('link', 'set', 'dev', 'x0', 'xdpgeneric', 'obj', w.objects.bundled('xdp_drop'), 'sec', 'xdp')
  } catch (e) {
    // ip uses XDP_FLAGS_UPDATE_IF_NOEXIST too: it fails only if the daemon attached first (the 2 s went by).
    t.fail(`the foreign attach came after the daemon's; the race did not happen: ${(e as Error).message}`)
    return
  }
  const foreign = xdpOf(ns, 'x0')!
  await waitFor(() => ['conflict', 'attached', 'error'].includes(linkIn(statusOf(ns, socket), 'x0')?.state ?? ''), 'x0 to leave pending', 20000, 200).catch(() => {})
  const s = statusOf(ns, socket)
  t.match(linkIn(s, 'x0'), { state: 'conflict', attached: { progId: foreign.id, owner: 'foreign' } }, 'x0 is a conflict with the foreign program')
  t.equal(s.counters.errors.EBUSY, 1, 'one EBUSY: the attach that met the foreign program; the re-read settles it')
  t.same(xdpOf(ns, 'x0'), foreign, 'the foreign program stays')

  // More events on x0 (up: a notification, a new plan, the same conflict) are not reported again. x1, created
  // after them, is planned after them: once its attach is logged, whatever x0's events logged is in the log before
  // it (pino writes asynchronously, so the log, not the status answer, is the barrier).
  ns.ip('link', 'set', 'x0', 'up')
  ns.ip('link', 'add', 'x1', 'type', 'veth', 'peer', 'name', 'y1')
  await d.waitLog((l) => l.action === 'attach' && l.ifname === 'x1', 'x1 attached')
  t.equal(linkIn(statusOf(ns, socket), 'x0')?.state, 'conflict', 'x0 still a conflict')
  const warned = actions(d, 'conflict').filter((l) => l.ifname === 'x0')
  t.equal(warned.length, 1, 'the conflict is logged once')
  t.match(warned[0], { level: 40, progId: foreign.id }, 'as a warning naming the foreign program')
})

/**
 * Two daemons in one namespace. Whether they share a bpffs directory decides what "ours" means: sharing it, the
 * second one takes the first one's pin for the same object (one program id), so both own what either attached and
 * every link is `attached` in both; with a directory each, each loads its own program, the first attach on a link
 * wins and the other daemon reports a `conflict`. Both are deployments an operator can make, and both race on
 * every new link (XDP_FLAGS_UPDATE_IF_NOEXIST: one of the two attaches gets EBUSY).
 */
for (const shared of [false, true]) {
  t.test(`two daemons, settle 0ms, ${shared ? 'one bpffs directory' : 'a bpffs directory each'}: every link ends as the kernel shows it`, { skip: needsRoot }, async (t) => {
    const ns = makeNetns(t)
    const w = workdir(t)
    const obj = w.object('xdp_pass')
    const socks = [join(w.dir, 'a.sock'), join(w.dir, 'b.sock')]
    const bpffs = [w.bpffs, shared ? w.bpffs : tempBpffs(t)]
    const daemons: Running[] = []
    for (const i of [0, 1]) {
      const path = join(w.dir, `config-${i}.yaml`)
      writeFileSync(path, entry(bpffs[i]!, obj, '0ms', `control-socket: ${socks[i]}\n`), { mode: 0o644 })
      const d = await startDaemon(ns, path)
      t.teardown(() => d.stop('SIGKILL'))
      daemons.push(d)
    }
    const pairs = 24
    const names = Array.from({ length: pairs }, (_, i) => [`ra${i}`, `rb${i}`]).flat()
    ns.exec('ip', ['-batch', '-'], { input: Array.from({ length: pairs }, (_, i) => `link add ra${i} type veth peer name rb${i}\n`).join('') })

    const settled = (): boolean => {
      if (names.some((n) => xdpOf(ns, n) === null)) return false
      return socks.every((s) => {
        const st = statusOf(ns, s)
        return names.every((n) => ['attached', 'conflict'].includes(linkIn(st, n)?.state ?? ''))
      })
    }
    await waitFor(settled, 'every link attached by one daemon and settled in both', 30000, 250).catch(() => {})

    const status = socks.map((s) => statusOf(ns, s))
    const kernel = new Map(ns.ipJson<{ ifname: string; xdp?: { mode: number; prog?: { id: number } } }[]>('-d', 'link', 'show').map((l) => [l.ifname, l.xdp]))
    const problems: string[] = []
    for (const n of names) {
      const x = kernel.get(n)
      // IFLA_XDP_ATTACHED: 1 native, 2 generic, 3 offload; 4 (XDP_ATTACHED_MULTI) is more than one program
      if (!x?.prog || x.mode === 4) problems.push(`${n}: kernel shows ${JSON.stringify(x ?? null)}, not exactly one program`)
      status.forEach((st, i) => {
        const l = linkIn(st, n)
        if (!l || (l.state !== 'attached' && l.state !== 'conflict')) problems.push(`${n}: daemon ${i} says ${l?.state ?? 'nothing'}`)
        else if ((l.state === 'attached') !== (x?.prog?.id === l.desiredProgId)) {
          problems.push(`${n}: daemon ${i} says ${l.state} (wants ${l.desiredProgId}), the kernel runs ${x?.prog?.id}`)
        } else if (l.attached?.progId !== x?.prog?.id) problems.push(`${n}: daemon ${i} sees ${l.attached?.progId}, the kernel runs ${x?.prog?.id}`)
      })
    }
    t.same(problems, [], `${names.length} links: one program each, both daemons agree with the kernel`)
    // The links stay down, so neither daemon hears of the other's attach: on every link the second attach meets the
    // first one's program.
    const ebusy = status.reduce((n, st) => n + (st.counters.errors.EBUSY ?? 0), 0)
    t.equal(ebusy, names.length, 'every link was raced: one EBUSY each, settled by the re-read')
    const wants = status.map((st) => linkIn(st, names[0]!)?.desiredProgId)
    if (shared) {
      t.equal(wants[0], wants[1], 'one pin, one program for both')
      t.ok(names.every((n) => status.every((st) => linkIn(st, n)?.state === 'attached')), 'every link attached in both')
    } else {
      t.not(wants[0], wants[1], 'a program each')
      t.ok(names.every((n) => status.filter((st) => linkIn(st, n)?.state === 'attached').length === 1), 'every link attached by exactly one daemon')
    }
  })
}
