/**
 * The BTF type model the map-contents code works on: the kinds of <linux/btf.h> (BTF_KIND_*) as plain data, read
 * once from libbpf's `struct btf` (src/ffi/btf.ts) and never through the FFI afterwards, so that the encoder
 * (encode.ts) is a pure function tested with tables.
 *
 * A type is referred to by its BTF id (0 is `void`). Names are kept on typedefs because an operator's convenience
 * depends on them: a `__be32` is an IPv4 address in network order, a `__u32` is a number.
 *
 * What the kernel means by each field: Documentation/bpf/btf.rst, "2.2 Type encoding".
 */

/** BTF_KIND_INT: `encoding` bits BTF_INT_SIGNED (1), BTF_INT_CHAR (2), BTF_INT_BOOL (4). */
export interface BtfInt {
  kind: 'int'
  id: number
  name: string
  /** Bytes the type takes (1, 2, 4, 8 or 16). */
  size: number
  signed: boolean
  char: boolean
  bool: boolean
  /** BTF_INT_OFFSET: bit offset inside `size` (0 for every type clang emits). */
  bitOffset: number
  /** BTF_INT_BITS: value bits (size * 8 for every type clang emits). */
  bits: number
}

export interface BtfFloat {
  kind: 'float'
  id: number
  name: string
  size: number
}

/** BTF_KIND_ENUM and BTF_KIND_ENUM64 (Linux 6.0), one shape: values as bigint so 64-bit ones are exact. */
export interface BtfEnum {
  kind: 'enum'
  id: number
  /** '' for an anonymous enum. */
  name: string
  size: number
  signed: boolean
  values: { name: string; value: bigint }[]
}

export interface BtfArray {
  kind: 'array'
  id: number
  elem: number
  nelems: number
}

export interface BtfMember {
  /** '' for an anonymous struct or union member (its members are reached through it). */
  name: string
  type: number
  /** From the start of the struct. */
  bitOffset: number
  /** 0 unless the member is a bitfield (kind_flag set and BTF_MEMBER_BITFIELD_SIZE non-zero). */
  bitfieldSize: number
}

export interface BtfComposite {
  kind: 'struct' | 'union'
  id: number
  /** '' for an anonymous one. */
  name: string
  size: number
  members: BtfMember[]
}

export interface BtfTypedef {
  kind: 'typedef'
  id: number
  name: string
  type: number
}

/** volatile, const, restrict, type_tag: no effect on the bytes, looked through. */
export interface BtfModifier {
  kind: 'modifier'
  id: number
  which: 'volatile' | 'const' | 'restrict' | 'type_tag'
  type: number
}

/** Kinds a map's key or value cannot usefully hold (ptr, fwd, func, func_proto, var, datasec, decl_tag). */
export interface BtfOther {
  kind: 'other'
  id: number
  /** The kind's name in lower case as bpftool prints it (`ptr`, `fwd`, `func_proto`, ...). */
  what: string
  name: string
}

export type BtfType = BtfInt | BtfFloat | BtfEnum | BtfArray | BtfComposite | BtfTypedef | BtfModifier | BtfOther

/** Every type of one BTF blob, by id. Id 0 (`void`) is never present. */
export type BtfTypes = ReadonlyMap<number, BtfType>

/**
 * What the daemon knows about one map whose contents it may manage: the kernel's (or the object's) description,
 * and the BTF types of its key and value. `keyType`/`valueType` are null when the map has no BTF for them (a map
 * defined without `__type`, or a kernel without BTF): such a map's contents cannot be declared.
 */
export interface MapSpec {
  name: string
  /** enum bpf_map_type */
  type: number
  keySize: number
  valueSize: number
  maxEntries: number
  /** map_flags (BPF_F_NO_PREALLOC, ...) */
  flags: number
  keyType: number | null
  valueType: number | null
  btf: BtfTypes
}
