/**
 * Whether a file or directory may be trusted with what xdplinkd loads as root: its config, and the BPF objects it
 * puts into the kernel. Pure: takes stat results, does no I/O.
 *
 * The rule is sshd's StrictModes (secure_filename in OpenSSH's misc.c): every component of the path, from / down
 * to the file, must be owned by a trusted user (root, or xdplinkd's own uid when it runs unprivileged with
 * capabilities) and not be writable by group or others. Whoever can write a directory can rename or replace what is
 * in it, so one weak ancestor lets its owner swap the file for one of their own.
 *
 * Exception: a root-owned directory with the sticky bit (S_ISVTX: /tmp, /var/tmp) may be writable by anyone. There
 * only an entry's owner (or the directory's) may rename or delete it (may_delete -> check_sticky in fs/namei.c),
 * so a root-owned entry in it stays put.
 *
 * Symbolic links: their mode is always 0777 and means nothing (permissions are never checked on a link itself);
 * what matters is who may replace the link, which is its directory's business, and its owner, who may delete it
 * from a sticky directory. So a link must be owned by a trusted user.
 *
 * Exclusive directories: a directory whose entries are trusted by their names (the bpffs directory holding the pin
 * directories, a pin directory holding `prog` and `maps/`) must be writable by its owner only, sticky or not. The
 * sticky bit keeps others from renaming or deleting an entry, not from creating one: in a sticky world-writable
 * directory anyone could make `<hash>-<program>/` before the daemon does. That is fine for an ancestor (/tmp holds
 * other people's files, and only our one entry is looked at) but not for a directory we list and adopt from.
 *
 * Read-only mounts: a directory on one cannot be written by anyone, whatever its mode says (the kernel refuses every
 * write with EROFS before it looks at permissions: fs/namei.c, may_open/mnt_want_write). A Kubernetes ConfigMap
 * volume is such a directory: the kubelet makes its root 0777 (it is an emptyDir underneath) and mounts it read-only
 * into the container. Its owner must still be trusted, as anywhere.
 *
 * POSIX ACLs need no extra care: with an ACL, the group bits of st_mode are the ACL mask, so an ACL entry that
 * grants write shows as group-writable (acl_equiv_mode / posix_acl_update_mode in fs/posix_acl.c).
 */

export interface StatLike {
  uid: number
  /** st_mode: type bits may be present; only the permission bits (07777) are read. */
  mode: number
  isDir: boolean
  isSymlink?: boolean
}

/** Appended to a refusal that --insecure-paths would lift. */
export const OVERRIDE_HINT = ' (fix the owner or mode, or start xdplinkd with --insecure-paths)'

export const S_ISVTX = 0o1000
export const S_IWGRP = 0o020
export const S_IWOTH = 0o002

/** Root, and the uid the daemon runs as if that is not root. */
export function defaultTrustedUids(euid: number): number[] {
  return euid === 0 ? [0] : [0, euid]
}

export interface JudgeOptions {
  /** Refuse group or other write even with the sticky bit (a directory whose entries are trusted by name). */
  exclusive?: boolean
  /** Asked only for what others could write: is it on a read-only mount (then nobody can)? */
  readOnlyMount?: () => boolean
}

/** `root`, `root or uid 1000`. */
export function uidsText(uids: readonly number[]): string {
  return uids.map((u) => (u === 0 ? 'root' : `uid ${u}`)).join(' or ')
}

/**
 * What makes this file, directory or symlink unsafe, as phrases to join with "and" after "is"
 * (`owned by uid 1000, not root`, `writable by group (mode 0775)`); empty when it is safe.
 */
export function statProblems(st: StatLike, trustedUids: readonly number[] = [0], opts: JudgeOptions = {}): string[] {
  const problems: string[] = []
  const trusted = trustedUids.includes(st.uid)
  if (!trusted) problems.push(`owned by uid ${st.uid}, not ${uidsText(trustedUids)}`)
  if (st.isSymlink === true) return problems
  const perm = st.mode & 0o7777
  const writers = [perm & S_IWGRP ? 'group' : null, perm & S_IWOTH ? 'others' : null].filter((w) => w !== null)
  if (writers.length === 0) return problems
  // Sticky protects entries from other writers only when the directory's owner is trusted too: the owner of a
  // directory may always delete and rename in it.
  if (st.isDir && perm & S_ISVTX && trusted && opts.exclusive !== true) return problems
  if (opts.readOnlyMount?.() === true) return problems
  const sticky = st.isDir && !(perm & S_ISVTX) && opts.exclusive !== true ? ' without the sticky bit' : ''
  problems.push(`writable by ${writers.join(' and ')}${sticky} (mode ${octal(perm)})`)
  return problems
}

export function octal(perm: number): string {
  return (perm & 0o7777).toString(8).padStart(4, '0')
}
