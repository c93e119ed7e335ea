import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeNetns, needsRoot, waitFor, type Netns } from '../helpers/netns.js'
import { actions, oneManagedLink, startDaemon, statusOf, workdir, xdpOf } from '../helpers/daemon.js'

// A second xdp_pass with other bytes: a rebuilt object, as an operator would produce.
const PASS_V2 = `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp") int xdp_pass(struct xdp_md *ctx) { volatile int v2 = 2; (void)v2; return XDP_PASS; }
char _license[] SEC("license") = "GPL";
`
// Reads packet bytes without a bounds check: the verifier refuses it.
const BAD = `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp") int xdp_pass(struct xdp_md *ctx) { unsigned char *p = (void *)(long)ctx->data; return p[12] ? XDP_PASS : XDP_DROP; }
char _license[] SEC("license") = "GPL";
`

/**
 * Watches a link while a swap happens: `ip -d monitor link` prints every RTM_NEWLINK, and the link is polled with
 * `ip -j -d link show` in a loop. Both must show a program at every moment.
 */
function watchLink(ns: Netns, dev: string) {
  const mon = ns.spawn('ip', ['-d', 'monitor', 'link', 'dev', dev])
  let text = ''
  mon.stdout!.on('data', (d: Buffer) => (text += d.toString()))
  const polled: (number | null)[] = []
  let stop = false
  const poll = (async () => {
    while (!stop) {
      polled.push(xdpOf(ns, dev)?.id ?? null)
      await new Promise((r) => setImmediate(r))
    }
  })()
  return {
    async end() {
      stop = true
      await poll
      mon.kill()
      // each notification block starts with "<ifindex>: <name>"; every one about the link must carry a program
      const blocks = text.split(/\n(?=\d+: )/).filter((b) => b.trim())
      return { polled, blocks }
    },
  }
}

t.test('a changed object file is loaded and swapped atomically on every link; the old program is released', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  const obj = w.object('xdp_pass')
  ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb')
  ns.ip('link', 'set', 'va', 'up')
  ns.ip('link', 'set', 'vb', 'up')
  const d = await startDaemon(ns, w.config(`settle: 10ms\nbpffs: ${w.bpffs}\nattach:\n  - interfaces: ["v*"]\n    object: ${obj}\n    mode: generic\n`))
  t.teardown(() => d.stop('SIGKILL'))
  const old = xdpOf(ns, 'va')!.id
  t.equal(xdpOf(ns, 'vb')!.id, old)

  t.match(ns.exec('bpftool', ['prog', 'show', 'id', String(old)]), new RegExp(`^${old}: xdp`), 'bpftool sees the old program')
  const watcher = watchLink(ns, 'va')
  await new Promise((r) => setTimeout(r, 100))
  w.compile(PASS_V2, 'xdp_pass.o') // lands as a rename over the watched file
  await waitFor(() => (xdpOf(ns, 'va')?.id ?? old) !== old && (xdpOf(ns, 'vb')?.id ?? old) !== old, 'both links swapped')
  await new Promise((r) => setTimeout(r, 100))
  const { polled, blocks } = await watcher.end()
  const now = xdpOf(ns, 'va')!.id
  t.equal(xdpOf(ns, 'vb')!.id, now, 'one new program serves both links')
  t.ok(polled.length > 10, `polled ${polled.length} times during the swap`)
  t.notOk(polled.includes(null), 'the poller never saw the link without a program')
  t.ok(blocks.length > 0, `${blocks.length} notifications during the swap`)
  t.ok(blocks.every((b) => /prog\/xdp id \d+/.test(b)), 'every notification shows a program attached')
  const replaces = actions(d, 'replace')
  t.same(replaces.map((r) => [r.ifname, r.oldProgId, r.progId]).sort(), [['va', old, now], ['vb', old, now]])
  // the old program is released: no fd or pin keeps it alive
  await waitFor(() => {
    try {
      ns.exec('bpftool', ['prog', 'show', 'id', String(old)])
      return false
    } catch {
      return true
    }
  }, 'the old program to be freed by the kernel')
  t.pass('old program gone from the kernel')
})

