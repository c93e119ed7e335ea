/** Bind mounts for kernel tests (namespace files), undone on teardown and at exit, should tap kill the test. */
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { onExitCleanup } from './netns.js'

/** Mounts made by a test, lazily unmounted on teardown (and at exit, should the test be killed). */
export function mounts(t: Test) {
  const made = new Set<string>()
  const umountAll = (): void => {
    // The last made first: a file bound inside a directory made a mount point after it.
    for (const p of [...made].reverse()) {
      try {
        execFileSync('umount', ['-l', p], { stdio: 'ignore' })
      } catch {
        /* not mounted any more */
      }
    }
  }
  const forget = onExitCleanup(umountAll)
  t.teardown(() => {
    umountAll()
    forget()
  })
  return {
    /** `dir` bound onto itself read-only (mount --bind, then remount ro): what a ConfigMap volume is in a container. */
    readOnly(dir: string): void {
      made.add(dir)
      execFileSync('mount', ['--bind', dir, dir])
      execFileSync('mount', ['-o', 'remount,ro,bind', dir])
    },
    /** `touch FILE; mount --bind SOURCE FILE`, with `delayMs` between the two (as ip netns add has). */
    bind(file: string, source: string, delayMs = 0): void {
      made.add(file)
      execFileSync('sh', ['-c', `touch "$1" && sleep ${delayMs / 1000} && mount --bind "$2" "$1"`, 'sh', file, source])
    },
    /**
     * Makes `dir` a mount point of its own with shared propagation, as `ip netns add` makes /run/netns: namespaces
     * bound inside it later reach processes in other mount namespaces (`ip netns exec` gives the daemon one), even
     * where / is private, as on this test machine (no systemd as PID 1).
     */
    shared(dir: string): void {
      made.add(dir)
      execFileSync('mount', ['--bind', dir, dir])
      execFileSync('mount', ['--make-shared', dir])
    },
    /** Also unmounted on teardown under another path (the directory was moved). */
    alsoAt(file: string): void {
      made.add(file)
    },
    /** A plain umount: it fails with EBUSY while anyone holds a descriptor opened through the mount. */
    unbindAndRemove(file: string): void {
      execFileSync('umount', [file])
      unlinkSync(file)
    },
  }
}

/**
 * A directory of namespace files as a container runtime keeps one: root's, 0755, inside a temporary directory made
 * 0755 too (the path rules pass, and a test's unprivileged user can reach the files), a shared mount point (a file bound later reaches a process already running under
 * `ip netns exec`). `bind(nsName, as)` binds the namespace /run/netns/nsName as `as`. Unmounted, then removed, on
 * teardown.
 */
export function netnsDir(t: Test) {
  const top = mkdtempSync('/tmp/xdpl-nsdir-')
  chmodSync(top, 0o755)
  // Registered before the mounts: teardowns run last first, so everything is unmounted before this removes it.
  t.teardown(() => rmSync(top, { recursive: true, force: true }))
  const dir = join(top, 'netns')
  mkdirSync(dir, { mode: 0o755 })
  const m = mounts(t)
  m.shared(dir)
  return {
    dir,
    bind(nsName: string, as: string): string {
      const file = join(dir, as)
      m.bind(file, `/run/netns/${nsName}`)
      return file
    },
    unbindAndRemove: m.unbindAndRemove,
  }
}
