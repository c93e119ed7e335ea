/**
 * The CLI's side of the control socket: one request, one response line, with a deadline. The request is sent only
 * to a listener that runs as root or as the CLI's own user (SO_PEERCRED): a socket path in a directory others can
 * write (`--socket /tmp/x.sock`) may have been taken by anyone, and their answer would be believed otherwise. Root
 * trusts only root; a user also trusts their own processes, which can do whatever the user can anyway.
 */
import { createConnection } from 'node:net'
import { defaultTrustedUids, uidsText } from '../config/permissions.js'
import { peerOf } from './peer.js'
import { parseResponse, type ControlRequest, type ControlResponse } from './protocol.js'

/** A response that large means something is wrong; stop reading rather than grow without bound. */
const MAX_RESPONSE_BYTES = 256 * 1024 * 1024

/** Why the daemon could not be asked: one line for the user, exit status 1. */
export class ControlClientError extends Error {
  readonly exitCode = 1
  constructor(message: string) {
    super(message)
    this.name = 'ControlClientError'
  }
}

function reachError(path: string, e: NodeJS.ErrnoException): ControlClientError {
  const why =
    e.code === 'ENOENT'
      ? 'no socket there (is the daemon running?)'
      : e.code === 'ECONNREFUSED'
        ? 'nobody is listening (the daemon is not running)'
        : e.code === 'EACCES' || e.code === 'EPERM'
          ? 'permission denied (the socket is root-only)'
          : e.message
  return new ControlClientError(`cannot reach xdplinkd at ${path}: ${why}`)
}

/** Why the process listening at `path` is not to be believed, or null when it runs as a trusted uid. */
function untrusted(path: string, peer: ReturnType<typeof peerOf>, trustedUids: readonly number[]): ControlClientError | null {
  if (!peer.ok) return new ControlClientError(`cannot tell who listens on ${path}: ${peer.error}`)
  const { uid, pid } = peer.value
  if (trustedUids.includes(uid)) return null
  return new ControlClientError(
    `not asking the process listening on ${path} (pid ${pid}): it runs as uid ${uid}, not ${uidsText(trustedUids)}, ` +
      "so it is not xdplinkd's control socket (someone else took the name?)",
  )
}

export interface ControlRequestOptions {
  timeoutMs: number
  /** The uids a listener may run as (default: root, and this process's own uid when it is not root). */
  trustedUids?: readonly number[]
  /** Gives up (rejects) and closes the connection when aborted: `top` was stopped while it waited. */
  signal?: AbortSignal
}

export async function controlRequest(path: string, req: ControlRequest, opts: ControlRequestOptions): Promise<ControlResponse> {
  const trustedUids = opts.trustedUids ?? defaultTrustedUids(typeof process.geteuid === 'function' ? process.geteuid() : 0)
  return new Promise((resolve, reject) => {
    const s = createConnection(path)
    const chunks: Buffer[] = []
    let size = 0
    let settled = false
    const abort = (): void => finish(new ControlClientError(`the request to ${path} was cancelled`))
    const finish = (r: ControlResponse | Error): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', abort)
      s.destroy()
      if (r instanceof Error) reject(r)
      else resolve(r)
    }
    const timer = setTimeout(
      () => finish(new ControlClientError(`no answer from xdplinkd at ${path} within ${Math.round(opts.timeoutMs / 1000)} s`)),
      opts.timeoutMs,
    )
    if (opts.signal?.aborted) abort()
    else opts.signal?.addEventListener('abort', abort)
    let connected = false
    s.on('connect', () => {
      connected = true
      const refused = untrusted(path, peerOf(s), trustedUids)
      if (refused) finish(refused)
      else s.write(JSON.stringify(req) + '\n')
    })
    s.on('error', (e: NodeJS.ErrnoException) =>
      finish(connected ? new ControlClientError(`control socket ${path}: ${e.message}`) : reachError(path, e)),
    )
    s.on('data', (d: Buffer) => {
      const nl = d.indexOf(0x0a)
      chunks.push(nl >= 0 ? d.subarray(0, nl) : d)
      size += d.length
      if (nl >= 0) {
        const r = parseResponse(Buffer.concat(chunks).toString('utf8'))
        finish(r.ok ? r.value : new ControlClientError(r.error))
      } else if (size > MAX_RESPONSE_BYTES) {
        finish(new ControlClientError('the daemon\'s answer is too long'))
      }
    })
    s.on('end', () => finish(new ControlClientError(`xdplinkd closed the connection at ${path} without answering`)))
  })
}

/**
 * A request whose answer must be of one kind (`is`): an `ok: false` answer, or one of another kind, is thrown as a
 * ControlClientError naming the command (`what`, the request's `cmd` by default).
 */
export async function askDaemon<T extends ControlResponse>(
  path: string,
  req: ControlRequest,
  is: (r: ControlResponse) => r is T,
  opts: ControlRequestOptions & { what?: string },
): Promise<T> {
  const what = opts.what ?? req.cmd
  const r = await controlRequest(path, req, opts)
  if (!r.ok) throw new ControlClientError(`${what}: ${r.error}`)
  if (!is(r)) throw new ControlClientError(`${what}: the daemon answered something else`)
  return r
}
