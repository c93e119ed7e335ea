/**
 * (i) The container image (issue 14): start-up with `--pairs` veth pairs present, the daemon in the image started as
 * scripts/run-image.sh runs it (a DaemonSet's mounts, capabilities and read-only root; `--network ns:` of the bench's
 * namespace) next to the same start-up outside a container, in the same run. Opt-in (`--only i`): it needs podman
 * and the image, which scripts/build-image.sh makes if it is missing (minutes when cold).
 *
 * The container is created first (`run-image.sh --create`; with vfs storage that copies the image's root file system,
 * seconds, reported apart) and timed from `podman start --attach` to its `started:` line, as part (a) times the
 * daemon from spawn. Both also from the creation of the process that becomes node (its start time in /proc, 10 ms
 * ticks) to that line: what the daemon itself takes, podman's share left out. Baselines: node started the same two
 * ways (`node -p process.version`, to its output).
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Daemon } from './daemon.mjs'
import { ROOT, createNs, createPairs, deleteNs, detachAll, mustRun, now, onCleanup, pairNames, verifyXdp, writeConfig } from './env.mjs'
import { startDaemon } from './parts.mjs'
import { median, ms, ratio, runsText, ticksPerSecond } from './stats.mjs'

const IMAGE = 'localhost/xdplinkd:latest'
/** podman and its global options: PODMAN_FLAGS, else scripts/podman-flags (as the scripts take them). */
const PODMAN = ['podman', ...(process.env.PODMAN_FLAGS ?? readFileSync(join(ROOT, 'scripts/podman-flags'), 'utf8').replace(/^#.*$/gm, '')).split(/\s+/).filter(Boolean)]
const podman = (args, opts) => mustRun(PODMAN[0], [...PODMAN.slice(1), ...args], opts)

/**
 * How long ago (ms, 10 ms ticks) the process `pid` was created, as of `at` (the bench's clock): its start time in
 * /proc/PID/stat and /proc/uptime are both on the boot-time clock. Its creation is the fork: ip netns exec and runc's
 * init exec node in place later, so this is a little more than node's own time.
 */
function sinceCreated(pid, at) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const startMs = (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]) * 1000) / ticksPerSecond()
  const t = now()
  const uptimeMs = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000
  return uptimeMs - (t - at) - startMs
}

