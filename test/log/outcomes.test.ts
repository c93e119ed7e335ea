import t from 'tap'
import { pino } from 'pino'
import { logOutcome, outcomeLine } from '../../src/log/outcomes.js'
import type { ReconcilerEvent } from '../../src/reconcile/reconciler.js'

const link = { ifindex: 2, name: 'veth0', entry: 'web' }
const ctx = { ifindex: 2, ifname: 'veth0', entry: 'web' }

t.test('every outcome as its log line: level, fields and words', async (t) => {
  const cases: [ReconcilerEvent, string, Record<string, unknown>, string][] = [
    [{ kind: 'attached', link, progId: 7, mode: 'native' }, 'info', { ...ctx, action: 'attach', progId: 7, mode: 'native' }, 'veth0: attached program 7 (native)'],
    [
      { kind: 'replaced', link, progId: 7, oldProgId: 6, mode: 'generic', foreign: true },
      'info',
      { ...ctx, action: 'replace', progId: 7, oldProgId: 6, mode: 'generic' },
      'veth0: replaced program 6 with 7 (generic, foreign)',
    ],
    [
      { kind: 'remoded', link, progId: 7, oldProgId: 7, from: 'generic', mode: 'native' },
      'info',
      { ...ctx, action: 'attach', progId: 7, oldProgId: 7, mode: 'native' },
      'veth0: moved program from generic to native mode (detach, then attach: not atomic)',
    ],
    [{ kind: 'detached', link, progId: 7, mode: 'generic' }, 'info', { ...ctx, action: 'detach', progId: 7, mode: 'generic' }, 'veth0: detached program 7'],
    [{ kind: 'recovered', link, failures: 2 }, 'info', { ...ctx, action: 'recovered' }, 'veth0: recovered after 2 failed attempts'],
    [
      { kind: 'conflict', link, foreignProgId: 99, mode: 'native' },
      'warn',
      { ...ctx, action: 'conflict', progId: 99, mode: 'native' },
      'veth0: a program xdplinkd does not own (id 99) is attached; leaving it (set replace-foreign to take over)',
    ],
    [
      { kind: 'fallback', link, native: 'unsupported', failure: { source: 'kernel', errno: 95, extAck: 'Underlying driver does not support XDP in native mode' } },
      'info',
      { ...ctx, action: 'fallback', mode: 'generic' },
      'veth0: no native XDP here (Underlying driver does not support XDP in native mode); using generic mode',
    ],
    [
      { kind: 'fallback', link, native: 'unsupported', failure: { source: 'kernel', errno: 95, extAck: null } },
      'info',
      { action: 'fallback' },
      'veth0: no native XDP here (EOPNOTSUPP); using generic mode',
    ],
    [
      { kind: 'fallback', link, native: 'refused', failure: { source: 'kernel', errno: 34, extAck: 'veth: Peer MTU is too large to set XDP' } },
      'warn',
      { ...ctx, action: 'fallback', mode: 'generic', code: 'ERANGE' },
      'veth0: native XDP refused (ERANGE: veth: Peer MTU is too large to set XDP); using generic mode',
    ],
    [
      { kind: 'fallback', link, native: 'refused', failure: { source: 'kernel', errno: 12, extAck: null } },
      'warn',
      { code: 'ENOMEM' },
      'veth0: native XDP refused (ENOMEM); using generic mode',
    ],
    [
      { kind: 'failed', link, action: 'attach', failure: { source: 'kernel', errno: 5, extAck: 'bad thing' }, failures: 1, retryInMs: 1000, repeated: false },
      'warn',
      { ...ctx, action: 'error', errno: 5, code: 'EIO', source: 'kernel', kind: 'attach', retryMs: 1000 },
      'veth0: attach failed: EIO: bad thing; retrying in 1000 ms',
    ],
    [
      { kind: 'failed', link, action: 'attach', failure: { source: 'kernel', errno: 5, extAck: 'bad thing' }, failures: 2, retryInMs: 2000, repeated: true },
      'debug',
      { action: 'error', retryMs: 2000 },
      'veth0: attach failed: EIO: bad thing; retrying in 2000 ms',
    ],
    [
      { kind: 'failed', link, action: 'replace', failure: { source: 'libbpf', errno: 1, message: 'bpf_prog_get_fd_by_id: EPERM' }, failures: 1, retryInMs: 1000, repeated: false },
      'warn',
      { code: 'EPERM', source: 'libbpf' },
      'veth0: replace failed: EPERM (libbpf: bpf_prog_get_fd_by_id: EPERM); retrying in 1000 ms',
    ],
    [{ kind: 'cut-off', links: 3 }, 'debug', { links: 3 }, 'stopping: the requests for 3 links were cut off'],
    [{ kind: 'reread-failed', links: 2, message: 'boom' }, 'warn', { links: 2 }, 'reading links again failed: boom; they are retried with backoff'],
    [
      { kind: 'not-atomic', link: { ifindex: 2, name: 'veth0' } },
      'warn',
      { ifindex: 2, ifname: 'veth0' },
      'replacing without XDP_FLAGS_REPLACE (kernel < 5.7): the swap is not atomic',
    ],
  ]
  for (const [e, level, fields, msg] of cases) {
    const l = outcomeLine(e)
    t.equal(l.level, level, `${e.kind}: level`)
    t.match(l.fields, fields, `${e.kind}: fields`)
    t.equal(l.msg, msg, `${e.kind}: words`)
  }
})

t.test('logOutcome writes the line through pino at its level', async (t) => {
  const out: Record<string, unknown>[] = []
  const log = pino({ level: 'debug' }, { write: (s: string) => void out.push(JSON.parse(s)) })
  logOutcome(log, { kind: 'conflict', link, foreignProgId: 99, mode: 'native' })
  t.match(out, [{ level: 40, action: 'conflict', ifname: 'veth0', progId: 99, msg: /does not own \(id 99\)/ }])
})

t.test('logOutcome names a namespace other than the daemon own in the text', async (t) => {
  const out: Record<string, unknown>[] = []
  const log = pino({ level: 'debug' }, { write: (s: string) => void out.push(JSON.parse(s)) })
  logOutcome(log, { kind: 'attached', link, progId: 7, mode: 'generic' }, 'pod-1')
  logOutcome(log, { kind: 'attached', link, progId: 7, mode: 'generic' })
  t.equal(out[0]!.msg, `netns pod-1: ${out[1]!.msg as string}`)
  t.equal(out[0]!.netns, 'pod-1', 'and in a field')
  t.notMatch(out[1]!.msg, /netns/)
  t.notOk('netns' in out[1]!)
})
