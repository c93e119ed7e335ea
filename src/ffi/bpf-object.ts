/**
 * A bpf_object opened from an ELF image, and the programs and maps in it (libbpf's bpf_object, bpf_program,
 * bpf_map). Pointers into a bpf_object are only valid while the object is open, so they live in classes that check
 * that before every call. Descriptors that libbpf owns (bpf_program__fd, bpf_map__fd) are lent as numbers, never
 * wrapped in Fd: bpf_object__close closes them.
 */
import koffi from 'koffi'
import type { BtfTypes, MapSpec } from '../maps/btf.js'
import { readBtfTypes } from './btf.js'
import type { Fd } from './fd.js'
import { OpenOptsT, libbpf, libbpfCheck, libbpfError } from './libbpf.js'

// <linux/bpf.h> enum bpf_prog_type / enum bpf_attach_type
export const BPF_PROG_TYPE_XDP = 6
export const BPF_XDP_DEVMAP = 33
export const BPF_XDP_CPUMAP = 35
export const BPF_XDP = 37

type Ptr = object

export interface ProgramSpec {
  name: string
  sectionName: string
  /** enum bpf_prog_type */
  type: number
  /** libbpf's name for the type (`xdp`, `sched_cls`), for messages */
  typeName: string
  /** enum bpf_attach_type */
  expectedAttachType: number
}

/** A bpf_object opened from memory: ELF parsed, nothing in the kernel until load(). Close it when done. */
export class BpfObject {
  #ptr: Ptr | null
  // libbpf may refer to the ELF image until close; keep it reachable so the GC cannot free it under libbpf.
  #image: Buffer | null
  readonly name: string

  private constructor(ptr: Ptr, image: Buffer) {
    this.#ptr = ptr
    this.#image = image
    this.name = libbpf().bpf_object__name(ptr) as string
  }

  /**
   * bpf_object__open_mem: parses the ELF image (program sections, BTF-defined maps, relocations). `name` becomes
   * the object name libbpf uses in messages and as the prefix of internal map names (.rodata, .bss).
   */
  static open(image: Buffer, name: string): BpfObject {
    const f = libbpf()
    const ptr = f.bpf_object__open_mem(image, image.length, {
      sz: koffi.sizeof(OpenOptsT),
      object_name: name,
    }) as Ptr | null
    if (ptr === null) throw libbpfError('bpf_object__open_mem', null, name)
    return new BpfObject(ptr, image)
  }

  get closed(): boolean {
    return this.#ptr === null
  }

