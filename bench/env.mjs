/**
 * The bench's private world: a temp dir, a bpffs mounted under it, network namespaces, child processes. Everything
 * created here is registered and removed by cleanupSync(), which also runs on exit and on SIGINT/SIGTERM, so a run
 * that breaks half-way leaves no namespace, mount or process behind. Only processes started here are ever killed
 * (by their own pid).
 */
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const ROOT = new URL('../', import.meta.url).pathname
export const CLI = join(ROOT, 'dist/cli.js')

/**
 * The node flags of CLI's `#!/usr/bin/env -S node ...` line: the service runs the file itself, so the bench runs
 * its daemons with the same flags (`--no-memory-reducer`, src/cli/heap.ts). Read when the bench starts.
 */
export function cliNodeFlags() {
  const first = readFileSync(CLI, 'utf8').split('\n', 1)[0]
  const m = /^#!\/usr\/bin\/env -S node(.*)$/.exec(first)
  return m ? m[1].trim().split(/\s+/).filter(Boolean) : []
}
export const XDP_PASS = join(ROOT, 'bpf/xdp_pass.o')

/** Monotonic milliseconds (sub-millisecond resolution). */
export const now = () => performance.now()
/** Wall clock in milliseconds with microsecond resolution (for comparing with `ip -ts` and pino's `time`). */
export const wallMs = (at = now()) => performance.timeOrigin + at
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

const live = { namespaces: new Set(), children: new Set(), mount: null, tmp: null, mounts: [], others: [] }

/** Registers a cleanup of a part's own (containers of part (i)), run by cleanupSync() before the rest. */
export function onCleanup(fn) {
  live.others.push(fn)
}

/** Registers a child so that cleanup can kill it (by its pid) if it is still running. */
export function track(child) {
  live.children.add(child)
  child.once('exit', () => live.children.delete(child))
  return child
}

/**
 * Variables that change how every node process starts, removed from the bench's environment (and so from every
 * process it starts) before anything is measured; returns the names it removed. NODE_EXTRA_CA_CERTS makes node
 * read and parse a CA bundle at every start (~35 ms on the machine this was written on, `node -e 0` 58 -> 23 ms):
 * a shell may have it, a systemd service such as systemd/xdplinkd.service does not.
 */
export function scrubNodeEnv() {
  const removed = []
  for (const k of ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS']) {
    if (process.env[k] === undefined) continue
    delete process.env[k]
    removed.push(k)
  }
  return removed
}

export function setupEnv() {
  const tmp = mkdtempSync(join(tmpdir(), 'xdplinkd-bench-'))
  live.tmp = tmp
  const bpffs = join(tmp, 'bpffs')
  mkdirSync(bpffs)
  // `ip netns exec` remounts /sys and so hides /sys/fs/bpf; a bpffs of our own under /tmp stays visible to it.
  execFileSync('mount', ['-t', 'bpf', 'bpf', bpffs])
  live.mount = bpffs
  return { tmp, bpffs }
}

export function cleanupSync() {
  for (const fn of live.others.splice(0)) {
    try {
      fn()
    } catch {
      /* best effort */
    }
  }
  for (const c of live.children) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        c.kill('SIGKILL')
      } catch {
        /* gone */
      }
    }
  }
  live.children.clear()
  // Mounts of ours (namespace files bound into a watched directory, the directory's own bind), the last made first:
  // a lazy umount of a directory takes what is mounted below it too.
  if (live.mounts.length) {
    try {
      // umount goes on past a path that is not mounted any more (and then exits non-zero).
      execFileSync('umount', ['-l', ...live.mounts.reverse()], { stdio: 'ignore' })
    } catch {
      /* some were not mounted any more */
    }
  }
  live.mounts = []
  // One ip process for all of them (part g has a thousand); -force goes on past a namespace already gone.
  if (live.namespaces.size) {
    try {
      execFileSync('ip', ['-force', '-batch', '-'], { input: [...live.namespaces].map((ns) => `netns del ${ns}\n`).join(''), stdio: ['pipe', 'ignore', 'ignore'] })
    } catch {
      /* some were gone */
    }
  }
  live.namespaces.clear()
  let unmounted = true
  if (live.mount) {
    try {
      execFileSync('umount', [live.mount], { stdio: 'ignore' })
    } catch {
      try {
        execFileSync('umount', ['-l', live.mount], { stdio: 'ignore' })
      } catch {
        unmounted = false
        process.stderr.write(`bench: could not unmount ${live.mount}\n`)
      }
    }
    live.mount = null
  }
  if (live.tmp && unmounted) rmSync(live.tmp, { recursive: true, force: true })
  live.tmp = null
}

