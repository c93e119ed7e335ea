/**
 * Part (g): xdplinkd managing links in `--namespaces` (1000) network namespaces, as on a container host. A host
 * namespace H (where the daemon runs) holds one end of a veth pair per pod namespace; the other end was moved into
 * the pod and renamed `eth0` there, as a CNI plugin does. Each pod namespace (`ip netns add`, benchxl-PID-gNNNN) is
 * bound into a temp directory the daemon watches, as `pod-NNNN`; the daemon's one entry is for `eth0` in `pod-*`.
 *
 * Measured: spawn -> `started:` (the daemon awaits the first reconcile of the namespaces present at start-up) next to
 * `ip -n POD link set dev eth0 xdpgeneric pinned PIN` once per namespace (N ip processes) and to bench/floor-g.mjs;
 * a namespace bound while the daemon runs, then its link moved in, to attached; VmRSS, descriptors per namespace and
 * CPU over an idle window with N namespaces managed; then every file unbound at once, to released.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import {
  bindFiles,
  createNs,
  createNsMany,
  deleteNs,
  deleteNsMany,
  mustRun,
  now,
  releaseMounts,
  run,
  sharedDir,
  sleep,
  forgetMounts,
  writeConfig,
  writeLines,
  XDP_PASS,
} from './env.mjs'
import { buildFloorScript, cpuMs, idleWindow, logSummary, monitor, startDaemon } from './parts.mjs'
import { cpuSample, median, memSample, mib, ms, quantile, ratio, runsText } from './stats.mjs'

const IFNAME = 'eth0'
const pad4 = (i) => String(i).padStart(4, '0')
const fdCount = (pid) => readdirSync(`/proc/${pid}/fd`).length
const msg = (r) => (typeof r.msg.msg === 'string' ? r.msg.msg : '')

/** Runs `fn` over `items`, `k` at a time. */
async function pool(items, k, fn) {
  const out = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(k, items.length) }, async () => {
      while (next < items.length) {
        const i = next++
        out[i] = await fn(items[i], i)
      }
    }),
  )
  return out
}

/**
 * `ip -n POD -j -d link show dev eth0` in every pod (4 at a time): with `progId` (a number or 'any') each must carry
 * that program in generic mode, with null none. Returns {ok, total, bad: the first few offenders}.
 */
async function verifyPods(pods, progId) {
  const bad = []
  let ok = 0
  await pool(pods, 4, async (p) => {
    const r = await run('ip', ['-n', p, '-j', '-d', 'link', 'show', 'dev', IFNAME])
    const l = r.code === 0 ? JSON.parse(r.stdout || '[]')[0] : null
    const mode = l?.xdp?.mode ?? 0
    const id = l?.xdp?.prog?.id ?? null
    const good = l && (progId === null ? mode === 0 : mode === 2 && (progId === 'any' || id === progId))
    if (good) ok++
    else if (bad.length < 5) bad.push(`${p}:${l ? `mode=${mode},prog=${id}` : `missing (${r.stderr.trim()})`}`)
  })
  return { ok, total: pods.length, bad }
}

async function mustVerifyPods(pods, progId, what) {
  const v = await verifyPods(pods, progId)
  if (v.ok !== v.total) throw new Error(`${what}: ${v.ok}/${v.total} namespaces as expected (e.g. ${v.bad.join(' ')})`)
  return v
}

/** Detaches every pod's program (one ip per namespace, 4 at a time) and checks that none is left. */
async function detachPods(pods) {
  await pool(pods, 4, (p) => mustRun('ip', ['-n', p, 'link', 'set', 'dev', IFNAME, 'xdpgeneric', 'off']))
  await mustVerifyPods(pods, null, 'detach')
}

/** Slab and Percpu of /proc/meminfo, bytes: the kernel memory namespaces and their links take (machine-wide). */
function kernelMem() {
  const t = readFileSync('/proc/meminfo', 'utf8')
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(t)?.[1] ?? NaN) * 1024
  return { slab: kb('Slab'), percpu: kb('Percpu') }
}

