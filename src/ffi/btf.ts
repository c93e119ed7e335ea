/**
 * BTF out of libbpf: the types of a `struct btf` as the plain model of src/maps/btf.ts, and the MapSpec of a map
 * the kernel holds (mapSpecOfFd; an object's maps have BpfMap.spec() in bpf-object.ts). libbpf finds the types and
 * strings (btf__type_by_id, btf__name_by_offset); only the uapi records it points at are read here, through the
 * layouts of STRUCTS (btf_type, then the kind's data: Documentation/bpf/btf.rst, 2.2 Type encoding).
 *
 * libbpf keeps a BTF in the host's byte order (it swaps a foreign-endian blob as it parses it: btf.c,
 * btf_bswap_type_base), so the little-endian reads below are right on the LP64 little-endian hosts structs.ts
 * supports.
 */
import koffi from 'koffi'
import type { BtfEnum, BtfMember, BtfType, BtfTypes, MapSpec } from '../maps/btf.js'
import { mapInfo } from './bpf-fd.js'
import type { Fd } from './fd.js'
import { libbpf, libbpfError } from './libbpf.js'
import { STRUCTS } from './structs.js'

type Ptr = object

// <linux/btf.h> enum of BTF kinds
export const BTF_KIND_INT = 1
export const BTF_KIND_PTR = 2
export const BTF_KIND_ARRAY = 3
export const BTF_KIND_STRUCT = 4
export const BTF_KIND_UNION = 5
export const BTF_KIND_ENUM = 6
export const BTF_KIND_FWD = 7
export const BTF_KIND_TYPEDEF = 8
export const BTF_KIND_VOLATILE = 9
export const BTF_KIND_CONST = 10
export const BTF_KIND_RESTRICT = 11
export const BTF_KIND_FUNC = 12
export const BTF_KIND_FUNC_PROTO = 13
export const BTF_KIND_VAR = 14
export const BTF_KIND_DATASEC = 15
export const BTF_KIND_FLOAT = 16
export const BTF_KIND_DECL_TAG = 17
export const BTF_KIND_TYPE_TAG = 18
export const BTF_KIND_ENUM64 = 19

// <linux/btf.h> BTF_INT_ENCODING bits
export const BTF_INT_SIGNED = 1 << 0
export const BTF_INT_CHAR = 1 << 1
export const BTF_INT_BOOL = 1 << 2

// <linux/btf.h> macros on btf_type.info, the u32 after an INT, and btf_member.offset under kind_flag.
const BTF_INFO_KIND = (info: number): number => (info >>> 24) & 0x1f
const BTF_INFO_VLEN = (info: number): number => info & 0xffff
const BTF_INFO_KFLAG = (info: number): boolean => info >>> 31 === 1
const BTF_INT_ENCODING = (v: number): number => (v & 0x0f000000) >>> 24
const BTF_INT_OFFSET = (v: number): number => (v & 0x00ff0000) >>> 16
const BTF_INT_BITS = (v: number): number => v & 0x000000ff
const BTF_MEMBER_BITFIELD_SIZE = (v: number): number => v >>> 24
const BTF_MEMBER_BIT_OFFSET = (v: number): number => v & 0xffffff

/** The kinds the model has no shape for, by the lower-case name bpftool prints (bpftool btf.c, btf_kind_str). */
const OTHER_KINDS: Readonly<Record<number, string>> = {
  [BTF_KIND_PTR]: 'ptr',
  [BTF_KIND_FWD]: 'fwd',
  [BTF_KIND_FUNC]: 'func',
  [BTF_KIND_FUNC_PROTO]: 'func_proto',
  [BTF_KIND_VAR]: 'var',
  [BTF_KIND_DATASEC]: 'datasec',
  [BTF_KIND_DECL_TAG]: 'decl_tag',
}
const MODIFIERS = {
  [BTF_KIND_VOLATILE]: 'volatile',
  [BTF_KIND_CONST]: 'const',
  [BTF_KIND_RESTRICT]: 'restrict',
  [BTF_KIND_TYPE_TAG]: 'type_tag',
} as const

const { btf_type: T, btf_array: A, btf_member: M, btf_enum: E, btf_enum64: E64 } = STRUCTS
/** The u32 of an INT's encoding, offset and bits, right after its btf_type. */
const INT_DATA_SIZE = 4

