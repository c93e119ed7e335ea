/** The normalized configuration: every default filled in, every path absolute, every duration in milliseconds. */
import type { XdpEntryMode } from '../rtnl/xdp.js'

export type OnExit = 'keep' | 'detach'

export const ON_EXIT_VALUES: readonly OnExit[] = ['keep', 'detach']

/**
 * The kind that `kinds:` spells for a link without IFLA_INFO_KIND: physical NICs, but also `lo` and wireless
 * devices (no rtnl_link_ops, so rtnl_link_fill omits IFLA_LINKINFO).
 */
export const NO_KIND = 'device'

/**
 * The name `netns:` gives the daemon's own network namespace. It is matched like any namespace name, so `*`
 * matches it too. Other namespaces are named by their file's name in a directory of `netns-dirs:`.
 */
export const HOST_NETNS = 'host'

export interface MetricsEndpoint {
  /** Without brackets for IPv6 (`::1`), ready for `server.listen(port, host)`. */
  host: string
  port: number
}

/** `control-group:`: whose members may use the control socket besides root. */
export interface ControlGroup {
  /** As written; null when the file gives a number. */
  name: string | null
  /** The number written, or the name's gid in /etc/group when the file was loaded. */
  gid: number
}

export interface AttachEntry {
  /** Position in `attach:`, from 0. */
  index: number
  /** `name:` or `attach[<index>]`. Unique within a config. */
  name: string
  interfaces: string[]
  exclude: string[]
  /** null when `kinds:` is absent (any kind matches). */
  kinds: string[] | null
  /**
   * Globs on the names of the namespaces whose links the entry is for (HOST_NETNS: the daemon's own); `[host]` when
   * `netns:` is absent. The entry decides for a link only in a namespace these match (match.ts).
   */
  netns: string[]
  /** Absolute. Relative paths in the file are resolved against the config file's directory. */
  object: string
  /** null: the object must hold exactly one XDP program (checked when it is loaded, not here). */
  program: string | null
  /**
   * How the entry attaches (rtnl/xdp.ts owns the modes). `auto` tries native and uses generic on a link whose driver
   * has no native XDP or refuses it as the link is set up (reconcile/plan.ts attachMode).
   */
  mode: XdpEntryMode
  replaceForeign: boolean
  /** `maps:`, in file order; empty when absent. */
  maps: MapDeclaration[]
}

/** Where a declared thing is: a place in the config file (or a line of a list file), for error messages. */
export interface Place {
  file: string
  line: number | null
  col: number | null
  /** The key path in the config (`attach[0].maps.blocklist_v4[3]`), or '' in a list file. */
  path: string
}

/** One key of a declaration, with its own value or none (then the declaration's `value`, or zero bytes). */
export interface DeclaredItem {
  /** As the YAML parser gave it (string, number, boolean, list, mapping), or a list file's line. */
  key: unknown
  /** undefined: not given for this key. */
  value?: unknown
  at: Place
  valueAt?: Place
}

/**
 * `maps: {NAME: ...}` of an attach entry: the contents declared for the map NAME of the entry's program. What the
 * key and value mean is decided by the map's BTF when the program is at hand (src/maps/declare.ts), not here.
 */
export interface MapDeclaration {
  map: string
  /** The map's name in the config. */
  at: Place
  /** From `keys:` (or the list form) and `entries:`, in file order. */
  items: DeclaredItem[]
  /** `value:`, for the keys of `keys:` and `file:`; undefined when absent (zero bytes). */
  value?: unknown
  valueAt?: Place
  /** `file:`, absolute; null when absent. */
  file: string | null
  fileAt: Place | null
}

export interface Config {
  /** The config file, absolute. */
  path: string
  settleMs: number
  maxSettleMs: number
  bpffs: string
  onExit: OnExit
  controlSocket: string
  /** null: only root (and the daemon's own uid) may use the control socket. */
  controlGroup: ControlGroup | null
  /** null: no metrics endpoint. */
  metrics: MetricsEndpoint | null
  /**
   * Directories of namespace files (absolute, normalized, no duplicates): a namespace bound there is named by its
   * file name. Empty: only the daemon's own namespace (HOST_NETNS) can be managed.
   */
  netnsDirs: string[]
  /**
   * In file order; the first entry that matches a link (and the link's namespace) decides (see match.ts). Empty: no
   * link gets a program.
   */
  entries: AttachEntry[]
}

/** What matching needs to know about a link (from RTM_NEWLINK: IFLA_IFNAME, IFLA_ALT_IFNAME, IFLA_INFO_KIND). */
export interface LinkIdentity {
  name: string
  altNames: string[]
  kind: string | null
}

export const DEFAULT_CONFIG_PATH = '/etc/xdplinkd/config.yaml'

export const DEFAULTS = {
  settleMs: 50,
  maxSettleMs: 1000,
  bpffs: '/sys/fs/bpf/xdplinkd',
  onExit: 'keep',
  controlSocket: '/run/xdplinkd/control.sock',
  mode: 'auto',
  replaceForeign: false,
} as const satisfies Partial<Config> & Partial<AttachEntry>

/** `netns:` when absent: the daemon's own namespace only, so a config written before namespaces means what it did. */
export const DEFAULT_NETNS: readonly string[] = Object.freeze([HOST_NETNS])

/** `netns-dirs:` when absent: `ip netns`, containerd and CRI-O bind namespaces under /run/netns, Docker under /run/docker/netns. */
export const DEFAULT_NETNS_DIRS: readonly string[] = Object.freeze(['/run/netns', '/run/docker/netns'])

/** How messages name an entry: its place in the file, and its name when it has one of its own. */
export function entryLabel(e: Pick<AttachEntry, 'index' | 'name'>): string {
  const at = `attach[${e.index}]`
  return e.name === at ? at : `${at} (${e.name})`
}
