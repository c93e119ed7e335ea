/**
 * Part (h): declared map contents (issue 13) at the size of a large blocklist. `--prefixes` (100,000) distinct IPv4
 * prefixes (/16 to /32, the same every run and on both sides) into an empty LPM trie (key 8: prefixlen + address,
 * value 4, BPF_F_NO_PREALLOC) pinned on the bench's bpffs:
 *
 * - syncMap (dist/maps/sync.js, in this process, as the daemon calls it: declared contents already encoded) against
 *   `bpftool batch file` of one `map update pinned PIN key hex ... value hex ...` line per prefix, each into a fresh
 *   map; both then dumped by bpftool once, and compared.
 * - then, on the map syncMap filled: the same contents again (a restart: reads only), and a reload changing the values
 *   of 1% of the prefixes, which must write exactly those (the report's counts); `bpftool batch file` of the same 1%
 *   updates next to it.
 * - the daemon's whole path (daemonRun), in every run: spawn -> `started:` with the prefixes in a list file, next to
 *   the same daemon with an empty list file (what a start-up costs without them); VmRSS; the list file renamed over
 *   with 1% of its lines changed -> `reloaded`.
 */
import { renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createNs, deleteNs, mustRun, now, ROOT, writeLines } from './env.mjs'
import { startDaemon } from './parts.mjs'
import { median, memSample, mib, ms, ratio, runsText } from './stats.mjs'

/**
 * `n` distinct canonical struct bpf_lpm_trie_key for IPv4, as hex: prefixlen (u32, host order), the address. The
 * addresses spread over the whole space (i times the golden-ratio constant, a bijection of u32), the lengths cycle
 * through /16 to /32; the same every run.
 */
function prefixes(n) {
  const out = new Set()
  const b = Buffer.alloc(8)
  for (let i = 0; out.size < n; i++) {
    const len = 16 + (i % 17)
    b.writeUInt32LE(len, 0)
    b.writeUInt32BE((Math.imul(i, 0x9e3779b1) & (0xffffffff << (32 - len))) >>> 0, 4)
    out.add(b.toString('hex'))
  }
  return [...out]
}

const u32 = (n) => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n >>> 0)
  return b
}
/** The text an operator's list file holds for a prefix's hex key: `a.b.c.d/len`. */
function prefixText(hex) {
  const b = Buffer.from(hex, 'hex')
  return `${b[4]}.${b[5]}.${b[6]}.${b[7]}/${b.readUInt32LE(0)}`
}

/**
 * The daemon's whole path for a declared list: xdp_blocklist with `blocklist_v4: {file: ...}` of `keys` (one prefix a
 * line), started in a namespace of its own over a pin directory of its own (`tag`: the program loaded, its map
 * empty): spawn to `started:` (the list read, encoded by the map's BTF and written before anything is attached), the
 * resident size then, and, unless `changedEvery` is 0, the list file replaced (a rename, as a feed's tool does) with
 * 1% of its lines changed: the change seen to `reloaded` (the watch applies it by itself), and the resident size
 * after it.
 */
