/**
 * docs/troubleshooting.md quotes what the daemon logs; each quoted message must still be one the code produces, or
 * an operator searching the journal for it finds nothing. No root needed.
 */
import t from 'tap'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const ROOT = new URL('../../', import.meta.url).pathname
const DOC = readFileSync(join(ROOT, 'docs/troubleshooting.md'), 'utf8')

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e)
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [readFileSync(p, 'utf8')] : []
  })
}
const SRC = sources(join(ROOT, 'src')).join('\n')

// The constant parts of each message the guide quotes (the variable parts, names and numbers, left out).
const QUOTED = [
  'is not a known link kind; did you mean',
  'a program xdplinkd does not own (id ',
  'is attached; leaving it (set replace-foreign to take over)',
  'no native XDP here (',
  '; using generic mode',
  'another process (another xdplinkd?) is listening on ',
  'cannot serve metrics on ',
  'no BPF filesystem at ',
  "couldn't reuse pinned map",
  'reload rejected, the previous config stays in force:',
  ': takes effect after a restart',
  'netlink overrun: notifications were lost; re-dumped ',
  'watchdog ping withheld: the netlink receive path is not healthy',
  'this kernel has no XDP_FLAGS_REPLACE (Linux < 5.7): program swaps are not atomic',
  'replacing without XDP_FLAGS_REPLACE (kernel < 5.7): the swap is not atomic',
  'cannot tell whether the kernel has XDP_FLAGS_REPLACE (',
  'refusing the pin directory ',
  'cannot remove the untrusted ',
  'not adopting ',
  '; unpinned and replaced by a fresh load',
  'object file changed but cannot be used: ',
  'list file changed but cannot be read: ',
  '; the contents in force stay',
  '; the program loaded from it stays attached',
  'is a symbolic link (not followed)',
  'for network namespaces',
  'refusing to watch ',
  'managing network namespace ',
  'is not used as a network namespace: ',
  'xdplinkd needs CAP_SYS_ADMIN, under systemd the netns.conf drop-in',
  'is reserved for the daemon',
  'already has the name ',
  'released: ',
  'its file is gone',
  'no entry is for it',
]

t.test('every message the guide quotes is in the guide and in the code', async (t) => {
  for (const q of QUOTED) {
    t.ok(DOC.includes(q), `docs/troubleshooting.md quotes ${JSON.stringify(q)}`)
    t.ok(SRC.includes(q), `src/ still produces ${JSON.stringify(q)}`)
  }
})

t.test('every exit status the guide names is one the reference documents', async (t) => {
  const reference = readFileSync(join(ROOT, 'docs/reference.md'), 'utf8')
  for (const m of DOC.matchAll(/^\| (\d+)[ ,|]/gm)) t.match(reference, new RegExp(`^\\| ${m[1]} \\|`, 'm'), `exit status ${m[1]}`)
})
