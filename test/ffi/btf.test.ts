/**
 * The BTF model read through libbpf (src/ffi/btf.ts, BpfMap.spec, mapSpecOfFd) against a tool nobody here wrote:
 * bpftool's raw dump (`bpftool -j btf dump ... format raw`), turned into the model by its own words (kind names,
 * '(anon)', encodings, bits_offset, bitfield_size, nr_elems, enum values), and the map definitions as the object's
 * BTF spells them (`__uint(name, n)` is a pointer to an array of n; `__type(key, T)` a pointer to T). Each map of
 * test/fixtures/bpf/maps_kinds.o from the object (no root), and as root from its pinned map in the kernel; the
 * kinds clang does not emit here (ENUM64, signed ENUM) from the kernel's own BTF.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { objGet } from '../../src/ffi/bpf-fd.js'
import { BpfObject } from '../../src/ffi/bpf-object.js'
import { kernelBtfTypes, mapSpecOfFd } from '../../src/ffi/btf.js'
import { captureLibbpfLog } from '../../src/ffi/libbpf-log.js'
import type { BtfType, BtfTypes, MapSpec } from '../../src/maps/btf.js'
import { needsRoot } from '../helpers/netns.js'
import { type BpftoolBtfType, bpftool, bpftoolBtf, bpftoolJson, buildObjects, tempBpffs } from '../helpers/bpf.js'

const anon = (name: string): string => (name === '(anon)' ? '' : name)
const MODIFIERS: Record<string, 'volatile' | 'const' | 'restrict' | 'type_tag'> = {
  VOLATILE: 'volatile',
  CONST: 'const',
  RESTRICT: 'restrict',
  TYPE_TAG: 'type_tag',
}
// bpftool btf.c, btf_int_enc_str: one word per encoding value.
const INT_ENCODINGS: Record<string, { signed: boolean; char: boolean; bool: boolean }> = {
  '(none)': { signed: false, char: false, bool: false },
  SIGNED: { signed: true, char: false, bool: false },
  CHAR: { signed: false, char: true, bool: false },
  BOOL: { signed: false, char: false, bool: true },
}

/** What the model should say of a type, by bpftool. */
function expected(r: BpftoolBtfType): BtfType {
  const { id } = r
  switch (r.kind) {
    case 'INT': {
      const enc = INT_ENCODINGS[r.encoding!]
      if (!enc) throw new Error(`type ${id}: bpftool encoding ${r.encoding}`)
      return { kind: 'int', id, name: r.name, size: r.size!, ...enc, bitOffset: r.bits_offset!, bits: r.nr_bits! }
    }
    case 'FLOAT':
      return { kind: 'float', id, name: r.name, size: r.size! }
    case 'ARRAY':
      return { kind: 'array', id, elem: r.type_id!, nelems: r.nr_elems! }
    case 'STRUCT':
    case 'UNION':
      return {
        kind: r.kind === 'STRUCT' ? 'struct' : 'union',
        id,
        name: anon(r.name),
        size: r.size!,
        members: r.members!.map((m) => ({
          name: anon(m.name),
          type: m.type_id,
          bitOffset: m.bits_offset,
          bitfieldSize: m.bitfield_size ?? 0,
        })),
      }
    case 'ENUM':
    case 'ENUM64': {
      // bpftool 7.1 prints an unsigned ENUM's __s32 `val` widened with its sign (-1 as 2^64-1, where its text
      // format says 4294967295): read every value in the record's own width.
      const signed = r.encoding === 'SIGNED'
      const width = r.kind === 'ENUM' ? 32 : 64
      const value = (v: string): bigint => (signed ? BigInt.asIntN(width, BigInt(v)) : BigInt.asUintN(width, BigInt(v)))
      const values = r.values!.map((v) => ({ name: v.name, value: value(v.val) }))
      return { kind: 'enum', id, name: anon(r.name), size: r.size!, signed, values }
    }
    case 'TYPEDEF':
      return { kind: 'typedef', id, name: r.name, type: r.type_id! }
    default: {
      const which = MODIFIERS[r.kind]
      if (which) return { kind: 'modifier', id, which, type: r.type_id! }
      return { kind: 'other', id, what: r.kind.toLowerCase(), name: anon(r.name) }
    }
  }
}

