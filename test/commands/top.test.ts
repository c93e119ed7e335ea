/**
 * `xdplinkd top` without a daemon: the text of a table (pure), the screen drawn from it, and the command's loop
 * over a fake status source (a pipe and a terminal, errors, q, --count).
 */
import { PassThrough, Writable } from 'node:stream'
import t from 'tap'
import { topCommand, topLines, topScreen, type TopFrame, type TopInput, type TopOutput } from '../../src/commands/top.js'
import type { LinkRate } from '../../src/commands/rates.js'
import type { LinkStatusJson, StatusJson } from '../../src/control/protocol.js'
import { zeroCounters, type ActionCounters } from '../../src/programs/counters.js'
import { ControlClientError } from '../../src/control/client.js'

const rate = (name: string, netns: string, pass: number | null, drop = 0): LinkRate => ({
  netns,
  ifindex: 2,
  name,
  actions: pass === null ? null : { ...zeroCounters(), pass: { packets: pass, bytes: pass * 98 }, drop: { packets: drop, bytes: drop * 60 } },
  total: pass === null ? null : { packets: pass + drop, bytes: pass * 98 + drop * 60 },
  reset: false,
})
const frame = (over: Partial<TopFrame>): TopFrame => ({ clock: '12:00:03', intervalMs: 1000, spanMs: 1004, rates: [], without: 0, ...over })

t.test('topLines: a heading, then the rates; NETNS once another namespace shows; names escaped', async (t) => {
  const cases: [what: string, f: TopFrame, terminal: boolean, lines: string[]][] = [
    [
      'host only, in a pipe',
      frame({ rates: [rate('eth0', 'host', 1500, 20), rate('eth1', 'host', 0)], without: 1 }),
      false,
      [
        '12:00:03  2 links with per-link counters (1 without), rates over 1.00 s',
        'NAME  ACTION  PKT/S  BYTES/S',
        'eth0  pass    1.50k  147k',
        'eth0  drop    20.0   1.20k',
        'eth1  -       0      0',
      ],
    ],
    [
      'on a terminal: the interval and the key',
      frame({ rates: [rate('eth0', 'host', 1)], intervalMs: 500, spanMs: 498 }),
      true,
      ['12:00:03  1 link with per-link counters, rates over 0.50 s, every 0.50 s; q to quit', 'NAME  ACTION  PKT/S  BYTES/S', 'eth0  pass    1.00   98.0'],
    ],
    [
      'another namespace: the NETNS column; a link without a rate yet',
      frame({ rates: [rate('eth0', 'pod-1', 2), rate('eth0', 'host', null)] }),
      false,
      ['12:00:03  2 links with per-link counters, rates over 1.00 s', 'NETNS  NAME  ACTION  PKT/S  BYTES/S', 'pod-1  eth0  pass    2.00   196', 'host   eth0  -       -      -'],
    ],
    [
      'the first sample on a terminal',
      frame({ spanMs: null, rates: [rate('eth0', 'host', null)], intervalMs: 2000 }),
      true,
      ['12:00:03  1 link with per-link counters, first sample, rates from the next, every 2 s; q to quit', 'NAME  ACTION  PKT/S  BYTES/S', 'eth0  -       -      -'],
    ],
    [
      'no link with counters',
      frame({ without: 3 }),
      false,
      ['12:00:03  0 links with per-link counters (3 without), rates over 1.00 s', 'no per-link counters: no link runs a program that keeps them'],
    ],
    [
      'a failed sample: said under the heading, names escaped',
      frame({ rates: [rate('a\u001b]0;PWNED\u0007', 'host', 1)], error: 'top: no answer\u001b[2J' }),
      true,
      [
        '12:00:03  1 link with per-link counters, rates over 1.00 s, every 1 s; q to quit',
        'xdplinkd: top: no answer\\x1b[2J',
        'NAME               ACTION  PKT/S  BYTES/S',
        'a\\x1b]0;PWNED\\x07  pass    1.00   98.0',
      ],
    ],
  ]
  for (const [what, f, terminal, lines] of cases) t.same(topLines(f, terminal), lines, what)
})

