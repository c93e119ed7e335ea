/**
 * loadForCheck (programs/kernel.ts), what `xdplinkd check` loads with: the same choice, verifier and tag as the
 * registry's load, and nothing left behind (no pin, even for maps that ask libbpf to pin them by name; no bpffs
 * needed; the program gone once it returns).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { isBpffs } from '../../src/ffi/libc.js'
import { loadForCheck } from '../../src/programs/kernel.js'
import { ProgramRegistry } from '../../src/programs/registry.js'
import { needsRoot, waitFor } from '../helpers/netns.js'
import { BUNDLED, bpftoolJson, buildObjects, tempBpffs, catchLoad } from '../helpers/bpf.js'

t.test('refused before libbpf: a bad program name, an unreadable file', async (t) => {
  const name = await catchLoad(() => loadForCheck('/nonexistent/x.o', 'not-a-name'))
  t.equal(name.stage, 'select')
  t.match(name.message, /"not-a-name" is not a program name/)
  const missing = await catchLoad(() => loadForCheck('/nonexistent/x.o'))
  t.equal(missing.stage, 'read')
  t.equal(missing.code, 'ENOENT')
  t.match(missing.message, /^\/nonexistent\/x\.o: cannot read the object file/)
})

/** Unique enough to find our map's would-be pin and our program among the host's. */
const PIN_MAP = 'xdpl_chk_pin'
const PIN_PROG = 'xdp_chk_pinned'

/** An object whose map asks to be pinned by name (under /sys/fs/bpf, libbpf's default root). */
function buildPinByName(dir: string): string {
  const src = join(dir, 'pin_by_name.c')
  const obj = join(dir, 'pin_by_name.o')
  writeFileSync(
    src,
    `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ${PIN_MAP} SEC(".maps");
SEC("xdp")
int ${PIN_PROG}(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&${PIN_MAP}, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
`,
  )
  const arch = spawnSync('clang', ['-print-multiarch'], { encoding: 'utf8' }).stdout.trim()
  const r = spawnSync('clang', ['-O2', '-g', '-target', 'bpf', '-Wall', '-Werror', ...(arch ? [`-I/usr/include/${arch}`] : []), '-c', src, '-o', obj], {
    encoding: 'utf8',
  })
  if (r.status !== 0) throw new Error(`clang failed:\n${r.stderr}`)
  return obj
}

t.test('kernel', { skip: needsRoot }, async (t) => {
  const objs = buildObjects(t)

  t.test('each bundled program loads with the tag the registry gets, and nothing is pinned', async (t) => {
    const bpffs = tempBpffs(t)
    // A fresh bpffs may hold the kernel's own entries (maps.debug, progs.debug: CONFIG_BPF_PRELOAD).
    const before = readdirSync(bpffs).sort()
    const r = new ProgramRegistry({ bpffsDir: join(bpffs, 'reg') })
    t.teardown(() => r.close())
    for (const name of BUNDLED) {
      const c = await loadForCheck(objs.bundled(name))
      t.equal(c.name, name)
      t.equal(c.kernelName, name)
      t.match(c.tag, /^[0-9a-f]{16}$/)
      t.ok(c.verifiedInsns === null || c.verifiedInsns > 0, `verified insns: ${c.verifiedInsns}`)
      const p = await r.acquire(objs.bundled(name))
      t.equal(c.tag, p.tag, 'the same tag as the daemon would attach')
    }
    // Only the registry's pins: loadForCheck made none.
    t.same(readdirSync(bpffs).sort(), [...before, 'reg'].sort())
  })

  t.test('the program is gone once it returns (its descriptors closed with the object)', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'xdpl-chk-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const obj = buildPinByName(dir)
    const c = await loadForCheck(obj)
    t.equal(c.name, PIN_PROG)
    await waitFor(
      () => !bpftoolJson<{ name?: string; tag?: string }[]>('prog', 'show').some((p) => p.name === PIN_PROG && p.tag === c.tag),
      'the checked program to be freed',
      5000,
    )
    t.pass('no program of ours left in the kernel')
  })

  t.test('a map that asks to be pinned by name is not pinned (and needs no bpffs)', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'xdpl-chk-'))
    const pin = `/sys/fs/bpf/${PIN_MAP}`
    t.teardown(() => {
      rmSync(dir, { recursive: true, force: true })
      rmSync(pin, { force: true }) // only if the test failed on a host with a bpffs at /sys/fs/bpf
    })
    const obj = buildPinByName(dir)
    t.notOk(existsSync(pin), 'no pin before')
    const c = await loadForCheck(obj)
    t.equal(c.name, PIN_PROG)
    t.notOk(existsSync(pin), `no pin at ${pin} after`)
    // Where /sys/fs/bpf is no bpffs, libbpf's pinning would have failed the load outright.
    t.comment(`/sys/fs/bpf is ${existsSync('/sys/fs/bpf') && isBpffs('/sys/fs/bpf') ? '' : 'not '}a bpffs here`)
  })

  t.test('a verifier rejection carries the verifier reason', async (t) => {
    const e = await catchLoad(() => loadForCheck(objs.fixture('xdp_bad')))
    t.equal(e.stage, 'load')
    t.equal(e.code, 'EACCES')
    t.equal(e.program, 'xdp_bad')
    t.match(e.message, /rejected by the verifier: invalid access to packet.*R1 offset is outside of the packet/)
    t.ok(e.log.length > 0 && e.log.length <= 50)
  })

  t.test('program choice as the registry makes it', async (t) => {
    const e = await catchLoad(() => loadForCheck(objs.fixture('xdp_two')))
    t.equal(e.stage, 'select')
    t.same(e.candidates, ['xdp_first', 'xdp_second'])
    t.equal((await loadForCheck(objs.fixture('xdp_two'), 'xdp_second')).name, 'xdp_second')
    t.match((await catchLoad(() => loadForCheck(objs.fixture('xdp_two'), 'tc_other'))).message, /sched_cls/)
    t.match((await catchLoad(() => loadForCheck(objs.fixture('xdp_two'), 'nope'))).message, /no such program/)
    t.equal((await loadForCheck(objs.fixture('xdp_with_tc'))).name, 'xdp_only')
  })

  t.test('not a BPF object: an open error', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'xdpl-chk-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    writeFileSync(join(dir, 'junk.o'), 'not an ELF file')
    const e = await catchLoad(() => loadForCheck(join(dir, 'junk.o')))
    t.equal(e.stage, 'open')
  })
})
