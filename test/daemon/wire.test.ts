import t from 'tap'
import { spawnSync } from 'node:child_process'
import { CLI, makeNetns, needsRoot, waitFor } from '../helpers/netns.js'
import { workdir, xdpOf } from '../helpers/daemon.js'

const hasStrace = spawnSync('strace', ['-V']).status === 0

t.test('the bytes sent: IFLA_XDP with signed fds and flags, never ATTACHED or PROG_ID (strace decodes them)', { skip: needsRoot || (hasStrace ? false : 'strace not installed') }, async (t) => {
  const ns = makeNetns(t)
  const w = workdir(t)
  ns.ip('link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'wa')
  const cfg = w.config(`settle: 10ms\nbpffs: ${w.bpffs}\non-exit: detach\nattach:\n  - interfaces: ["va"]\n    object: ${w.object('xdp_pass')}\n    mode: generic\n`)
  const child = ns.spawn('strace', ['-f', '-qq', '-e', 'trace=sendto,sendmsg', '-s', '4096', '-o', `${w.dir}/strace.txt`, 'node', CLI, 'run', '--config', cfg])
  await waitFor(() => xdpOf(ns, 'va') !== null, 'attach under strace', 30000)
  // `strace -o FILE PROG` blocks fatal signals (-I3), so stop the traced daemon itself: strace's child. strace
  // exits when its tracee does.
  const exited = new Promise((r) => child.on('exit', r))
  const daemonPid = Number(spawnSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).stdout.trim().split('\n')[0])
  t.ok(daemonPid > 0, 'found the traced daemon')
  process.kill(daemonPid, 'SIGTERM')
  await exited
  t.equal(xdpOf(ns, 'va'), null, 'detached on exit')
  const trace = spawnSync('cat', [`${w.dir}/strace.txt`], { encoding: 'utf8' }).stdout
  const setlinks = trace.split('\n').filter((l) => l.includes('RTM_SETLINK'))
  t.equal(setlinks.length, 3, 'the XDP_FLAGS_REPLACE probe, one attach and one detach')
  const [probe, attach, detach] = setlinks
  t.match(
    probe,
    /ifi_index=if_nametoindex\("lo"\).*\[\[\{nla_len=8, nla_type=IFLA_XDP_FD\}, -1\], \[\{nla_len=8, nla_type=IFLA_XDP_FLAGS\}, XDP_FLAGS_SKB_MODE\|XDP_FLAGS_REPLACE\], \[\{nla_len=8, nla_type=IFLA_XDP_EXPECTED_FD\}, -1\]\]/,
    'probe (rtnl/features.ts): on lo, detach expecting nothing, which cannot change anything',
  )
  // strace prints a nested attribute as [{nla_len=8, nla_type=IFLA_XDP_FD}, 21]
  t.match(
    attach,
    /nla_type=NLA_F_NESTED\|IFLA_XDP\}, \[\[\{nla_len=8, nla_type=IFLA_XDP_FD\}, \d+\], \[\{nla_len=8, nla_type=IFLA_XDP_FLAGS\}, XDP_FLAGS_UPDATE_IF_NOEXIST\|XDP_FLAGS_SKB_MODE\]\]/,
    'attach: IFLA_XDP_FD, then IFLA_XDP_FLAGS with UPDATE_IF_NOEXIST|SKB_MODE',
  )
  t.match(
    detach,
    /\[\[\{nla_len=8, nla_type=IFLA_XDP_FD\}, -1\], \[\{nla_len=8, nla_type=IFLA_XDP_FLAGS\}, XDP_FLAGS_SKB_MODE\|XDP_FLAGS_REPLACE\], \[\{nla_len=8, nla_type=IFLA_XDP_EXPECTED_FD\}, \d+\]\]/,
    'detach: fd -1 (signed), flags with XDP_FLAGS_REPLACE, then the expected fd',
  )
  for (const l of setlinks) {
    t.notMatch(l, /IFLA_XDP_ATTACHED/, 'never IFLA_XDP_ATTACHED')
    t.notMatch(l, /IFLA_XDP_PROG_ID/, 'never IFLA_XDP_PROG_ID')
  }
})
