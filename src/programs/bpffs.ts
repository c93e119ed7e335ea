/**
 * The BPF filesystem side of the registry: make sure the pin directory is on a bpffs and may be trusted, judge what
 * is pinned in it, list and remove our pin directories. Thin I/O over node:fs and src/ffi/libc.ts.
 *
 * Trust: whoever can write the bpffs directory or a pin directory in it can put a program there for the daemon to
 * adopt as its own and attach (a `prog` link to a program that drops everything), or rename the daemon's pins away
 * so that its own programs look foreign after a restart. So the bpffs directory is judged like a config path, from /
 * down (config/secure-path.ts, `want: 'dir'`), and must be writable by its owner only; and every pin directory,
 * `maps/` and pin is judged by lstat, nothing followed: a directory or pin of a trusted owner, writable by it only
 * (BPF_OBJ_PIN makes a pin S_IFREG, mode 0600 less the umask: kernel/bpf/inode.c, bpf_obj_do_pin), never a symlink.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, rmdirSync, unlinkSync, type Stats } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { statProblems } from '../config/permissions.js'
import { walkPath, type PathFinding, type WalkOptions } from '../config/secure-path.js'
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

/**
 * What makes the bpffs directory (once it exists: after ensureBpffs) untrustworthy: every component from / judged,
 * and the directory itself writable by its owner only. A plain `mount -t bpf` root is mode 1777: fine as an ancestor
 * (like /tmp), refused as the directory itself, where anyone could create a pin directory before the daemon does.
 * Empty when it may be used. With `strict` off, only that it is a directory.
 */
export async function checkBpffsDir(dir: string, rules: WalkOptions): Promise<PathFinding[]> {
  const r = await walkPath(resolve(dir), { ...rules, want: 'dir' })
  return r.ok ? [] : r.error
}

export interface PinProblem {
  path: string
  /** A sentence with its subject: `pin directory /b/x is a symbolic link`. */
  text: string
  /** The directory, its `maps/` or a map pin is at fault: the whole directory goes, not only `prog`. */
  whole: boolean
}

/**
 * Judges a pin directory, its `prog`, its `maps/` and each map pin there by lstat (nothing followed). Empty when
 * all is well or nothing is there. With `strict` off, owners and modes are not judged, symlinks and types still are.
 */
export function pinProblems(pin: PinLayout, rules: WalkOptions): PinProblem[] {
  const problems: PinProblem[] = []
  const judge = (path: string, what: 'pin directory' | 'maps directory' | 'pin', whole: boolean): Stats | null => {
    const st = lstatOrNull(path)
    if (st === null) return null
    const dir = what !== 'pin'
    const bad = (text: string): null => {
      problems.push({ path, text: `${what} ${path} ${text}`, whole })
      return null
    }
    if (st.isSymbolicLink()) return bad('is a symbolic link')
    if (dir ? !st.isDirectory() : !st.isFile()) return bad(dir ? 'is not a directory' : 'is not a BPF pin')
    const wrong = rules.strict ? statProblems({ uid: st.uid, mode: st.mode, isDir: dir }, rules.trustedUids, { exclusive: dir }) : []
    return wrong.length > 0 ? bad(`is ${wrong.join(' and ')}`) : st
  }
  if (judge(pin.dir, 'pin directory', true) === null) return problems
  judge(pin.prog, 'pin', false)
  if (judge(pin.mapsDir, 'maps directory', true) !== null) for (const m of readdirSync(pin.mapsDir)) judge(pin.map(m), 'pin', true)
  return problems
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw e
  }
}

/**
 * Names of our pin directories (`<hash16>-<program>`) under `bpffsDir`; nothing else there is listed, a symlink
 * neither (readdir's d_type is the entry's own: DT_LNK).
 */
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
 * reference), and so do the maps it uses. Nothing is followed: a symlink where a directory belongs is itself
 * removed, never what it points to. Anything else found in the directory is left, and the rmdir fails with
 * ENOTEMPTY, so a foreign file is never deleted.
 */
export function removePinDir(bpffsDir: string, dirName: string): void {
  if (!PIN_DIR_RE.test(dirName)) throw new RangeError(`not one of our pin directories: ${dirName}`)
  const l = pinLayout(bpffsDir, dirName)
  if (lstatOrNull(l.dir)?.isSymbolicLink()) return unlinkIfExists(l.dir)
  unlinkIfExists(l.prog)
  if (lstatOrNull(l.mapsDir)?.isSymbolicLink()) unlinkIfExists(l.mapsDir)
  else for (const m of listMapPins(l.mapsDir)) unlinkIfExists(l.map(m))
  rmdirIfExists(l.mapsDir)
  rmdirIfExists(l.dir)
}

/** Unpins `prog` alone (a symlink there is removed, not followed); the maps stay for the next load to reuse. */
export function unpinProgram(pin: PinLayout): void {
  unlinkIfExists(pin.prog)
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

