/**
 * Reading object files, for the registry, the object watch and `xdplinkd check` alike:
 *  - the same path rules as the config's (config/secure-path.ts): every component from / judged, then one open of
 *    the real path the walk resolved with O_NOFOLLOW | O_NONBLOCK, and the descriptor judged by fstat (a regular file
 *    of at most MAX_OBJECT_BYTES, owned and moded like the rest). A FIFO renamed over the object cannot block the
 *    daemon in open(), and a link to /dev/zero cannot make it read without end;
 *  - the bytes read from that same descriptor, asynchronously, in chunks, each fed to the SHA-256 as it arrives: the
 *    event loop runs between chunks, and the bytes hashed are the bytes loaded. This is the one place an object's
 *    hash is computed.
 *
 * ObjectFiles remembers, per path, the version of the file (device, inode, size, mtime, ctime: fs.ts OpenedStat)
 * last read and its hash. Opened again unchanged, a file need not be read at all (1,000 entries naming one object
 * read it once); one that was only touched is read and hashed once more and found the same.
 */
import { createHash } from 'node:crypto'
import { ERRNO } from '../ffi/errno.js'
import { openWalked, type PathFinding, type WalkOptions } from '../config/secure-path.js'
import { ProgramLoadError } from './errors.js'

/**
 * The largest object file read. A BPF object is kilobytes to a few megabytes (BTF included); the kernel takes at
 * most BPF_COMPLEXITY_LIMIT_INSNS (1M) instructions of 8 bytes per program (kernel/bpf/syscall.c, bpf_prog_load:
 * E2BIG beyond). The limit keeps a mistaken path from being read into memory whole.
 */
export const MAX_OBJECT_BYTES = 64 << 20

/** One opened version of an object file (the backend's part: the kernel's is openObjectFile). */
export interface ObjectFile {
  /** What tells this version from another (fs.ts OpenedStat.version). */
  readonly version: string
  /** The bytes and their hex SHA-256. Throws ProgramLoadError (stage `read`). */
  read(): Promise<ObjectImage>
  close(): Promise<void>
}

export interface ObjectImage {
  bytes: Buffer
  /** Hex SHA-256 of `bytes`. */
  hash: string
}

/** The object at `path` under the path rules, opened; throws ProgramLoadError (stage `read`). */
export async function openObjectFile(path: string, rules: WalkOptions): Promise<ObjectFile> {
  const opened = await openWalked(path, { ...rules, maxBytes: MAX_OBJECT_BYTES })
  if (!opened.ok) throw readError(path, opened.error)
  const file = opened.value
  return {
    version: file.stat.version,
    async read() {
      const hash = createHash('sha256')
      const bytes = await file.read((chunk) => hash.update(chunk))
      if (!bytes.ok) throw readError(path, [{ path: file.path, unsafe: false, text: bytes.error.message, code: bytes.error.code }])
      return { bytes: bytes.value, hash: hash.digest('hex') }
    },
    close: () => file.close(),
  }
}

function readError(objectPath: string, findings: PathFinding[]): ProgramLoadError {
  const unsafe = findings.some((f) => f.unsafe)
  const code = findings.find((f) => f.code !== undefined)?.code
  const errno = code !== undefined ? (ERRNO as Record<string, number | undefined>)[code] : undefined
  return new ProgramLoadError({
    stage: 'read',
    objectPath,
    detail: `${unsafe ? 'refusing' : 'cannot read'} the object file: ${findings.map((f) => f.text).join('; ')}`,
    errno,
    code: errno === undefined ? code : undefined,
    unsafe,
    hint: unsafe ? 'fix the owner or mode, or start xdplinkd with --insecure-paths' : undefined,
  })
}

/** An object file opened through ObjectFiles. */
export interface OpenedObject {
  /** The hash of this very version, when it was read before; null: read() to learn it. */
  readonly knownHash: string | null
  /** Reads and hashes it (and remembers the hash for this version). */
  read(): Promise<ObjectImage>
  close(): Promise<void>
}

export class ObjectFiles {
  readonly #open: (path: string) => Promise<ObjectFile>
  readonly #known = new Map<string, { version: string; hash: string }>()

  constructor(open: (path: string) => Promise<ObjectFile>) {
    this.#open = open
  }

  /** Opens `path`; throws ProgramLoadError. Close what it returns. */
  async open(path: string): Promise<OpenedObject> {
    const file = await this.#open(path)
    const known = this.#known.get(path)
    return {
      knownHash: known?.version === file.version ? known.hash : null,
      read: async () => {
        const image = await file.read()
        this.#known.set(path, { version: file.version, hash: image.hash })
        return image
      },
      close: () => file.close(),
    }
  }

  /** The hash of what is at `path` now: remembered if the version is unchanged, else read. Throws ProgramLoadError. */
  async hashOf(path: string): Promise<string> {
    const f = await this.open(path)
    try {
      return f.knownHash ?? (await f.read()).hash
    } finally {
      await f.close()
    }
  }

  /** Forgets every path but these (the ones the config in force names). */
  retain(paths: Iterable<string>): void {
    const keep = new Set(paths)
    for (const p of this.#known.keys()) if (!keep.has(p)) this.#known.delete(p)
  }
}