/** The ids reachable from `roots` through what a key's or value's bytes are made of, in bpftool's dump. */
function reachable(raw: Map<number, BpftoolBtfType>, roots: number[]): Set<number> {
  const seen = new Set<number>()
  const todo = [...roots]
  for (let id = todo.pop(); id !== undefined; id = todo.pop()) {
    if (id === 0 || seen.has(id)) continue
    seen.add(id)
    const r = raw.get(id)
    if (!r) throw new Error(`bpftool's dump has no type ${id}`)
    if (r.kind === 'STRUCT' || r.kind === 'UNION') todo.push(...r.members!.map((m) => m.type_id))
    else if (r.kind === 'ARRAY' || r.kind === 'TYPEDEF' || r.kind in MODIFIERS) todo.push(r.type_id!)
  }
  return seen
}

/** Our types against bpftool's: the same ids, and each one the same. */
function sameTypes(t: Test, ours: BtfTypes, raw: Map<number, BpftoolBtfType>, ids: Set<number>, what: string): void {
  const sorted = [...ids].sort((a, b) => a - b)
  t.same([...ours.keys()].sort((a, b) => a - b), sorted, `${what}: the types reachable, as bpftool has them`)
  t.same(
    sorted.map((id) => ours.get(id)),
    sorted.map((id) => expected(raw.get(id)!)),
    `${what}: each type as bpftool says`,
  )
}

/** A map's definition in the object's BTF: its VAR in .maps, the struct of pointer members libbpf reads. */
interface Definition {
  key: number | null
  value: number | null
  /** The `__uint(name, n)` members: type, max_entries, map_flags, key_size, value_size. */
  uint: Record<string, number>
}
function definition(raw: Map<number, BpftoolBtfType>, map: string): Definition {
  const v = [...raw.values()].find((r) => r.kind === 'VAR' && r.name === map)
  if (!v) throw new Error(`no VAR ${map} in the object's BTF`)
  const def = raw.get(v.type_id!)!
  const out: Definition = { key: null, value: null, uint: {} }
  for (const m of def.members!) {
    const target = raw.get(raw.get(m.type_id)!.type_id!)! // every member is a pointer
    if (m.name === 'key' || m.name === 'value') out[m.name] = target.id
    else out.uint[m.name] = target.nr_elems! // __uint(name, n): int (*name)[n]
  }
  return out
}

/** sizeof by bpftool's dump, for a key or value given by type. */
function sizeOf(raw: Map<number, BpftoolBtfType>, id: number): number {
  const r = raw.get(id)!
  if (r.kind === 'ARRAY') return r.nr_elems! * sizeOf(raw, r.type_id!)
  return r.size ?? sizeOf(raw, r.type_id!)
}

// <linux/bpf.h> enum bpf_map_type, and bpftool's name for each (libbpf's libbpf_bpf_map_type_str).
const MAP_TYPES: Record<number, string> = { 1: 'hash', 2: 'array', 5: 'percpu_hash', 6: 'percpu_array', 11: 'lpm_trie' }

const FIXTURE_MAPS = [
  'ints_by_u32',
  'u8_to_s8',
  'u16_to_s16',
  'u64_to_s64',
  's32_to_bool',
  'enums_by_color',
  'nested_array',
  'bitfield_array',
  'float_array',
  'percpu_by_addr',
  'percpu_array',
  'modifiers',
  'sizes_only',
  'arrays_by_name',
  'flows',
  'neighbours',
  'lpm_v4',
]

const missing = (cmd: string, arg: string): boolean => spawnSync(cmd, [arg]).status !== 0
const noTools = missing('clang', '--version') ? 'no clang' : missing('bpftool', 'version') ? 'no bpftool' : false

