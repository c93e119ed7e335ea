/**
 * Which network namespaces exist, from what was seen at the files of the watched directories (/run/netns,
 * /run/docker/netns). Pure: the watch (watch.ts) reports what each file is now, `observe` returns the next state and
 * what changed as typed events; no I/O, no timers, no log text.
 *
 * A namespace is its nsfs inode: every file that binds it (ip netns add, a container runtime's bind mount of
 * /proc/PID/ns/net) fstat()s to the same st_dev/st_ino, whatever its name, so two files binding one namespace are
 * one namespace with two names, managed once (`ip netns identify` compares the same way). nsfs has one superblock
 * (fs/nsfs.c nsfs_mnt), so in practice st_dev is the same for all and the inode alone tells them apart, as
 * readlink(/proc/PID/ns/net) shows it: `net:[4026532281]`, which is a namespace's id here.
 *
 * Names: a namespace's names are the names of its files; its primary name is that of the file that has bound it the
 * longest, so it changes only when that file goes. The daemon's own namespace is `host`, always present: a file that
 * binds it only adds a name to it, and a file called `host` that binds another one is ignored (the name is
 * reserved). A name is one namespace's: a file with the name of another namespace (a `foo` in /run/netns and another
 * in /run/docker/netns) is ignored as long as the other has it.
 *
 *   newRegistry(hostIdentity)      the daemon's own namespace, no files
 *   observe(state, changes)        what some files are now: the next state and the events
 */
import { posix } from 'node:path'

/** An nsfs inode: what fstat of a namespace file (or of /proc/PID/ns/net) reports. */
export interface NsIdentity {
  readonly dev: number
  readonly ino: number
}

/** What a file of a watched directory is now. */
export type Observation =
  | { kind: 'namespace'; identity: NsIdentity }
  /** It exists but is not (yet) a network namespace: ip netns add creates the file, then bind-mounts onto it. */
  | { kind: 'pending' }
  | { kind: 'gone' }

export interface Change {
  /** The file's absolute path; its last component is its name. */
  path: string
  observation: Observation
}

export const HOST = 'host'

export interface Namespace {
  /** `net:[inode]`, as readlink(/proc/PID/ns/net) and lsns name it; stable while the namespace is present. */
  readonly id: string
  /** The primary name: `host` for the daemon's own; else the name of the file that has bound it the longest. */
  readonly name: string
  /** Every name, primary first, then the others in the order their files came to bind it. */
  readonly names: readonly string[]
  /** The files that bind it, in the same order; none for `host` unless a file binds the daemon's namespace. */
  readonly paths: readonly string[]
  readonly identity: NsIdentity
  /** The daemon's own namespace. */
  readonly host: boolean
}

/** Why a file that binds a namespace does not count. */
export type IgnoredReason =
  /** Its name is `host` and it binds another namespace than the daemon's. */
  | { kind: 'reserved-name' }
  /** Another namespace has its name; `path` is the file that gave it the name (none for `host`). */
  | { kind: 'name-taken'; namespace: string; path: string | null }

export interface IgnoredFile {
  readonly path: string
  readonly name: string
  readonly identity: NsIdentity
  readonly reason: IgnoredReason
}

/** Why a file does not count, in words (the daemon logs it, the commands warn of it): `ignoring <path>: ...`. */
export function ignoredText(file: IgnoredFile): string {
  return file.reason.kind === 'reserved-name'
    ? `ignoring ${file.path}: the name ${HOST} is reserved for the daemon's own network namespace`
    : `ignoring ${file.path}: the namespace ${file.reason.namespace} already has the name ${file.name}`
}

export type NetnsEvent =
  | { kind: 'added'; namespace: Namespace }
  /** Its primary name or its other names changed (a file binding it came or went); the id is the same. */
  | { kind: 'renamed'; namespace: Namespace; was: { name: string; names: readonly string[] } }
  /** Its last file went (or stopped binding it). */
  | { kind: 'removed'; namespace: Namespace }
  /** A file binds a namespace but does not count (reported once per file and reason). */
  | { kind: 'ignored'; file: IgnoredFile }

interface FileEntry {
  readonly observation: Exclude<Observation, { kind: 'gone' }>
  /** When the file came to be what it is (a sequence number): the oldest file of a namespace names it. */
  readonly since: number
}

export interface RegistryState {
  readonly host: NsIdentity
  /** Every file present, namespace or not, by path. */
  readonly files: ReadonlyMap<string, FileEntry>
  /** The namespaces, `host` included, by id. */
  readonly namespaces: ReadonlyMap<string, Namespace>
  readonly ignored: ReadonlyMap<string, IgnoredFile>
  readonly seq: number
}

export interface Transition {
  state: RegistryState
  events: NetnsEvent[]
}

export function sameIdentity(a: NsIdentity, b: NsIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino
}

/** `net:[inode]`; with the device too in the (never seen) case of an nsfs inode on another device than ours. */
export function namespaceId(identity: NsIdentity, host: NsIdentity): string {
  return identity.dev === host.dev ? `net:[${identity.ino}]` : `net:[${identity.ino}]@${identity.dev}`
}

