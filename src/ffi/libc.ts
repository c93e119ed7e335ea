/**
 * The libc edge: the socket calls netlink needs, the mount and statfs calls a BPF filesystem needs, typed, with
 * errno turned into SyscallError. libc is loaded here once; the other files of this folder declare what else they
 * need of it on `libc`. This folder is the only place that imports koffi.
 */
import koffi from 'koffi'
import { ERRNO, SyscallError } from './errno.js'
import { STRUCTS } from './structs.js'

export const libc = koffi.load('libc.so.6')

const c = {
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  bind: libc.func('int bind(int fd, const void *addr, uint32_t addrlen)'),
  getsockname: libc.func('int getsockname(int fd, void *addr, _Inout_ uint32_t *addrlen)'),
  send: libc.func('intptr_t send(int fd, const void *buf, size_t len, int flags)'),
  sendto: libc.func('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)'),
  recv: libc.func('intptr_t recv(int fd, void *buf, size_t len, int flags)'),
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)'),
  getsockopt: libc.func('int getsockopt(int fd, int level, int name, void *val, _Inout_ uint32_t *len)'),
  poll: libc.func('int poll(void *fds, uint64_t nfds, int timeout)'),
  close: libc.func('int close(int fd)'),
  pipe2: libc.func('int pipe2(_Out_ int *fds, int flags)'),
  write: libc.func('intptr_t write(int fd, const void *buf, size_t len)'),
  read: libc.func('intptr_t read(int fd, void *buf, size_t len)'),
  mount: libc.func(
    'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)',
  ),
  umount2: libc.func('int umount2(const char *target, int flags)'),
  statfs: libc.func('int statfs(const char *path, void *buf)'),
  fstatfs: libc.func('int fstatfs(int fd, void *buf)'),
  setns: libc.func('int setns(int fd, int nstype)'),
}

// <linux/socket.h>, <linux/netlink.h>, <asm-generic/socket.h>, <fcntl.h>, <poll.h>
export const AF_NETLINK = 16
export const SOCK_RAW = 3
export const SOCK_NONBLOCK = 0o4000
export const SOCK_CLOEXEC = 0o2000000
export const O_NONBLOCK = 0o4000
export const O_CLOEXEC = 0o2000000
export const SOL_SOCKET = 1
export const SO_RCVBUF = 8
export const SO_SNDBUF = 7
export const SO_RCVBUFFORCE = 33
export const SO_SNDBUFFORCE = 32
export const MSG_DONTWAIT = 0x40
export const MSG_TRUNC = 0x20
export const MSG_PEEK = 0x2
export const POLLIN = 0x1
// <linux/magic.h>: statfs f_type of a BPF filesystem, and of nsfs (the files /proc/PID/ns/* lead to, and the bind
// mounts of them under /run/netns: fs/nsfs.c)
export const BPF_FS_MAGIC = 0xcafe4a11
export const NSFS_MAGIC = 0x6e736673
// <linux/sched.h>: setns(2)'s nstype for a network namespace
export const CLONE_NEWNET = 0x40000000
// <sys/mount.h>
export const MS_NOSUID = 0x2
export const MS_NODEV = 0x4
export const MS_NOEXEC = 0x8
export const MNT_DETACH = 0x2
export const SO_PEERCRED = 17
export const SO_PEERGROUPS = 59

/**
 * The error of a libc call that failed: it returned -1 and set errno, which koffi saves as the call returns (before
 * any other call can change it). `errno` for a caller that has read it already.
 */
export function syscallError(syscall: string, detail?: string, errno = koffi.errno()): SyscallError {
  return new SyscallError(syscall, errno, detail)
}

/** The result of a libc call, or its SyscallError thrown when it returned -1. */
export function check(syscall: string, rc: number | bigint, detail?: string): number {
  const n = Number(rc)
  if (n < 0) throw syscallError(syscall, detail)
  return n
}

/** `struct sockaddr_nl` (<linux/netlink.h>): family, pad, pid, groups. */
export function sockaddrNl(pid: number, groups: number): Buffer {
  const { size, fields } = STRUCTS.sockaddr_nl
  const b = Buffer.alloc(size)
  b.writeUInt16LE(AF_NETLINK, fields.nl_family)
  b.writeUInt32LE(pid >>> 0, fields.nl_pid)
  b.writeUInt32LE(groups >>> 0, fields.nl_groups)
  return b
}

