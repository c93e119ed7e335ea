import t from 'tap'
import { LogTail, MAX_LINE, verifierReason } from '../../src/programs/log.js'

const verifierMessage = [
  "libbpf: prog 'xdp_bad': -- BEGIN PROG LOAD LOG --",
  '0: R1=ctx() R10=fp0',
  '; struct ethhdr *eth = (void *)(long)ctx->data; @ xdp_bad.c:15',
  '0: (61) r1 = *(u32 *)(r1 +0)          ; R1=pkt(r=0)',
  '; if (eth->h_proto == bpf_htons(ETH_P_IP)) @ xdp_bad.c:17',
  '1: (71) r2 = *(u8 *)(r1 +12)',
  'invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0)',
  'R1 offset is outside of the packet',
  'processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0',
  '-- END PROG LOAD LOG --',
  '',
].join('\n')

t.test('the verifier reason is the judging lines, not the narration', async (t) => {
  t.equal(
    verifierReason(verifierMessage),
    'invalid access to packet, off=12 size=1, R1(id=0,off=12,r=0); R1 offset is outside of the packet',
  )
  t.equal(
    verifierReason('-- BEGIN PROG LOAD LOG --\ncombined stack size of 4 calls is 544. Too large\nverification time 1 usec\nstack depth 24\nprocessed 5 insns\n-- END PROG LOAD LOG --\n'),
    'combined stack size of 4 calls is 544. Too large',
  )
  t.equal(verifierReason('-- BEGIN PROG LOAD LOG --\nprocessed 0 insns (limit 1000000)\n-- END PROG LOAD LOG --\n'), undefined)
  t.equal(verifierReason("libbpf: map 'x': failed to create: Invalid argument(-22)"), undefined)
})

t.test('the tail keeps the last lines of WARN/INFO, never DEBUG', async (t) => {
  const tail = new LogTail(5)
  tail.add({ level: 'debug', text: 'libbpf: loading object from buffer\n' })
  tail.add({ level: 'warn', text: "libbpf: prog 'xdp_bad': BPF program load failed: Permission denied\n" })
  tail.add({ level: 'warn', text: verifierMessage })
  tail.add({ level: 'warn', text: "libbpf: prog 'xdp_bad': failed to load: -13\n" })
  tail.add({ level: 'warn', text: "libbpf: failed to load object 'xdp_bad'\n" })
  t.same(tail.lines(), [
    'R1 offset is outside of the packet',
    'processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0',
    '-- END PROG LOAD LOG --',
    "libbpf: prog 'xdp_bad': failed to load: -13",
    "libbpf: failed to load object 'xdp_bad'",
  ])
  t.match(tail.verifierReason, /^invalid access to packet/)
  t.equal(tail.firstWarning, "prog 'xdp_bad': BPF program load failed: Permission denied")
})

t.test('a huge log stays small', async (t) => {
  const tail = new LogTail(50)
  const lines = Array.from({ length: 200_000 }, (_, i) => `${i}: (07) r1 += 1  ; R1_w=scalar()`)
  tail.add({ level: 'warn', text: `-- BEGIN PROG LOAD LOG --\n${lines.join('\n')}\nR1 bad\n-- END PROG LOAD LOG --\n` })
  tail.add({ level: 'warn', text: `libbpf: ${'x'.repeat(10_000)}\n` })
  t.equal(tail.lines().length, 50)
  t.ok(tail.lines().every((l) => l.length <= MAX_LINE + 1))
  t.equal(tail.verifierReason, 'R1 bad')
})