t.test('a new object the verifier rejects leaves the old program attached and logs the reason', { skip: needsRoot }, async (t) => {
  const { ns, w, d, old } = await oneManagedLink(t)
  w.compile(BAD, 'xdp_pass.o')
  const rejected = await d.waitLog((r) => r.action === 'reload' && r.level === 50, 'the reload to be rejected')
  t.match(rejected.msg, /verifier/i)
  t.match(rejected.msg, /invalid access to packet/)
  t.equal(xdpOf(ns, 'va')!.id, old, 'old program still attached')
  // The broken file touched (an event that names it, the same bytes): not tried again (programs/watch.ts).
  const later = new Date(Date.now() + 5000)
  utimesSync(join(w.dir, 'xdp_pass.o'), later, later)
  await new Promise((r) => setTimeout(r, 600))
  t.equal(d.logs().filter((r) => r.action === 'reload').length, 1, 'one rejected reload, not one per event of the directory')
})

t.test('a bpffs unmounted under the daemon is mounted again for the next program, with a warning', { skip: needsRoot }, async (t) => {
  const { ns, w, d, old } = await oneManagedLink(t)
  // In the daemon's own mount namespace (`ip netns exec` made it one): the host's mount of the test's bpffs stays.
  const inDaemonMounts = (...args: string[]) => execFileSync('nsenter', ['-t', String(d.child.pid), '-m', ...args], { encoding: 'utf8' })
  inDaemonMounts('umount', w.bpffs)
  t.throws(() => inDaemonMounts('mountpoint', '-q', w.bpffs), 'the daemon sees no bpffs there any more')
  w.compile(PASS_V2, 'xdp_pass.o')
  await waitFor(() => (xdpOf(ns, 'va')?.id ?? old) !== old, 'the link swapped to the rebuilt program')
  const now = xdpOf(ns, 'va')!.id
  await d.waitLog((r) => r.action === 'reload' && r.level === 30, 'the reload to be reported done')
  const warned = d.logs().find((r) => r.level === 40 && /no longer on a BPF filesystem/.test(String(r.msg)))
  t.ok(warned, 'a warning says the bpffs was gone and mounted again')
  t.match(warned?.path, w.bpffs)
  t.notOk(d.logs().some((r) => r.action === 'reload' && r.level === 50), 'no reload was rejected')
  // The swap is atomic although the old program's pin is gone: its expected fd is the one the daemon still holds.
  t.same(actions(d, 'replace').map((r) => [r.ifname, r.oldProgId, r.progId]), [['va', old, now]])
  t.same(actions(d, 'error'), [], 'no failed request')
  const pins = inDaemonMounts('bpftool', '-j', 'prog', 'show', 'pinned', join(w.bpffs, inDaemonMounts('ls', w.bpffs).split('\n').find((n) => n.endsWith('-xdp_pass'))!, 'prog'))
  t.equal((JSON.parse(pins) as { id: number }).id, now, 'the new program is pinned on the new bpffs')
})