  /** @internal the live pointer; throws once closed so no call can reach freed memory. */
  ptr(): Ptr {
    if (this.#ptr === null) throw new Error(`bpf_object ${this.name}: used after close`)
    return this.#ptr
  }

  programs(): BpfProgram[] {
    const f = libbpf()
    const out: BpfProgram[] = []
    let p: Ptr | null = null
    for (;;) {
      p = f.bpf_object__next_program(this.ptr(), p) as Ptr | null
      if (p === null) break
      out.push(new BpfProgram(this, p))
    }
    return out
  }

  maps(): BpfMap[] {
    const f = libbpf()
    const out: BpfMap[] = []
    let m: Ptr | null = null
    for (;;) {
      m = f.bpf_object__next_map(this.ptr(), m) as Ptr | null
      if (m === null) break
      out.push(new BpfMap(this, m))
    }
    return out
  }

  /**
   * The types of the object's BTF (bpf_object__btf: the .BTF section as libbpf parsed and fixed it at open), all or
   * those reachable from `roots` (src/ffi/btf.ts, readBtfTypes); empty for an object without BTF. Read whole now:
   * the BTF is the object's and goes with close().
   */
  btfTypes(roots?: readonly number[]): BtfTypes {
    const btf = libbpf().bpf_object__btf(this.ptr()) as Ptr | null
    return btf === null ? new Map() : readBtfTypes(btf, roots)
  }

  /**
   * bpf_object__load: creates the maps (reusing those given a pin path whose pin exists, pinning the others there),
   * then loads every program whose autoload is on. On failure libbpf unpins the maps it pinned itself and prints
   * why (the verifier log at WARN level) through the print callback.
   */
  load(): void {
    libbpfCheck('bpf_object__load', libbpf().bpf_object__load(this.ptr()) as number, this.name)
  }

  /**
   * load() on one of koffi's worker threads, so that the main thread goes on meanwhile: at start-up the daemon dumps
   * the links while libbpf reads the kernel's BTF (~10 ms for CO-RE and kfuncs) and the verifier runs. libbpf's
   * messages still reach the print callback on the main thread: koffi queues a callback made from another thread to
   * the event loop and holds the worker until it has run (koffi's doc/callbacks.md, "Asynchronous callbacks"), so
   * the caller must await, never block. Nothing else may use this object until it settles.
   */
  loadAsync(): Promise<void> {
    const ptr = this.ptr()
    return new Promise((resolve, reject) => {
      libbpf().bpf_object__load.async(ptr, (e: Error | null, rc: number) => {
        if (e) return reject(e)
        try {
          libbpfCheck('bpf_object__load', rc, this.name)
          resolve()
        } catch (x) {
          reject(x as Error)
        }
      })
    })
  }

  /** bpf_object__close: frees the object and closes every descriptor libbpf owns. Later calls do nothing. */
  close(): void {
    if (this.#ptr === null) return
    const p = this.#ptr
    this.#ptr = null
    libbpf().bpf_object__close(p)
    this.#image = null
  }

  [Symbol.dispose](): void {
    this.close()
  }
}

/** A program or map inside a bpf_object: its pointer is valid only while the object is open. */
abstract class ObjectPart {
  readonly #obj: BpfObject
  readonly #p: Ptr

  constructor(obj: BpfObject, p: Ptr) {
    this.#obj = obj
    this.#p = p
  }

  /** The pointer, once the object is known to be open (throws otherwise). */
  protected live(): Ptr {
    this.#obj.ptr()
    return this.#p
  }

  /** The object this is part of. */
  protected get object(): BpfObject {
    return this.#obj
  }
}

export class BpfProgram extends ObjectPart implements ProgramSpec {
  readonly name: string
  readonly sectionName: string
  readonly type: number
  readonly typeName: string
  readonly expectedAttachType: number

  /** @internal */
  constructor(obj: BpfObject, p: Ptr) {
    super(obj, p)
    const f = libbpf()
    this.name = f.bpf_program__name(p) as string
    this.sectionName = f.bpf_program__section_name(p) as string
    this.type = f.bpf_program__type(p) as number
    this.typeName = (f.libbpf_bpf_prog_type_str(this.type) as string | null) ?? `type ${this.type}`
    this.expectedAttachType = f.bpf_program__expected_attach_type(p) as number
  }

  /** Whether bpf_object__load loads this program (before load only). */
  setAutoload(on: boolean): void {
    libbpfCheck('bpf_program__set_autoload', libbpf().bpf_program__set_autoload(this.live(), on) as number, this.name)
  }

  /** The loaded program's descriptor, owned by the object (closed by its close()). */
  fd(): number {
    return libbpfCheck('bpf_program__fd', libbpf().bpf_program__fd(this.live()) as number, this.name)
  }

  pin(path: string): void {
    libbpfCheck('bpf_program__pin', libbpf().bpf_program__pin(this.live(), path) as number, path)
  }
}

export class BpfMap extends ObjectPart {
  readonly name: string
  /** enum bpf_map_type */
  readonly type: number
  /** .data/.rodata/.bss/.kconfig: libbpf made it for the object's global variables. */
  readonly internal: boolean

  /** @internal */
  constructor(obj: BpfObject, m: Ptr) {
    super(obj, m)
    const f = libbpf()
    this.name = f.bpf_map__name(m) as string
    this.type = f.bpf_map__type(m) as number
    this.internal = f.bpf_map__is_internal(m) as boolean
  }

  /**
   * What the object defines for this map, before or after load (`xdplinkd check` reads it without loading): the
   * definition as libbpf parsed it (bpf_map__key_size, ...), and the BTF types of its key and value, null where the
   * definition gives a size and no type (`__uint(key_size, 4)`: bpf_map__btf_key_type_id is 0).
   */
  spec(): MapSpec {
    const f = libbpf()
    const m = this.live()
    const id = (n: number): number | null => (n === 0 ? null : n)
    const keyType = id(f.bpf_map__btf_key_type_id(m) as number)
    const valueType = id(f.bpf_map__btf_value_type_id(m) as number)
    const roots = [keyType, valueType].filter((t) => t !== null)
    return {
      name: this.name,
      type: this.type,
      keySize: f.bpf_map__key_size(m) as number,
      valueSize: f.bpf_map__value_size(m) as number,
      maxEntries: f.bpf_map__max_entries(m) as number,
      flags: f.bpf_map__map_flags(m) as number,
      keyType,
      valueType,
      btf: roots.length === 0 ? new Map() : this.object.btfTypes(roots),
    }
  }

  /** The map's descriptor, owned by the object. */
  fd(): number {
    return libbpfCheck('bpf_map__fd', libbpf().bpf_map__fd(this.live()) as number, this.name)
  }

  /**
   * Before load: reuse an existing map if `path` is pinned (after checking type, key/value size, max_entries and
   * flags match: libbpf.c, map_is_reuse_compat), otherwise create it and pin it there.
   */
  setPinPath(path: string): void {
    libbpfCheck('bpf_map__set_pin_path', libbpf().bpf_map__set_pin_path(this.live(), path) as number, path)
  }

  /** Before load: use this existing map instead of creating one (libbpf dups `fd`; the caller keeps its own). */
  reuseFd(fd: Fd): void {
    libbpfCheck('bpf_map__reuse_fd', libbpf().bpf_map__reuse_fd(this.live(), fd.raw) as number, this.name)
  }

  pin(path: string): void {
    libbpfCheck('bpf_map__pin', libbpf().bpf_map__pin(this.live(), path) as number, path)
  }
}