export async function partI({ tmp, bpffs, opt, progress }) {
  const N = opt.pairs
  const L = N * 2
  if ((await mustRun('sh', ['-c', `${PODMAN.join(' ')} image exists ${IMAGE} && echo yes || echo no`])).stdout.trim() !== 'yes') {
    progress('(i) no image: scripts/build-image.sh')
    await mustRun(join(ROOT, 'scripts/build-image.sh'), [])
  }
  const ns = createNs('i')
  const R = { bare: [], bareExec: [], ctr: [], ctrExec: [], create: [], node: [], ctrNode: [], ctrOk: [], bareOk: [] }
  const notes = []
  const names = []
  let imageNode = '?'
  onCleanup(() => {
    for (const n of names) {
      try {
        execFileSync(PODMAN[0], [...PODMAN.slice(1), 'rm', '--force', '--time', '0', n], { stdio: 'ignore' })
      } catch {
        /* gone */
      }
    }
  })
  try {
    const pairs = pairNames('xi', N)
    const links = pairs.flat()
    const c = await createPairs(ns, pairs, tmp)
    if (c.created !== L) throw new Error(`created ${c.created}/${L} veths: ${c.error}`)
    const conf = join(tmp, 'i-conf')
    mkdirSync(conf, { mode: 0o755 })
    for (let run = 0; run < opt.runs; run++) {
      progress(`(i) run ${run + 1}/${opt.runs}: node alone, outside and in a container`)
      // To its first output, as the daemon is timed to a line it prints: a container's exit takes podman a while.
      R.node.push((await mustRun('ip', ['netns', 'exec', ns, process.execPath, '-p', 'process.version'])).firstOutMs)
      const nodeName = `benchxl-${process.pid}-node${run}`
      names.push(nodeName)
      await podman(['create', '--rm', '--name', nodeName, '--network', `ns:/run/netns/${ns}`, '--read-only', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--entrypoint', '/usr/bin/node', IMAGE, '-p', 'process.version'])
      const n = await podman(['start', '--attach', nodeName])
      R.ctrNode.push(n.firstOutMs)
      imageNode = n.stdout.trim()

      progress(`(i) run ${run + 1}/${opt.runs}: xdplinkd outside a container`)
      const cfg = writeConfig(join(tmp, `i-${run}.yaml`), { bpffs: join(bpffs, `i-bare-${run}`), settleMs: opt.settle })
      const bare = await startDaemon(ns, cfg, 120000)
      try {
        R.bare.push(bare.st.at - bare.d.t0)
        R.bareExec.push(sinceCreated(bare.d.pid, bare.st.at))
        R.bareOk.push((await verifyXdp(ns, links, bare.progId)).ok)
      } finally {
        await bare.d.stop()
      }
      await detachAll(ns, links, tmp)

      progress(`(i) run ${run + 1}/${opt.runs}: xdplinkd in the image`)
      // The image's object and the default control socket; a fresh pin directory on the bench's bpffs per run.
      writeFileSync(
        join(conf, 'config.yaml'),
        `settle: ${opt.settle}ms\nbpffs: /sys/fs/bpf/i-ctr-${run}\nattach:\n  - name: bench\n    interfaces: ["x*"]\n    kinds: [veth]\n` +
          '    object: /usr/local/lib/xdplinkd/bpf/xdp_pass.o\n    mode: generic\n',
        { mode: 0o644 },
      )
      const name = `benchxl-${process.pid}-ctr${run}`
      names.push(name)
      const c0 = now()
      await mustRun(join(ROOT, 'scripts/run-image.sh'), ['--create', '--name', name, '--netns', `/run/netns/${ns}`, '--bpffs', bpffs, '--config', conf])
      R.create.push(now() - c0)
      const d = new Daemon({ argv: [...PODMAN, 'start', '--attach', name] }).start()
      try {
        const st = await d.started(120000)
        const loaded = d.lines.find((r) => /^(loaded|reusing pinned) program/.test(r.msg.msg ?? ''))
        const pid = Number((await podman(['inspect', '--format', '{{.State.Pid}}', name])).stdout.trim())
        R.ctr.push(st.at - d.t0)
        R.ctrExec.push(sinceCreated(pid, st.at))
        const v = await verifyXdp(ns, links, loaded?.msg.progId)
        R.ctrOk.push(v.ok)
        if (st.msg.attached !== L || v.ok !== L) notes.push(`container run ${run + 1}: ${st.msg.attached}/${L} attached by its count, ${v.ok}/${L} by the kernel's`)
      } finally {
        const e = await d.stop()
        if (e?.code !== 0) notes.push(`container run ${run + 1}: exit ${e?.code ?? e?.signal} on SIGTERM${d.tail()}`)
      }
      await detachAll(ns, links, tmp)
    }
  } finally {
    deleteNs(ns)
  }
  const M = Object.fromEntries(Object.entries(R).map(([k, v]) => [k, median(v)]))
  const complete = R.ctrOk.every((x) => x === L) && R.bareOk.every((x) => x === L)
  return {
    title: `(i) start-up with ${L} existing links (${N} veth pairs) in the image against outside it, generic mode, median of ${opt.runs} runs`,
    rows: [
      ['in the image: podman start --attach -> `started:` line', ms(M.ctr), `runs: ${runsText(R.ctr)}`],
      ['  its process created -> `started:`', ms(M.ctrExec), `/proc start time, 10 ms ticks; runs: ${runsText(R.ctrExec)}`],
      ['  podman create before it (not included)', ms(M.create, 0), `the container's root file system made; runs: ${runsText(R.create, 0)}`],
      ['outside: spawn (ip netns exec node dist/cli.js run) -> `started:`', ms(M.bare), `runs: ${runsText(R.bare)}`],
      ['  its process created -> `started:`', ms(M.bareExec), `runs: ${runsText(R.bareExec)}`],
      ['attached at `started:`, by the kernel: in the image / outside', `${runsText(R.ctrOk, 0)} / ${runsText(R.bareOk, 0)}`, `of ${L}`],
      ['node -p process.version to its output: podman start --attach / ip netns exec', `${ms(M.ctrNode)} / ${ms(M.node)}`, `the image's node ${imageNode} / this machine's ${process.version}`],
      ['ratio in the image / outside', ratio(M.ctr / M.bare), ''],
      ['ratio, process created -> `started:`, in the image / outside', ratio(M.ctrExec / M.bareExec), ''],
      ...notes.map((n) => ['note', n, '']),
    ],
    targets: [],
    data: { runs: R, medians: M, complete },
  }
}
