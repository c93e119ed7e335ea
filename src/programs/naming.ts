/**
 * Where a loaded program lives in the BPF filesystem. Pure: names and paths only.
 *
 *   <bpffs>/<hash16>-<program>/prog            the program (BPF_OBJ_PIN)
 *   <bpffs>/<hash16>-<program>/maps/<map>      each map the object defines in SEC(".maps")
 *
 * <hash16> is the first 16 hex digits (64 bits) of the SHA-256 of the object file's bytes, so a rebuilt object
 * gets a new directory while the same bytes under another path share one. <program> is the program's ELF symbol
 * name (a C identifier), not the kernel's name for it, which is cut to BPF_OBJ_NAME_LEN - 1 = 15 characters.
 * Everything else under <bpffs> is not ours: prune and ownership only look at directories matching PIN_DIR_RE.
 */
import { join } from 'node:path'

export const PIN_HASH_LEN = 16
export const PROG_PIN = 'prog'
export const MAPS_DIR = 'maps'

/** The default directory, under the conventional bpffs mount point (systemd mounts /sys/fs/bpf at boot). */
export const DEFAULT_BPFFS_DIR = '/sys/fs/bpf/xdplinkd'

/** A C identifier: what clang emits as a program's symbol, and safe as one path component. */
const PROGRAM_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/
export const PIN_DIR_RE = /^([0-9a-f]{16})-([A-Za-z_][A-Za-z0-9_]{0,127})$/
/** User-defined map names are C identifiers too; libbpf's internal maps (`obj.rodata`) are never pinned. */
const MAP_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/

export function isValidProgramName(name: string): boolean {
  return PROGRAM_NAME_RE.test(name)
}

export function isPinnableMapName(name: string): boolean {
  return MAP_NAME_RE.test(name)
}

/** `<hash16>-<program>`; `objectHash` is the full hex SHA-256. Throws on a name that is not a C identifier. */
export function pinDirName(objectHash: string, program: string): string {
  if (!/^[0-9a-f]{64}$/.test(objectHash)) throw new RangeError(`not a hex SHA-256: ${objectHash}`)
  if (!isValidProgramName(program)) throw new RangeError(`not a program name: ${JSON.stringify(program)}`)
  return `${objectHash.slice(0, PIN_HASH_LEN)}-${program}`
}

export function parsePinDirName(name: string): { hashPrefix: string; program: string } | null {
  const m = PIN_DIR_RE.exec(name)
  return m ? { hashPrefix: m[1]!, program: m[2]! } : null
}

export interface PinLayout {
  /** `<hash16>-<program>` */
  name: string
  dir: string
  prog: string
  mapsDir: string
  map(name: string): string
}

export function pinLayout(bpffsDir: string, dirName: string): PinLayout {
  const dir = join(bpffsDir, dirName)
  const mapsDir = join(dir, MAPS_DIR)
  return { name: dirName, dir, prog: join(dir, PROG_PIN), mapsDir, map: (m) => join(mapsDir, m) }
}