export function newRegistry(host: NsIdentity): RegistryState {
  const id = namespaceId(host, host)
  const ns: Namespace = { id, name: HOST, names: [HOST], paths: [], identity: host, host: true }
  return { host, files: new Map(), namespaces: new Map([[id, ns]]), ignored: new Map(), seq: 0 }
}

/** The file's name: the last component of its path. */
export function fileName(path: string): string {
  return posix.basename(path)
}

/** What some files are now (in one batch: a rename's two halves make one `renamed`, not a removal and an add). */
export function observe(state: RegistryState, changes: readonly Change[]): Transition {
  const files = new Map(state.files)
  let seq = state.seq
  for (const { path, observation } of changes) {
    const before = files.get(path)
    if (observation.kind === 'gone') files.delete(path)
    else if (!before || !sameObservation(before.observation, observation)) files.set(path, { observation, since: ++seq })
  }
  const { namespaces, ignored } = derive(state.host, files)
  const events: NetnsEvent[] = []
  for (const [id, was] of state.namespaces) if (!namespaces.has(id)) events.push({ kind: 'removed', namespace: was })
  for (const [id, ns] of namespaces) {
    const was = state.namespaces.get(id)
    if (was && (was.name !== ns.name || !sameList(was.names, ns.names))) {
      events.push({ kind: 'renamed', namespace: ns, was: { name: was.name, names: was.names } })
    }
  }
  for (const [id, ns] of namespaces) if (!state.namespaces.has(id)) events.push({ kind: 'added', namespace: ns })
  for (const [path, file] of ignored) {
    const was = state.ignored.get(path)
    if (!was || !sameIdentity(was.identity, file.identity) || !sameReason(was.reason, file.reason)) events.push({ kind: 'ignored', file })
  }
  return { state: { host: state.host, files, namespaces, ignored, seq }, events }
}

/** The namespaces and ignored files the files make, taken oldest first. */
function derive(host: NsIdentity, files: ReadonlyMap<string, FileEntry>): Pick<RegistryState, 'namespaces' | 'ignored'> {
  const hostId = namespaceId(host, host)
  const groups = new Map<string, { identity: NsIdentity; names: string[]; paths: string[] }>([
    [hostId, { identity: host, names: [HOST], paths: [] }],
  ])
  /** Name -> the namespace that has it and the file that gave it. */
  const claims = new Map<string, { id: string; path: string | null }>([[HOST, { id: hostId, path: null }]])
  const ignored = new Map<string, IgnoredFile>()
  const oldestFirst = [...files].sort((a, b) => a[1].since - b[1].since)
  for (const [path, { observation }] of oldestFirst) {
    if (observation.kind !== 'namespace') continue
    const { identity } = observation
    const id = namespaceId(identity, host)
    const name = fileName(path)
    const claim = claims.get(name)
    if (claim && claim.id !== id) {
      const reason: IgnoredReason = name === HOST ? { kind: 'reserved-name' } : { kind: 'name-taken', namespace: claim.id, path: claim.path }
      ignored.set(path, { path, name, identity, reason })
      continue
    }
    if (!claim) claims.set(name, { id, path })
    const g = groups.get(id) ?? groups.set(id, { identity, names: [], paths: [] }).get(id)!
    if (!g.names.includes(name)) g.names.push(name)
    g.paths.push(path)
  }
  const namespaces = new Map<string, Namespace>()
  for (const [id, g] of groups) {
    namespaces.set(id, { id, name: g.names[0]!, names: g.names, paths: g.paths, identity: g.identity, host: id === hostId })
  }
  return { namespaces, ignored }
}

function sameObservation(a: Observation, b: Observation): boolean {
  if (a.kind === 'namespace' && b.kind === 'namespace') return sameIdentity(a.identity, b.identity)
  return a.kind === b.kind
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

function sameReason(a: IgnoredReason, b: IgnoredReason): boolean {
  return a.kind === b.kind && (a.kind !== 'name-taken' || (b.kind === 'name-taken' && a.namespace === b.namespace && a.path === b.path))
}

/** The namespace a file binds (and counts for), or null. */
export function namespaceOfPath(state: RegistryState, path: string): Namespace | null {
  for (const ns of state.namespaces.values()) if (ns.paths.includes(path)) return ns
  return null
}

/**
 * The namespaces other than the daemon's own that a present file binds, by id, ignored files' included: those whose
 * descriptors the watch keeps, so that an ignored file's namespace can be managed the moment its name is free.
 */
export function boundNamespaces(state: RegistryState): Map<string, NsIdentity> {
  const out = new Map<string, NsIdentity>()
  for (const { observation } of state.files.values()) {
    if (observation.kind !== 'namespace' || sameIdentity(observation.identity, state.host)) continue
    out.set(namespaceId(observation.identity, state.host), observation.identity)
  }
  return out
}
