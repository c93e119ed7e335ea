/**
 * Walks a path the way the kernel resolves it and judges every component (permissions.ts): each directory from /
 * down, each symlink met on the way, each directory its target leads through, and the final file, which must be a
 * regular file. Checking only the real path (realpath(3)) would miss the directories that hold the links: whoever
 * can write one of those can point the link elsewhere. Checking only the path as written would miss where the
 * links lead. Walking component by component covers both, and chains of links too.
 *
 * A component is judged once per walk however often the walk passes it (an absolute link target restarts at /).
 *
 * The walk ends at a regular file (config, object) or a directory (the bpffs directory the pins live in: one whose
 * entries are trusted by name, so it must be writable by its owner only, sticky bit or not: permissions.ts).
 * openWalked then opens the real path the walk resolved without following a link there (fs.ts openRegularFile) and
 * judges the descriptor's own fstat by the same rule: what is read is the file that was judged, whatever was
 * renamed into place in between.
 */
import { posix } from 'node:path'
import { err, ok, type Result } from '../result.js'
import { lstatPath, onReadOnlyMount, openRegularFile, readLinkTarget, type FileStat, type FsFailure, type OpenedFile } from './fs.js'
import { defaultTrustedUids, statProblems } from './permissions.js'

/**
 * The rules for this process: judge owners and modes unless `insecurePaths` (CLI: --insecure-paths), and trust root
 * and the daemon's own euid (permissions.ts defaultTrustedUids).
 */
export function walkOptions(opts: { insecurePaths?: boolean | undefined } = {}): WalkOptions {
  return {
    strict: opts.insecurePaths !== true,
    trustedUids: defaultTrustedUids(typeof process.geteuid === 'function' ? process.geteuid() : 0),
  }
}

/** Symlinks followed before giving up, as the kernel does (MAXSYMLINKS, include/linux/namei.h). */
export const MAX_SYMLINKS = 40

export interface PathFinding {
  /** The component concerned. */
  path: string
  /** true: it exists but is unsafe (lifted by insecurePaths); false: the path cannot be used at all. */
  unsafe: boolean
  /** A sentence fragment with its subject: `directory /opt is writable by others without the sticky bit (mode 0777)`. */
  text: string
  /** The filesystem's errno name when a system call failed (ENOENT, EACCES, ELOOP; fs.ts FsFailure). */
  code?: string
}

export interface WalkOptions {
  /** Judge ownership and modes (false: only check that the path leads to a regular file, or a directory). */
  strict: boolean
  trustedUids: readonly number[]
  /**
   * What the path must lead to; default `file`. A `dir` at the end must be writable by its owner only, unless
   * `shared`: then a root-owned sticky directory (/tmp) will do, for a caller that judges the entry it uses by its
   * owner itself (the control socket's).
   */
  want?: 'file' | 'dir'
  shared?: boolean
}

/**
 * The real path of the regular file (or directory, `want: 'dir'`) `path` leads to, or everything wrong along the
 * way. `path` must be absolute.
 */
