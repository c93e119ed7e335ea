/**
 * The config module's only contact with the filesystem: thin wrappers that turn Node's exceptions into Results.
 * Tests replace this module (t.mockImport) with an in-memory tree.
 */
import { constants, type BigIntStats } from 'node:fs'
import { lstat, open, readlink, type FileHandle } from 'node:fs/promises'
import { ST_RDONLY, statfsFlags } from '../ffi/libc.js'
import { err, ok, type Result } from '../result.js'

// <fcntl.h>. libuv adds O_CLOEXEC to every open (uv_fs_open), so a child process never inherits the descriptor.
export const O_RDONLY = constants.O_RDONLY
export const O_NOFOLLOW = constants.O_NOFOLLOW
export const O_NONBLOCK = constants.O_NONBLOCK

/** Bytes asked of the kernel per read(2): the event loop runs between chunks, and a hash can be fed each one. */
export const READ_CHUNK = 1 << 20

export interface FileStat {
  uid: number
  mode: number
  isDir: boolean
  isFile: boolean
  isSymlink: boolean
}

/** What fstat says about an opened file: enough to judge it (FileStat) and to tell one version of it from another. */
export interface OpenedStat extends FileStat {
  size: number
  /** `dev:ino:size:mtime:ctime` (nanoseconds): changes with the content, as far as the kernel tells. */
  version: string
}

export interface FsFailure {
  /**
   * errno name: ENOENT, EACCES, ELOOP, ... Also, not from the kernel: EILSEQ for text that is not UTF-8, ENOTREG for
   * an opened file that is not a regular file, EFBIG for one over the size limit, EAGAIN for one that grew while read.
   */
  code: string
  message: string
}

function failure(e: unknown): FsFailure {
  const code = typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : 'EIO'
  return { code, message: e instanceof Error ? e.message : String(e) }
}

/** `dev:ino:size:mtime:ctime` of a stat taken with `bigint: true` (nanoseconds): OpenedStat.version. */
export function fileVersion(st: { dev: bigint; ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint }): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`
}

/**
 * Whether `path` is on a read-only mount (statfs f_flags ST_RDONLY): nobody can write there, whatever the modes
 * say. False when it cannot be told.
 */
export function onReadOnlyMount(path: string): boolean {
  try {
    return (statfsFlags(path) & ST_RDONLY) !== 0
  } catch {
    return false
  }
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

/** A regular file opened for reading; everything read comes from this one descriptor. */
export interface OpenedFile {
  readonly path: string
  /** fstat(2) of the descriptor, taken at open. */
  readonly stat: OpenedStat
  /** The whole file, in READ_CHUNK pieces, each also handed to `onChunk` (a hash). At most the limit it was opened with. */
  read(onChunk?: (chunk: Buffer) => void): Promise<Result<Buffer, FsFailure>>
  /** Closes the descriptor; never fails, and later calls do nothing. */
  close(): Promise<void>
}

export interface OpenLimits {
  /** Largest file accepted (EFBIG beyond). */
  maxBytes: number
}

/**
 * Opens `path` for reading with O_NOFOLLOW (a symlink as the last component fails with ELOOP: the caller passes the
 * real path its checks resolved, so a link put there since is refused, not followed) and O_NONBLOCK (opening a FIFO
 * does not wait for a writer: fs/fifo.c, fifo_open; for a regular file the flag means nothing), then judges the
 * descriptor itself with fstat: a regular file within the limit. A device, FIFO or socket is closed again unread.
 * Asynchronous throughout (libuv's thread pool), so a slow filesystem does not stop the event loop.
 */
export async function openRegularFile(path: string, limits: OpenLimits): Promise<Result<OpenedFile, FsFailure>> {
  let fh: FileHandle
  try {
    fh = await open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
  } catch (e) {
    const f = failure(e)
    // open(2) with O_NOFOLLOW: "If the trailing component of pathname is a symbolic link, the open fails with ELOOP".
    return err(f.code === 'ELOOP' ? { code: 'ELOOP', message: `${path} is a symbolic link (not followed)` } : f)
  }
  let st: BigIntStats
  try {
    st = await fh.stat({ bigint: true })
  } catch (e) {
    await fh.close().catch(() => {})
    return err(failure(e))
  }
  const refuse = async (code: string, message: string): Promise<Result<OpenedFile, FsFailure>> => {
    await fh.close().catch(() => {})
    return err({ code, message })
  }
  if (!st.isFile()) return refuse('ENOTREG', `${path} is ${st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : 'not a regular file'}`)
  const size = Number(st.size)
  if (size > limits.maxBytes) return refuse('EFBIG', `${path} is ${size} bytes, more than the ${limits.maxBytes} accepted`)
  let closed = false
  const opened: OpenedFile = {
    path,
    stat: {
      uid: Number(st.uid),
      mode: Number(st.mode),
      isDir: false,
      isFile: true,
      isSymlink: false,
      size,
      version: fileVersion(st),
    },
    read: (onChunk) => readAll(fh, path, size, limits.maxBytes, onChunk),
    async close() {
      if (closed) return
      closed = true
      await fh.close().catch(() => {})
    },
  }
  return ok(opened)
}

/**
 * Reads from position 0 to the end of file. A file that shrank since fstat gives what is there; one that grew past
 * the size fstat gave is being written still, and fails (EAGAIN), rather than be taken half-written or read without end.
 */
async function readAll(fh: FileHandle, path: string, size: number, maxBytes: number, onChunk?: (chunk: Buffer) => void): Promise<Result<Buffer, FsFailure>> {
  const buf = Buffer.allocUnsafe(size)
  let off = 0
  try {
    while (off < size) {
      const { bytesRead } = await fh.read(buf, off, Math.min(READ_CHUNK, size - off), off)
      if (bytesRead === 0) break
      onChunk?.(buf.subarray(off, off + bytesRead))
      off += bytesRead
    }
    if (off === size) {
      const { bytesRead } = await fh.read(Buffer.alloc(1), 0, 1, size)
      if (bytesRead > 0) {
        const why = size >= maxBytes ? `more than the ${maxBytes} bytes accepted` : `longer than the ${size} bytes it had when opened (still being written?)`
        return err({ code: size >= maxBytes ? 'EFBIG' : 'EAGAIN', message: `${path} grew while it was read: ${why}` })
      }
    }
  } catch (e) {
    return err(failure(e))
  }
  return ok(off === size ? buf : buf.subarray(0, off))
}
