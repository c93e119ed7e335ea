import t from 'tap'
import { ProgramLoadError, hintFor } from '../../src/programs/errors.js'

t.test('the message names the object, the program, the reason, the errno and the hint', async (t) => {
  const e = new ProgramLoadError({
    stage: 'load',
    objectPath: '/etc/xdp/x.o',
    program: 'xdp_x',
    detail: 'load failed: something',
    errno: 1,
    hint: hintFor('load', 'EPERM'),
  })
  t.equal(e.code, 'EPERM')
  t.match(e.message, /^\/etc\/xdp\/x\.o: program xdp_x: load failed: something \(EPERM\); loading BPF programs needs CAP_BPF/)
  t.ok(e instanceof Error)
  t.equal(e.name, 'ProgramLoadError')
  t.same(e.log, [])
  t.same(e.candidates, [])
})

t.test("libbpf's own error numbers keep libbpf's names", async (t) => {
  const e = new ProgramLoadError({ stage: 'open', objectPath: 'x.o', detail: 'not ELF', errno: 4001, code: 'LIBBPF_ERRNO__FORMAT' })
  t.equal(e.code, 'LIBBPF_ERRNO__FORMAT')
  t.match(e.message, /\(LIBBPF_ERRNO__FORMAT\)$/)
})

t.test('hints', async (t) => {
  t.match(hintFor('bpffs', 'EPERM'), /CAP_SYS_ADMIN/)
  t.match(hintFor('bpffs', 'ENODEV'), /Linux 4\.4/)
  t.match(hintFor('load', 'EINVAL'), /LPM_TRIE maps 4\.11/)
  t.match(hintFor('load', 'EINVAL', ["libbpf: couldn't reuse pinned map at '/x': parameter mismatch"]), /remove the directory/)
  t.match(hintFor('load', 'EINVAL', ['libbpf: specified path /b/x/maps/m is not on BPF FS']), /^the pin directory is not on a BPF filesystem/)
  t.match(hintFor('load', 'ENOSYS'), /CONFIG_BPF_SYSCALL/)
  t.equal(hintFor('read', 'ENOENT'), undefined)
})