async function daemonRun({ tmp, bpffs }, tag, keys, changedEvery) {
  const ns = createNs('h')
  try {
    const list = join(tmp, `h-list-${tag}.txt`)
    const write = (lines) => {
      writeFileSync(`${list}.tmp`, `# bench list\n${lines.join('\n')}\n`)
      renameSync(`${list}.tmp`, list)
    }
    const texts = keys.map(prefixText)
    write(texts)
    const cfg = join(tmp, `h-${tag}.yaml`)
    writeFileSync(
      cfg,
      [
        `bpffs: ${join(bpffs, `h-daemon-${tag}`)}`,
        `control-socket: ${join(tmp, `h-${tag}.sock`)}`,
        'attach:',
        '  - interfaces: ["none"]',
        `    object: ${join(ROOT, 'bpf/xdp_blocklist.o')}`,
        '    maps:',
        `      blocklist_v4: { file: ${list} }`,
        '',
      ].join('\n'),
    )
    const { d, st } = await startDaemon(ns, cfg, 300000)
    try {
      const filled = d.lines.find((r) => r.msg.action === 'map')
      const start = { ms: st.at - d.t0, rss: memSample(d.pid).rss, added: filled?.msg.added ?? 0 }
      if (!changedEvery) return { start }
      // 1% of the prefixes replaced by others: the same number removed and added.
      const moved = texts.map((t, i) => (i % changedEvery === 0 ? t.replace(/\/(\d+)$/, (_, l) => `/${l === '32' ? 31 : Number(l) + 1}`) : t))
      const lines0 = d.lines.length
      const t0 = now()
      write(moved)
      const done = await d.waitFor((r) => r.msg.action === 'reload', { from: lines0, timeoutMs: 300000, what: 'the reload' })
      const reloadMs = done.at - t0
      const report = d.lines.slice(lines0).find((r) => r.msg.action === 'map')?.msg ?? {}
      return { start, reloadMs, report, reloaded: /^reloaded/.test(done.msg.msg ?? ''), rss: memSample(d.pid).rss }
    } finally {
      await d.stop(60000)
    }
  } finally {
    deleteNs(ns)
  }
}

/** bpftool's `hex 0a 00 ...` of hex bytes. */
const hexArgs = (h) => `hex ${h.match(/../g).join(' ')}`
const updateLine = (pin, key, value) => `map update pinned ${pin} key ${hexArgs(key)} value ${hexArgs(value.toString('hex'))}`
const writes = (c) => c.update + c.updateBatch + c.delete + c.deleteBatch
const callsText = (c) =>
  Object.entries(c)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || 'none'

/** What `bpftool map dump` shows of the map at `pin`: {key hex: value hex}. */
async function dump(pin) {
  const r = await mustRun('bpftool', ['-j', 'map', 'dump', 'pinned', pin])
  const hex = (a) => a.map((x) => x.slice(2)).join('')
  return new Map(JSON.parse(r.stdout).map((e) => [hex(e.key), hex(e.value)]))
}

function sameContents(a, b) {
  if (a.size !== b.size) return `${a.size} entries vs ${b.size}`
  for (const [k, v] of a) if (b.get(k) !== v) return `key ${k}: ${v} vs ${b.get(k)}`
  return null
}

