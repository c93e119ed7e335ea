/**
 * The Desire the reconciler asks: config entry -> loaded program for a link, ownership, and descriptors for
 * attached programs. Built once per config (start-up, reload) so that planning a link does no I/O: ownership is a
 * set computed when the desire is built, from our pins and our loads.
 */
import type { AttachEntry, LinkMatcher } from '../config/index.js'
import type { LoadedProgram } from '../programs/registry.js'
import type { LinkState } from '../rtnl/link.js'
import type { XdpEntryMode } from '../rtnl/xdp.js'

/** A config entry as the reconciler sees it, with its program already loaded. */
export interface Target {
  entry: string
  progId: number
  /** Descriptor of the loaded program, for IFLA_XDP_FD. */
  fd: number
  mode: XdpEntryMode
  replaceForeign: boolean
}

/** The programs side: which program a link wants, whether an id is ours, a descriptor for an attached id. */
export interface Desire {
  /** The target for a link, or null when no entry matches (the link is unmanaged). */
  targetFor(link: LinkState): Target | null
  /** Whether a program id is ours (pinned under our bpffs). */
  isOurs(progId: number): boolean
  /**
   * A descriptor for an attached program, for IFLA_XDP_EXPECTED_FD. Returns it with a function to release it
   * (descriptors opened by id must be closed after the request). Null when the program is gone. Throws the libbpf
   * error when it cannot be opened (EPERM for a foreign program without CAP_SYS_ADMIN).
   */
  fdForProgId(progId: number): { fd: number; release(): void } | null
}

export interface DesireParts {
  match: LinkMatcher
  /** The loaded program of each entry, by entry index. */
  programs: ReadonlyMap<number, LoadedProgram>
  /** Ids of every program of ours (loaded now or pinned under our bpffs). */
  owned: ReadonlySet<number>
  /** Opens a program by id (for one we did not load in this process); null when it is gone. */
  openById: (id: number) => { fd: number; close(): void } | null
}

export function buildDesire(p: DesireParts): Desire {
  const byId = new Map<number, LoadedProgram>()
  for (const prog of p.programs.values()) byId.set(prog.id, prog)
  const targets = new Map<number, Target>()
  const targetOf = (e: AttachEntry): Target | null => {
    let t = targets.get(e.index)
    if (t) return t
    const prog = p.programs.get(e.index)
    if (!prog) return null
    t = { entry: e.name, progId: prog.id, fd: prog.fd.raw, mode: e.mode, replaceForeign: e.replaceForeign }
    targets.set(e.index, t)
    return t
  }
  return {
    targetFor: (link: LinkState) => {
      const e = p.match(link)
      return e ? targetOf(e) : null
    },
    isOurs: (id) => p.owned.has(id) || byId.has(id),
    fdForProgId: (id) => {
      const mine = byId.get(id)
      if (mine) return { fd: mine.fd.raw, release: () => {} }
      const opened = p.openById(id)
      return opened ? { fd: opened.fd, release: () => opened.close() } : null
    },
  }
}
