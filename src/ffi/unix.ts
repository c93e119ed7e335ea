/**
 * AF_UNIX datagram sockets, which Node's `net` and `dgram` modules do not offer, for the two datagram protocols a
 * systemd service speaks: sd_notify(3) on $NOTIFY_SOCKET and the journal's native protocol on
 * /run/systemd/journal/socket (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/). Both can pass a descriptor along
 * (SCM_RIGHTS, unix(7)), so sending and receiving go through sendmsg/recvmsg.
 *
 * Also here, because both protocols need them and this file is their only FFI edge: a sealed memfd (the journal's
 * way to pass an entry too large for one datagram) and CLOCK_MONOTONIC (sd_notify's MONOTONIC_USEC).
 */
import koffi from 'koffi'
import { SyscallError, ERRNO } from './errno.js'
import { Fd } from './fd.js'
import { SOCK_CLOEXEC, SOCK_NONBLOCK, SOL_SOCKET, bind as bindRaw, check, libc, sendto, socket, write } from './libc.js'
import { STRUCTS } from './structs.js'

// <bits/socket.h>, <linux/un.h>, <bits/time.h>, <linux/memfd.h>, <linux/fcntl.h>
export const AF_UNIX = 1
export const SOCK_DGRAM = 2
export const SCM_RIGHTS = 1
export const MSG_DONTWAIT = 0x40
export const MSG_NOSIGNAL = 0x4000
export const MSG_CTRUNC = 0x8
export const MSG_TRUNC = 0x20
/** sizeof(((struct sockaddr_un *)0)->sun_path) on Linux. */
export const UNIX_PATH_MAX = STRUCTS.sockaddr_un.size - STRUCTS.sockaddr_un.fields.sun_path
export const CLOCK_MONOTONIC = 1
export const MFD_CLOEXEC = 0x1
export const MFD_ALLOW_SEALING = 0x2
export const F_ADD_SEALS = 1033
export const F_SEAL_SEAL = 0x1
export const F_SEAL_SHRINK = 0x2
export const F_SEAL_GROW = 0x4
export const F_SEAL_WRITE = 0x8

// Registered under our own names: koffi's type names are process-wide and other bindings may declare an iovec.
const IovecT = koffi.struct('xdplinkd_unix_iovec', { iov_base: 'void *', iov_len: 'size_t' })
const MsghdrT = koffi.struct('xdplinkd_unix_msghdr', {
  msg_name: 'void *',
  msg_namelen: 'uint32_t',
  msg_iov: koffi.pointer(IovecT),
  msg_iovlen: 'size_t',
  msg_control: 'void *',
  msg_controllen: 'size_t',
  msg_flags: 'int',
})
const TimespecT = koffi.struct('xdplinkd_unix_timespec', { tv_sec: 'long', tv_nsec: 'long' })

const c = {
  sendmsg: libc.func('sendmsg', 'intptr_t', ['int', koffi.pointer(MsghdrT), 'int']),
  recvmsg: libc.func('recvmsg', 'intptr_t', ['int', koffi.inout(koffi.pointer(MsghdrT)), 'int']),
  clock_gettime: libc.func('clock_gettime', 'int', ['int', koffi.out(koffi.pointer(TimespecT))]),
  memfd_create: libc.func('int memfd_create(const char *name, unsigned int flags)'),
  fcntl: libc.func('int fcntl(int fd, int cmd, ...)'),
}

// struct cmsghdr (<sys/socket.h>): size_t cmsg_len; int cmsg_level; int cmsg_type; then the data. Each control
// message and its data start at a multiple of sizeof(size_t) (CMSG_ALIGN).
const CMSG = STRUCTS.cmsghdr.fields
const SIZE_T = koffi.sizeof('size_t')
const cmsgAlign = (n: number): number => (n + SIZE_T - 1) & ~(SIZE_T - 1)
/** CMSG_LEN(0): where the data starts. */
const CMSG_HDR = cmsgAlign(STRUCTS.cmsghdr.size)
const cmsgSpace = (n: number): number => CMSG_HDR + cmsgAlign(n)

