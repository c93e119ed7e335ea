/**
 * The config watch (`run --watch-config`): tells the daemon when the config file it reads is another file or other
 * bytes now, so that it reloads as on SIGHUP (a broken new config is rejected there and the old one stays).
 *
 * It is built for the kubelet's ConfigMap volume, where the file is never written in place: the path
 * (`/etc/xdplinkd/config.yaml`) is a symlink to `..data/config.yaml`, `..data` a symlink to a timestamped directory,
 * and an update writes a new directory, points a `..data_tmp` symlink at it and renames that over `..data`
 * (kubernetes pkg/volume/util/atomic_writer.go). No event ever names config.yaml. So the watch takes every event of
 * the config's directory (and of the directory its symlinks lead to), waits for the burst to end, and compares the
 * version of what the path leads to now (stat through the symlinks: device, inode, size, mtime, ctime) with the last
 * one it saw: a file swapped in, renamed over or edited differs; an event for any other file in the directory leaves
 * it the same, and nothing is reloaded. inotify through fs.watch: no polling.
 */
import { watch, type FSWatcher } from 'node:fs'
import { realpath, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileVersion } from './fs.js'

/** Events within this long of each other are one change (the kubelet's writes, renames and removals). */
export const CONFIG_DEBOUNCE_MS = 200

export interface ConfigWatchOptions {
  path: string
  onChange(): void
  log: { warn(fields: Record<string, unknown>, message: string): void }
  debounceMs?: number
}

export class ConfigWatch {
  readonly #o: ConfigWatchOptions
  #watchers: FSWatcher[] = []
  #dirs: string[] = []
  #seen: string | null = null
  #timer: ReturnType<typeof setTimeout> | null = null
  #closed = false

  private constructor(o: ConfigWatchOptions) {
    this.#o = o
  }

  /** Starts watching; the version now is the one in force (the daemon has just read it). */
  static async start(o: ConfigWatchOptions): Promise<ConfigWatch> {
    const w = new ConfigWatch(o)
    w.#seen = await w.#version()
    await w.#arm()
    return w
  }

  /** The directories watched: the config's own, and the one its symlinks lead to. */
  get dirs(): readonly string[] {
    return this.#dirs
  }

  async #version(): Promise<string | null> {
    try {
      return fileVersion(await stat(this.#o.path, { bigint: true }))
    } catch {
      return null
    }
  }

  /** (Re)watches the directories: after a swap the real file's directory is another one. */
  async #arm(): Promise<void> {
    const dirs = new Set([dirname(this.#o.path)])
    try {
      dirs.add(dirname(await realpath(this.#o.path)))
    } catch {
      // gone for now: the own directory's events tell when it is back
    }
    const list = [...dirs]
    if (this.#closed || list.join('\0') === this.#dirs.join('\0')) return
    for (const w of this.#watchers) w.close()
    this.#watchers = []
    this.#dirs = list
    for (const dir of list) {
      try {
        const w = watch(dir, { persistent: false }, () => this.#schedule())
        w.on('error', (e) => this.#o.log.warn({ dir }, `cannot watch ${dir} for config changes: ${e.message}; reload with SIGHUP`))
        this.#watchers.push(w)
      } catch (e) {
        this.#o.log.warn({ dir }, `cannot watch ${dir} for config changes: ${(e as Error).message}; reload with SIGHUP`)
      }
    }
  }

  #schedule(): void {
    if (this.#closed) return
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = null
      void this.#check()
    }, this.#o.debounceMs ?? CONFIG_DEBOUNCE_MS)
  }

  async #check(): Promise<void> {
    const now = await this.#version()
    await this.#arm()
    if (this.#closed || now === this.#seen) return
    this.#seen = now
    // Gone (between a removal and the file put back): nothing to read yet; its return is another change.
    if (now !== null) this.#o.onChange()
  }

  close(): void {
    this.#closed = true
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
    for (const w of this.#watchers) w.close()
    this.#watchers = []
  }
}
