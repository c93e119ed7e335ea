/**
 * The container image (issue 14), for real: built by scripts/build-image.sh (bases made by mmdebstrap here, no
 * registry) and run with podman by scripts/run-image.sh, as a DaemonSet runs it: read-only root file system, only
 * the capabilities it needs, the bpffs and the directory of pods' namespace files mounted from the "host" (rslave),
 * the config from a mounted directory. The "host" is a private network namespace of the test's (podman's
 * --network ns:PATH), with a private bpffs: nothing of the machine is touched.
 *
 * A pod-like namespace gets its eth0 after the daemon started (the rslave mount must bring it in); then the
 * container is stopped (SIGTERM: exit 0) and a second one started from the same image must adopt the pinned program
 * (same ids, nothing sent), while a watcher polls both links in a tight loop (`ip -j -d link show`, one process
 * after another) and `ip monitor link` listens: neither may ever see a link without its program.
 *
 * Slow when cold (the bases are made from Debian's mirror: ~3 min); scripts/build-image.sh keeps them, and does not
 * build an image again while its inputs are the same.
 */
import t, { type Test } from 'tap'
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { StatusJson } from '../../src/control/protocol.js'
import { tempBpffs } from '../helpers/bpf.js'
import { netnsDir } from '../helpers/mounts.js'
import { ROOT, isRoot, lines, makeNetns, onExitCleanup, waitFor, type Netns } from '../helpers/netns.js'

