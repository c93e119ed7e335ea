/**
 * Entering another network namespace for as long as one synchronous call takes, and telling a namespace file from
 * any other.
 *
 * A socket belongs to the network namespace its creator was in when it called socket() (net/socket.c __sock_create
 * passes current->nsproxy->net_ns; net/netlink/af_netlink.c keeps it as sock_net) and stays there whatever its
 * creator does afterwards, so one process can hold sockets in many namespaces. setns(2) moves only the calling thread
 * (kernel/nsproxy.c setns -> switch_task_namespaces(current, ...)): withNetns moves the main thread, runs `fn` and
 * moves it back at once. `fn` is synchronous, so the event loop does not turn while the thread is elsewhere and no
 * other JavaScript runs there; libuv's threadpool and V8's own threads never move.
 */
import { constants, fstatSync, openSync } from 'node:fs'
import { Fd } from './fd.js'
import { CLONE_NEWNET, NSFS_MAGIC, check, fstatfsType, libc, setns } from './libc.js'
import type { SyscallError } from './errno.js'

// <linux/nsfs.h>: NS_GET_NSTYPE = _IO(NSIO, 0x3), NSIO 0xb7 (Linux 4.11): the CLONE_NEW* kind of a namespace file.
export const NS_GET_NSTYPE = 0xb703

const c = {
  ioctl: libc.func('int ioctl(int fd, unsigned long request, ...)'),
}

/**
 * The main thread could not be moved back into its own namespace: it is still in another one, and every socket it
 * creates from now on, every /proc/thread-self path it reads, would belong there. Nothing can be trusted after this:
 * the caller must treat it as fatal (log it and exit; systemd restarts the daemon). Every later withNetns call throws
 * it again rather than run anything.
 */
export class NetnsStuckError extends Error {
  constructor(
    readonly switchBack: SyscallError | Error,
    /** What `fn` threw, when it threw before the switch back failed. */
    readonly fnError?: unknown,
  ) {
    super(`cannot switch the main thread back into its own network namespace (${switchBack.message}): it is stuck in another one`)
    this.name = 'NetnsStuckError'
  }
}

/** The namespace the main thread started in: /proc/thread-self/ns/net opened once (O_CLOEXEC: libuv adds it). */
let home: Fd | null = null
let inside = false
let stuck: NetnsStuckError | null = null

function homeFd(): Fd {
  home ??= new Fd(openSync('/proc/thread-self/ns/net', constants.O_RDONLY), 'own network namespace')
  return home
}

/**
 * The identity of the thread's own network namespace (its nsfs inode: st_dev, st_ino), as fstat of a file that
 * binds it would report.
 */
export function ownNetnsIdentity(): { dev: number; ino: number } {
  const st = fstatSync(homeFd().raw)
  return { dev: st.dev, ino: st.ino }
}

/**
 * Runs `fn` with the calling thread in the network namespace `nsFd` refers to, and always switches back, also when
 * `fn` throws. Throws SyscallError (EINVAL: not a network namespace; EPERM: no CAP_SYS_ADMIN) without running `fn`
 * when the namespace cannot be entered, and NetnsStuckError (fatal) when the switch back fails. Calls do not nest:
 * `fn` must not call withNetns. `fn` must be synchronous: a promise it returned would run on in our own namespace.
 */
export function withNetns<T>(nsFd: number, fn: () => T): T {
  if (stuck) throw stuck
  if (inside) throw new Error('withNetns: calls do not nest')
  const back = homeFd().raw
  setns(nsFd, CLONE_NEWNET)
  inside = true
  let result: T | undefined
  let threw = false
  let error: unknown
  try {
    result = fn()
  } catch (e) {
    threw = true
    error = e
  }
  try {
    setns(back, CLONE_NEWNET)
  } catch (e) {
    stuck = new NetnsStuckError(e as Error, threw ? error : undefined)
    throw stuck
  }
  inside = false
  if (threw) throw error
  if (typeof (result as { then?: unknown } | null)?.then === 'function') {
    throw new TypeError('withNetns: fn returned a promise; only its synchronous part ran in the namespace')
  }
  return result as T
}

/**
 * A descriptor of the network namespace `fd` refers to that holds no mount. One opened through a bind mount
 * (/run/netns/NAME) keeps that mount busy: umount(2) without MNT_DETACH fails with EBUSY as long as it is open
 * (fs/namespace.c do_umount -> propagate_mount_busy), and a runtime that unmounts that way would fail because of us.
 * /proc/thread-self/ns/net opened from inside the namespace is the same nsfs inode on nsfs's internal mount
 * (fs/nsfs.c ns_get_path), which nobody unmounts. The caller closes both when done.
 */
export function reopenNetns(fd: number): number {
  return withNetns(fd, () => openSync('/proc/thread-self/ns/net', constants.O_RDONLY))
}

/** Whether the opened file `fd` is a namespace file (nsfs), judged on the descriptor, not on a path. */
export function isNsfs(fd: number): boolean {
  return fstatfsType(fd) === NSFS_MAGIC
}

/**
 * The kind of namespace an nsfs descriptor refers to (CLONE_NEWNET for a network namespace: fs/nsfs.c ns_ioctl,
 * NS_GET_NSTYPE). ENOTTY for a file that is not a namespace.
 */
export function nsType(fd: number): number {
  return check('ioctl', c.ioctl(fd, NS_GET_NSTYPE), 'NS_GET_NSTYPE')
}