t.test('topScreen: from the top left, lines cut to the width and cleared, the rest of the screen cleared', async (t) => {
  const cases: [what: string, lines: string[], columns: number, rows: number, screen: string][] = [
    ['fits', ['ab', 'cd'], 80, 24, '\x1b[Hab\x1b[K\ncd\x1b[K\n\x1b[J'],
    ['cut to the width (characters, not bytes)', ['abcdef', 'αβγδ'], 3, 24, '\x1b[Habc\x1b[K\nαβγ\x1b[K\n\x1b[J'],
    ['too many lines: the last row left empty, the rest counted', ['1', '2', '3', '4', '5'], 80, 4, '\x1b[H1\x1b[K\n2\x1b[K\n... 3 more lines\x1b[K\n\x1b[J'],
    ['exactly the room', ['1', '2', '3'], 80, 4, '\x1b[H1\x1b[K\n2\x1b[K\n3\x1b[K\n\x1b[J'],
    ['a terminal of one row', ['1', '2'], 80, 1, '\x1b[H... 2 more lines\x1b[K\n\x1b[J'],
  ]
  for (const [what, lines, columns, rows, screen] of cases) t.equal(topScreen(lines, columns, rows), screen, what)
})

/** A status answer with one link `eth0` whose xdp_pass counted `pass` packets of 100 bytes; `veth9` has no counters. */
function status(pass: number, pid = 1): StatusJson {
  const l = (name: string, ifindex: number, traffic: ActionCounters | null): LinkStatusJson => ({
    netns: 'host',
    ifindex,
    name,
    kind: 'veth',
    entry: 'e',
    desiredProgId: 7,
    attached: { progId: 7, mode: 'generic', owner: 'ours' },
    state: 'attached',
    lastError: null,
    traffic,
  })
  const traffic = { ...zeroCounters(), pass: { packets: pass, bytes: pass * 100 } }
  return { pid, config: '/c.yaml', links: [l('eth0', 2, traffic), l('veth9', 3, null)], programs: [], counters: { attaches: 0, replaces: 0, detaches: 0, conflicts: 0, errors: {}, overruns: 0, resyncs: 1 } }
}

/** What the command writes, and a stream that looks like a terminal when asked. */
function output(tty?: { columns: number; rows: number }): TopOutput & { text(): string } {
  let text = ''
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString()
      cb()
    },
  }) as unknown as TopOutput & { text(): string }
  if (tty) Object.assign(w, { isTTY: true, ...tty })
  w.text = () => text
  return w
}

/**
 * A fake daemon whose answers come from `answers` (a number: that many packets counted; an Error: a failed request)
 * and a clock that moves one second per request, so the rates are exact.
 */
function daemon(answers: (number | Error)[]) {
  let clock = 0
  let asked = 0
  return {
    asked: () => asked,
    now: () => clock,
    status: async (): Promise<StatusJson> => {
      clock += 1000
      const a = answers[Math.min(asked++, answers.length - 1)]!
      if (a instanceof Error) throw a
      return status(a)
    },
  }
}

t.test('in a pipe: one block per table, the first sample only a baseline; --count tables, count + 1 requests', async (t) => {
  const d = daemon([10, 15, 45, 50])
  const out = output()
  const err = output()
  const code = await topCommand({ socket: '/x', intervalMs: 5, count: 2, out, err, status: d.status, now: d.now, clock: () => 'T', stop: new Promise(() => {}) })
  t.equal(code, 0)
  t.equal(d.asked(), 3)
  t.equal(
    out.text(),
    'T  1 link with per-link counters (1 without), rates over 1.00 s\nNAME  ACTION  PKT/S  BYTES/S\neth0  pass    5.00   500\n\n' +
      'T  1 link with per-link counters (1 without), rates over 1.00 s\nNAME  ACTION  PKT/S  BYTES/S\neth0  pass    30.0   3.00k\n\n',
  )
  t.equal(err.text(), '')
})

