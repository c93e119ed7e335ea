/** How a command's outcome reaches the shell: its exit status, or one line on stderr. */

/** Runs a command and turns what it throws into one line on stderr and exit status 1 (or the error's own). */
export async function run(fn: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await fn()
  } catch (e) {
    const err = e as Error & { exitCode?: number }
    process.stderr.write(`xdplinkd: ${err.message}${hint(err)}\n`)
    process.exitCode = err.exitCode ?? 1
  }
}

function hint(e: Error & { code?: string }): string {
  if (e.code === 'EPERM' || e.code === 'EACCES') return ' (needs root or CAP_NET_ADMIN and CAP_BPF)'
  return ''
}
