/**
 * The control socket's protocol: one JSON object per line each way. A request names a command
 * (`{"cmd":"status"}`, `{"cmd":"reload"}`, `{"cmd":"maps"}`); every response carries `ok`, and `error` when it is
 * false. Pure: no I/O, and a line that is not understood gives an error value, never an exception, so a client
 * cannot crash the daemon with what it sends.
 */
import type { ActionCounters } from '../programs/counters.js'
import { err, ok, type Result } from '../result.js'
import type { XdpMode } from '../rtnl/xdp.js'

/** Longest request line (bytes, newline excluded). Requests are a few dozen bytes; this only bounds memory. */
export const MAX_REQUEST_BYTES = 64 * 1024

export const COMMANDS = ['status', 'reload', 'maps'] as const
export type ControlCommand = (typeof COMMANDS)[number]

export interface ControlRequest {
  cmd: ControlCommand
}


/** A program the kernel runs on a link. */
export interface AttachedProgramJson {
  progId: number
  mode: XdpMode
  /** `ours`: pinned under our bpffs or loaded by this daemon (what the reconciler may replace or detach). */
  owner: 'ours' | 'foreign'
}

export interface LinkStatusJson {
  /** The link's network namespace: `host` (the daemon's own) or the name of its namespace file. */
  netns: string
  ifindex: number
  name: string
  kind: string | null
  /** The config entry that matches the link; null when none does. */
  entry: string | null
  /** The program that entry wants here; null when unmanaged. */
  desiredProgId: number | null
  /** What the kernel runs (native before generic before offload when several modes are attached at once). */
  attached: AttachedProgramJson | null
  /** Other modes' programs, only when the kernel reports more than one mode (XDP_ATTACHED_MULTI). */
  alsoAttached?: AttachedProgramJson[]
  state: 'attached' | 'pending' | 'conflict' | 'error' | 'unmanaged'
  /** The last failure (`EBUSY: ...`), set while the link is in state `error`. */
  lastError: string | null
  /**
   * Packets and bytes by XDP action (`aborted`, `drop`, `pass`, `tx`, `redirect`) that the attached program counted
   * on this link, from its per-link stats map; null when it keeps none (no program, a foreign one, an object without
   * the map) or cannot tell this link from another (docs/reference.md, "Per-link counters").
   */
  traffic: TrafficJson | null
}

export type TrafficJson = ActionCounters

export interface ProgramStatusJson {
  id: number
  tag: string
  name: string
  object: string
  pin: string
  /** Config entries that use it (entries with the same object bytes and program share one). */
  entries: string[]
  /** The pin of its per-link stats map (`xdp_link_stats`), when it has one that follows the convention. */
  linkStats: string | null
  /** Why a map of that name gives no counters (another shape, or it could not be read). */
  linkStatsProblem?: string
}

export interface CountersJson {
  attaches: number
  replaces: number
  detaches: number
  conflicts: number
  /** Failed requests by errno name (`EBUSY`, `EOPNOTSUPP`, ...). */
  errors: Record<string, number>
  /** Netlink notification overruns (ENOBUFS), each followed by a resync. */
  overruns: number
  /** Full re-dumps of the link table, the one at start-up included. */
  resyncs: number
}

export interface StatusJson {
  pid: number
  config: string
  links: LinkStatusJson[]
  programs: ProgramStatusJson[]
  counters: CountersJson
}

/** A map whose contents the config in force declares (`maps:` of an attach entry). */
export interface ManagedMapJson {
  /** The config entries that declare its contents (entries that share its program). */
  declaredBy: string[]
  /** How many entries they declare. */
  declared: number
  /**
   * Whether the map holds exactly what is declared now (read when asked); null when that could not be told
   * (`holdsProblem` says why).
   */
  holdsDeclared: boolean | null
  /** When the whole map was compared: declared entries it lacks, declared ones with another value, undeclared ones. */
  missing?: number
  changed?: number
  extra?: number
  /** Why `holdsDeclared` is null, or false without the counts (a map read only in part). */
  holdsProblem?: string
}

export interface MapJson {
  /** Its name in the object (as pinned: `<pin dir>/maps/<name>`). */
  name: string
  pin: string
  /** What the kernel says of it; null when the pin could not be opened (`problem`). */
  id: number | null
  /** libbpf's name of its type (`lpm_trie`, `percpu_array`, ...). */
  type: string | null
  keySize: number | null
  valueSize: number | null
  maxEntries: number | null
  flags: number | null
  /** Entries it holds now (an array: max_entries); null when they could not be counted. */
  count: number | null
  /** false: it holds more than `count` (the walk stopped at `countLimit`, or the map kept changing meanwhile). */
  countExact: boolean
  /** null: xdplinkd does not touch its contents. */
  managed: ManagedMapJson | null
  /** Why something above is missing. */
  problem?: string
}

export interface ProgramMapsJson {
  id: number
  name: string
  object: string
  /** The program's pin; its maps are pinned under `<pin dir>/maps/`. */
  pin: string
  /** Config entries that use it. */
  entries: string[]
  /** Its maps, by name. */
  maps: MapJson[]
}

export interface MapsJson {
  pid: number
  config: string
  /** Keys walked per map before its count is given as a lower bound (countExact false). */
  countLimit: number
  programs: ProgramMapsJson[]
}

export type StatusResponse = { ok: true } & StatusJson
export type MapsResponse = { ok: true } & MapsJson
/** A rejected reload is a request that was understood and answered: `ok` is true, `accepted` false. */
export type ReloadResponse = { ok: true; accepted: true } | { ok: true; accepted: false; reason: string }
export type ErrorResponse = { ok: false; error: string }
export type ControlResponse = StatusResponse | MapsResponse | ReloadResponse | ErrorResponse

/** Parses one request line (without its newline). */
export function parseRequest(line: string): Result<ControlRequest, string> {
  let v: unknown
  try {
    v = JSON.parse(line)
  } catch {
    return err('request is not JSON')
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return err('request is not a JSON object')
  const cmd = (v as Record<string, unknown>).cmd
  if (typeof cmd !== 'string') return err('request has no "cmd" string')
  if (!(COMMANDS as readonly string[]).includes(cmd)) {
    return err(`unknown command ${JSON.stringify(cmd.slice(0, 64))} (known: ${COMMANDS.join(', ')})`)
  }
  return ok({ cmd: cmd as ControlCommand })
}

/** One response line, newline included. */
export function encodeResponse(r: ControlResponse): string {
  return JSON.stringify(r) + '\n'
}

/** Parses a response line on the client side. */
export function parseResponse(line: string): Result<ControlResponse, string> {
  let v: unknown
  try {
    v = JSON.parse(line)
  } catch {
    return err('the daemon answered something that is not JSON')
  }
  if (typeof v !== 'object' || v === null || typeof (v as { ok?: unknown }).ok !== 'boolean') {
    return err('the daemon answered something that is not a response')
  }
  return ok(v as ControlResponse)
}