t.test('in a pipe: a failed sample is a line on stderr and top goes on; rates span the gap', async (t) => {
  const d = daemon([10, new ControlClientError('top: no answer from xdplinkd at /x within 10 s'), 30])
  const out = output()
  const err = output()
  await topCommand({ socket: '/x', intervalMs: 5, count: 1, out, err, status: d.status, now: d.now, clock: () => 'T', stop: new Promise(() => {}) })
  t.equal(err.text(), 'xdplinkd: top: no answer from xdplinkd at /x within 10 s; asking again in 0.01 s\n')
  t.match(out.text(), /rates over 2\.00 s\n.*\neth0  pass    10\.0   1\.00k\n/, '20 packets over the 2 s since the last good sample')
})

t.test('the first sample fails: the error is the command\'s (exit 1), nothing drawn', async (t) => {
  const d = daemon([new ControlClientError('cannot reach xdplinkd at /x: no socket there (is the daemon running?)')])
  const out = output({ columns: 80, rows: 24 })
  await t.rejects(topCommand({ socket: '/x', intervalMs: 5, out, status: d.status, now: d.now, stop: new Promise(() => {}) }), /no socket there/)
  t.equal(out.text(), '', 'the terminal untouched')
})

t.test('stopped (SIGINT) while waiting: exit 0 at once', async (t) => {
  const d = daemon([1])
  let stop: () => void = () => {}
  const stopped = new Promise<void>((r) => (stop = r))
  const out = output()
  const run = topCommand({ socket: '/x', intervalMs: 60_000, out, status: d.status, now: () => performance.now(), stop: stopped })
  setTimeout(stop, 20)
  t.equal(await run, 0)
  t.equal(d.asked(), 1)
  t.equal(out.text(), '', 'no table: there was only one sample')
})

function keyboard(): TopInput & { raw: boolean[] } {
  const input = new PassThrough() as unknown as TopInput & { raw: boolean[] }
  input.raw = []
  Object.assign(input, { isTTY: true, setRawMode: (r: boolean) => input.raw.push(r) })
  return input
}

t.test('on a terminal: the alternate screen, redrawn in place; q gives the terminal back', async (t) => {
  const d = daemon([10, 20, 30, 40, 50, 60])
  const out = output({ columns: 40, rows: 6 })
  const input = keyboard()
  const run = topCommand({ socket: '/x', intervalMs: 5, out, input, status: d.status, now: d.now, clock: () => 'T', stop: new Promise(() => {}) })
  await new Promise((r) => setTimeout(r, 30))
  ;(input as unknown as PassThrough).write('q')
  t.equal(await run, 0)
  const text = out.text()
  t.ok(text.startsWith('\x1b[?1049h\x1b[?25l\x1b[H'), 'the alternate screen, no cursor, drawn from the top')
  t.ok(text.endsWith('\x1b[?25h\x1b[?1049l'), 'the cursor and the main screen given back, nothing after')
  t.match(text, '\x1b[HT  1 link with per-link counters (1 with\x1b[K\nNAME  ACTION  PKT/S  BYTES/S\x1b[K\neth0  -       -      -\x1b[K\n\x1b[J', 'the first sample at once, cut to 40 columns')
  t.match(text, 'eth0  pass    10.0   1.00k\x1b[K', 'then the rates')
  t.same(input.raw, [true, false], 'raw mode for the keys, and back')
  t.equal((input as unknown as PassThrough).isPaused(), true, 'stdin let go')
})

t.test('on a terminal with --count: the last table stays on the main screen', async (t) => {
  const d = daemon([10, 20])
  const out = output({ columns: 80, rows: 24 })
  const input = keyboard()
  t.equal(await topCommand({ socket: '/x', intervalMs: 5, count: 1, out, input, status: d.status, now: d.now, clock: () => 'T', stop: new Promise(() => {}) }), 0)
  t.ok(out.text().endsWith('\x1b[?25h\x1b[?1049lT  1 link with per-link counters (1 without), rates over 1.00 s\nNAME  ACTION  PKT/S  BYTES/S\neth0  pass    10.0   1.00k\n'))
})
