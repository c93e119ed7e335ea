/**
 * The object watch: tells the daemon when an object file it loaded from now holds other bytes, or a list file of
 * declared map contents (src/maps/listfile.ts) is another version, so that it reloads.
 *
 * It watches the directories of the object files, not the files: a rebuilt object usually lands as a rename over the
 * old one, which a watch on the file itself would miss. Events are gathered for a moment (DEBOUNCE_MS), then every
 * object in use is compared with what is at its path, read through the registry's ObjectFiles (objects.ts): the path
 * rules, O_NOFOLLOW | O_NONBLOCK, fstat, the size limit, an asynchronous chunked read and hash. A file whose version
 * (device, inode, size, mtime, ctime) is the one read before is not read again; one only touched is hashed once and
 * found the same, and nothing is reloaded. A file that cannot be used (a FIFO or a link to /dev/zero renamed into
 * place, one too large, an unsafe path, gone) changes nothing: the program in use stays, and one warning says why
 * (again only once it says something else).
 */
import { lstatSync, watch, type FSWatcher } from 'node:fs'
import { stat } from 'node:fs/promises'
import { fileVersion } from '../config/fs.js'
import { basename, dirname } from 'node:path'
import { SerialJob } from '../serial.js'
import type { ObjectFiles } from './objects.js'
import type { WarningSink } from './registry.js'

/** Events within this long of each other are one change (a build writes, renames, touches). */
export const DEBOUNCE_MS = 200

export interface ObjectWatchOptions {
  objects: ObjectFiles
  /** Warnings; `debug` (if any) hears of changes that turned out to be none (a `touch`). */
  log: WarningSink & { debug?(fields: Record<string, unknown>, message: string): void }
  /** Called when an object in use has other bytes at its path now. */
  onChange(): void
  debounceMs?: number
}

export class ObjectWatch {
  readonly #o: ObjectWatchOptions
  #watchers: FSWatcher[] = []
  #timer: ReturnType<typeof setTimeout> | null = null
  /** Object path -> hash of the bytes in use. */
  #inUse = new Map<string, string>()
  /**
   * List file (maps: file:) path -> the version read (fs.ts OpenedStat.version). A list is compared by version, not
   * read: the reload reads it under the path rules, and finds the contents unchanged if only touched.
   */
  #lists = new Map<string, string>()
  /** Object path -> the last warning given about it (not repeated while it stays the same). */
  readonly #warned = new Map<string, string>()
  /**
   * Path -> the hash (object) or version (list) last reported as a change. Reported once: if the reload it led to
   * was rejected (a broken object), the generation in force is unchanged, and every later event of the directory
   * would otherwise try the same bytes again. New bytes, or a SIGHUP, try again; follow() (a new generation) forgets.
   */
  #reported = new Map<string, string>()
  readonly #checks = new SerialJob<void, boolean>(() => this.#compare())
  #closed = false

  constructor(o: ObjectWatchOptions) {
    this.#o = o
  }

  /**
   * Watches the objects of the config in force: each entry's `object`, with the hash of the program leased for it
   * (`leases` by entry index). Replaces what was watched before.
   */
  follow(
    entries: readonly { index: number; object: string }[],
    leases: ReadonlyMap<number, { objectHash: string }>,
    lists: ReadonlyMap<string, string> = new Map(),
  ): void {
    this.#stopWatching()
    this.#inUse = new Map()
    for (const e of entries) {
      const lease = leases.get(e.index)
      if (lease) this.#inUse.set(e.object, lease.objectHash)
    }
    this.#lists = new Map(lists)
    this.#reported = new Map()
    this.#o.objects.retain(this.#inUse.keys())
    for (const p of this.#warned.keys()) if (!this.#inUse.has(p) && !this.#lists.has(p)) this.#warned.delete(p)
    // Events that name none of the watched files are let through for a directory where one of them is a symlink: what
    // it leads to can change by an event that names something else. The kubelet updates a ConfigMap volume so: the
    // file is a symlink to `..data/FILE`, and `..data` (a symlink to a timestamped directory) is replaced by renaming
    // `..data_tmp` over it (pkg/volume/util/atomic_writer.go). A check compares versions (a stat) first, so an
    // unrelated event costs little.
    const byDir = new Map<string, { names: Set<string>; anyEvent: boolean }>()
    for (const p of [...this.#inUse.keys(), ...this.#lists.keys()]) {
      const d = dirname(p)
      const w = byDir.get(d) ?? { names: new Set<string>(), anyEvent: false }
      byDir.set(d, w)
      w.names.add(basename(p))
      w.anyEvent ||= isSymlink(p)
    }
    for (const [dir, { names, anyEvent }] of byDir) {
      try {
        const w = watch(dir, { persistent: false }, (_ev, file) => {
          if (!anyEvent && file && !names.has(file.toString())) return
          this.#schedule()
        })
        w.on('error', (e) => this.#o.log.warn({ dir }, `cannot watch ${dir}: ${e.message}`))
        this.#watchers.push(w)
      } catch (e) {
        this.#o.log.warn({ dir }, `cannot watch ${dir}: ${(e as Error).message}; reload with SIGHUP after rebuilding`)
      }
    }
  }

  #schedule(): void {
    if (this.#closed) return
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = null
      void this.check().then((changed) => {
        if (this.#closed) return
        if (changed) this.#o.onChange()
        else this.#o.log.debug?.({ objects: this.#inUse.size }, 'object watch: no object in use holds other usable bytes now: nothing to reload')
      })
    }, this.#o.debounceMs ?? DEBOUNCE_MS)
  }

  /** Whether an object in use has other bytes at its path now. One comparison at a time; never throws. */
  check(): Promise<boolean> {
    return this.#checks.run()
  }

  async #compare(): Promise<boolean> {
    for (const [path, hash] of this.#inUse) {
      let now: string
      try {
        now = await this.#o.objects.hashOf(path)
      } catch (e) {
        const message = (e as Error).message
        if (this.#warned.get(path) !== message) {
          this.#warned.set(path, message)
          this.#o.log.warn({ object: path }, `object file changed but cannot be used: ${message}; the program loaded from it stays attached`)
        }
        continue
      }
      this.#warned.delete(path)
      // The reload reads the rest anyway.
      if (this.#changed(path, hash, now)) return true
    }
    for (const [path, version] of this.#lists) {
      let now: string
      try {
        now = fileVersion(await stat(path, { bigint: true }))
      } catch (e) {
        const message = (e as Error).message
        if (this.#warned.get(path) !== message) {
          this.#warned.set(path, message)
          this.#o.log.warn({ file: path }, `list file changed but cannot be read: ${message}; the contents in force stay`)
        }
        continue
      }
      this.#warned.delete(path)
      if (this.#changed(path, version, now)) return true
    }
    return false
  }

  /** Whether `now` differs from what is in force and was not reported before (#reported). */
  #changed(path: string, inForce: string, now: string): boolean {
    if (now === inForce) {
      this.#reported.delete(path)
      return false
    }
    if (this.#reported.get(path) === now) return false
    this.#reported.set(path, now)
    return true
  }

  #stopWatching(): void {
    for (const w of this.#watchers) w.close()
    this.#watchers = []
  }

  close(): void {
    this.#closed = true
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
    this.#stopWatching()
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink()
  } catch {
    return false
  }
}
