/** `xdplinkd reload`: asks the running daemon to re-read its config, and says whether it took it. */
import { askDaemon } from '../control/client.js'
import type { ControlResponse, ReloadResponse } from '../control/protocol.js'

export interface ReloadOptions {
  socket: string
  out?: NodeJS.WritableStream
  err?: NodeJS.WritableStream
  timeoutMs?: number
}

/** 0: the new config is in force; 1: it was rejected (the reason on stderr) and the old one stays. */
export async function reloadCommand(o: ReloadOptions): Promise<number> {
  // A reload loads objects (the verifier may take seconds per program) and moves every link over before it answers.
  const isReload = (r: ControlResponse): r is ReloadResponse => r.ok && 'accepted' in r
  const r = await askDaemon(o.socket, { cmd: 'reload' }, isReload, { timeoutMs: o.timeoutMs ?? 120_000 })
  const out = o.out ?? process.stdout
  const err = o.err ?? process.stderr
  if (r.accepted) {
    out.write('reloaded: the new config is in force\n')
    return 0
  }
  err.write(`xdplinkd: reload rejected, the previous config stays in force:\n${r.reason}\n`)
  return 1
}
