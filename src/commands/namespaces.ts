/**
 * The network namespaces a command looks at (`links`/`monitor` with `--netns` or `--all-namespaces`, `check` for a
 * config that names namespaces): the daemon's own watch (netns/watch.ts) over the directories, so that a command
 * finds exactly the namespaces, by exactly the names, the daemon would, under the same path rules; and what it
 * warned of, kept so that the command can say why a name it was asked for is not there.
 */
import { posix } from 'node:path'
import { NetnsWatch } from '../netns/watch.js'
import { ignoredText, type Namespace, type NetnsEvent } from '../netns/registry.js'
import { RtnlClient } from '../rtnl/client.js'
import type { LinkState } from '../rtnl/link.js'

/** What the watch warned of. */
export type NetnsWarning =
  /** A directory it would not (or could not) watch. */
  | { kind: 'dir'; dir: string; message: string }
  /** A file that is no namespace it can use: it could not be entered (EPERM without CAP_SYS_ADMIN), a symlink... */
  | { kind: 'file'; path: string; message: string }
  /** A file that binds a namespace but does not count: its name is another namespace's, or `host`. */
  | { kind: 'ignored'; path: string; message: string }

export interface CommandNetnsOptions {
  dirs: readonly string[]
  insecurePaths?: boolean
  /** Each warning as it comes, also those after start (monitor); they are kept in `warnings` either way. */
  onWarning?: (w: NetnsWarning) => void
  /** Namespace events after start(): a namespace that came, went or was renamed. */
  onEvent?: (e: NetnsEvent) => void
}

export class CommandNetns {
  readonly warnings: NetnsWarning[] = []
  readonly #watch: NetnsWatch
  readonly dirs: readonly string[]
  /** start() is over: the namespaces it found are the starting point, what comes after is an event. */
  #live = false

  private constructor(o: CommandNetnsOptions) {
    this.dirs = o.dirs
    const warn = (w: NetnsWarning): void => {
      this.warnings.push(w)
      o.onWarning?.(w)
    }
    this.#watch = new NetnsWatch({
      dirs: o.dirs,
      insecurePaths: o.insecurePaths,
      log: {
        // The watch names a directory as `dir`, a file as `path` (netns/watch.ts #refuse, #followUp).
        warn: (fields, message) =>
          warn(typeof fields.path === 'string' ? { kind: 'file', path: fields.path, message } : { kind: 'dir', dir: String(fields.dir), message }),
      },
    })
    this.#watch.on('netns', (e) => {
      // The daemon warns of these in the same words (netns/managed.ts); the watch leaves the wording to its users.
      if (e.kind === 'ignored') warn({ kind: 'ignored', path: e.file.path, message: ignoredText(e.file) })
      else if (this.#live) o.onEvent?.(e)
    })
  }

  /** Watches the directories and looks at every file in them once; the namespaces found are namespaces() then. */
  static async open(o: CommandNetnsOptions): Promise<CommandNetns> {
    const n = new CommandNetns(o)
    try {
      await n.#watch.start()
    } catch (e) {
      n.close()
      throw e
    }
    n.#live = true
    return n
  }

  /** Every namespace found, the daemon's own (`host`) first. */
  namespaces(): Namespace[] {
    return this.#watch.namespaces()
  }

  /** A descriptor of the namespace (not host), valid until it is removed or close(); null when it is not held. */
  fdOf(id: string): number | null {
    return this.#watch.fdOf(id)?.raw ?? null
  }

  /**
   * Why there is no namespace named `name` though a file of that name is in a directory (it could not be entered,
   * it binds no namespace, another has the name), or why a directory was not looked at: the text of its warnings.
   */
  whyNot(name: string): string | undefined {
    const file = this.warnings.filter((w) => w.kind !== 'dir' && posix.basename(w.path) === name)
    const dirs = this.warnings.filter((w) => w.kind === 'dir')
    const texts = [...file, ...dirs].map((w) => w.message)
    return texts.length > 0 ? texts.join('; ') : undefined
  }

  close(): void {
    this.#watch.close()
  }
}

/**
 * One dump of a namespace's links, sorted by ifindex: `netnsFd` names the namespace (absent: the one this process
 * runs in). The sockets are made inside it and closed at once, so nothing holds the namespace afterwards.
 */
export async function dumpLinksIn(netnsFd?: number): Promise<LinkState[]> {
  const client = new RtnlClient({ subscribe: false, netnsFd })
  try {
    return (await client.dumpLinks()).sort((a, b) => a.ifindex - b.ifindex)
  } finally {
    client.close()
  }
}

/** A usage error: exit status 1 (src/cli/outcome.ts), one line on stderr, no EPERM hint. */
export function usageError(message: string): Error & { exitCode: number } {
  return Object.assign(new Error(message), { exitCode: 1 })
}