/** Runs a call that throws SyscallError again while it fails with EINTR (a signal arrived before anything was done). */
function retryEintr<T>(call: () => T): T {
  for (;;) {
    try {
      return call()
    } catch (e) {
      if (!(e instanceof SyscallError && e.errno === ERRNO.EINTR)) throw e
    }
  }
}

/**
 * `struct sockaddr_un` for an address as sd_notify(3) spells it in $NOTIFY_SOCKET: an absolute path, or `@name`
 * for a name in the abstract namespace (unix(7): sun_path[0] is NUL and the name is the bytes after it, not
 * NUL-terminated, so the address length counts them exactly).
 */
export function sockaddrUn(address: string): Buffer {
  const abstract = address.startsWith('@')
  const name = Buffer.from(abstract ? address.slice(1) : address, 'utf8')
  if (!abstract && !address.startsWith('/')) throw new RangeError(`AF_UNIX address ${JSON.stringify(address)}: not an absolute path or @name`)
  if (abstract ? name.length === 0 : name.includes(0)) throw new RangeError(`AF_UNIX address ${JSON.stringify(address)}: empty or has a NUL`)
  // A path needs room for its NUL inside sun_path; an abstract name has the leading NUL instead.
  if (name.length + 1 > UNIX_PATH_MAX) throw new RangeError(`AF_UNIX address ${JSON.stringify(address)}: longer than ${UNIX_PATH_MAX - 1} bytes`)
  const { sun_family, sun_path } = STRUCTS.sockaddr_un.fields
  const b = Buffer.alloc(sun_path + 1 + name.length)
  b.writeUInt16LE(AF_UNIX, sun_family)
  name.copy(b, abstract ? sun_path + 1 : sun_path)
  return b
}

/** A new AF_UNIX datagram socket, close-on-exec so no child inherits it. Non-blocking for a receiver on the loop. */
export function unixDatagramSocket(opts: { nonblocking?: boolean; label?: string } = {}): Fd {
  const type = SOCK_DGRAM | SOCK_CLOEXEC | (opts.nonblocking ? SOCK_NONBLOCK : 0)
  return new Fd(socket(AF_UNIX, type, 0), opts.label ?? 'unix-dgram')
}

/** Binds a socket to a path (the file must not exist yet) or an `@name`. */
export function bindUnix(fd: Fd, address: string): void {
  bindRaw(fd.raw, sockaddrUn(address))
}

/**
 * Sends one datagram to `to` (a sockaddrUn). Throws SyscallError: EMSGSIZE when the datagram is larger than the
 * socket's send buffer allows (net/unix/af_unix.c, unix_dgram_sendmsg), ENOENT/ECONNREFUSED when nobody listens,
 * EAGAIN on a full receiver with MSG_DONTWAIT. EINTR is retried: nothing was queued. MSG_NOSIGNAL because a
 * datagram socket has no SIGPIPE to deliver worth dying for.
 */
export function sendDatagram(fd: Fd, data: Buffer, to: Buffer, flags = 0): void {
  retryEintr(() => sendto(fd.raw, data, flags | MSG_NOSIGNAL, to))
}

/** Like sendDatagram, with descriptors attached as one SCM_RIGHTS control message (unix(7)). */
export function sendDatagramWithFds(fd: Fd, data: Buffer, to: Buffer, fds: readonly Fd[], flags = 0): void {
  const control = Buffer.alloc(cmsgSpace(4 * fds.length))
  control.writeBigUInt64LE(BigInt(CMSG_HDR + 4 * fds.length), CMSG.cmsg_len)
  control.writeInt32LE(SOL_SOCKET, CMSG.cmsg_level)
  control.writeInt32LE(SCM_RIGHTS, CMSG.cmsg_type)
  fds.forEach((f, i) => control.writeInt32LE(f.raw, CMSG_HDR + 4 * i))
  const msg = {
    msg_name: to,
    msg_namelen: to.length,
    msg_iov: [{ iov_base: data, iov_len: data.length }],
    msg_iovlen: 1,
    msg_control: fds.length > 0 ? control : null,
    msg_controllen: fds.length > 0 ? control.length : 0,
    msg_flags: 0,
  }
  retryEintr(() => check('sendmsg', c.sendmsg(fd.raw, msg, flags | MSG_NOSIGNAL)))
}

