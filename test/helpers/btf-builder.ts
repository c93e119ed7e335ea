/**
 * BTF types written by hand for the map-contents tests, with ids given in order of creation as libbpf numbers them.
 * `c()` has the types the bundled objects use (bpf/xdp_blocklist.c and the `ports` example of issue 13), named as
 * clang and <linux/types.h> name them.
 */
import type { BtfComposite, BtfEnum, BtfMember, BtfType, BtfTypes } from '../../src/maps/btf.js'

type NoId<T> = T extends unknown ? Omit<T, 'id'> : never

/** [name, type, bitOffset, bitfieldSize] */
export type MemberSpec = [string, number, number, number?]

export class TypeTable {
  readonly types = new Map<number, BtfType>()

  add(t: NoId<BtfType>): number {
    const id = this.types.size + 1
    this.types.set(id, { ...t, id } as BtfType)
    return id
  }

  int(name: string, size: number, o: { signed?: boolean; char?: boolean; bool?: boolean; bits?: number; bitOffset?: number } = {}): number {
    return this.add({ kind: 'int', name, size, signed: o.signed ?? false, char: o.char ?? false, bool: o.bool ?? false, bitOffset: o.bitOffset ?? 0, bits: o.bits ?? size * 8 })
  }

  typedef(name: string, type: number): number {
    return this.add({ kind: 'typedef', name, type })
  }

  array(elem: number, nelems: number): number {
    return this.add({ kind: 'array', elem, nelems })
  }

  composite(kind: BtfComposite['kind'], name: string, size: number, members: MemberSpec[]): number {
    const ms: BtfMember[] = members.map(([n, type, bitOffset, bitfieldSize]) => ({ name: n, type, bitOffset, bitfieldSize: bitfieldSize ?? 0 }))
    return this.add({ kind, name, size, members: ms })
  }

  struct(name: string, size: number, members: MemberSpec[]): number {
    return this.composite('struct', name, size, members)
  }

  union(name: string, size: number, members: MemberSpec[]): number {
    return this.composite('union', name, size, members)
  }

  enum(name: string, size: number, values: [string, number | bigint][], signed = false): number {
    const vs: BtfEnum['values'] = values.map(([n, v]) => ({ name: n, value: BigInt(v) }))
    return this.add({ kind: 'enum', name, size, signed, values: vs })
  }

  float(name: string, size: number): number {
    return this.add({ kind: 'float', name, size })
  }

  modifier(which: 'volatile' | 'const' | 'restrict' | 'type_tag', type: number): number {
    return this.add({ kind: 'modifier', which, type })
  }

  other(what: string, name = ''): number {
    return this.add({ kind: 'other', what, name })
  }

  get btf(): BtfTypes {
    return this.types
  }
}

/** The C types the tests share, as clang emits them for x86-64. */
export function c() {
  const b = new TypeTable()
  const uchar = b.int('unsigned char', 1)
  const char = b.int('char', 1, { signed: true })
  const schar = b.int('signed char', 1, { signed: true })
  const ushort = b.int('unsigned short', 2)
  const short = b.int('short', 2, { signed: true })
  const uint = b.int('unsigned int', 4)
  const int = b.int('int', 4, { signed: true })
  const ulonglong = b.int('unsigned long long', 8)
  const longlong = b.int('long long', 8, { signed: true })
  const u128 = b.int('unsigned __int128', 16)
  const s128 = b.int('__int128', 16, { signed: true })
  const bool = b.int('_Bool', 1, { bool: true })
  const u8 = b.typedef('__u8', uchar)
  const s8 = b.typedef('__s8', schar)
  const u16 = b.typedef('__u16', ushort)
  const s16 = b.typedef('__s16', short)
  const u32 = b.typedef('__u32', uint)
  const s32 = b.typedef('__s32', int)
  const u64 = b.typedef('__u64', ulonglong)
  const s64 = b.typedef('__s64', longlong)
  const be16 = b.typedef('__be16', u16)
  const be32 = b.typedef('__be32', u32)
  const be64 = b.typedef('__be64', u64)
  const float = b.float('float', 4)
  const double = b.float('double', 8)
  const u8x4 = b.array(u8, 4)
  const u8x16 = b.array(u8, 16)
  const u8x6 = b.array(u8, 6)
  // bpf/xdp_blocklist.c
  const lpmV4 = b.struct('lpm_key_v4', 8, [['prefixlen', u32, 0], ['addr', u8x4, 32]])
  const lpmV6 = b.struct('lpm_key_v6', 20, [['prefixlen', u32, 0], ['addr', u8x16, 32]])
  // issue 13's `ports` value: struct limits { __u32 limit; bool log; } (3 bytes of tail padding)
  const boolT = b.typedef('bool', bool)
  const limits = b.struct('limits', 8, [['limit', u32, 0], ['log', boolT, 32]])
  return { b, types: b.types, uchar, char, schar, ushort, short, uint, int, u128, s128, bool, u8, s8, u16, s16, u32, s32, u64, s64, be16, be32, be64, float, double, u8x4, u8x16, u8x6, lpmV4, lpmV6, boolT, limits }
}