/** Bytes of kind data after the btf_type, for the kinds the model reads it of (the others' is not looked at). */
function dataSize(kind: number, vlen: number): number {
  switch (kind) {
    case BTF_KIND_INT:
      return INT_DATA_SIZE
    case BTF_KIND_ARRAY:
      return A.size
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
      return vlen * M.size
    case BTF_KIND_ENUM:
      return vlen * E.size
    case BTF_KIND_ENUM64:
      return vlen * E64.size
    default:
      return 0
  }
}

/**
 * One type of `btf`, decoded from the memory btf__type_by_id points at (valid while `btf` is: read at once). The
 * view is of exactly the btf_type and its kind's data, whose length the btf_type's own kind and vlen give.
 */
function readType(btf: Ptr, id: number): BtfType {
  const f = libbpf()
  const p = f.btf__type_by_id(btf, id) as Ptr | null
  if (p === null) throw libbpfError('btf__type_by_id', null, `BTF type ${id}`)
  const head = Buffer.from(koffi.view(p, T.size))
  const info = head.readUInt32LE(T.fields.info)
  const kind = BTF_INFO_KIND(info)
  const vlen = BTF_INFO_VLEN(info)
  const kflag = BTF_INFO_KFLAG(info)
  const sizeOrType = head.readUInt32LE(T.fields.size)
  const name = nameAt(btf, head.readUInt32LE(T.fields.name_off))
  const extra = dataSize(kind, vlen)
  const data = extra === 0 ? head.subarray(T.size) : Buffer.from(koffi.view(p, T.size + extra)).subarray(T.size)

  switch (kind) {
    case BTF_KIND_INT: {
      const v = data.readUInt32LE(0)
      const encoding = BTF_INT_ENCODING(v)
      return {
        kind: 'int',
        id,
        name,
        size: sizeOrType,
        signed: (encoding & BTF_INT_SIGNED) !== 0,
        char: (encoding & BTF_INT_CHAR) !== 0,
        bool: (encoding & BTF_INT_BOOL) !== 0,
        bitOffset: BTF_INT_OFFSET(v),
        bits: BTF_INT_BITS(v),
      }
    }
    case BTF_KIND_FLOAT:
      return { kind: 'float', id, name, size: sizeOrType }
    case BTF_KIND_ARRAY:
      return { kind: 'array', id, elem: data.readUInt32LE(A.fields.type), nelems: data.readUInt32LE(A.fields.nelems) }
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION: {
      const members: BtfMember[] = []
      for (let i = 0; i < vlen; i++) {
        const m = data.subarray(i * M.size, (i + 1) * M.size)
        const offset = m.readUInt32LE(M.fields.offset)
        // kind_flag: the offset packs a bitfield's size above 24 bits of offset (0 size: not a bitfield); without
        // it, the offset is all bit offset and a bitfield, if any, is told by an INT's BTF_INT_BITS (btf.rst 2.2.4).
        members.push({
          name: nameAt(btf, m.readUInt32LE(M.fields.name_off)),
          type: m.readUInt32LE(M.fields.type),
          bitOffset: kflag ? BTF_MEMBER_BIT_OFFSET(offset) : offset,
          bitfieldSize: kflag ? BTF_MEMBER_BITFIELD_SIZE(offset) : 0,
        })
      }
      return { kind: kind === BTF_KIND_STRUCT ? 'struct' : 'union', id, name, size: sizeOrType, members }
    }
    case BTF_KIND_ENUM: {
      // kind_flag: signed values (Linux 6.0, "bpf: Add btf enum64 support"); clear, `val` holds a u32 in its
      // __s32. clang < 15 never sets it, so a negative enumerator reads as its u32 there, as bpftool prints it.
      const values: BtfEnum['values'] = []
      for (let i = 0; i < vlen; i++) {
        const e = data.subarray(i * E.size, (i + 1) * E.size)
        const value = kflag ? e.readInt32LE(E.fields.val) : e.readUInt32LE(E.fields.val)
        values.push({ name: nameAt(btf, e.readUInt32LE(E.fields.name_off)), value: BigInt(value) })
      }
      return { kind: 'enum', id, name, size: sizeOrType, signed: kflag, values }
    }
    case BTF_KIND_ENUM64: {
      const values: BtfEnum['values'] = []
      for (let i = 0; i < vlen; i++) {
        const e = data.subarray(i * E64.size, (i + 1) * E64.size)
        const raw = (BigInt(e.readUInt32LE(E64.fields.val_hi32)) << 32n) | BigInt(e.readUInt32LE(E64.fields.val_lo32))
        const value = kflag ? BigInt.asIntN(64, raw) : raw
        values.push({ name: nameAt(btf, e.readUInt32LE(E64.fields.name_off)), value })
      }
      return { kind: 'enum', id, name, size: sizeOrType, signed: kflag, values }
    }
    case BTF_KIND_TYPEDEF:
      return { kind: 'typedef', id, name, type: sizeOrType }
    case BTF_KIND_VOLATILE:
    case BTF_KIND_CONST:
    case BTF_KIND_RESTRICT:
    case BTF_KIND_TYPE_TAG:
      return { kind: 'modifier', id, which: MODIFIERS[kind], type: sizeOrType }
    default:
      // A kind newer than this table would already have been refused by libbpf's parser (btf.c, btf_type_size).
      return { kind: 'other', id, what: OTHER_KINDS[kind] ?? `kind ${kind}`, name }
  }
}

