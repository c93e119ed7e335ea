/** `xdplinkd reload`: asks the running daemon to re-read its config, and says whether it took it. */
import { ControlClientError, controlRequest } from '../control/client.js'

export interface ReloadOptions {
  socket: string
  out?: NodeJS.WritableStream
  err?: NodeJS.WritableStream
  timeoutMs?: number
}

/** 0: the new config is in force; 1: it was rejected (the reason on stderr) and the old one stays. */
export async function reloadCommand(o: ReloadOptions): Promise<number> {
  // A reload loads objects (the verifier may take seconds per program) and moves every link over before it answers.
  const r = await controlRequest(o.socket, { cmd: 'reload' }, { timeoutMs: o.timeoutMs ?? 120_000 })
  if (!r.ok) throw new ControlClientError(`reload: ${r.error}`)
  if (!('accepted' in r)) throw new ControlClientError('reload: the daemon answered something else')
  const out = o.out ?? process.stdout
  const err = o.err ?? process.stderr
  if (r.accepted) {
    out.write('reloaded: the new config is in force\n')
    return 0
  }
  err.write(`xdplinkd: reload rejected, the previous config stays in force:\n${r.reason}\n`)
  return 1
}
