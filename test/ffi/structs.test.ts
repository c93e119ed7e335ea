/**
 * The struct layouts of src/ffi/structs.ts against two describers nobody here wrote: the C compiler reading each
 * struct's header (`offsetof`, `sizeof`), and, for the kernel's own structs, the running kernel's BTF
 * (/sys/kernel/btf/vmlinux, read with bpftool). As root, also what the kernel itself answers for the info structs:
 * the info_len it writes back.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { objGet, objInfo } from '../../src/ffi/bpf-fd.js'
import { BPF_OBJ_NAME_LEN, BPF_TAG_SIZE, STRUCTS, type StructLayout } from '../../src/ffi/structs.js'
import { needsRoot } from '../helpers/netns.js'
import { type BpftoolBtfType, bpftool, bpftoolBtf, buildObjects, tempBpffs } from '../helpers/bpf.js'

const LAYOUTS: StructLayout[] = Object.values(STRUCTS)
const VMLINUX = '/sys/kernel/btf/vmlinux'

/** A struct as a describer sees it: its sizeof, and each member's offset and size in bytes. */
interface Described {
  size: number
  members: Map<string, { offset: number; size: number }>
}

/** The same checks whoever describes the struct: every member we use where they say, within what we pass. */
function checkLayout(t: Test, layout: StructLayout, described: Described | undefined, by: string): void {
  if (!described) {
    t.fail(`${by} does not know struct ${layout.struct}`)
    return
  }
  for (const [name, offset] of Object.entries(layout.fields)) {
    const m = described.members.get(name)
    t.equal(offset, m?.offset, `${layout.struct}.${name}: offset, as ${by} says`)
    if (m) t.ok(offset + m.size <= layout.size, `${layout.struct}.${name} ends within the ${layout.size} bytes we pass`)
  }
  if (layout.whole) t.equal(layout.size, described.size, `${layout.struct}: the whole struct, as ${by} says`)
  else t.ok(layout.size <= described.size, `${layout.struct}: we pass ${layout.size} bytes of ${described.size}`)
}

const clang = spawnSync('clang', ['--version']).status === 0

t.test('every layout is what the C compiler makes of its header', { skip: clang ? false : 'no clang' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xdpl-structs-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // One line per member: struct, member, offsetof, sizeof; the struct's own sizeof under the member name "".
  const print = (s: string, m: string, off: string, size: string): string =>
    `  printf("%s %s %zu %zu\\n", "${s}", "${m}", (size_t)(${off}), (size_t)(${size}));`
  const src = [
    '#include <stddef.h>',
    '#include <stdio.h>',
    ...new Set(LAYOUTS.map((l) => `#include <${l.header}>`)),
    'int main(void) {',
    ...LAYOUTS.flatMap((l) => [
      print(l.struct, '', '0', `sizeof(struct ${l.struct})`),
      ...Object.keys(l.fields).map((m) =>
        print(l.struct, m, `offsetof(struct ${l.struct}, ${m})`, `sizeof(((struct ${l.struct} *)0)->${m})`),
      ),
    ]),
    '  return 0;',
    '}',
  ].join('\n')
  writeFileSync(join(dir, 'layouts.c'), src)
  execFileSync('clang', ['-o', join(dir, 'layouts'), join(dir, 'layouts.c')], { stdio: 'pipe' })
  const described = new Map<string, Described>()
  for (const line of execFileSync(join(dir, 'layouts'), { encoding: 'utf8' }).trim().split('\n')) {
    const [s, m, off, size] = line.split(' ') as [string, string, string, string]
    const d = described.get(s) ?? described.set(s, { size: 0, members: new Map() }).get(s)!
    if (m === '') d.size = Number(size)
    else d.members.set(m, { offset: Number(off), size: Number(size) })
  }
  for (const l of LAYOUTS) checkLayout(t, l, described.get(l.struct), 'the compiler')
  t.equal(described.get('bpf_prog_info')?.members.get('name')?.size, BPF_OBJ_NAME_LEN, 'BPF_OBJ_NAME_LEN')
  t.equal(described.get('bpf_prog_info')?.members.get('tag')?.size, BPF_TAG_SIZE, 'BPF_TAG_SIZE')
})

/** The kernel's structs by name, as its BTF describes them (`bpftool btf dump file ... format raw`, as JSON). */
function kernelStructs(): Map<string, Described> {
  const byId = bpftoolBtf('file', VMLINUX)
  const types = [...byId.values()]
  const sizeOf = (id: number): number => {
    const x = byId.get(id)
    if (!x) throw new Error(`BTF type ${id} not found`)
    if (x.kind === 'PTR') return 8
    if (x.kind === 'ARRAY') return x.nr_elems! * sizeOf(x.type_id!)
    if (x.size !== undefined) return x.size
    return sizeOf(x.type_id!) // TYPEDEF, CONST, VOLATILE, RESTRICT, TYPE_TAG
  }
  // The members of an anonymous struct or union member are the outer struct's (btf_type's `size` and `type`).
  const addMembers = (into: Described['members'], x: BpftoolBtfType, base: number): void => {
    for (const m of x.members ?? []) {
      if (m.bitfield_size !== undefined || m.bits_offset % 8 !== 0) continue
      const inner = byId.get(m.type_id)
      if (m.name === '(anon)' && (inner?.kind === 'STRUCT' || inner?.kind === 'UNION')) {
        addMembers(into, inner, base + m.bits_offset / 8)
      } else {
        into.set(m.name, { offset: base + m.bits_offset / 8, size: sizeOf(m.type_id) })
      }
    }
  }
  const structs = new Map<string, Described>()
  for (const x of types) {
    if (x.kind !== 'STRUCT' || structs.has(x.name)) continue
    const members = new Map<string, { offset: number; size: number }>()
    addMembers(members, x, 0)
    structs.set(x.name, { size: x.size!, members })
  }
  return structs
}

const noBtf = !existsSync(VMLINUX) ? `no ${VMLINUX}` : spawnSync('bpftool', ['version']).status !== 0 ? 'no bpftool' : false

t.test("the kernel's own structs are laid out as its BTF says", { skip: noBtf }, async (t) => {
  const btf = kernelStructs()
  for (const l of LAYOUTS.filter((l) => l.kernel)) checkLayout(t, l, btf.get(l.struct), "the kernel's BTF")
})

t.test('kernel', { skip: needsRoot || noBtf }, async (t) => {
  t.test('BPF_OBJ_GET_INFO_BY_FD takes our prefix whole, and writes back its own sizeof in full', async (t) => {
    const btf = kernelStructs()
    const bpffs = tempBpffs(t)
    const objs = buildObjects(t)
    bpftool('prog', 'load', objs.bundled('xdp_pass'), join(bpffs, 'prog'))
    bpftool('map', 'create', join(bpffs, 'map'), 'type', 'array', 'key', '4', 'value', '4', 'entries', '1', 'name', 'xdpl_layout')
    for (const [pin, layout] of [
      ['prog', STRUCTS.bpf_prog_info],
      ['map', STRUCTS.bpf_map_info],
    ] as const) {
      const fd = objGet(join(bpffs, pin))
      t.teardown(() => fd.close())
      t.equal(objInfo(fd, Buffer.alloc(layout.size)), layout.size, `${layout.struct}: the prefix we pass`)
      const full = btf.get(layout.struct)?.size
      t.equal(objInfo(fd, Buffer.alloc(4096)), full, `${layout.struct}: the kernel's sizeof, as its BTF says`)
    }
  })
})