/** btf__name_by_offset; '' for an anonymous type (offset 0 is the empty string) or an offset libbpf refuses. */
function nameAt(btf: Ptr, offset: number): string {
  return (libbpf().btf__name_by_offset(btf, offset) as string | null) ?? ''
}

/** The ids a type of the model refers to: what a key's or value's bytes are made of. */
function referenced(t: BtfType): number[] {
  switch (t.kind) {
    case 'array':
      return [t.elem]
    case 'struct':
    case 'union':
      return t.members.map((m) => m.type)
    case 'typedef':
    case 'modifier':
      return [t.type]
    default:
      return []
  }
}

/**
 * @internal the types of a libbpf `struct btf` (one bpf_object__btf or btf__load_from_kernel_by_id gave): those
 * reachable from `roots` through what the model refers to (array elements, members, typedefs, modifiers; not a
 * pointer's target), or every type when `roots` is not given. Read whole before returning, so nothing reads
 * `btf` later; the caller keeps it alive for the call and frees it if it is its own. Id 0 (void) is never read.
 */
export function readBtfTypes(btf: Ptr, roots?: readonly number[]): BtfTypes {
  const out = new Map<number, BtfType>()
  if (roots === undefined) {
    const count = libbpf().btf__type_cnt(btf) as number
    for (let id = 1; id < count; id++) out.set(id, readType(btf, id))
    return out
  }
  const todo = [...roots]
  for (let id = todo.pop(); id !== undefined; id = todo.pop()) {
    if (id === 0 || out.has(id)) continue
    const t = readType(btf, id)
    out.set(id, t)
    todo.push(...referenced(t))
  }
  return out
}

/**
 * The types of the kernel's BTF object `btfId` (btf__load_from_kernel_by_id: BPF_BTF_GET_FD_BY_ID, which needs
 * CAP_SYS_ADMIN), all or those reachable from `roots`, as readBtfTypes. A module's BTF, split on vmlinux's, is not
 * one a map can have. Freed before returning, whatever happens.
 */
export function kernelBtfTypes(btfId: number, roots?: readonly number[]): BtfTypes {
  const f = libbpf()
  const btf = f.btf__load_from_kernel_by_id(btfId) as Ptr | null
  if (btf === null) throw libbpfError('btf__load_from_kernel_by_id', null, `BTF id ${btfId}`)
  try {
    return readBtfTypes(btf, roots)
  } finally {
    f.btf__free(btf)
  }
}

/**
 * The MapSpec of a map the kernel holds (a pinned map adopted by the daemon): bpf_map_info, and the types of its
 * key and value in the BTF object it was created with. A map created without BTF (btf_id 0), or without a type for
 * its key or value (0, e.g. `__uint(key_size, 4)` instead of `__type(key, ...)`), has null there.
 */
export function mapSpecOfFd(fd: Fd): MapSpec {
  const info = mapInfo(fd)
  const keyType = info.btfId !== 0 && info.btfKeyTypeId !== 0 ? info.btfKeyTypeId : null
  const valueType = info.btfId !== 0 && info.btfValueTypeId !== 0 ? info.btfValueTypeId : null
  const roots = [keyType, valueType].filter((id) => id !== null)
  return {
    name: info.name,
    type: info.type,
    keySize: info.keySize,
    valueSize: info.valueSize,
    maxEntries: info.maxEntries,
    flags: info.flags,
    keyType,
    valueType,
    btf: roots.length === 0 ? new Map() : kernelBtfTypes(info.btfId, roots),
  }
}
