/**
 * The BPF filesystem side of the registry: make sure the pin directory is on a bpffs, list and remove our pin
 * directories. Thin I/O over node:fs and src/ffi/libc.ts.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { isBpffs, mountBpffs, statfsType } from '../ffi/libc.js'
import { PIN_DIR_RE, pinLayout, type PinLayout } from './naming.js'

// <linux/magic.h>
export const SYSFS_MAGIC = 0x62656572

export interface EnsureBpffsResult {
  /** Where a new bpffs was mounted, or null when `dir` was already on one. */
  mounted: string | null
}

/**
 * Makes sure `dir` exists on a BPF filesystem, mounting one where there is none:
 *  - `dir` exists on a bpffs, or its nearest existing ancestor is on one: nothing to mount (mkdir -p).
 *  - the nearest existing ancestor is on sysfs: that is /sys/fs/bpf, the empty mount point sysfs provides for a
 *    bpffs (kernel/bpf/inode.c, bpf_init: sysfs_create_mount_point), left unmounted. That happens inside
 *    `ip netns exec`, which remounts /sys for the namespace and so hides the host's /sys/fs/bpf. Mount there.
 *  - otherwise (`dir` on an ordinary filesystem): create `dir` and mount a bpffs on it.
 *
 * Each mount makes a new, empty bpffs instance (fs/bpf: get_tree_nodev). A mount made inside a private mount
 * namespace (`ip netns exec`, systemd's PrivateMounts=) lives and dies with it: pins there do not outlive the
 * process. To keep pins across restarts, point the daemon at a bpffs in the host's mount namespace.
 */
export function ensureBpffs(dir: string): EnsureBpffsResult {
  const abs = resolve(dir)
  if (existsSync(abs)) {
    if (isBpffs(abs)) return { mounted: null }
    mountBpffs(abs)
    return { mounted: abs }
  }
  let ancestor = dirname(abs)
  while (!existsSync(ancestor)) ancestor = dirname(ancestor)
  const type = statfsType(ancestor)
  if (type === SYSFS_MAGIC) {
    mountBpffs(ancestor)
    mkdirSync(abs, { recursive: true, mode: 0o700 })
    return { mounted: ancestor }
  }
  mkdirSync(abs, { recursive: true, mode: 0o700 })
  if (isBpffs(abs)) return { mounted: null }
  mountBpffs(abs)
  return { mounted: abs }
}

/** Names of our pin directories (`<hash16>-<program>`) under `bpffsDir`; nothing else there is listed. */
export function listPinDirs(bpffsDir: string): string[] {
  let entries
  try {
    entries = readdirSync(bpffsDir, { withFileTypes: true })
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw e
  }
  return entries.filter((d) => d.isDirectory() && PIN_DIR_RE.test(d.name)).map((d) => d.name).sort()
}

/** Names of the maps pinned in a pin directory's `maps/`. */
export function listMapPins(mapsDir: string): string[] {
  try {
    return readdirSync(mapsDir).sort()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw e
  }
}

export function pinExists(path: string): boolean {
  try {
    lstatSync(path)
    return true
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw e
  }
}

/**
 * Removes one of our pin directories: `prog`, every pin in `maps/`, then the two directories. Unpinning drops the
 * pin's reference only; a program still attached to an interface stays attached (the attachment holds its own
 * reference), and so do the maps it uses. Anything else found in the directory is left, and the rmdir fails with
 * ENOTEMPTY, so a foreign file is never deleted.
 */
export function removePinDir(bpffsDir: string, dirName: string): void {
  if (!PIN_DIR_RE.test(dirName)) throw new RangeError(`not one of our pin directories: ${dirName}`)
  const l = pinLayout(bpffsDir, dirName)
  unlinkIfExists(l.prog)
  for (const m of listMapPins(l.mapsDir)) unlinkIfExists(l.map(m))
  rmdirIfExists(l.mapsDir)
  rmdirIfExists(l.dir)
}

/** Removes a pin directory and its `maps/` if both are empty (after a failed first load); never throws. */
export function removeEmptyPinDir(l: PinLayout): void {
  for (const d of [l.mapsDir, l.dir]) {
    try {
      rmdirSync(d)
    } catch {
      // not empty (reused pins stay) or not there
    }
  }
}

function unlinkIfExists(path: string): void {
  try {
    unlinkSync(path)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
  }
}

function rmdirIfExists(path: string): void {
  try {
    rmdirSync(path)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
  }
}