t.test('SIGHUP with a broken config keeps the old one; a good one takes effect', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  const pass = w.object('xdp_pass')
  const drop = w.object('xdp_drop')
  ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'wa')
  const good = `settle: 10ms\nbpffs: ${w.bpffs}\nattach:\n  - interfaces: ["v*"]\n    object: ${pass}\n    mode: generic\n`
  const cfg = w.config(good)
  const d = await startDaemon(ns, cfg)
  t.teardown(() => d.stop('SIGKILL'))
  const old = xdpOf(ns, 'va')!.id

  writeFileSync(cfg, good.replace('mode: generic', 'mode: nativ'))
  d.child.kill('SIGHUP')
  const rejected = await d.waitLog((r) => r.action === 'reload' && r.level === 50, 'the reload to be rejected')
  t.match(rejected.msg, /config\.yaml:\d+:\d+: attach\[0\]\.mode/, 'the error names file, line, column and key')
  t.equal(xdpOf(ns, 'va')!.id, old, 'old program still attached')
  ns.ip('link', 'add', 'vc', 'type', 'veth', 'peer', 'name', 'wc')
  await waitFor(() => xdpOf(ns, 'vc')?.id === old, 'the old config still in force for new links')

  // a new config that moves the control socket into a directory it cannot create is rejected as a whole
  writeFileSync(join(w.dir, 'file'), '')
  writeFileSync(cfg, good.replace(pass, drop) + `control-socket: ${w.dir}/file/ctl.sock\n`)
  const before = d.logs().length
  d.child.kill('SIGHUP')
  await waitFor(() => d.logs().slice(before).some((r) => r.action === 'reload' && r.level === 50), 'the reload to be rejected')
  t.match(d.logs().slice(before).find((r) => r.action === 'reload')!.msg, /reload rejected, the previous config stays in force:\ncannot use control socket .*\/file\/ctl\.sock: .*\/file is not a directory$/)
  t.equal(xdpOf(ns, 'va')!.id, old, 'the old program still attached')
  t.ok(existsSync(`${w.dir}/control.sock`), 'the old control socket still there')

  // one that moves it to a usable place: bound, then the old one removed, and the new config in force
  writeFileSync(cfg, good.replace(pass, drop) + `control-socket: ${w.dir}/other.sock\n`)
  d.child.kill('SIGHUP')
  await d.waitLog((r) => r.action === 'reload' && r.level === 30, 'the reload to be accepted')
  t.ok(existsSync(`${w.dir}/other.sock`), 'the new control socket exists')
  t.notOk(existsSync(`${w.dir}/control.sock`), 'the old one is removed')
  t.match(statusOf(ns, `${w.dir}/other.sock`), { pid: d.child.pid }, 'and it answers')
  await waitFor(() => xdpOf(ns, 'va')!.id !== old && xdpOf(ns, 'vc')!.id !== old, 'links moved to the new program')
  t.equal(xdpOf(ns, 'va')!.id, xdpOf(ns, 'vc')!.id)

  // a kind that looks like a typo is taken as written (it matches nothing here, so ours are detached) and warned of
  writeFileSync(cfg, good.replace('    mode: generic', '    kinds: [vet]\n    mode: generic'))
  const from = d.logs().length
  d.child.kill('SIGHUP')
  await waitFor(() => d.logs().slice(from).some((r) => r.action === 'reload' && r.level === 30), 'the third reload to be accepted')
  t.match(
    d.logs().slice(from).find((r) => r.linkKind === 'vet'),
    { level: 40, entry: 'attach[0]', suggestion: 'veth', msg: /kinds: "vet" is not a known link kind; did you mean "veth"\?/ },
  )
  await waitFor(() => xdpOf(ns, 'va') === null && xdpOf(ns, 'vc') === null, 'ours detached: no link is of kind "vet"')
})

t.test('a SIGHUP while a reload is still swapping programs runs one more reload after it; nothing is lost', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  const pass = w.object('xdp_pass')
  const drop = w.object('xdp_drop')
  const batch = join(w.dir, 'pairs.batch')
  writeFileSync(batch, Array.from({ length: 300 }, (_, i) => `link add v${i}a type veth peer name v${i}b`).join('\n') + '\n')
  ns.ip('-batch', batch)
  const cfg = (obj: string) => `settle: 10ms\nbpffs: ${w.bpffs}\nattach:\n  - interfaces: ["v*"]\n    object: ${obj}\n    mode: generic\n`
  const d = await startDaemon(ns, w.config(cfg(pass)))
  t.teardown(() => d.stop('SIGKILL'))
  w.config(cfg(drop))
  d.child.kill('SIGHUP')
  // The first reload has read its config and is swapping 600 links to xdp_drop when the config changes back.
  await d.waitLog((r) => r.action === 'replace', 'the first reload to be swapping programs')
  w.config(cfg(pass))
  d.child.kill('SIGHUP')
  await waitFor(() => d.logs().filter((r) => r.action === 'reload' && r.level === 30).length === 2, 'two accepted reloads')
  // xdp_pass was released by the first reload (no link used it any more), so the second one loaded it again.
  const last = d.logs().filter((r) => typeof r.msg === 'string' && r.msg.startsWith('loaded program')).at(-1)!
  t.match(last, { program: 'xdp_pass' }, 'the last program loaded is xdp_pass')
  const all = ns.ipJson<{ ifname: string; xdp?: { prog?: { id: number } } }[]>('-d', 'link', 'show').filter((l) => l.ifname.startsWith('v'))
  t.equal(all.length, 600)
  t.same(
    all.filter((l) => l.xdp?.prog?.id !== last.progId).map((l) => l.ifname),
    [],
    'every link on that xdp_pass, the config in force after the second SIGHUP',
  )
})

