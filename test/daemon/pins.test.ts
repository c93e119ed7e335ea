/**
 * Bug 1 of issue 15: what is under the bpffs directory is adopted only when nobody but a trusted owner could have put
 * it there and it is provably the object's program. Planted pins are made here as root with the owners and modes
 * another user would leave (chown nobody, mode 0777, symlinks); the attempt to rename a pin directory away runs as
 * nobody through setpriv(1). What runs on a link is judged with bpftool: `prog show` and `prog run` on a packet
 * (XDP_PASS is 2, XDP_DROP 1).
 */
import t from 'tap'
import type { Test } from 'tap'
import { createHash } from 'node:crypto'
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeNetns, needsRoot, type Netns } from '../helpers/netns.js'
import { bpftool, bpftoolJson, tempBpffs } from '../helpers/bpf.js'
import { actions, spawnDaemon, startDaemon, workdir, xdpOf, type Workdir } from '../helpers/daemon.js'

const NOBODY = 65534
/** What a user who can write the bpffs would plant: XDP_DROP under the name the daemon looks for. */
const DROP_AS_PASS = `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp") int xdp_pass(struct xdp_md *ctx) { return XDP_DROP; }
char _license[] SEC("license") = "GPL";
`

/** The return value of a program run on a 64-byte packet (BPF_PROG_TEST_RUN through bpftool). */
function verdict(w: Workdir, id: number): number {
  const pkt = join(w.dir, 'pkt')
  writeFileSync(pkt, Buffer.alloc(64))
  return bpftoolJson<{ retval: number }>('prog', 'run', 'id', String(id), 'data_in', pkt, 'repeat', '1').retval
}
const XDP_DROP = 1
const XDP_PASS = 2

interface Setup {
  ns: Netns
  w: Workdir
  obj: string
  /** `<bpffs>/xdplinkd`, made 0700 root by the test (as the unit's ExecStartPre= would). */
  dir: string
  /** Where the daemon would pin xdp_pass. */
  pinDir: string
  /** The planted program, pinned at `<bpffs>/evil`. */
  evil: { id: number; tag: string; pin: string }
  config: string
}

function setup(t: Test): Setup {
  const ns = makeNetns(t)
  const w = workdir(t)
  const obj = w.object('xdp_pass')
  ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'wa')
  const dir = join(w.bpffs, 'xdplinkd')
  mkdirSync(dir, { mode: 0o700 })
  const pinDir = join(dir, `${createHash('sha256').update(readFileSync(obj)).digest('hex').slice(0, 16)}-xdp_pass`)
  const evilPin = join(w.bpffs, 'evil')
  bpftool('prog', 'load', w.compile(DROP_AS_PASS, 'evil.o'), evilPin)
  const shown = bpftoolJson<{ id: number; tag: string; name: string }>('prog', 'show', 'pinned', evilPin)
  t.equal(shown.name, 'xdp_pass', 'the planted program has the name the daemon looks for')
  const config = w.config(`settle: 10ms\nbpffs: ${dir}\nattach:\n  - interfaces: ["v*"]\n    object: ${obj}\n    mode: generic\n`)
  return { ns, w, obj, dir, pinDir, evil: { id: shown.id, tag: shown.tag, pin: evilPin }, config }
}

