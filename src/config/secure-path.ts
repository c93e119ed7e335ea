/**
 * Walks a path the way the kernel resolves it and judges every component (permissions.ts): each directory from /
 * down, each symlink met on the way, each directory its target leads through, and the final file, which must be a
 * regular file. Checking only the real path (realpath(3)) would miss the directories that hold the links: whoever
 * can write one of those can point the link elsewhere. Checking only the path as written would miss where the
 * links lead. Walking component by component covers both, and chains of links too.
 *
 * A component is judged once per walk however often the walk passes it (an absolute link target restarts at /).
 */
import { posix } from 'node:path'
import { err, ok, type Result } from '../result.js'
import { lstatPath, readLinkTarget, type FileStat, type FsFailure } from './fs.js'
import { statProblems } from './permissions.js'

/** Symlinks followed before giving up, as the kernel does (MAXSYMLINKS, include/linux/namei.h). */
export const MAX_SYMLINKS = 40

export interface PathFinding {
  /** The component concerned. */
  path: string
  /** true: it exists but is unsafe (lifted by insecurePaths); false: the path cannot be used at all. */
  unsafe: boolean
  /** A sentence fragment with its subject: `directory /opt is writable by others without the sticky bit (mode 0777)`. */
  text: string
}

export interface WalkOptions {
  /** Judge ownership and modes (false: only check that the path leads to a regular file). */
  strict: boolean
  trustedUids: readonly number[]
  /** What the path must lead to: a regular file (the default), or a directory (the control socket's). */
  want?: 'file' | 'directory'
}

/**
 * The real path of the regular file (or, with `want: 'directory'`, the directory) `path` leads to, or everything
 * wrong along the way. `path` must be absolute.
 */
export async function walkPath(path: string, opts: WalkOptions): Promise<Result<string, PathFinding[]>> {
  const findings: PathFinding[] = []
  const judged = new Set<string>()
  const judge = (p: string, st: FileStat): void => {
    if (!opts.strict || judged.has(p)) return
    judged.add(p)
    const problems = statProblems(st, opts.trustedUids)
    if (problems.length > 0) findings.push({ path: p, unsafe: true, text: `${kindOf(st)} ${p} is ${problems.join(' and ')}` })
  }
  const fail = (p: string, text: string): Result<string, PathFinding[]> => err([...findings, { path: p, unsafe: false, text: `${p} ${text}` }])

  if (!posix.isAbsolute(path)) return fail(path, 'is not an absolute path')
  const root = await lstatPath('/')
  if (!root.ok) return fail('/', failureText(root.error))
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
      if (!parent.ok) return fail(current, failureText(parent.error))
      last = parent.value
      continue
    }
    const next = posix.join(current, c)
    const st = await lstatPath(next)
    if (!st.ok) return fail(next, failureText(st.error))
    if (st.value.isSymlink) {
      if (++links > MAX_SYMLINKS) return fail(path, `leads through more than ${MAX_SYMLINKS} symbolic links`)
      judge(next, st.value)
      const target = await readLinkTarget(next)
      if (!target.ok) return fail(next, failureText(target.error))
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
  if (opts.want === 'directory') {
    if (!last.isDir) return fail(current, 'is not a directory')
  } else if (!last.isFile) return fail(current, last.isDir ? 'is a directory, not a file' : 'is not a regular file')
  return findings.length > 0 ? err(findings) : ok(current)
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