let nsSeq = 0
export function createNs(tag) {
  // Not `xdpl-*`: that is the test helpers' prefix, which others may sweep.
  const name = `benchxl-${process.pid}-${tag}${nsSeq++}`
  execFileSync('ip', ['netns', 'add', name])
  live.namespaces.add(name)
  return name
}

/** `n` namespaces made with one `ip -batch` (`${tag}0000`, ...), registered for cleanup first. Returns their names. */
export async function createNsMany(tag, n) {
  const names = Array.from({ length: n }, (_, i) => `benchxl-${process.pid}-${tag}${String(i).padStart(4, '0')}`)
  for (const ns of names) live.namespaces.add(ns)
  await mustRun('ip', ['-batch', '-'], { input: names.map((ns) => `netns add ${ns}\n`).join('') })
  return names
}

/** Deletes namespaces of ours with one `ip -batch`; throws if one was removed by someone else meanwhile. */
export async function deleteNsMany(names) {
  for (const ns of names) live.namespaces.delete(ns)
  const missing = names.filter((ns) => !existsSync(`/run/netns/${ns}`))
  await run('ip', ['-force', '-batch', '-'], { input: names.map((ns) => `netns del ${ns}\n`).join('') })
  if (missing.length) throw new Error(`${missing.length} namespaces (${missing.slice(0, 3).join(', ')}) were removed by someone else during the measurement`)
}

/**
 * Makes `dir` (ours) a mount point of its own with shared propagation, as `ip netns add` makes /run/netns: files
 * bound inside it later reach a daemon started under `ip netns exec` (a mount namespace of its own, a slave of this
 * one), even where / is a private mount. Unmounted at cleanup.
 */
export function sharedDir(dir) {
  execFileSync('mount', ['--bind', dir, dir])
  live.mounts.push(dir)
  execFileSync('mount', ['--make-shared', dir])
}

/**
 * Binds each [source, file] (a namespace file of ours onto a new file, as a container runtime binds one) with one
 * shell: `touch FILE && mount --bind SOURCE FILE`. The files are registered for cleanup before they are made.
 */
export async function bindFiles(pairs) {
  for (const [, file] of pairs) live.mounts.push(file)
  // On stdin: a thousand lines are more than one argument may hold (MAX_ARG_STRLEN, 128 KiB).
  await mustRun('sh', ['-e'], { input: pairs.map(([src, file]) => `touch '${file}' && mount --bind '${src}' '${file}'\n`).join('') })
}

/** Lazily unmounts every mount of ours at or under `prefix` (the last made first), as cleanup would. */
export function releaseMounts(prefix) {
  const mine = live.mounts.filter((m) => m === prefix || m.startsWith(`${prefix}/`))
  if (!mine.length) return
  live.mounts = live.mounts.filter((m) => !mine.includes(m))
  try {
    execFileSync('umount', ['-l', ...mine.reverse()], { stdio: 'ignore' })
  } catch {
    /* some were not mounted any more */
  }
}

/** Files bound by bindFiles that the caller unmounted: cleanup leaves them alone. */
export function forgetMounts(files) {
  const gone = new Set(files)
  live.mounts = live.mounts.filter((m) => !gone.has(m))
}

/** Deletes a namespace of ours; throws if someone else removed it meanwhile (what ran in it is then suspect). */
export function deleteNs(name) {
  live.namespaces.delete(name)
  if (!existsSync(`/run/netns/${name}`)) throw new Error(`namespace ${name} was removed by someone else during the measurement`)
  execFileSync('ip', ['netns', 'del', name])
}

/**
 * Runs a command to completion; resolves with its status, output and wall time in ms (spawn to exit), and
 * `firstOutMs`, spawn to its first stdout bytes (NaN without any), for a process whose one line is its result.
 */
export function run(cmd, args, { input, env } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = now()
    const c = track(spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env }))
    const out = []
    const err = []
    let firstOutMs = NaN
    c.stdout.on('data', (d) => {
      if (out.length === 0) firstOutMs = now() - t0
      out.push(d)
    })
    c.stderr.on('data', (d) => err.push(d))
    c.on('error', reject)
    c.on('close', (code, signal) =>
      resolve({ code, signal, ms: now() - t0, firstOutMs, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    )
    if (input !== undefined) c.stdin.end(input)
  })
}

