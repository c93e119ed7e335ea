/**
 * The control socket's server: a Unix stream socket that answers one JSON line per request line (protocol.ts).
 *
 * Whoever connects must not be able to stall or crash the daemon, so every connection is bounded:
 * - a deadline runs whenever the server waits on the client (for a whole request line, or for the client to read
 *   a response); it is not pushed back by partial data, so a client trickling a byte at a time is cut off too;
 * - a line over the size limit is answered with an error and the connection closed, before it is all buffered;
 * - reading pauses while a request is handled and until its response is flushed, so a client that sends requests
 *   without reading the answers holds at most one response in memory;
 * - a client that is not root, the daemon's own uid or a member of `control-group:` (SO_PEERCRED, peer.ts) is told
 *   so and closed before it can send anything;
 * - there is a cap on concurrent connections; over it, a client is told so and closed;
 * - a socket error (EPIPE, ECONNRESET) destroys that connection only.
 * Nothing here blocks: the event loop never waits on a client. A refused client is logged as one warning per
 * interval with a count, however often it tries.
 *
 * Where the socket is created is checked too: its directory as config and object paths are (config/secure-path.ts:
 * root-owned all the way, not writable by group or others unless sticky), and a socket already at the path must be
 * root's: in a directory others may write (/tmp), anyone can take the name first.
 */
