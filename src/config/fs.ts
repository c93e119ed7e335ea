/**
 * The config module's only contact with the filesystem: thin wrappers that turn Node's exceptions into Results.
 * Tests replace this module (t.mockImport) with an in-memory tree.
 */
import { lstat, readFile, readlink } from 'node:fs/promises'
import { err, ok, type Result } from '../result.js'

export interface FileStat {
  uid: number
  mode: number
  isDir: boolean
  isFile: boolean
  isSymlink: boolean
}

export interface FsFailure {
  /** errno name: ENOENT, EACCES, ELOOP, ... (or EILSEQ for text that is not UTF-8). */
  code: string
  message: string
}

function failure(e: unknown): FsFailure {
  const code = typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : 'EIO'
  return { code, message: e instanceof Error ? e.message : String(e) }
}

/** lstat(2): does not follow a final symlink. */
export async function lstatPath(path: string): Promise<Result<FileStat, FsFailure>> {
  try {
    const s = await lstat(path)
    return ok({ uid: s.uid, mode: s.mode, isDir: s.isDirectory(), isFile: s.isFile(), isSymlink: s.isSymbolicLink() })
  } catch (e) {
    return err(failure(e))
  }
}

export async function readLinkTarget(path: string): Promise<Result<string, FsFailure>> {
  try {
    return ok(await readlink(path))
  } catch (e) {
    return err(failure(e))
  }
}

/** The whole file as UTF-8; invalid UTF-8 is an error rather than silently replaced characters. */
export async function readTextFile(path: string): Promise<Result<string, FsFailure>> {
  try {
    const bytes = await readFile(path)
    try {
      return ok(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
    } catch {
      return err({ code: 'EILSEQ', message: 'not valid UTF-8' })
    }
  } catch (e) {
    return err(failure(e))
  }
}