/** The daemon started over what the test planted: the real xdp_pass runs on va, and one warning named `named`. */
async function replaced(t: Test, s: Setup, named: string, why: RegExp) {
  const d = await startDaemon(s.ns, s.config)
  t.teardown(() => d.stop('SIGKILL'))
  const on = xdpOf(s.ns, 'va')
  t.ok(on, 'va has a program')
  t.not(on!.id, s.evil.id, 'not the planted one')
  const shown = bpftoolJson<{ name: string; tag: string; type: string }>('prog', 'show', 'id', String(on!.id))
  t.match(shown, { name: 'xdp_pass', type: 'xdp' })
  t.not(shown.tag, s.evil.tag, 'other instructions than the planted ones')
  t.equal(verdict(s.w, on!.id), XDP_PASS, 'what runs on va passes packets')
  t.equal(verdict(s.w, s.evil.id), XDP_DROP, 'the planted one would have dropped them')
  const warned = d.logs().filter((r) => r.level === 40 && r.pin === named)
  t.equal(warned.length, 1, `one warning naming ${named}`)
  t.match(warned[0]?.msg, why)
  t.match(d.logs().find((r) => r.progId === on!.id), { msg: /^loaded program xdp_pass/ }, 'loaded, not "reusing pinned"')
  const st = lstatSync(s.pinDir)
  t.ok(st.isDirectory() && st.uid === 0 && (st.mode & 0o077) === 0, 'the pin directory is ours now: root, 0700')
  t.ok(lstatSync(join(s.pinDir, 'prog')).isFile(), 'and its prog a pin, not a link')
  t.equal(bpftoolJson<{ id: number }>('prog', 'show', 'pinned', join(s.pinDir, 'prog')).id, on!.id)
  t.ok(existsSync(s.evil.pin), 'what the link pointed to was never followed, nor removed')
  return d
}

t.test('a planted `prog` link to XDP_DROP named xdp_pass, in a pre-created nobody-owned 0777 pin directory, is not attached', { skip: needsRoot }, async (t) => {
  const s = setup(t)
  mkdirSync(s.pinDir)
  chownSync(s.pinDir, NOBODY, NOBODY)
  chmodSync(s.pinDir, 0o777)
  symlinkSync(s.evil.pin, join(s.pinDir, 'prog'))
  await replaced(t, s, s.pinDir, /pin directory .* is owned by uid 65534, not root and writable by group and others \(mode 0777\).*unpinned and replaced by a fresh load/)
})

t.test('a planted `prog` link in a root-owned pin directory: the link is unpinned, not followed', { skip: needsRoot }, async (t) => {
  const s = setup(t)
  mkdirSync(s.pinDir, { mode: 0o700 })
  symlinkSync(s.evil.pin, join(s.pinDir, 'prog'))
  await replaced(t, s, join(s.pinDir, 'prog'), /pin .*\/prog is a symbolic link/)
})

t.test('a pin directory that is a symlink is replaced, and where it led is left alone', { skip: needsRoot }, async (t) => {
  const s = setup(t)
  const elsewhere = join(s.w.bpffs, 'elsewhere')
  mkdirSync(elsewhere, { mode: 0o700 })
  bpftool('prog', 'pin', 'id', String(s.evil.id), join(elsewhere, 'prog'))
  symlinkSync(elsewhere, s.pinDir)
  await replaced(t, s, s.pinDir, /pin directory .* is a symbolic link/)
  t.ok(existsSync(join(elsewhere, 'prog')), 'the pin behind the link is still there')
})

t.test('a pin that passes every path check but is not the object\'s program (another tag) is replaced, on the links running it too', { skip: needsRoot }, async (t) => {
  const s = setup(t)
  mkdirSync(s.pinDir, { mode: 0o700 })
  bpftool('prog', 'pin', 'id', String(s.evil.id), join(s.pinDir, 'prog'))
  // As an earlier daemon that adopted it would have left it: attached to va.
  s.ns.ip('link', 'set', 'dev', 'va', 'xdpgeneric', 'pinned', join(s.pinDir, 'prog'))
  t.equal(xdpOf(s.ns, 'va')?.id, s.evil.id)
  const d = await replaced(t, s, join(s.pinDir, 'prog'), new RegExp(`its tag is ${s.evil.tag}, the object's program has tag [0-9a-f]{16}`))
  t.match(actions(d), [{ action: 'replace', ifname: 'va', oldProgId: s.evil.id, progId: xdpOf(s.ns, 'va')!.id }], 'moved off it atomically, not left as a conflict')
})

/** Starts the daemon and waits for it to exit or to start; returns its exit code (null: it started). */
async function startOrExit(ns: Netns, config: string) {
  const d = spawnDaemon(ns, config)
  const started = d.waitLog((r) => typeof r.msg === 'string' && r.msg.startsWith('started:'), 'start', 20000).then(
    () => null,
    () => null,
  )
  const code = await Promise.race([d.exited, started])
  if (code === null) await d.stop('SIGKILL')
  return { d, code }
}