t.test('an opened object: every map, by the BTF bpftool reads from the file', { skip: noTools }, async (t) => {
  const objs = buildObjects(t)
  const path = objs.fixture('maps_kinds')
  const raw = bpftoolBtf('file', path, 'format', 'raw')
  const obj = BpfObject.open(readFileSync(path), 'maps_kinds')
  t.teardown(() => obj.close())
  const maps = obj.maps()
  t.same(maps.map((m) => m.name).sort(), [...FIXTURE_MAPS].sort(), 'the fixture has the maps the tests name')

  for (const map of maps) {
    const spec = map.spec()
    const def = definition(raw, map.name)
    const keySize = def.key === null ? def.uint.key_size : sizeOf(raw, def.key)
    const valueSize = def.value === null ? def.uint.value_size : sizeOf(raw, def.value)
    t.match(spec, {
      name: map.name,
      type: def.uint.type,
      keySize,
      valueSize,
      maxEntries: def.uint.max_entries,
      flags: def.uint.map_flags ?? 0,
      keyType: def.key,
      valueType: def.value,
    }, `${map.name}: the definition`)
    const roots = [def.key, def.value].filter((id) => id !== null)
    sameTypes(t, spec.btf, raw, reachable(raw, roots), map.name)
  }
  t.same(
    [...new Set(maps.map((m) => MAP_TYPES[m.type]))].sort(),
    ['array', 'hash', 'lpm_trie', 'percpu_array', 'percpu_hash'],
    'the map types the fixture covers',
  )
  const sizesOnly = maps.find((m) => m.name === 'sizes_only')!.spec()
  t.match(sizesOnly, { keyType: null, valueType: null, keySize: 4, valueSize: 8 }, 'sizes and no types: null types')
  t.equal(sizesOnly.btf.size, 0)
})

t.test("an opened object: every type of its BTF, every kind clang emits", { skip: noTools }, async (t) => {
  const objs = buildObjects(t)
  const path = objs.fixture('maps_kinds')
  const raw = bpftoolBtf('file', path, 'format', 'raw')
  const obj = BpfObject.open(readFileSync(path), 'maps_kinds')
  const all = obj.btfTypes()
  const spec = obj.maps().find((m) => m.name === 'bitfield_array')!.spec()
  obj.close()

  sameTypes(t, all, raw, new Set(raw.keys()), 'the whole BTF')
  const kinds = new Set([...raw.values()].map((r) => r.kind))
  const wanted = ['INT', 'PTR', 'ARRAY', 'STRUCT', 'UNION', 'ENUM', 'FWD', 'TYPEDEF', 'VOLATILE', 'CONST', 'RESTRICT']
  wanted.push('FUNC', 'FUNC_PROTO', 'VAR', 'DATASEC', 'FLOAT', 'DECL_TAG', 'TYPE_TAG')
  t.same(wanted.filter((k) => !kinds.has(k)), [], 'every kind but ENUM64 (clang >= 15) is in the fixture')

  t.throws(() => obj.btfTypes(), /used after close/, 'no BTF read after close')
  t.match(spec.btf.get(spec.valueType!), { kind: 'struct', name: 'bits' }, 'what was read stays: plain data')
  const again = BpfObject.open(readFileSync(path), 'again')
  t.teardown(() => again.close())
  const refused = { name: 'SyscallError', syscall: 'btf__type_by_id' }
  t.throws(() => again.btfTypes([raw.size + 1]), refused, 'an id past the last: an error, not a read')
})