export async function walkPath(path: string, opts: WalkOptions): Promise<Result<string, PathFinding[]>> {
  const findings: PathFinding[] = []
  const judged = new Set<string>()
  const judge = (p: string, st: FileStat, exclusive = false): void => {
    if (!opts.strict || judged.has(p)) return
    judged.add(p)
    const problems = statProblems(st, opts.trustedUids, { exclusive, readOnlyMount: () => onReadOnlyMount(p) })
    if (problems.length > 0) findings.push({ path: p, unsafe: true, text: `${kindOf(st)} ${p} is ${problems.join(' and ')}` })
  }
  const fail = (p: string, text: string, code?: string): Result<string, PathFinding[]> =>
    err([...findings, { path: p, unsafe: false, text: `${p} ${text}`, ...(code !== undefined ? { code } : {}) }])
  const fsFail = (p: string, f: FsFailure): Result<string, PathFinding[]> => fail(p, failureText(f), f.code)

  if (!posix.isAbsolute(path)) return fail(path, 'is not an absolute path')
  const root = await lstatPath('/')
  if (!root.ok) return fsFail('/', root.error)
  judge('/', root.value)

  let current = '/'
  let last: FileStat = root.value
  let pending = components(path)
  let links = 0
  while (pending.length > 0) {
    const c = pending.shift() as string
    if (!last.isDir) return fail(current, 'is not a directory')
    if (c === '.') continue
    if (c === '..') {
      // `current` never holds a symlink, so its parent is the physical parent the kernel would take
      current = posix.dirname(current)
      const parent = await lstatPath(current)
      if (!parent.ok) return fsFail(current, parent.error)
      last = parent.value
      continue
    }
    const next = posix.join(current, c)
    const st = await lstatPath(next)
    if (!st.ok) return fsFail(next, st.error)
    if (st.value.isSymlink) {
      if (++links > MAX_SYMLINKS) return fail(path, `leads through more than ${MAX_SYMLINKS} symbolic links`)
      judge(next, st.value)
      const target = await readLinkTarget(next)
      if (!target.ok) return fsFail(next, target.error)
      if (posix.isAbsolute(target.value)) {
        current = '/'
        last = root.value
      }
      pending = [...components(target.value), ...pending]
      continue
    }
    judge(next, st.value)
    current = next
    last = st.value
  }
  if (opts.want === 'dir') {
    if (!last.isDir) return fail(current, 'is not a directory', 'ENOTDIR')
    if (!opts.shared) {
      // Judged again, now as the directory whose entries are trusted; a sticky root-owned one passed as an ancestor.
      const earlier = findings.findIndex((f) => f.path === current)
      if (earlier >= 0) findings.splice(earlier, 1)
      judged.delete(current)
      judge(current, last, true)
    }
  } else if (!last.isFile) {
    return fail(current, last.isDir ? 'is a directory, not a file' : 'is not a regular file', last.isDir ? 'EISDIR' : 'ENOTREG')
  }
  return findings.length > 0 ? err(findings) : ok(current)
}

export interface OpenWalkedOptions extends WalkOptions {
  /** Largest file accepted. */
  maxBytes: number
}

/**
 * walkPath to a regular file, then one open of the real path it resolved (O_NOFOLLOW, O_NONBLOCK), judged again on
 * the descriptor (fstat): a regular file within `maxBytes`, and with `strict`, owned and moded like every component
 * of the walk. The caller reads from the returned file and closes it.
 */
export async function openWalked(path: string, opts: OpenWalkedOptions): Promise<Result<OpenedFile, PathFinding[]>> {
  const walked = await walkPath(path, { ...opts, want: 'file' })
  if (!walked.ok) return walked
  const real = walked.value
  const opened = await openRegularFile(real, { maxBytes: opts.maxBytes })
  if (!opened.ok) {
    const f = opened.error
    // Its own message names the path for what fstat found; an errno from open(2) gets the walk's wording.
    const text = ['ELOOP', 'ENOTREG', 'EFBIG', 'EAGAIN'].includes(f.code) ? f.message : `${real} ${failureText(f)}`
    return err([{ path: real, unsafe: false, text, code: f.code }])
  }
  const problems = opts.strict ? statProblems(opened.value.stat, opts.trustedUids) : []
  if (problems.length > 0) {
    await opened.value.close()
    return err([{ path: real, unsafe: true, text: `file ${real} is ${problems.join(' and ')}` }])
  }
  return opened
}

function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '')
}

function kindOf(st: FileStat): string {
  return st.isSymlink ? 'symlink' : st.isDir ? 'directory' : 'file'
}

function failureText(f: FsFailure): string {
  switch (f.code) {
    case 'ENOENT':
      return 'does not exist'
    case 'EACCES':
      return 'cannot be accessed (permission denied)'
    case 'ENOTDIR':
      return 'is not a directory'
    default:
      return `cannot be examined (${f.code}: ${f.message})`
  }
}