export function socket(domain: number, type: number, protocol: number): number {
  return check('socket', c.socket(domain, type, protocol))
}

export function bind(fd: number, addr: Buffer): void {
  check('bind', c.bind(fd, addr, addr.length))
}

export function getsockname(fd: number, size: number): Buffer {
  const b = Buffer.alloc(size)
  const len = [size]
  check('getsockname', c.getsockname(fd, b, len))
  return b.subarray(0, len[0])
}

export function send(fd: number, buf: Buffer, flags = 0): number {
  return check('send', c.send(fd, buf, buf.length, flags))
}

export function sendto(fd: number, buf: Buffer, flags: number, addr: Buffer): number {
  return check('sendto', c.sendto(fd, buf, buf.length, flags, addr, addr.length))
}

/**
 * One `recv`. Returns the datagram's full length (with MSG_TRUNC netlink reports the real size even when `buf` is
 * smaller), or -errno for EAGAIN/EINTR/ENOBUFS so the caller's receive loop can handle them without exceptions.
 */
export function recv(fd: number, buf: Buffer, flags = 0): number {
  const n = Number(c.recv(fd, buf, buf.length, flags))
  return n < 0 ? -koffi.errno() : n
}

export function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  const b = Buffer.alloc(4)
  b.writeInt32LE(value, 0)
  check('setsockopt', c.setsockopt(fd, level, name, b, 4))
}

export function getsockoptInt(fd: number, level: number, name: number): number {
  const b = Buffer.alloc(4)
  const len = [4]
  check('getsockopt', c.getsockopt(fd, level, name, b, len))
  return b.readInt32LE(0)
}

/** The credentials of the process at the other end of a Unix socket (socket(7) SO_PEERCRED, SO_PEERGROUPS). */
export interface PeerCredentials {
  pid: number
  uid: number
  gid: number
  /** Supplementary groups; null where the kernel has no SO_PEERGROUPS (before Linux 4.13). */
  groups: number[] | null
}

/**
 * Who is at the other end of the connected Unix socket `fd`: for a client, the process that called connect(); for
 * a server's listener, the one that called listen(). The kernel takes both from that moment
 * (net/unix/af_unix.c, copy_peercred / init_peercred), so they cannot change afterwards, and they are read from the
 * socket, not from /proc/<pid> (which a reused pid could answer for, and which ProtectProc=invisible hides).
 * SO_PEERGROUPS answers ERANGE with the size it needs when the buffer is too small (net/core/sock.c, sk_getsockopt).
 */
export function peerCredentials(fd: number): PeerCredentials {
  const cred = Buffer.alloc(12) // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
  check('getsockopt', c.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, [cred.length]))
  let groups: number[] | null = null
  for (let size = 64 * 4; ; ) {
    const buf = Buffer.alloc(size)
    const len = [size]
    if (Number(c.getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, buf, len)) >= 0) {
      groups = Array.from({ length: Math.floor(len[0]! / 4) }, (_, i) => buf.readUInt32LE(4 * i))
      break
    }
    const errno = koffi.errno()
    if (errno === ERRNO.ENOPROTOOPT) break
    if (errno !== ERRNO.ERANGE || len[0]! <= size) throw new SyscallError('getsockopt', errno, 'SO_PEERGROUPS')
    size = len[0]!
  }
  return { pid: cred.readInt32LE(0), uid: cred.readUInt32LE(4), gid: cred.readUInt32LE(8), groups }
}

/** `poll(2)` on one descriptor; returns the revents. Blocking: call it only off the event loop or with timeout 0. */
export function pollOne(fd: number, events: number, timeoutMs: number): number {
  const { size, fields } = STRUCTS.pollfd
  const b = Buffer.alloc(size)
  b.writeInt32LE(fd, fields.fd)
  b.writeInt16LE(events, fields.events)
  const n = check('poll', c.poll(b, 1, timeoutMs))
  return n === 0 ? 0 : b.readInt16LE(fields.revents)
}

export function pipe(flags = O_CLOEXEC | O_NONBLOCK): [number, number] {
  const fds = [0, 0]
  check('pipe2', c.pipe2(fds, flags))
  return [fds[0]!, fds[1]!]
}

export function write(fd: number, buf: Buffer): number {
  return check('write', c.write(fd, buf, buf.length))
}

/** Closes a raw descriptor. Only `Fd` calls this; EINTR is not retried because Linux always releases the fd. */
export function closeRaw(fd: number): void {
  c.close(fd)
}

