import t from 'tap'
import { constants } from 'node:os'
import { ENOTSUPP, ERRNO, errnoName, SyscallError } from '../../src/ffi/errno.js'

t.test('a number with two spellings gets the canonical one, whatever order Node lists them in', async (t) => {
  // [number, canonical name, alias]: include/uapi/asm-generic/errno.h
  const table: [number, string, string][] = [
    [95, 'EOPNOTSUPP', 'ENOTSUP'],
    [11, 'EAGAIN', 'EWOULDBLOCK'],
    [35, 'EDEADLK', 'EDEADLOCK'],
  ]
  for (const [n, name, alias] of table) {
    t.equal(errnoName(n), name, `${n} is ${name}`)
    t.equal(errnoName(-n), name, `-${n} (as netlink sends it) is ${name}`)
    const known = constants.errno[alias as keyof typeof constants.errno] as number | undefined
    // Node's table has ENOTSUP and EWOULDBLOCK, not EDEADLOCK: where it has the alias, it is the same number.
    if (known !== undefined) t.equal(known, n, `Node knows ${alias} as ${n} too`)
    t.equal(new SyscallError('x', n).code, name)
  }
})

t.test('every other number keeps its only name; an unknown one is E<n>', async (t) => {
  t.equal(errnoName(ERRNO.ENOBUFS), 'ENOBUFS')
  t.equal(errnoName(ERRNO.EBUSY), 'EBUSY')
  t.equal(errnoName(ERRNO.ERANGE), 'ERANGE')
  t.equal(errnoName(4242), 'E4242')
})

t.test("the kernel-internal ENOTSUPP (524) the bpf() syscall answers has its kernel name", async (t) => {
  t.equal(errnoName(ENOTSUPP), 'ENOTSUPP')
  t.equal(errnoName(524), 'ENOTSUPP')
  t.not(ENOTSUPP, ERRNO.EOPNOTSUPP)
})