export async function partH({ tmp, bpffs, opt, progress }) {
  // tsc's output, loaded here so that a missing build is main.mjs's message, not an import error.
  const { mapCreate, mapInfo, objPin } = await import('../dist/ffi/bpf-fd.js')
  const { BPF_F_NO_PREALLOC, BPF_MAP_TYPE_LPM_TRIE } = await import('../dist/maps/map-types.js')
  const { syncMap } = await import('../dist/maps/sync.js')
  const { entriesOfHex } = await import('../dist/maps/entries.js')
  const N = opt.prefixes
  const changedEvery = 100
  const spec = { name: 'bench_lpm', type: BPF_MAP_TYPE_LPM_TRIE, keySize: 8, valueSize: 4, maxEntries: N }
  const keys = prefixes(N)
  const declared = new Map(keys.map((k, i) => [k, u32(i + 1)]))
  const changed = keys.filter((_, i) => i % changedEvery === 0)
  const reloaded = new Map(keys.map((k, i) => [k, u32(i % changedEvery === 0 ? i + 1 + 0x10000 : i + 1)]))
  // As the daemon hands them to syncMap (declare.ts): keys and values in two buffers, encoded before the clock starts.
  const entries = (m) => {
    const e = entriesOfHex(m, 8, 4)
    if (!e.ok) throw new Error(`bench: ${e.error.key}`)
    return e.value
  }
  const declaredEntries = entries(declared)
  const reloadedEntries = entries(reloaded)
  const batchAll = writeLines(join(tmp, 'h-all.batch'), keys.map((k, i) => updateLine(join(bpffs, 'h-bpftool'), k, u32(i + 1))))
  const notes = []
  const R = { ours: [], bpftool: [], noop: [], reload: [], bpftoolReload: [], daemon: [], daemonRss: [], daemonReload: [], daemonReloadRss: [], daemonEmpty: [], daemonEmptyRss: [] }
  const D = []
  let first = null
  let noop = null
  let reload = null
  const create = async (pin) => {
    await mustRun('bpftool', ['map', 'create', pin, 'type', 'lpm_trie', 'key', '8', 'value', '4', 'entries', String(N), 'name', 'bench_lpm', 'flags', String(BPF_F_NO_PREALLOC)])
  }
  for (let r = 0; r < opt.runs; r++) {
    const last = r === opt.runs - 1
    progress(`(h) run ${r + 1}/${opt.runs}: bpftool batch file, ${N} map update lines`)
    const bpin = join(bpffs, 'h-bpftool')
    await create(bpin)
    R.bpftool.push((await mustRun('bpftool', ['batch', 'file', batchAll])).ms)

    progress(`(h) run ${r + 1}/${opt.runs}: syncMap of ${N} prefixes into an empty map`)
    const fd = mapCreate(BPF_MAP_TYPE_LPM_TRIE, 'bench_lpm', 8, 4, N, BPF_F_NO_PREALLOC)
    const opin = join(bpffs, 'h-ours')
    try {
      objPin(fd, opin)
      const sync = (contents) => {
        const t0 = now()
        const res = syncMap(fd, spec, contents)
        const t = now() - t0
        if (!res.ok) throw new Error(`syncMap: ${res.error.message}`)
        return { ms: t, report: res.value }
      }
      first = sync(declaredEntries)
      R.ours.push(first.ms)
      noop = sync(declaredEntries)
      R.noop.push(noop.ms)
      reload = sync(reloadedEntries)
      R.reload.push(reload.ms)
      if (last) {
        progress('(h) bpftool map dump of both maps')
        const theirs = await dump(bpin)
        const want = new Map([...declared].map(([k, v]) => [k, v.toString('hex')]))
        const bad = sameContents(want, theirs)
        if (bad) throw new Error(`bpftool batch file did not write the prefixes: ${bad}`)
        const ours = await dump(opin)
        const badOurs = sameContents(new Map([...reloaded].map(([k, v]) => [k, v.toString('hex')])), ours)
        if (badOurs) throw new Error(`after syncMap's reload, bpftool dumps map id ${mapInfo(fd).id} with ${badOurs}`)
      }
      // The same 1% change by bpftool, on its own map.
      const batchChanged = writeLines(
        join(tmp, 'h-changed.batch'),
        changed.map((k) => updateLine(bpin, k, reloaded.get(k))),
      )
      R.bpftoolReload.push((await mustRun('bpftool', ['batch', 'file', batchChanged])).ms)
    } finally {
      fd.close()
      await mustRun('rm', ['-f', opin, bpin])
    }

    progress(`(h) run ${r + 1}/${opt.runs}: the daemon, an empty list file`)
    const empty = await daemonRun({ tmp, bpffs }, `empty-${r}`, [], 0)
    R.daemonEmpty.push(empty.start.ms)
    R.daemonEmptyRss.push(empty.start.rss)
    progress(`(h) run ${r + 1}/${opt.runs}: the daemon, ${N} prefixes declared in a list file, then 1% of its lines changed`)
    const run = await daemonRun({ tmp, bpffs }, `run-${r}`, keys, changedEvery)
    D.push(run)
    R.daemon.push(run.start.ms)
    R.daemonRss.push(run.start.rss)
    R.daemonReload.push(run.reloadMs)
    R.daemonReloadRss.push(run.rss)
  }
  const M = Object.fromEntries(Object.entries(R).map(([k, v]) => [k, median(v)]))
  const budget = 1.5 * M.bpftool
  const touched = reload.report.added + reload.report.updated + reload.report.removed
  const reloadClean = reload.report.updated === changed.length && touched === changed.length && reload.report.calls.delete + reload.report.calls.deleteBatch === 0
  const noopClean = writes(noop.report.calls) === 0 && noop.report.unchanged === N
  if (first.report.added !== N) notes.push(`the first sync added ${first.report.added} of ${N}`)
  return {
    title: `(h) ${N} IPv4 prefixes (/16-/32) in an LPM trie (key 8, value 4): syncMap in this process vs bpftool batch file; median of ${opt.runs} runs`,
    rows: [
      [`syncMap: ${N} prefixes into an empty map`, ms(M.ours), `calls: ${callsText(first.report.calls)}; runs: ${runsText(R.ours)}`],
      [`bpftool batch file: ${N} map update lines`, ms(M.bpftool), `one bpftool process, the pin opened per line; runs: ${runsText(R.bpftool)}`],
      ['ratio syncMap / bpftool', ratio(M.ours / M.bpftool), 'target <= 1.5x'],
      ['syncMap again, nothing to do (a restart)', ms(M.noop), `calls: ${callsText(noop.report.calls)}; ${noopClean ? 'nothing written' : 'WROTE, see the calls'}; runs: ${runsText(R.noop)}`],
      [
        `syncMap: a reload changing 1% (${changed.length} values)`,
        ms(M.reload),
        `entries written ${touched} (updated ${reload.report.updated}, unchanged ${reload.report.unchanged}); calls: ${callsText(reload.report.calls)}; runs: ${runsText(R.reload)}`,
      ],
      [`bpftool batch file: the same ${changed.length} updates`, ms(M.bpftoolReload), `runs: ${runsText(R.bpftoolReload)}`],
      [`xdplinkd: spawn -> \`started:\` with ${N} prefixes in a list file`, ms(M.daemon), `read, encoded by the map's BTF, ${D.map((x) => x.start.added).join('/')} added before anything was attached; runs: ${runsText(R.daemon)}`],
      ['  the same with an empty list file', ms(M.daemonEmpty), `node, the program's load, the rest of a start-up; runs: ${runsText(R.daemonEmpty)}`],
      ['  ratio daemon / bpftool', ratio(M.daemon / M.bpftool), 'target <= 1.5x'],
      ['  VmRSS at `started:` / after the 1% reload', `${mib(M.daemonRss)} / ${mib(M.daemonReloadRss)}`, `runs: ${R.daemonRss.map(mib).join(', ')} / ${R.daemonReloadRss.map(mib).join(', ')}; an empty list: ${mib(M.daemonEmptyRss)}`],
      [
        '  list file renamed over with 1% of its lines changed -> `reloaded`',
        ms(M.daemonReload),
        `the watch (200 ms debounce) and a reload; map: ${D.map((x) => `${x.report.added ?? 0} added, ${x.report.updated ?? 0} updated, ${x.report.removed ?? 0} removed${x.reloaded ? '' : ', NOT reloaded'}`).join('; ')}; runs: ${runsText(R.daemonReload)}`,
      ],
      ...notes.map((n) => ['note', n]),
    ],
    targets: [
      {
        part: 'h',
        what: `${N} prefixes into an empty LPM map <= 1.5 x bpftool batch file`,
        measured: ms(M.ours),
        limit: `${ms(budget)} (1.5 x ${M.bpftool.toFixed(1)})`,
        ratio: M.ours / budget,
        pass: first.report.added === N && M.ours <= budget,
      },
      {
        part: 'h',
        what: 'a 1% reload writes only the changed entries',
        measured: `${touched} written, ${callsText(reload.report.calls)}`,
        limit: `${changed.length} written`,
        ratio: NaN,
        pass: reloadClean,
      },
      {
        part: 'h',
        what: `xdplinkd: spawn -> started with ${N} prefixes <= 1.5 x bpftool batch file`,
        measured: ms(M.daemon),
        limit: `${ms(budget)} (1.5 x ${M.bpftool.toFixed(1)})`,
        ratio: M.daemon / budget,
        pass: D.every((x) => x.start.added === N) && M.daemon <= budget,
      },
      {
        part: 'h',
        what: 'a restart over the same contents writes nothing',
        measured: `${writes(noop.report.calls)} write calls`,
        limit: '0',
        ratio: NaN,
        pass: noopClean,
      },
    ],
    data: { runs: R, medians: M, reports: { first: first.report, noop: noop.report, reload: reload.report }, daemon: D },
  }
}
