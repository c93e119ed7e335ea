/**
 * The libbpf binding against the real library: it loads and is 1.x, and a failed call's error names its errno.
 * (A libbpf error number of its own, LIBBPF_ERRNO__*: libbpf-log.test.ts, where a bad ELF image fails.)
 */
import t from 'tap'
import { libbpfVersion } from '../../src/ffi/libbpf.js'
import { objGet } from '../../src/ffi/bpf-fd.js'
import { needsRoot } from '../helpers/netns.js'

t.test('libbpf is 1.x', async (t) => {
  t.match(libbpfVersion(), /^[1-9]\d*\.\d+$/)
})

t.test('kernel', { skip: needsRoot }, async (t) => {
  t.test('errors name the errno', async (t) => {
    t.throws(() => objGet('/nonexistent/pin'), { name: 'SyscallError', code: 'ENOENT', syscall: 'bpf_obj_get' })
  })
})