export interface Watch {
  close(): void
}

/**
 * Calls `onReadable` whenever the descriptor is readable. libuv watches the fd on the event loop itself (epoll), so
 * nothing blocks, no thread waits and no timer polls. The watch keeps the process alive until closed: koffi 3.3 aborts
 * the process at exit (napi_throw during Environment cleanup) when an unref'd poll handle is left or closed, so
 * handles are never unref'd and every owner closes its watch.
 */
export function watchReadable(fd: number, onReadable: () => void): Watch {
  // The callback gets (status, events) although koffi's typings declare (events) only: libuv's uv_poll_cb.
  // A socket error (a netlink overrun sets sk_err = ENOBUFS, which epoll reports as EPOLLERR) makes libuv stop the
  // handle and report UV_EBADF (src/unix/poll.c uv__poll_io). The reader collects the error with its own recv, and
  // the handle is started again, or the socket would never be read again after its first overrun.
  let closed = false
  const cb = (status: number, ev?: { readable: boolean; disconnect: boolean }): void => {
    if (status < 0 || ev?.readable || ev?.disconnect) onReadable()
    if (status < 0 && !closed) handle.start({ readable: true }, cb as unknown as (ev: unknown) => void)
  }
  const handle = koffi.node.poll(fd, { readable: true }, cb as unknown as (ev: unknown) => void)
  return {
    close() {
      if (closed) return
      closed = true
      handle.stop()
      handle.close()
    },
  }
}

/**
 * statfs(2)'s f_type, the filesystem's magic number. f_type is a `long` (`__fsword_t`); the magic numbers of
 * <linux/magic.h> are 32-bit, so the low half is compared.
 */
export function statfsType(path: string): number {
  const buf = Buffer.alloc(STRUCTS.statfs.size)
  check('statfs', c.statfs(path, buf), path)
  return fType(buf)
}

/** statfs(2) f_flags: ST_RDONLY on a read-only mount (the mount's flag: a read-only bind mount has it too). */
export const ST_RDONLY = 1

/**
 * statfs(2)'s f_flags (Linux 2.6.36): the mount flags of the mount `path` is on (fs/statfs.c, calculate_f_flags:
 * the mount's own MNT_READONLY as well as the superblock's), as ST_* bits.
 */
export function statfsFlags(path: string): number {
  const buf = Buffer.alloc(STRUCTS.statfs.size)
  check('statfs', c.statfs(path, buf), path)
  return Number(buf.readBigUInt64LE(STRUCTS.statfs.fields.f_flags) & 0xffffffffn)
}

/** fstatfs(2)'s f_type: the filesystem of an opened file, not of whatever its path names by now. */
export function fstatfsType(fd: number): number {
  const buf = Buffer.alloc(STRUCTS.statfs.size)
  check('fstatfs', c.fstatfs(fd, buf))
  return fType(buf)
}

function fType(buf: Buffer): number {
  return Number(buf.readBigUInt64LE(STRUCTS.statfs.fields.f_type) & 0xffffffffn)
}

/**
 * setns(2): moves the calling thread (not the process) into the namespace `fd` refers to. With `nstype` the kernel
 * refuses a namespace of another kind with EINVAL, and so a file that is no namespace (kernel/nsproxy.c, setns),
 * except a pidfd, which it takes as "that process's namespaces". Use it through ffi/netns.ts withNetns, which
 * switches back.
 */
export function setns(fd: number, nstype: number): void {
  check('setns', c.setns(fd, nstype))
}

/** Whether `path` lies on a BPF filesystem (the only place BPF_OBJ_PIN works: kernel/bpf/inode.c). */
export function isBpffs(path: string): boolean {
  return statfsType(path) === BPF_FS_MAGIC
}

/**
 * Mounts a new BPF filesystem instance at `target` (`mount -t bpf bpf TARGET`), nosuid,nodev,noexec as systemd
 * mounts /sys/fs/bpf. `mode` is the root directory's mode (bpffs `mode=` option, Linux 4.7).
 */
export function mountBpffs(target: string, mode = 0o700): void {
  check('mount', c.mount('bpf', target, 'bpf', MS_NOSUID | MS_NODEV | MS_NOEXEC, `mode=${mode.toString(8)}`), target)
}

export function umount(target: string, flags = 0): void {
  check('umount2', c.umount2(target, flags), target)
}