t.test('a bpffs directory others could write to or own is refused: exit 78, the path named, nothing attached', { skip: needsRoot }, async (t) => {
  const cases: [why: string, make: (t: Test) => string, problem: RegExp][] = [
    ['owned by nobody', (t) => {
      const dir = join(tempBpffs(t), 'xdplinkd')
      mkdirSync(dir, { mode: 0o700 })
      chownSync(dir, NOBODY, NOBODY)
      return dir
    }, /is owned by uid 65534, not root/],
    ['mode 0777', (t) => {
      const dir = join(tempBpffs(t), 'xdplinkd')
      mkdirSync(dir)
      chmodSync(dir, 0o777)
      return dir
    }, /is writable by group and others \(mode 0777\)/],
    ['the root of a plain `mount -t bpf` (mode 1777)', (t) => tempBpffs(t, '1777'), /is writable by group and others \(mode 1777\)/],
  ]
  for (const [why, make, problem] of cases) {
    await t.test(why, async (t) => {
      const ns = makeNetns(t)
      const w = workdir(t)
      ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'wa')
      const dir = make(t)
      const { d, code } = await startOrExit(ns, w.config(`settle: 10ms\nbpffs: ${dir}\nattach:\n  - interfaces: ["v*"]\n    object: ${w.object('xdp_pass')}\n    mode: generic\n`))
      t.equal(code, 78, 'exit status 78 (EX_CONFIG)')
      const fatal = d.logs().find((r) => r.level === 60)
      t.match(fatal?.msg, `refusing the pin directory ${dir} (bpffs): directory ${dir} `)
      t.match(fatal?.msg, problem)
      t.equal(xdpOf(ns, 'va'), null, 'nothing attached')
      t.same(execFileSync('ls', ['-A', dir], { encoding: 'utf8' }).split('\n').filter((n) => /^[0-9a-f]{16}-/.test(n)), [], 'nothing pinned')
    })
  }
})

/** `argv` run as nobody (no real second account: the uid every system has). */
function asNobody(...argv: string[]) {
  return spawnSync('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', ...argv], { encoding: 'utf8' })
}

t.test('a non-root user cannot rename the daemon\'s pins away; a bpffs directory that would let them is refused at the next start', { skip: needsRoot }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  // A plain `mount -t bpf` (1777): anyone may create entries at its root, as the non-root user did.
  const root = tempBpffs(t, '1777')
  const dir = join(root, 'xdplinkd')
  ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'wa')
  const config = w.config(`settle: 10ms\nbpffs: ${dir}\nattach:\n  - interfaces: ["v*"]\n    object: ${w.object('xdp_pass')}\n    mode: generic\n`)
  const first = await startDaemon(ns, config)
  const st = lstatSync(dir)
  t.equal(st.uid, 0, 'the daemon made its directory root-owned')
  t.equal(st.mode & 0o777, 0o700, 'mode 0700')
  const pin = execFileSync('ls', [dir], { encoding: 'utf8' }).split('\n').find((n) => n.endsWith('-xdp_pass'))!
  const byNobody = asNobody('mv', join(dir, pin), join(root, 'stolen'))
  t.not(byNobody.status, 0, 'nobody cannot rename a pin directory out of it')
  t.match(byNobody.stderr, /Permission denied/)
  const whole = asNobody('mv', dir, join(root, 'stolen'))
  t.not(whole.status, 0, 'nor the directory itself out of the sticky root')
  t.match(whole.stderr, /Operation not permitted/)
  first.child.kill('SIGKILL')
  await first.exited

  // An operator loosens the directory: now nobody can rename the daemon's pins away...
  chmodSync(dir, 0o777)
  t.equal(asNobody('mv', join(dir, pin), join(dir, 'stolen')).status, 0, 'with mode 0777 nobody can')
  // ...so the daemon refuses it rather than start with its own programs taken for foreign ones (`conflict`).
  const { d, code } = await startOrExit(ns, config)
  t.equal(code, 78, 'refused: exit 78')
  t.match(d.logs().find((r) => r.level === 60)?.msg, `refusing the pin directory ${dir} (bpffs): directory ${dir} is writable by group and others (mode 0777)`)
})