t.test('kernel', { skip: needsRoot || noTools }, async (t) => {
  t.test('a loaded, pinned map: its spec from the descriptor, by bpftool', async (t) => {
    const objs = buildObjects(t)
    const bpffs = tempBpffs(t)
    const obj = BpfObject.open(readFileSync(objs.fixture('maps_kinds')), 'maps_kinds')
    t.teardown(() => obj.close())
    const fromObject = new Map<string, MapSpec>()
    for (const m of obj.maps()) {
      fromObject.set(m.name, m.spec())
      m.setPinPath(join(bpffs, m.name))
    }
    captureLibbpfLog(() => {}, () => obj.load())

    const btfIds = new Set<number>()
    const specs: MapSpec[] = []
    for (const name of FIXTURE_MAPS) {
      const pin = join(bpffs, name)
      const fd = objGet(pin)
      const spec = mapSpecOfFd(fd)
      fd.close()
      const shown = bpftoolJson<Record<string, unknown>>('map', 'show', 'pinned', pin)
      t.match(shown, {
        name,
        type: MAP_TYPES[spec.type],
        bytes_key: spec.keySize,
        bytes_value: spec.valueSize,
        max_entries: spec.maxEntries,
        flags: spec.flags,
      }, `${name}: as bpftool map show says`)
      t.same(spec, fromObject.get(name), `${name}: the object's spec, read back from the kernel`)
      if (spec.keyType === null) {
        t.equal(shown.btf_id, undefined, `${name}: no BTF, so no types`)
        continue
      }
      const kv = bpftoolJson<{ types: { id: number }[] }>('btf', 'dump', 'map', 'pinned', pin, 'kv', 'format', 'raw')
      t.same([spec.keyType, spec.valueType], kv.types.map((x) => x.id), `${name}: key and value types, as bpftool says`)
      btfIds.add(shown.btf_id as number)
      specs.push(spec)
    }
    t.equal(btfIds.size, 1, "the maps share the object's BTF")
    const [btfId] = btfIds
    const raw = bpftoolBtf('id', String(btfId), 'format', 'raw')
    for (const spec of specs) {
      const roots = [spec.keyType!, spec.valueType!]
      sameTypes(t, spec.btf, raw, reachable(raw, roots), `${spec.name}, from bpftool btf dump id ${btfId}`)
    }
  })

  t.test('a map created without BTF: null types', async (t) => {
    const bpffs = tempBpffs(t)
    const plain = join(bpffs, 'plain')
    bpftool('map', 'create', plain, 'type', 'hash', 'key', '4', 'value', '8', 'entries', '4', 'name', 'xdpl_plain')
    const fd = objGet(plain)
    t.teardown(() => fd.close())
    t.same(mapSpecOfFd(fd), {
      name: 'xdpl_plain',
      type: 1,
      keySize: 4,
      valueSize: 8,
      maxEntries: 4,
      flags: 0,
      keyType: null,
      valueType: null,
      btf: new Map(),
    })
  })

  const noVmlinux = existsSync('/sys/kernel/btf/vmlinux') ? false : 'no vmlinux BTF'
  const title = "the kernel's BTF: the first type of every kind, every ENUM64 and signed ENUM"
  t.test(title, { skip: noVmlinux }, async (t) => {
    const list = bpftoolJson<{ id: number; name?: string; kernel?: boolean }[]>('btf', 'list')
    const vmlinux = list.find((b) => b.kernel && b.name === 'vmlinux')!
    const raw = bpftoolBtf('id', String(vmlinux.id), 'format', 'raw')
    const roots = new Map<string, number>()
    for (const r of raw.values()) if (!roots.has(r.kind)) roots.set(r.kind, r.id)
    const enums = [...raw.values()].filter((r) => r.kind === 'ENUM64' || (r.kind === 'ENUM' && r.encoding === 'SIGNED'))
    const bitfields = [...raw.values()].find((r) => r.kind === 'STRUCT' && r.members!.some((m) => m.bitfield_size))
    const ids = [...roots.values(), ...enums.map((r) => r.id), ...(bitfields ? [bitfields.id] : [])]
    t.ok(roots.has('ENUM64'), 'the kernel has ENUM64 types')
    t.ok(enums.some((r) => r.kind === 'ENUM'), 'and signed ENUMs')
    sameTypes(t, kernelBtfTypes(vmlinux.id, ids), raw, reachable(raw, ids), 'vmlinux')
    const refused = { name: 'SyscallError', syscall: 'btf__type_by_id' }
    t.throws(() => kernelBtfTypes(vmlinux.id, [raw.size + 1]), refused, 'an id past the last: an error (and freed)')
  })
})
