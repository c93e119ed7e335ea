/**
 * libbpf's messages through our print callback, against the real library and kernel: printf-style messages are
 * formatted from their va_list (vsnprintf), whatever their length, and go to the innermost capture or the logger.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { SyscallError } from '../../src/ffi/errno.js'
import { LibbpfError } from '../../src/ffi/libbpf.js'
import { captureLibbpfLog, setLibbpfLogger, type LibbpfMessage } from '../../src/ffi/libbpf-log.js'
import { BpfObject } from '../../src/ffi/bpf-object.js'
import { needsRoot } from '../helpers/netns.js'
import { buildObjects } from '../helpers/bpf.js'

t.test('messages are formatted from their va_list, and bad ELF is a named libbpf error', async (t) => {
  const got: LibbpfMessage[] = []
  const e = t.throws(() =>
    captureLibbpfLog(
      (m) => got.push(m),
      () => BpfObject.open(Buffer.from('this is not an ELF file'), 'junk_name'),
    ),
  ) as unknown
  t.ok(e instanceof LibbpfError && e instanceof SyscallError)
  t.match(e, { code: 'LIBBPF_ERRNO__FORMAT', syscall: 'bpf_object__open_mem', message: /BPF object format invalid/ })
  // %s filled in from the va_list, at the right levels
  t.same(got, [
    { level: 'debug', text: "libbpf: loading object 'junk_name' from buffer\n" },
    { level: 'warn', text: "libbpf: elf: 'junk_name' is not a proper ELF object\n" },
  ])
})

t.test('outside a capture messages go to the logger; captures nest', async (t) => {
  const outside: string[] = []
  const outer: string[] = []
  const inner: string[] = []
  setLibbpfLogger((m) => outside.push(m.text))
  t.teardown(() => setLibbpfLogger(null))
  const junk = Buffer.from('nope')
  t.throws(() => BpfObject.open(junk, 'first'))
  captureLibbpfLog(
    (m) => outer.push(m.text),
    () => {
      t.throws(() => captureLibbpfLog((m) => inner.push(m.text), () => BpfObject.open(junk, 'second')))
      t.throws(() => BpfObject.open(junk, 'third'))
    },
  )
  t.match(outside.join(''), /'first'/)
  t.match(inner.join(''), /'second'/)
  t.notMatch(inner.join(''), /'third'/)
  t.match(outer.join(''), /'third'/)
  t.notMatch(outer.join(''), /'second'/)
})

t.test('kernel', { skip: needsRoot }, async (t) => {
  const objs = buildObjects(t)

  t.test('a message far longer than the first formatting buffer arrives whole', async (t) => {
    const obj = BpfObject.open(readFileSync(objs.fixture('xdp_big_bad')), 'xdp_big_bad')
    t.teardown(() => obj.close())
    const got: LibbpfMessage[] = []
    t.throws(() => captureLibbpfLog((m) => got.push(m), () => obj.load()), { code: 'EACCES', syscall: 'bpf_object__load' })
    const log = got.find((m) => m.text.includes('BEGIN PROG LOAD LOG'))
    t.ok(log, 'the verifier log came through')
    if (!log) return
    t.ok(log.text.length > 64 * 1024, `${log.text.length} bytes`)
    t.match(log.text, /^libbpf: prog 'xdp_big_bad': -- BEGIN PROG LOAD LOG --\n0: R1=ctx/)
    t.match(log.text, /R1 offset is outside of the packet\nprocessed \d+ insns .*\n-- END PROG LOAD LOG --\n$/)
    t.notMatch(log.text, /%[sd]/, 'no conversion left unformatted')
  })
})