export async function mustRun(cmd, args, opts) {
  const r = await run(cmd, args, opts)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code ?? r.signal}): ${r.stderr.trim().slice(0, 800)}`)
  return r
}

export function writeLines(file, lines) {
  writeFileSync(file, lines.join('\n') + '\n')
  return file
}

/** [[`${prefix}0a`, `${prefix}0b`], ...]: veth pair names (at most 15 bytes each). */
export function pairNames(prefix, n, from = 0) {
  const out = []
  for (let i = from; i < from + n; i++) out.push([`${prefix}${i}a`, `${prefix}${i}b`])
  return out
}

export const createLines = (pairs) => pairs.map(([a, b]) => `link add ${a} type veth peer name ${b}`)
export const detachLines = (names) => names.map((n) => `link set dev ${n} xdpgeneric off`)
export const attachPinnedLines = (names, pin) => names.map((n) => `link set dev ${n} xdpgeneric pinned ${pin}`)

/** `ip -j -d link show` as Map name -> {ifindex, kind, mode (XDP_ATTACHED_*: 0 none, 2 skb/generic), progId}. */
export async function xdpState(ns) {
  const r = await mustRun('ip', ['-n', ns, '-j', '-d', 'link', 'show'])
  const m = new Map()
  for (const l of JSON.parse(r.stdout || '[]')) {
    m.set(l.ifname, { ifindex: l.ifindex, kind: l.linkinfo?.info_kind ?? null, mode: l.xdp?.mode ?? 0, progId: l.xdp?.prog?.id ?? null })
  }
  return m
}

/**
 * Checks `names` against the kernel: with `progId` (a number, or 'any'), each must carry that program in generic
 * mode; with null, none may carry a program. Returns {ok, total, bad: first few offenders}.
 */
export async function verifyXdp(ns, names, progId) {
  const st = await xdpState(ns)
  const bad = []
  let ok = 0
  for (const n of names) {
    const s = st.get(n)
    const good = progId === null ? s && s.mode === 0 : s && s.mode === 2 && (progId === 'any' || s.progId === progId)
    if (good) ok++
    else if (bad.length < 5) bad.push(`${n}:${s ? `mode=${s.mode},prog=${s.progId}` : 'missing'}`)
  }
  return { ok, total: names.length, bad }
}

export async function mustVerify(ns, names, progId, what) {
  const v = await verifyXdp(ns, names, progId)
  if (v.ok !== v.total) throw new Error(`${what}: ${v.ok}/${v.total} links as expected (e.g. ${v.bad.join(' ')})`)
  return v
}

/** Detaches every program from `names` with one `ip -batch` and checks that none is left. */
export async function detachAll(ns, names, tmp) {
  await mustRun('ip', ['-n', ns, '-batch', writeLines(join(tmp, 'detach.batch'), detachLines(names))])
  await mustVerify(ns, names, null, 'detach')
}

/** Creates `pairs` with one `ip -batch`, in chunks so that a machine that cannot take them all still gets some. */
export async function createPairs(ns, pairs, tmp, chunk = Infinity) {
  for (let i = 0; i < pairs.length; i += chunk) {
    const part = pairs.slice(i, i + chunk)
    const r = await run('ip', ['-n', ns, '-batch', writeLines(join(tmp, 'create.batch'), createLines(part))])
    if (r.code !== 0) return { created: await countVeths(ns), error: r.stderr.trim().split('\n').slice(-2).join(' ') }
  }
  return { created: await countVeths(ns), error: null }
}

export async function countVeths(ns) {
  let n = 0
  for (const s of (await xdpState(ns)).values()) if (s.kind === 'veth') n++
  return n
}

/**
 * The daemon's config for the bench: every veth whose name starts with `x` gets xdp_pass in generic mode. With
 * `netns` (globs) and `netnsDirs`, the entry is for those namespaces instead of the daemon's own.
 */
export function writeConfig(file, { bpffs, settleMs, maxSettleMs = 1000, interfaces = 'x*', netns, netnsDirs }) {
  writeFileSync(
    file,
    [
      `settle: ${settleMs}ms`,
      `max-settle: ${Math.max(maxSettleMs, settleMs)}ms`,
      `bpffs: ${bpffs}`,
      'on-exit: keep',
      // Never the machine's /run/xdplinkd: a socket of its own next to the config.
      `control-socket: ${file.replace(/\.yaml$/, '')}.sock`,
      ...(netnsDirs ? [`netns-dirs: [${netnsDirs.map((d) => JSON.stringify(d)).join(', ')}]`] : []),
      'attach:',
      '  - name: bench',
      `    interfaces: ["${interfaces}"]`,
      ...(netns ? [`    netns: [${netns.map((g) => JSON.stringify(g)).join(', ')}]`] : []),
      '    kinds: [veth]',
      `    object: ${XDP_PASS}`,
      '    program: xdp_pass',
      '    mode: generic',
      '',
    ].join('\n'),
  )
  return file
}