import { chmodSync, lchownSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { dirname } from 'node:path'
import type { Logger } from 'pino'
import { OVERRIDE_HINT, defaultTrustedUids, statProblems } from '../config/permissions.js'
import { walkPath } from '../config/secure-path.js'
import { allowedText, groupText, mayAsk, peerOf, type AccessPolicy } from './peer.js'
import { MAX_REQUEST_BYTES, encodeResponse, parseRequest, type ControlRequest, type ControlResponse } from './protocol.js'

/** sysexits(3) EX_CANTCREAT: the control socket (or the metrics listener) cannot be created. */
export const EX_CANTCREAT = 73

/** A start-up failure with the exit status the CLI should end with (the CLI reads `exitCode`). */
export class ControlStartError extends Error {
  readonly exitCode = EX_CANTCREAT
  constructor(message: string) {
    super(message)
    this.name = 'ControlStartError'
  }
}

export interface ControlHandler {
  handle(req: ControlRequest): ControlResponse | Promise<ControlResponse>
}

export interface ControlServerOptions {
  path: string
  handler: ControlHandler
  log?: Pick<Logger, 'debug' | 'warn'>
  /** How long the server waits on a client (a request line, or reading a response). Default 5 s. */
  clientTimeoutMs?: number
  /** Concurrent connections. Default 32. */
  maxClients?: number
  /** Longest request line in bytes. Default MAX_REQUEST_BYTES (64 KiB). */
  maxRequestBytes?: number
  /** How long the start-up check waits for an existing socket to accept. Default 1 s. */
  probeTimeoutMs?: number
  /**
   * At most one warning per this many ms for each kind of refusal (too many clients, not allowed); the refusals
   * between are counted. Default 10 s.
   */
  refusalLogIntervalMs?: number
  /** Who may ask. Default: root and the daemon's own uid (setAccess() changes it at a reload). */
  access?: AccessPolicy
  /** Skip the ownership and mode checks of the socket's directory and of a socket found there (--insecure-paths). */
  insecurePaths?: boolean
}

/** The uids the daemon trusts by default: root, and its own when it is not root. */
export function daemonUids(): number[] {
  return defaultTrustedUids(typeof process.geteuid === 'function' ? process.geteuid() : 0)
}

/**
 * One warning per interval for something a client can repeat at will (a monitoring script in a loop must not flood
 * the journal): the first time is logged at once, the times after it are counted and logged, with their number, the
 * first time the interval has passed.
 */
class Throttle {
  #unlogged = 0
  #loggedAt = -Infinity

  constructor(readonly intervalMs: number) {}

  /** Counts one; calls `log` with the count since the last line when a line is due. */
  note(log: (count: number) => void): void {
    this.#unlogged++
    const now = performance.now()
    if (now - this.#loggedAt < this.intervalMs) return
    log(this.#unlogged)
    this.#unlogged = 0
    this.#loggedAt = now
  }
}

const refusedText = (n: number): string => (n === 1 ? 'one' : `${n} since the last warning`)

export const DEFAULT_CLIENT_TIMEOUT_MS = 5000
export const DEFAULT_MAX_CLIENTS = 32
export const DEFAULT_REFUSAL_LOG_INTERVAL_MS = 10_000

type Probe = 'absent' | 'stale' | 'listening'

/**
 * What is at `path`: nothing, a socket nobody listens on (left by a daemon that died), or a live one. A file that
 * is not a socket is an error: it is not ours to remove.
 */
export function probeSocket(path: string, timeoutMs = 1000): Promise<Probe> {
  try {
    const st = lstatSync(path)
    if (!st.isSocket()) return Promise.reject(new ControlStartError(`${path} exists and is not a socket; not removing it`))
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return Promise.resolve('absent')
    return Promise.reject(new ControlStartError(`cannot inspect ${path}: ${(e as Error).message}`))
  }
  return new Promise((resolve, reject) => {
    const s = createConnection(path)
    const done = (r: Probe | Error): void => {
      clearTimeout(timer)
      s.destroy()
      if (r instanceof Error) reject(r)
      else resolve(r)
    }
    // A live daemon that does not accept in time (a full backlog) is still a live daemon.
    const timer = setTimeout(() => done('listening'), timeoutMs)
    s.once('connect', () => done('listening'))
    s.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED') done('stale')
      else if (e.code === 'ENOENT') done('absent')
      else if (e.code === 'EAGAIN') done('listening')
      else done(new ControlStartError(`cannot check ${path}: ${e.message}`))
    })
  })
}

export class ControlServer {
  readonly path: string
  readonly #o: Required<Omit<ControlServerOptions, 'log' | 'access'>> & Pick<ControlServerOptions, 'log'>
  readonly #server: Server
  readonly #conns = new Set<Socket>()
  #closed = false
  #access: AccessPolicy
  readonly #tooMany: Throttle
  readonly #notAllowed: Throttle

  private constructor(o: ControlServerOptions) {
    this.path = o.path
    const { access, ...rest } = o
    this.#o = {
      clientTimeoutMs: DEFAULT_CLIENT_TIMEOUT_MS,
      maxClients: DEFAULT_MAX_CLIENTS,
      maxRequestBytes: MAX_REQUEST_BYTES,
      probeTimeoutMs: 1000,
      refusalLogIntervalMs: DEFAULT_REFUSAL_LOG_INTERVAL_MS,
      insecurePaths: false,
      ...rest,
    }
    this.#access = access ?? { uids: daemonUids(), group: null }
    this.#tooMany = new Throttle(this.#o.refusalLogIntervalMs)
    this.#notAllowed = new Throttle(this.#o.refusalLogIntervalMs)
    // allowHalfOpen: a client may send its request and shut down its sending side (`nc -N`, socat); the answer
    // must still reach it.
    this.#server = createServer({ allowHalfOpen: true }, (s) => this.#accept(s))
    this.#server.on('error', (e) => this.#o.log?.warn({ err: e }, `control socket: ${e.message}`))
  }

  /**
   * Creates the socket: the parent directory (0700) when missing, its path checked, a stale socket removed, then
   * bind with mode 0600. Refuses when another process listens on the path (another daemon would lose its socket
   * otherwise), and a socket there that is not root's.
   */
  static async listen(o: ControlServerOptions): Promise<ControlServer> {
    const srv = new ControlServer(o)
    const dir = dirname(o.path)
    try {
      statSync(dir)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new ControlStartError(`cannot use ${dir}: ${(e as Error).message}`)
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 })
      } catch (e2) {
        throw new ControlStartError(`cannot create ${dir}: ${(e2 as Error).message}`)
      }
    }
    await checkPlace(o.path, srv.#o.insecurePaths)
    const found = await probeSocket(o.path, srv.#o.probeTimeoutMs)
    if (found === 'listening') throw new ControlStartError(`another process (another xdplinkd?) is listening on ${o.path}`)
    if (found === 'stale') {
      try {
        unlinkSync(o.path)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new ControlStartError(`cannot remove stale ${o.path}: ${(e as Error).message}`)
      }
      o.log?.warn({ path: o.path }, `removed a stale control socket at ${o.path}`)
    }
    await new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void => {
        reject(new ControlStartError(e.code === 'EADDRINUSE' ? `another process took ${o.path} meanwhile` : `cannot listen on ${o.path}: ${e.message}`))
      }
      srv.#server.once('error', onError)
      // bind(2) runs synchronously inside listen(), so the umask applies to the socket file and to nothing else:
      // the socket is never reachable with wider permissions, not even between bind and chmod.
      const old = process.umask(0o177)
      try {
        srv.#server.listen(o.path, () => {
          srv.#server.off('error', onError)
          resolve()
        })
      } finally {
        process.umask(old)
      }
    })
    try {
      srv.#applyFileMode()
    } catch (e) {
      await srv.close()
      throw new ControlStartError(`cannot set the owner or mode of ${o.path}: ${(e as Error).message}`)
    }
    return srv
  }

  /**
   * The socket file lets in who may ask: without `control-group` mode 0600 (root, or the daemon's uid); with it
   * mode 0660 and that group, so that its members can connect(2) at all (unix(7): connecting needs write
   * permission on the socket). Whoever the mode lets through is still judged by SO_PEERCRED. The directories on
   * the way must let the group search them too: a directory that does not is named in a warning, not changed.
   */
  #applyFileMode(): void {
    const g = this.#access.group
    // lchown: the path was just bound by us, and a symlink swapped in meanwhile is not followed.
    lchownSync(this.path, -1, g ? g.gid : typeof process.getegid === 'function' ? process.getegid() : 0)
    chmodSync(this.path, g ? 0o660 : 0o600)
    if (!g) return
    for (let d = dirname(this.path); ; d = dirname(d)) {
      const st = statSync(d)
      const search = st.gid === g.gid ? 0o010 : 0o001
      if ((st.mode & search) === 0) {
        this.#o.log?.warn(
          { path: d, mode: `0${(st.mode & 0o7777).toString(8)}` },
          `control socket: members of ${groupText(g)} cannot reach ${this.path}: ` +
            `${d} does not let them search it (mode 0${(st.mode & 0o777).toString(8)}; 0711 would)`,
        )
        break
      }
      if (d === '/') break
    }
  }

  /** Connections open now. */
  get clients(): number {
    return this.#conns.size
  }

  /** Who may ask from now on (a reload that changed `control-group:`); connections already open stay. */
  setAccess(access: AccessPolicy): void {
    const changed = (access.group?.gid ?? null) !== (this.#access.group?.gid ?? null)
    this.#access = access
    if (!changed) return
    try {
      this.#applyFileMode()
    } catch (e) {
      this.#o.log?.warn({ path: this.path }, `control socket: cannot set the owner or mode of ${this.path}: ${(e as Error).message}`)
    }
  }

  /**
   * Stops accepting and removes the socket file, but serves the connections already open to their end (their own
   * deadlines still apply). For a socket moved at a reload: a `reload` asked on the old socket is answered there.
   */
  retire(): Promise<void> {
    if (this.#closed) return Promise.resolve()
    this.#closed = true
    // net.Server.close() closes the listening handle at once (libuv unlinks the path) and calls back once the
    // remaining connections have ended.
    return new Promise((resolve) => this.#server.close(() => resolve()))
  }

  /** Stops accepting, drops every connection and removes the socket file (libuv unlinks it on close). */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve()
    for (const s of this.#conns) s.destroy()
    this.#conns.clear()
    return this.retire()
  }

  #accept(s: Socket): void {
    s.on('error', () => s.destroy())
    // Who it is comes first: a client that may not ask must not take one of the slots either.
    const peer = peerOf(s)
    if (!peer.ok || !mayAsk(peer.value, this.#access)) {
      const who = peer.ok ? `uid ${peer.value.uid} (pid ${peer.value.pid})` : `a client (${peer.error})`
      const allowed = allowedText(this.#access)
      this.#notAllowed.note((n) =>
        this.#o.log?.warn(
          { uid: peer.ok ? peer.value.uid : null, peerPid: peer.ok ? peer.value.pid : null, refused: n },
          `control socket: refused ${who}: only ${allowed} may ask; refused ${refusedText(n)}`,
        ),
      )
      this.#refuse(s, `permission denied: only ${allowed} may use this socket`)
      return
    }
    if (this.#closed || this.#conns.size >= this.#o.maxClients) {
      this.#tooMany.note((n) =>
        this.#o.log?.warn({ clients: this.#conns.size, refused: n }, `control socket: too many clients (${this.#conns.size}), refused ${refusedText(n)}`),
      )
      this.#refuse(s, 'too many clients')
      return
    }
    this.#conns.add(s)
    new Connection(s, this.#o, () => this.#conns.delete(s))
  }

  /**
   * Says why, then waits for the client to close its side, discarding what it sends: closing at once would make
   * the client's request, sent as it connected, fail with EPIPE before it reads the answer. The timer ends a client
   * that does neither.
   */
  #refuse(s: Socket, error: string): void {
    const t = setTimeout(() => s.destroy(), this.#o.clientTimeoutMs)
    t.unref()
    s.on('close', () => clearTimeout(t))
    s.on('end', () => s.destroy())
    s.resume()
    s.end(encodeResponse({ ok: false, error }))
  }
}

/**
 * Refuses a socket path in a directory others could change (the same rule as for config and object files), and a
 * socket already at the path that is not root's (or the daemon's uid's): in a sticky world-writable directory such
 * as /tmp anyone may create the name first, and whoever listens there would answer the CLI.
 */
async function checkPlace(path: string, insecurePaths: boolean): Promise<void> {
  if (insecurePaths) return
  const trustedUids = daemonUids()
  const dir = dirname(path)
  const walked = await walkPath(dir, { strict: true, trustedUids, want: 'dir', shared: true })
  if (!walked.ok) {
    const why = walked.error.map((f) => f.text).join('; ')
    const unsafe = walked.error.some((f) => f.unsafe)
    throw new ControlStartError(`${unsafe ? 'refusing' : 'cannot use'} control socket ${path}: ${why}${unsafe ? OVERRIDE_HINT : ''}`)
  }
  let uid: number
  try {
    uid = lstatSync(path).uid
  } catch {
    return // nothing there (or nothing we can see): bind decides
  }
  // Only the owner counts: a socket's mode is whatever its creator chose, and a stale one of ours is replaced anyway.
  const [owner] = statProblems({ uid, mode: 0, isDir: false }, trustedUids)
  if (owner !== undefined) {
    throw new ControlStartError(
      `refusing control socket ${path}: what is there is ${owner} ` +
        '(someone else took the name: put the socket in a directory only root can write, such as /run/xdplinkd)',
    )
  }
}

/** One client: reads lines, answers them in order, one at a time. */
class Connection {
  /** Received bytes that may hold complete lines. */
  #pending: Buffer = Buffer.alloc(0)
  /**
   * Chunks after #pending with no newline in them, joined only once a newline (or the end, or the size limit)
   * arrives: a client writing a byte at a time costs a push per byte, not a copy of everything so far.
   */
  #tail: Buffer[] = []
  #tailBytes = 0
  #busy = false
  #ended = false
  #timer: ReturnType<typeof setTimeout> | null = null

  constructor(
    readonly s: Socket,
    readonly o: { handler: ControlHandler; clientTimeoutMs: number; maxRequestBytes: number; log?: Pick<Logger, 'debug' | 'warn'> },
    onClose: () => void,
  ) {
    s.on('close', () => {
      this.#disarm()
      onClose()
    })
    s.on('data', (d: Buffer) => this.#data(d))
    s.on('end', () => {
      this.#ended = true
      this.#next()
    })
    this.#arm()
  }

  #arm(): void {
    this.#disarm()
    this.#timer = setTimeout(() => {
      this.o.log?.debug({ buffered: this.#pending.length }, 'control socket: client timed out')
      this.s.destroy()
    }, this.o.clientTimeoutMs)
    this.#timer.unref()
  }

  #disarm(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
  }

  #data(d: Buffer): void {
    this.#tail.push(d)
    this.#tailBytes += d.length
    if (d.indexOf(0x0a) < 0 && this.#pending.length + this.#tailBytes <= this.o.maxRequestBytes) return
    this.#next()
  }

  /** Takes the next complete line, if any, and answers it; closes when the client is done. */
  #next(): void {
    if (this.#busy) return
    if (this.#tail.length) {
      this.#pending = Buffer.concat([this.#pending, ...this.#tail])
      this.#tail = []
      this.#tailBytes = 0
    }
    while (!this.#busy && !this.s.destroyed) {
      const nl = this.#pending.indexOf(0x0a)
      let raw: Buffer
      if (nl >= 0) {
        raw = this.#pending.subarray(0, nl)
        this.#pending = this.#pending.subarray(nl + 1)
      } else if (this.#pending.length > this.o.maxRequestBytes) {
        raw = this.#pending
      } else if (this.#ended && this.#pending.length > 0) {
        // The client shut down its side after a last line without a newline: still a request.
        raw = this.#pending
        this.#pending = Buffer.alloc(0)
      } else {
        if (this.#ended) this.s.end()
        return
      }
      if (raw.length > this.o.maxRequestBytes) {
        this.#fail(`request longer than ${this.o.maxRequestBytes} bytes`)
        return
      }
      const line = raw.toString('utf8').trim()
      if (line === '') continue
      this.#answer(line)
    }
  }

  /** Answers and closes: after an oversized line the stream has no usable line boundary left. */
  #fail(error: string): void {
    this.#busy = true
    this.#pending = Buffer.alloc(0)
    this.#tail = []
    this.s.pause()
    this.#arm()
    this.s.end(encodeResponse({ ok: false, error }), () => this.s.destroy())
  }

  #answer(line: string): void {
    this.#busy = true
    this.s.pause()
    // The daemon is working, not the client: no deadline while the handler runs (a reload may take a while).
    this.#disarm()
    void this.#respond(line).then((resp) => {
      if (this.s.destroyed) return
      this.#arm() // now the client must read the answer in time
      this.s.write(encodeResponse(resp), (e) => {
        if (e || this.s.destroyed) return
        this.#busy = false
        this.#arm()
        this.s.resume()
        this.#next()
      })
    })
  }

  async #respond(line: string): Promise<ControlResponse> {
    const req = parseRequest(line)
    if (!req.ok) return { ok: false, error: req.error }
    try {
      return await this.o.handler.handle(req.value)
    } catch (e) {
      this.o.log?.warn({ err: e, cmd: req.value.cmd }, `control socket: ${req.value.cmd} failed: ${(e as Error).message}`)
      return { ok: false, error: `${req.value.cmd} failed: ${e instanceof Error ? e.message : String(e)}` }
    }
  }
}