/** podman and its global options: PODMAN_FLAGS, else scripts/podman-flags (as the scripts take them). */
const PODMAN = ['podman', ...(process.env.PODMAN_FLAGS ?? readFileSync(join(ROOT, 'scripts/podman-flags'), 'utf8').replace(/^#.*$/gm, '')).split(/\s+/).filter(Boolean)]
const IMAGE = 'localhost/xdplinkd:latest'
const OBJ = '/usr/local/lib/xdplinkd/bpf/xdp_pass.o'

const execFileP = promisify(execFile)
const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0
const skip: string | false = !isRoot
  ? 'needs root (podman as root, network namespaces, a bpffs)'
  : !has('podman') || !has('runc')
    ? 'needs podman and runc (scripts/install-deps.sh installs them)'
    : !has('mmdebstrap')
      ? 'needs mmdebstrap for the image bases (scripts/install-deps.sh installs it)'
      : false

const podman = (...args: string[]): string => execFileSync(PODMAN[0]!, [...PODMAN.slice(1), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

interface Container {
  name: string
  child: ChildProcess
  out: string[]
  err: string[]
  exited: Promise<number | null>
  /** Its stdout lines parsed; a line that is not JSON throws. */
  logs(): { msg?: string; action?: string; progId?: number; [k: string]: unknown }[]
  waitLog(pred: (r: Record<string, unknown>) => boolean, what: string, timeoutMs?: number): Promise<void>
}

/**
 * scripts/run-image.sh --create, then `podman start --attach`: the daemon's stdout lines and the exit status
 * collected. Created first so that the start is timed apart from making the container's root file system (a copy of
 * the image's with vfs storage, seconds on this VM; with overlay, next to nothing).
 */
async function runContainer(name: string, host: Netns, bpffs: string, nsDir: string, confDir: string): Promise<Container & { createMs: number; t0: number }> {
  const c0 = Date.now()
  // Not execFileSync: the pollers run on this event loop meanwhile.
  await execFileP(join(ROOT, 'scripts/run-image.sh'), ['--create', '--name', name, '--netns', `/run/netns/${host.name}`, '--bpffs', bpffs, '--netns-dir', nsDir, '--config', confDir])
  const t0 = Date.now()
  const child = spawn(PODMAN[0]!, [...PODMAN.slice(1), 'start', '--attach', name], { stdio: ['ignore', 'pipe', 'pipe'] })
  const out = lines(child.stdout!)
  const err = lines(child.stderr!)
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)))
  const c: Container & { createMs: number; t0: number } = {
    name,
    child,
    out,
    err,
    exited,
    createMs: t0 - c0,
    t0,
    logs: () =>
      out.map((l) => {
        try {
          return JSON.parse(l) as ReturnType<Container['logs']>[number]
        } catch {
          throw new Error(`${name}: a stdout line that is not JSON: ${l}`)
        }
      }),
    waitLog: (pred, what, timeoutMs = 60000) =>
      waitFor(() => {
        if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}) while waiting for ${what}:\n${out.join('\n')}\n${err.join('\n')}`)
        return c.logs().some(pred)
      }, what, timeoutMs),
  }
  return c
}

interface Sample {
  at: number
  ifname: string
  prog: number | null
}

/**
 * Polls `dev` in `ns` in a tight loop: one `ip -j -d -batch -` process (no fork per sample) asked `link show dev
 * DEV` again as soon as it answered, at most every `everyMs`. Each answer is a sample.
 */
function poll(t: Test, ns: Netns, dev: string, samples: Sample[], everyMs = 2): () => void {
  const ip = spawn('stdbuf', ['-oL', 'ip', '-n', ns.name, '-force', '-j', '-d', '-batch', '-'], { stdio: ['pipe', 'pipe', 'ignore'] })
  let waiting = false
  let stopped = false
  const ask = (): void => {
    if (stopped || waiting) return
    waiting = true
    ip.stdin!.write(`link show dev ${dev}\n`)
  }
  let rest = ''
  ip.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const at = Date.now()
    rest += d
    const parts = rest.split('\n')
    rest = parts.pop()!
    for (const p of parts) {
      if (!p.trim()) continue
      for (const l of JSON.parse(p) as { ifname: string; xdp?: { prog?: { id: number } } }[]) samples.push({ at, ifname: l.ifname, prog: l.xdp?.prog?.id ?? null })
      waiting = false
    }
  })
  const timer = setInterval(ask, everyMs)
  const stop = (): void => {
    stopped = true
    clearInterval(timer)
    ip.kill('SIGKILL')
  }
  t.teardown(stop)
  ask()
  return stop
}

const started = (r: Record<string, unknown>): boolean => typeof r.msg === 'string' && r.msg.startsWith('started:')

/** The program id on `dev` in `ns` as `ip -j -d link show` says (null: none). */
function progOf(ns: Netns, dev: string): number | null {
  const [l] = ns.ipJson<{ xdp?: { prog?: { id: number } } }[]>('-d', 'link', 'show', 'dev', dev)
  return l?.xdp?.prog?.id ?? null
}

// The runner's 300 s per file is too short for a cold build (the bases alone take ~3 min here); the root's timeout is
// what the runner goes by.
if (!skip) t.setTimeout(20 * 60 * 1000)

t.test('the image: built without a registry, run as a DaemonSet runs it, handed over to a new container without a gap', { skip }, async (t) => {
  const t0 = Date.now()

  // --- build -------------------------------------------------------------------------------------------------
  const build = spawnSync(join(ROOT, 'scripts/build-image.sh'), [], { encoding: 'utf8', cwd: ROOT })
  t.equal(build.status, 0, 'scripts/build-image.sh succeeds', { output: `${build.stdout}${build.stderr}`.slice(-4000) })
  if (build.status !== 0) return
  t.comment(build.stdout.trim().split('\n').filter((l) => /made in|built in|up to date|MB/.test(l)).join('\n'))
  const tBuilt = Date.now()

  const sh = (script: string): { status: number | null; stdout: string } => {
    const r = spawnSync(PODMAN[0]!, [...PODMAN.slice(1), 'run', '--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--entrypoint', '/bin/sh', IMAGE, '-c', script], { encoding: 'utf8' })
    return { status: r.status, stdout: r.stdout }
  }
  const found = sh('for c in clang gcc cc npm npx make tsc; do command -v $c; done; ls -d /root/.npm /src /out /usr/local/lib/xdplinkd/test 2>/dev/null; ls /usr/local/lib/xdplinkd/node_modules; true')
  const inImage = found.stdout.split('\n').filter(Boolean)
  t.same(inImage.filter((l) => l.startsWith('/')), [], 'no compiler, no npm, no npm cache, no sources or tests in the image')
  for (const dev of ['tap', 'typescript', 'esbuild', '@types', '@tapjs', 'pino-pretty']) t.notOk(inImage.includes(dev), `no development dependency ${dev}`)
  t.ok(inImage.includes('koffi') && inImage.includes('ajv'), 'what the bundle loads at run time is there (koffi, ajv)')
  // Made by the build stage's node for the runtime's (src/launch/bundle.ts): =require fails if V8 will not take it.
  const cached = spawnSync(PODMAN[0]!, [...PODMAN.slice(1), 'run', '--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '-e', 'XDPLINKD_CODE_CACHE=require', IMAGE, '--version'], { encoding: 'utf8' })
  t.equal(cached.status, 0, "the entrypoint starts from V8's code cache", { stderr: cached.stderr })

  // --- the "host" and a pod-like namespace ---------------------------------------------------------------------
  const host = makeNetns(t, 'xdplih')
  const pod = makeNetns(t, 'xdplip')
  const bpffs = tempBpffs(t)
  const nsd = netnsDir(t)
  const confDir = mkdtempSync(join(tmpdir(), 'xdpl-imgconf-'))
  t.teardown(() => rmSync(confDir, { recursive: true, force: true }))
  chmodSync(confDir, 0o755)
  writeFileSync(
    join(confDir, 'config.yaml'),
    [
      'settle: 10ms',
      `netns-dirs: [${nsd.dir}]`,
      'attach:',
      '  - name: pods',
      '    interfaces: [eth0]',
      '    netns: ["pod-*"]',
      `    object: ${OBJ}`,
      '    mode: generic',
      '  - name: host-veths',
      '    interfaces: ["veth*"]',
      '    kinds: [veth]',
      `    object: ${OBJ}`,
      '    mode: generic',
      '',
    ].join('\n'),
    { mode: 0o644 },
  )
  host.ip('link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'peer0')
  // up, both ends: the kernel announces XDP changes only on links that are up (ip monitor below hears them)
  host.ip('link', 'set', 'veth0', 'up')
  host.ip('link', 'set', 'peer0', 'up')

  const names = [`xdpl-img-${process.pid}-1`, `xdpl-img-${process.pid}-2`]
  const removeContainers = (): void => {
    for (const n of names) spawnSync(PODMAN[0]!, [...PODMAN.slice(1), 'rm', '--force', '--time', '0', n], { stdio: 'ignore' })
  }
  const forget = onExitCleanup(removeContainers)
  t.teardown(() => {
    removeContainers()
    forget()
  })

  // --- the first container -------------------------------------------------------------------------------------
  const c1 = await runContainer(names[0]!, host, bpffs, nsd.dir, confDir)
  t.teardown(() => void c1.child.kill('SIGKILL'))
  await c1.waitLog(started, 'the first container to start')
  const startMs = Date.now() - c1.t0
  t.equal(JSON.parse(podman('inspect', '--format', '{{json .HostConfig.ReadonlyRootfs}}', names[0]!)), true, 'its root file system is read-only')
  t.not(spawnSync(PODMAN[0]!, [...PODMAN.slice(1), 'exec', names[0]!, 'sh', '-c', 'echo x > /usr/local/x']).status, 0, 'writing to it fails')

  // The pod comes after the daemon: its file is bound on the "host" and must appear inside (rslave), then the CNI
  // steps give it eth0.
  nsd.bind(pod.name, 'pod-1')
  await c1.waitLog((r) => r.msg === 'managing network namespace pod-1', 'pod-1 to be managed')
  host.ip('link', 'add', 'tmpeth', 'type', 'veth', 'peer', 'name', 'hpod1')
  host.ip('link', 'set', 'tmpeth', 'netns', pod.name)
  pod.ip('link', 'set', 'tmpeth', 'name', 'eth0')
  pod.ip('link', 'set', 'eth0', 'up')
  host.ip('link', 'set', 'hpod1', 'up')
  await waitFor(() => progOf(pod, 'eth0') !== null && progOf(host, 'veth0') !== null, 'eth0 in the pod and veth0 to carry a program')
  const ids = { eth0: progOf(pod, 'eth0')!, veth0: progOf(host, 'veth0')! }
  const [l0] = pod.ipJson<{ xdp?: { mode: number } }[]>('-d', 'link', 'show', 'dev', 'eth0')
  t.equal(l0?.xdp?.mode, 2, 'eth0 in the pod runs it in generic mode (ip -n POD -j -d link show)')
  t.equal(ids.eth0, ids.veth0, 'one program for both entries')

  const status = JSON.parse(podman('exec', names[0]!, 'xdplinkd', 'status', '--json')) as StatusJson
  const podEth0 = status.links.find((l) => l.netns === 'pod-1' && l.name === 'eth0')
  t.match(podEth0, { state: 'attached', attached: { progId: ids.eth0, owner: 'ours' } }, 'xdplinkd status inside the container says so too')

  // --- watchers: a tight polling loop over both links, and the kernel's own announcements ----------------------
  const samples: Sample[] = []
  const pollers = [poll(t, pod, 'eth0', samples), poll(t, host, 'veth0', samples)]
  const monitors = [pod, host].map((ns) => {
    const m = spawn('ip', ['-n', ns.name, '-o', 'monitor', 'link'], { stdio: ['ignore', 'pipe', 'ignore'] })
    t.teardown(() => void m.kill('SIGKILL'))
    return { ns: ns.name, lines: lines(m.stdout!) }
  })
  await waitFor(() => samples.length >= 20, 'the poller to get going')

  // --- SIGTERM, then a new container from the same image ---------------------------------------------------------
  const tStop = Date.now()
  await execFileP(PODMAN[0]!, [...PODMAN.slice(1), 'stop', '--time', '20', names[0]!])
  const code1 = await c1.exited
  const stopMs = Date.now() - tStop
  t.equal(code1, 0, 'the first container exits 0 on SIGTERM (podman stop)')
  t.ok(c1.logs().some((r) => r.msg === 'stopped'), 'its daemon logged "stopped"')
  t.ok(c1.out.length > 0 && c1.logs().every((r) => typeof r.msg === 'string' && typeof r.level === 'number'), `every stdout line is a JSON log record (${c1.out.length})`)
  t.same(progOf(pod, 'eth0'), ids.eth0, 'between the two containers, eth0 keeps its program (on-exit: keep)')

  const c2 = await runContainer(names[1]!, host, bpffs, nsd.dir, confDir)
  t.teardown(() => void c2.child.kill('SIGKILL'))
  await c2.waitLog(started, 'the second container to start')
  const start2Ms = Date.now() - c2.t0
  const handoverMs = Date.now() - tStop
  const polledFrom = samples.length
  await waitFor(() => samples.length >= polledFrom + 20, 'more samples after the second start')
  for (const stop of pollers) stop()

  t.ok(c2.logs().some((r) => typeof r.msg === 'string' && r.msg.startsWith('reusing pinned program xdp_pass')), 'the new container adopts the pinned program')
  t.same(c2.logs().filter((r) => r.action), [], 'and sends nothing: no attach, replace or detach')
  t.same({ eth0: progOf(pod, 'eth0'), veth0: progOf(host, 'veth0') }, ids, 'the program ids are unchanged')

  const window = samples.filter((s) => s.at >= tStop)
  const bare = samples.filter((s) => s.prog !== ids[s.ifname as 'eth0' | 'veth0'])
  t.same(bare, [], `the poller never saw a link without its program (${samples.length} samples, ${window.length} from the stop to past the second start)`)
  const perLink = (n: string): number[] => window.filter((s) => s.ifname === n).map((s) => s.at)
  const maxGap = Math.max(...['eth0', 'veth0'].map((n) => Math.max(...perLink(n).slice(1).map((at, i) => at - perLink(n)[i]!))))
  t.ok(window.length >= 40, `it sampled throughout the handover (${window.length} samples in ${handoverMs} ms, the longest gap between two samples of one link ${maxGap} ms)`)
  // The monitors are alive: a change that keeps the program (the MTU) is heard, with the program.
  pod.ip('link', 'set', 'dev', 'eth0', 'mtu', '1400')
  host.ip('link', 'set', 'dev', 'veth0', 'mtu', '1400')
  await waitFor(() => monitors.every((m) => m.lines.some((l) => / mtu 1400 /.test(l))), 'ip monitor to hear the MTU changes')
  // (the daemon's start-up probe, a detach on lo expecting nothing, is announced on lo: only the managed links count)
  for (const m of monitors) {
    const heard = m.lines.filter((l) => /^\d+: (eth0|veth0)[@:]/.test(l))
    // `xdpgeneric/id:N` (or xdp/, xdpdrv/, xdpoffload/): not just "xdp", which the peer's namespace name has
    t.same(heard.filter((l) => !/ xdp(generic|drv|offload)?\/id:\d+ /.test(l)), [], `ip monitor link in ${m.ns} heard no managed link without its program (${heard.length} announcements)`)
  }

  podman('stop', '--time', '20', names[1]!)
  t.equal(await c2.exited, 0, 'the second container exits 0 on SIGTERM too')
  t.comment(
    `build (or the up-to-date check) ${((tBuilt - t0) / 1000).toFixed(0)} s; podman create ${c1.createMs} and ${c2.createMs} ms; ` +
      `podman start to started: ${startMs} ms, then ${start2Ms} ms; ` +
      `podman stop ${stopMs} ms; stop to the second started: ${handoverMs} ms; the whole test ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  )
})