/** Waits until `ip monitor` (parts.mjs monitor) in `ns` has subscribed: it shows lo going up (or down) there. */
async function monitorReady(mon, ns) {
  for (let k = 0; k < 20; k++) {
    await mustRun('ip', ['-n', ns, 'link', 'set', 'lo', k % 2 ? 'down' : 'up'])
    if (await mon.seen(['lo'], 500).then(() => true, () => false)) return
  }
  throw new Error(`ip monitor in ${ns} never showed lo`)
}

export async function partG({ tmp, bpffs, opt, progress }) {
  const N = opt.namespaces
  const S = opt.nsSamples
  // 1 ms by default, as in (c): the latency of a namespace made while running is the daemon's own, not the wait
  // for settle, and an `ip monitor` stamp a little late cannot make it look shorter than settle.
  const settle = opt.settleG
  const load0 = loadavg()
  const dir = join(tmp, 'g-netns')
  const emptyDir = join(tmp, 'g-netns-empty')
  mkdirSync(dir, { mode: 0o755 })
  mkdirSync(emptyDir, { mode: 0o755 })
  // Before the daemon starts under `ip netns exec`: binds made later then reach its mount namespace.
  sharedDir(dir)
  const notes = []
  const setup = {}
  const R = { daemon: [], watching: [], firstManaged: [], lastManaged: [], lastAttach: [], cpu: [], rss: [], fds: [], attachedByDaemon: [], attachLines: [], kernelOk: [], ip: [], ipLoad: [], floor: [], floor0: [], zero: [], zeroRss: [], zeroFds: [] }
  const host = createNs('gh')
  let pods = []
  let extra = []
  let d = null
  const timeoutMs = Math.max(120000, N * 200)
  try {
    // ---- setup: N pod namespaces, N veth pairs made in H, one end of each moved into its pod as eth0, bound as pod-NNNN
    const k0 = kernelMem()
    progress(`(g) ${N} namespaces (ip -batch netns add)`)
    let t = now()
    pods = await createNsMany('g', N)
    setup.netnsAdd = now() - t
    t = now()
    await mustRun('ip', ['-n', host, '-batch', '-'], { input: pods.map((_, i) => `link add h${pad4(i)} type veth peer name p${pad4(i)}\n`).join('') })
    setup.create = now() - t
    t = now()
    // One RTM_SETLINK per pair: moved into the pod and renamed there (IFLA_NET_NS_FD with IFLA_IFNAME), as CNI does.
    await mustRun('ip', ['-n', host, '-batch', '-'], { input: pods.map((p, i) => `link set p${pad4(i)} netns ${p} name ${IFNAME}\n`).join('') })
    setup.move = now() - t
    const files = pods.map((_, i) => join(dir, `pod-${pad4(i)}`))
    t = now()
    await bindFiles(pods.map((p, i) => [`/run/netns/${p}`, files[i]]))
    setup.bind = now() - t
    const k1 = kernelMem()
    setup.kernel = { slab: k1.slab - k0.slab, percpu: k1.percpu - k0.percpu }

    const cfgOf = (name, pinDir, dirs) =>
      writeConfig(join(tmp, `${name}.yaml`), { bpffs: join(bpffs, pinDir), settleMs: settle, interfaces: IFNAME, netns: ['pod-*'], netnsDirs: dirs })

    const floorScript = await buildFloorScript('floor-g')
    let cfg = null
    let progId = null
    for (let r = 0; r < opt.runs; r++) {
      const last = r === opt.runs - 1
      progress(`(g) run ${r + 1}/${opt.runs}: bpftool prog load + one ip per namespace (${N} processes)`)
      const pin = join(bpffs, `pin-g-${r}`)
      const script = writeLines(join(tmp, 'g-ip.sh'), ['set -e', ...pods.map((p) => `ip -n ${p} link set dev ${IFNAME} xdpgeneric pinned ${pin}`)])
      t = now()
      const l = await mustRun('bpftool', ['prog', 'load', XDP_PASS, pin])
      await mustRun('sh', [script])
      R.ip.push(now() - t)
      R.ipLoad.push(l.ms)
      await mustVerifyPods(pods, 'any', 'one ip per namespace')
      await detachPods(pods)
      rmSync(pin)

      progress(`(g) run ${r + 1}/${opt.runs}: the minimal Node.js process (bench/floor-g.mjs)`)
      const floorPin = join(bpffs, `floor-g-${r}`)
      await mustRun('bpftool', ['prog', 'load', XDP_PASS, floorPin])
      const f = await mustRun('ip', ['netns', 'exec', host, process.execPath, floorScript, floorPin, dir, IFNAME])
      R.floor.push(f.firstOutMs)
      const fr = JSON.parse(f.stdout)
      if (fr.namespaces !== N || fr.attached !== N || fr.errors) throw new Error(`floor-g.mjs: ${f.stdout.trim()}`)
      // The same over no namespace: what the floor's N namespaces cost beyond its start-up.
      R.floor0.push((await mustRun('ip', ['netns', 'exec', host, process.execPath, floorScript, floorPin, emptyDir, IFNAME])).firstOutMs)
      await mustVerifyPods(pods, 'any', 'floor-g.mjs')
      await detachPods(pods)
      rmSync(floorPin)

      // The same daemon watching an empty directory: what N namespaces add to.
      progress(`(g) run ${r + 1}/${opt.runs}: xdplinkd with no namespace to manage`)
      const zero = await startDaemon(host, cfgOf('g-zero', `g-zero-${r}`, [emptyDir]), 60000)
      R.zero.push(zero.st.at - zero.d.t0)
      R.zeroRss.push(memSample(zero.d.pid).rss)
      R.zeroFds.push(fdCount(zero.d.pid))
      await zero.d.stop()

      progress(`(g) run ${r + 1}/${opt.runs}: xdplinkd with ${N} namespaces`)
      // A fresh pin directory per run: the daemon loads the program itself, as on a cold start.
      cfg = cfgOf(`g-${r}`, `g-${r}`, [dir])
      const started = await startDaemon(host, cfg, timeoutMs)
      const dd = started.d
      R.rss.push(memSample(dd.pid).rss)
      R.fds.push(fdCount(dd.pid))
      R.cpu.push(cpuMs(cpuSample(dd.pid)))
      const since = (pred) => {
        const hits = dd.lines.filter(pred)
        return hits.length ? [hits[0].at - dd.t0, hits[hits.length - 1].at - dd.t0] : [NaN, NaN]
      }
      const attaches = dd.lines.filter((x) => x.msg.action === 'attach' && x.msg.ifname === IFNAME)
      R.daemon.push(started.st.at - dd.t0)
      R.watching.push(since((x) => msg(x).startsWith(`watching ${dir}`))[0])
      const [firstM, lastM] = since((x) => msg(x).startsWith('managing network namespace '))
      R.firstManaged.push(firstM)
      R.lastManaged.push(lastM)
      R.lastAttach.push(attaches.length ? attaches[attaches.length - 1].at - dd.t0 : NaN)
      R.attachedByDaemon.push(started.st.msg.attached)
      R.attachLines.push(new Set(attaches.map((x) => x.msg.netns)).size)
      const v = await verifyPods(pods, started.progId)
      R.kernelOk.push(v.ok)
      if (started.st.msg.attached !== N || v.ok !== N || dd.problems().length) {
        notes.push(
          `run ${r + 1}: started with ${started.st.msg.attached}/${N} attached and ${started.st.msg.errors} errors by its own count; ` +
            `the kernel had ${v.ok}/${N} (${v.bad.join(' ')}); logged: ${logSummary(dd.lines)}; problems: ${dd
              .problems()
              .slice(0, 3)
              .map((x) => msg(x))
              .join(' | ')}`,
        )
      }
      await dd.stop(60000)
      progId = started.progId
      // The last run's programs stay (on-exit: keep) for the restart below.
      if (!last) await detachPods(pods)
    }

    // ---- the daemon restarted over its own programs in every namespace (pin reused, nothing to send), with
    // --trace-gc: it stays for the rest, and V8's full GCs in the idle window are named
    progress(`(g) xdplinkd restarted over its own programs in ${N} namespaces (--trace-gc)`)
    const again = await startDaemon(host, cfg, timeoutMs, ['--trace-gc'])
    d = again.d
    const restart = { ms: again.st.at - d.t0, mem: memSample(d.pid), fds: fdCount(d.pid), acted: d.lines.filter((x) => x.msg.action).length }

    // ---- N namespaces managed: idle CPU as (e) measures it (right after `started:` and the warm-up), memory
    progress(`(g) idle window of ${opt.idle} s with ${N} namespaces managed`)
    const idle = await idleWindow(d, opt)
    const idleLines = d.lines.slice(idle.lines0).filter((x) => !x.msg.unparsed)
    const t0 = d.t0
    const sinceSpawn = (at) => ((at - t0) / 1000).toFixed(1)
    const memIdle = memSample(d.pid)
    const fdsIdle = fdCount(d.pid)

    const vr = await verifyPods(pods, progId)
    if (again.loaded.msg.source !== 'pinned' || again.progId !== progId || restart.acted !== 0 || vr.ok !== N) {
      notes.push(
        `restart: program ${again.progId} (${again.loaded.msg.source}), was ${progId}; ${restart.acted} actions logged; ` +
          `the kernel had ${vr.ok}/${N} on program ${progId}; logged: ${logSummary(d.lines)}`,
      )
    }


    // ---- namespaces made while the daemon runs: S bound, then their link moved in once managed; S bound with the
    // link moved in at once (the CNI sequence: the runtime binds the namespace, the plugin moves the veth in).
    progress(`(g) ${2 * S} namespaces made while the daemon runs`)
    extra = await createNsMany('gx', 2 * S)
    await mustRun('ip', ['-n', host, '-batch', '-'], { input: extra.map((_, i) => `link add q${pad4(i)} type veth peer name t${pad4(i)}\n`).join('') })
    const H = { discover: [], stepNewlink: [], stepSpawn: [], move: [], cniNewlink: [], cniTotal: [], cniBind: [] }
    const extraFiles = []
    const cpuHot0 = cpuSample(d.pid)
    for (let i = 0; i < 2 * S; i++) {
      const stepwise = i % 2 === 0
      const ns = extra[i]
      const name = `pod-x${pad4(i)}`
      const file = join(dir, name)
      extraFiles.push(file)
      // `ip -ts monitor link` inside the pod namespace says when its eth0 arrived (RTM_NEWLINK there, µs); subscribed
      // once it has shown lo going up or down (before the bind: the daemon does not see that).
      const mon = monitor(ns)
      try {
        await monitorReady(mon, ns)
        const from = d.lines.length
        const attached = d.waitFor((x) => x.msg.action === 'attach' && x.msg.netns === name, { from, timeoutMs: 10000, what: `the attach line in ${name}` })
        attached.catch(() => {})
        const t0 = now()
        await bindFiles([[`/run/netns/${ns}`, file]])
        const tBound = now()
        if (stepwise) {
          const managed = await d.waitFor((x) => msg(x) === `managing network namespace ${name}`, { from, timeoutMs: 10000, what: `${name} managed` })
          H.discover.push(managed.at - t0)
          // Its first dump done (an empty namespace: well under this), so that the link comes as a notification.
          await sleep(20)
        } else H.cniBind.push(tBound - t0)
        const t1 = now()
        const mv = await mustRun('ip', ['-n', host, 'link', 'set', `t${pad4(i)}`, 'netns', ns, 'name', IFNAME])
        const att = await attached
        const [newlink] = await mon.seen([IFNAME])
        if (stepwise) {
          H.stepNewlink.push(att.wall - newlink)
          H.stepSpawn.push(att.at - t1)
          H.move.push(mv.ms)
        } else {
          H.cniNewlink.push(att.wall - newlink)
          H.cniTotal.push(att.at - t0)
        }
      } finally {
        mon.stop()
      }
      await mustVerifyPods([ns], progId, `attach in ${name}`)
      await sleep(5 + Math.random() * 20)
    }

    const cpuHot = (cpuSample(d.pid).runNs - cpuHot0.runNs) / 1e6

    // ---- every file unbound and removed at once: each namespace released, its descriptors closed
    progress(`(g) ${N + 2 * S} namespace files unbound at once`)
    const all = [...files, ...extraFiles]
    const fdsAll = fdCount(d.pid)
    let released = 0
    const from = d.lines.length
    const done = d.waitFor((x) => msg(x).startsWith('network namespace ') && msg(x).includes(' released: ') && ++released === all.length, {
      from,
      timeoutMs,
      what: `${all.length} namespaces released`,
    })
    done.catch(() => {})
    // Unmounted first (the daemon sees no umount: inotify has no event for it), then removed: each unlink is the
    // IN_DELETE that releases a namespace.
    const cpuRel0 = cpuSample(d.pid)
    const um = await mustRun('umount', all)
    const rm = await mustRun('rm', ['-f', '--', ...all])
    const rmEnd = now()
    forgetMounts(all)
    const rel = await done
    const release = { umount: um.ms, rm: rm.ms, afterRm: rel.at - rmEnd, cpu: (cpuSample(d.pid).runNs - cpuRel0.runNs) / 1e6 }
    await sleep(500)
    const fdsReleased = fdCount(d.pid)
    const memReleased = memSample(d.pid)
    const problems = d.problems()
    if (problems.length) notes.push(`warnings/errors logged: ${problems.length}, e.g. ${problems.slice(0, 3).map((x) => msg(x)).join(' | ')}`)
    // --trace-gc: "Mark-Compact (reduce) 33.9 (36.4) -> 17.8 (34.6) MB": the heap before and after, live objects.
    const fullGcs = d.lines
      .filter((x) => x.msg.unparsed && /Mark-Compact/.test(x.msg.msg))
      .map((x) => `at ${sinceSpawn(x.at)} s ${/Mark-Compact.*? MB/.exec(x.msg.msg)?.[0] ?? x.msg.msg}`)
    await d.stop(60000)
    d = null

    // ---- report
    const M = Object.fromEntries(Object.entries(R).map(([k, v]) => [k, median(v)]))
    const rssLimit = 150e6
    const rss = Math.max(...R.rss, restart.mem.rss, memIdle.rss)
    const complete = R.attachedByDaemon.every((x) => x === N) && R.kernelOk.every((x) => x === N)
    const q = quantile
    const hz = idle.hz
    const fdsPer = (fdsIdle - fdsReleased) / N
    const lat = (xs, d = 2) => `${ms(q(xs, 0.5), d)} / ${ms(q(xs, 0.99), d)}`
    const beyond = (xs) => xs.map((x) => x - settle)
    const perNs = (x) => `${(x * 1000).toFixed(0)} µs`
    const base = { startMs: M.zero, rss: median(R.zeroRss), fds: median(R.zeroFds) }
    const daemonPerNs = (M.daemon - base.startMs) / N
    const floorPerNs = (M.floor - M.floor0) / N
    return {
      title: `(g) ${N} network namespaces, one veth end (${IFNAME}) in each, the daemon in a host namespace; settle ${settle} ms; median of ${opt.runs} runs`,
      rows: [
        ['load average at the start of (g)', load0.map((x) => x.toFixed(2)).join(' '), 'other work on the machine skews the times'],
        [
          'setup: netns add / veth create / move+rename / bind',
          `${ms(setup.netnsAdd, 0)} / ${ms(setup.create, 0)} / ${ms(setup.move, 0)} / ${ms(setup.bind, 0)}`,
          `one ip -batch each, the binds by one shell; kernel Slab +${mib(setup.kernel.slab)}, Percpu +${mib(setup.kernel.percpu)} (machine-wide)`,
        ],
        ['xdplinkd: spawn -> `started:` line', ms(M.daemon, 0), `runs: ${runsText(R.daemon, 0)}`],
        ['  spawn -> `watching DIR` line', ms(M.watching, 0), 'the namespace files opened, the units made'],
        ['  spawn -> first / last `managing network namespace` line', `${ms(M.firstManaged, 0)} / ${ms(M.lastManaged, 0)}`, ''],
        ['  spawn -> last attach line', ms(M.lastAttach, 0), ''],
        ['  CPU (utime+stime) until `started:`', ms(M.cpu, 0), `runs: ${runsText(R.cpu, 0)}`],
        [
          '  attached at `started:`: by the daemon / namespaces with an attach line / by the kernel',
          `${runsText(R.attachedByDaemon, 0)} / ${runsText(R.attachLines, 0)} / ${runsText(R.kernelOk, 0)}`,
          `of ${N}; the kernel's by ip -n POD -j -d link show in every namespace`,
        ],
        ['  the same daemon watching an empty directory: spawn -> `started:`', ms(base.startMs, 0), `so ${perNs(daemonPerNs)} per namespace; runs: ${runsText(R.zero, 0)}`],
        [
          `  restarted over its own programs: spawn -> \`started:\``,
          ms(restart.ms, 0),
          `pin reused, ${restart.acted} actions, ${restart.acted === 0 && again.progId === progId ? 'nothing sent' : 'NOT clean, see notes'}; run with --trace-gc`,
        ],
        [`bpftool prog load + one ip per namespace (${N} processes)`, ms(M.ip, 0), `load ${ms(median(R.ipLoad))}; runs: ${runsText(R.ip, 0)}`],
        [
          'floor: a minimal Node.js process on our netlink layer',
          ms(M.floor, 0),
          `bench/floor-g.mjs: per namespace one socket, dump, attach; over no namespace ${ms(M.floor0, 0)}, so ${perNs(floorPerNs)} per namespace; runs: ${runsText(R.floor, 0)}`,
        ],
        ['ratio xdplinkd / one ip per namespace', ratio(M.daemon / M.ip), ''],
        ['ratio xdplinkd / floor', ratio(M.daemon / M.floor), `per namespace (each beyond its own start with none): ${ratio(daemonPerNs / floorPerNs)}`],
        [
          'VmRSS at `started:` (runs) / restarted / after the idle window',
          `${R.rss.map((x) => (x / 1048576).toFixed(1)).join(', ')} / ${mib(restart.mem.rss)} / ${mib(memIdle.rss)}`,
          `VmHWM ${mib(memIdle.hwm)}; with no namespace ${mib(base.rss)}: ${((memIdle.rss - base.rss) / N / 1024).toFixed(1)} KiB per namespace after idle`,
        ],
        [
          'descriptors: managed / all released / with no namespace',
          `${fdsIdle} / ${fdsReleased} / ${base.fds}`,
          `${fdsPer.toFixed(2)} per managed namespace (managed - released, / ${N}); at \`started:\` ${runsText(R.fds, 0)}; with ${N + 2 * S} managed: ${fdsAll}`,
        ],
        [
          `idle ${idle.window.toFixed(1)} s after ${opt.idleWarmup} ms: utime+stime`,
          `${idle.ticks} ticks`,
          `${((idle.ticks * 1000) / hz).toFixed(0)} ms at ${hz} Hz; schedstat ${ms((idle.s1.runNs - idle.s0.runNs) / 1e6, 3)}, ${idle.s1.switches - idle.s0.switches} context switches`,
        ],
        ['  run time per 5 s slice (ms)', idle.slices.map((x) => x.toFixed(1)).join(' '), `log lines during the window: ${idleLines.length}${idleLines.length ? ` (${logSummary(idleLines)})` : ''}`],
        ['  ticks per 5 s slice', idle.sliceTicks.join(' '), `the window: ${sinceSpawn(idle.t0)} s to ${sinceSpawn(idle.t0 + idle.window * 1000)} s after spawn`],
        [
          '  full GCs of this daemon (--trace-gc)',
          `${fullGcs.length}`,
          `${fullGcs.join('; ')}${fullGcs.some((g) => /reduce/.test(g)) ? "; (reduce) is V8's memory reducer, ~8 s after a burst of allocations" : ''}`,
        ],
        [`namespace bound while running -> \`managing\` line: p50 / p99`, lat(H.discover), `${S} samples; from the spawn of touch+mount (a plain file first: looked at again 5 ms doubling until nsfs)`],
        [`  then its link moved in: its RTM_NEWLINK there -> attach line: p50 / p99`, lat(H.stepNewlink), `beyond settle: ${lat(beyond(H.stepNewlink))}; ip -ts monitor link in the pod`],
        [`    from the spawn of ip link set ... netns ... name eth0: p50 / p99`, lat(H.stepSpawn), `the ip process alone ${ms(median(H.move))} (p50)`],
        [`CNI at once: bind, move at once -> attach line: p50 / p99`, lat(H.cniTotal), `${S} samples; from the spawn of touch+mount; the bind alone ${ms(median(H.cniBind))} (p50)`],
        [`  its RTM_NEWLINK there -> attach line: p50 / p99`, lat(H.cniNewlink), `beyond settle: ${lat(beyond(H.cniNewlink))}; below settle when the namespace's first dump found the link`],
        [
          'daemon CPU per namespace made while running',
          ms(cpuHot / (2 * S), 2),
          `schedstat over all ${2 * S} samples above (each: a namespace managed, its link attached); ${N + 1} to ${N + 2 * S} namespaces managed`,
        ],
        [
          `all ${N + 2 * S} files unbound: umount / rm / rm's exit -> last released line`,
          `${ms(release.umount, 0)} / ${ms(release.rm, 0)} / ${ms(release.afterRm, 1)}`,
          `one umount, one rm (each unlink releases one); daemon CPU ${ms(release.cpu, 0)} (${ms(release.cpu / all.length, 2)} per namespace); descriptors then ${fdsReleased}, VmRSS ${mib(memReleased.rss)}`,
        ],
        ...notes.map((n) => ['note', n, '']),
      ],
      targets: [
        {
          part: 'g',
          what: `VmRSS with ${N} namespaces managed < 150 MB`,
          measured: `${(rss / 1e6).toFixed(1)} MB${complete ? '' : ' (NOT all attached, see notes)'}`,
          limit: '150 MB',
          ratio: rss / rssLimit,
          pass: complete && rss < rssLimit,
        },
        {
          part: 'g',
          what: `CPU over ${opt.idle} s idle with ${N} namespaces = 0`,
          measured: `${idle.ticks} ticks (${ms((idle.s1.runNs - idle.s0.runNs) / 1e6, 3)} by schedstat)`,
          limit: '0 ticks',
          ratio: NaN,
          pass: idle.ticks === 0,
        },
      ],
      data: { N, S, settle, setup, base, restart, runs: R, medians: M, idle, fullGcs, memIdle, fdsIdle, fdsAll, fdsReleased, memReleased, hotplug: H, cpuHot, release },
    }
  } finally {
    if (d) await d.stop(60000)
    // Our binds hold the namespaces alive: gone first (the watched directory's own mount with them).
    releaseMounts(dir)
    // The pods first: H's veth ends go with them.
    await deleteNsMany([...pods, ...extra]).catch((e) => notes.push(e.message))
    deleteNs(host)
  }
}
