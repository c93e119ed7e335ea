/** Bind mounts for kernel tests (namespace files), undone on teardown and at exit, should tap kill the test. */
import { execFileSync } from 'node:child_process'
import { unlinkSync } from 'node:fs'
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
