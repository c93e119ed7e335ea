/**
 * Who is at the other end of a control connection, and whether to deal with them. Both sides check: the daemon
 * answers only root, its own uid and the members of `control-group:`; the CLI believes only a daemon that runs as
 * root or as the CLI's own user. The kernel's word on the peer (SO_PEERCRED, SO_PEERGROUPS) is taken from the
 * socket itself, as it was when the peer connected or listened (ffi/libc.ts peerCredentials).
 */
import type { Socket } from 'node:net'
import { uidsText } from '../config/permissions.js'
import type { ControlGroup } from '../config/types.js'
import { peerCredentials, type PeerCredentials } from '../ffi/libc.js'
import { err, ok, type Result } from '../result.js'

export type { PeerCredentials } from '../ffi/libc.js'

/**
 * The descriptor under a connected net.Socket. Node has no public API for it: on Linux a Unix stream socket is a
 * libuv pipe (`Pipe` in Node's src/pipe_wrap.cc), whose `fd` getter returns uv_fileno(), or -1 once closed (and
 * always on Windows). This is the one place that reaches into `_handle`.
 */
export function socketFd(s: Socket): number | null {
  const fd = (s as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd
  return typeof fd === 'number' && fd >= 0 ? fd : null
}

/** The peer's credentials, or why they cannot be had (a socket already closed). */
export function peerOf(s: Socket): Result<PeerCredentials, string> {
  const fd = socketFd(s)
  if (fd === null) return err('the connection has no descriptor (closed already?)')
  try {
    return ok(peerCredentials(fd))
  } catch (e) {
    return err((e as Error).message)
  }
}

/** Who may use the control socket. */
export interface AccessPolicy {
  /** Always allowed: root, and the daemon's own uid when that is not root (config/permissions.ts defaultTrustedUids). */
  uids: readonly number[]
  /** `control-group:`; its members are allowed too. */
  group: ControlGroup | null
}

/**
 * Whether `peer` may ask: its uid is one of `uids`, or the group is its effective gid or one of its supplementary
 * groups. Where the kernel does not tell the supplementary groups (before Linux 4.13, `groups` null), only the
 * effective gid counts: the groups are not read from /proc/<pid>/status instead, because a pid can be reused between
 * connect() and the read, and because the unit's ProtectProc=invisible hides other users' processes from the daemon.
 */
export function mayAsk(peer: PeerCredentials, policy: AccessPolicy): boolean {
  if (policy.uids.includes(peer.uid)) return true
  const g = policy.group
  return g !== null && (peer.gid === g.gid || (peer.groups?.includes(g.gid) ?? false))
}

/** `group xdpops (gid 4242)`, or `gid 4242` for a group given by number. */
export function groupText(g: ControlGroup): string {
  return g.name === null ? `gid ${g.gid}` : `group ${g.name} (gid ${g.gid})`
}

/** `root`, `root or uid 1000`, with `or members of group xdpops (gid 4242)`. */
export function allowedText(policy: AccessPolicy): string {
  return policy.group === null ? uidsText(policy.uids) : `${uidsText(policy.uids)} or members of ${groupText(policy.group)}`
}
