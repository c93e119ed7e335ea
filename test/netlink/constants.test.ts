/**
 * Every numeric constant of src/netlink/constants.ts and src/rtnl/constants.ts against the C compiler's view of the
 * kernel uapi headers (a constant named like a C one must have its value). Skipped without a C compiler or headers.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as netlink from '../../src/netlink/constants.js'
import * as rtnl from '../../src/rtnl/constants.js'

// Names of our own, not in the headers: struct sizes spelled out.
const OURS = new Set(['IFINFOMSG_LEN', 'NLMSGERR_LEN'])

function cc(): string | null {
  for (const c of ['cc', 'gcc', 'clang']) {
    try {
      execFileSync(c, ['--version'], { stdio: 'ignore' })
      return c
    } catch {
      /* next */
    }
  }
  return null
}

const compiler = cc()

t.test('constants match the kernel uapi headers', { skip: compiler ? false : 'no C compiler' }, async (t) => {
  const values = new Map<string, number>()
  for (const [name, v] of [...Object.entries(netlink), ...Object.entries(rtnl)]) {
    if (typeof v === 'number' && !OURS.has(name)) values.set(name, v)
  }
  const dir = mkdtempSync(join(tmpdir(), 'nlconst-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const src = [
    '#include <stdio.h>',
    '#include <sys/socket.h>',
    '#include <linux/netlink.h>',
    '#include <linux/rtnetlink.h>',
    '#include <linux/if_link.h>',
    '#include <linux/if.h>',
    'int main(void) {',
    // NLA_TYPE_MASK is an int in C (~0xc000); only its low 16 bits can meet nla_type
    ...[...values.keys()].map((n) => `  printf("%s %ld\\n", "${n}", (long)(${n === 'NLA_TYPE_MASK' ? '(NLA_TYPE_MASK) & 0xffff' : n}));`),
    '  return 0;',
    '}',
  ].join('\n')
  writeFileSync(join(dir, 'c.c'), src)
  try {
    execFileSync(compiler!, ['-o', join(dir, 'c'), join(dir, 'c.c')], { stdio: 'pipe' })
  } catch (e) {
    // Older headers lack newer names; that is not a wrong value.
    const why = String((e as { stderr?: Buffer }).stderr ?? e).split('\n')[0]
    t.pass('constants vs headers', { skip: `the headers do not define every name: ${why}` })
    return
  }
  const out = execFileSync(join(dir, 'c'), { encoding: 'utf8' })
  const seen = new Map(out.trim().split('\n').map((l) => l.split(' ') as [string, string]))
  for (const [name, v] of values) t.equal(v, Number(seen.get(name)), name)
})

t.test('align helpers', async (t) => {
  t.same([0, 1, 3, 4, 5, 16, 17].map(netlink.nlmsgAlign), [0, 4, 4, 4, 8, 16, 20])
  t.same([0, 1, 4, 5, 7, 8].map(netlink.nlaAlign), [0, 4, 4, 8, 8, 8])
  t.equal(netlink.NLM_F_DUMP, netlink.NLM_F_ROOT | netlink.NLM_F_MATCH)
  t.equal(rtnl.XDP_FLAGS_MASK, 0x1f)
})