export interface ReceivedDatagram {
  data: Buffer
  /** Descriptors that came with it (SCM_RIGHTS), owned by the caller now. */
  fds: Fd[]
  /** The datagram was longer than `maxBytes` (MSG_TRUNC): `data` holds its start only. */
  truncated: boolean
}

/**
 * One recvmsg, never blocking (MSG_DONTWAIT). Null when nothing is queued. Descriptors the kernel installed are
 * wrapped in Fd even when the control buffer was too small for some of them (MSG_CTRUNC: the kernel closed those).
 */
export function receiveDatagram(fd: Fd, maxBytes = 65536, maxFds = 4): ReceivedDatagram | null {
  const data = Buffer.alloc(maxBytes)
  const control = Buffer.alloc(cmsgSpace(4 * maxFds))
  const msg = {
    msg_name: null,
    msg_namelen: 0,
    msg_iov: [{ iov_base: data, iov_len: data.length }],
    msg_iovlen: 1,
    msg_control: control,
    msg_controllen: control.length,
    msg_flags: 0,
  }
  let n: number
  for (;;) {
    n = Number(c.recvmsg(fd.raw, msg, MSG_DONTWAIT))
    if (n >= 0) break
    const errno = koffi.errno()
    if (errno === ERRNO.EAGAIN) return null
    if (errno !== ERRNO.EINTR) throw new SyscallError('recvmsg', errno)
  }
  const fds: Fd[] = []
  const controlLen = Number(msg.msg_controllen)
  for (let off = 0; off + CMSG_HDR <= controlLen; ) {
    const len = Number(control.readBigUInt64LE(off + CMSG.cmsg_len))
    if (len < CMSG_HDR || off + len > controlLen) break
    const level = control.readInt32LE(off + CMSG.cmsg_level)
    if (level === SOL_SOCKET && control.readInt32LE(off + CMSG.cmsg_type) === SCM_RIGHTS) {
      for (let p = off + CMSG_HDR; p + 4 <= off + len; p += 4) fds.push(new Fd(control.readInt32LE(p), 'scm-rights'))
    }
    off += cmsgAlign(len)
  }
  return { data: data.subarray(0, Math.min(n, maxBytes)), fds, truncated: (msg.msg_flags & MSG_TRUNC) !== 0 || n > maxBytes }
}

/**
 * A memfd holding `data`, sealed against any change (memfd_create(2), fcntl(2) F_ADD_SEALS). journald accepts an
 * entry passed as a descriptor only from a sealed memfd, so that the sender cannot change it while it is read
 * (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/: "The memfd file descriptor should be fully sealed").
 */
export function sealedMemfd(name: string, data: Buffer): Fd {
  const fd = new Fd(check('memfd_create', c.memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)), `memfd:${name}`)
  try {
    for (let off = 0; off < data.length; ) off += retryEintr(() => write(fd.raw, data.subarray(off)))
    const seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE
    check('fcntl', c.fcntl(fd.raw, F_ADD_SEALS, 'int', seals), 'F_ADD_SEALS')
    return fd
  } catch (e) {
    fd.close()
    throw e
  }
}

/**
 * CLOCK_MONOTONIC in microseconds, read with clock_gettime(2) itself. sd_notify's MONOTONIC_USEC must be on the
 * clock systemd reads (CLOCK_MONOTONIC); Node's hrtime is documented only as "arbitrary time in the past".
 */
export function clockMonotonicUsec(): bigint {
  const ts: { tv_sec?: number | bigint; tv_nsec?: number | bigint } = {}
  check('clock_gettime', c.clock_gettime(CLOCK_MONOTONIC, ts))
  return BigInt(ts.tv_sec ?? 0) * 1_000_000n + BigInt(ts.tv_nsec ?? 0) / 1000n
}
