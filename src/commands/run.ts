import { pino, type Logger } from 'pino'
import { Daemon, StartupError } from '../daemon.js'

export interface RunOptions {
  configPath: string
  logLevel: string
  insecurePaths: boolean
  log?: Logger
}

/**
 * `xdplinkd run`: the daemon in the foreground. SIGHUP reloads; SIGTERM or SIGINT stops it (exit 0). A config error
 * exits 78, an object that fails to load 65, anything else 1.
 */
export async function runCommand(o: RunOptions): Promise<number> {
  const log = o.log ?? pino({ level: o.logLevel, base: { pid: process.pid } })
  const daemon = new Daemon({ configPath: o.configPath, insecurePaths: o.insecurePaths, log })
  let stopping: Promise<void> | null = null
  const done = new Promise<void>((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      log.info({ signal: sig }, `${sig}: stopping`)
      stopping ??= daemon.stop().then(resolve)
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
    process.on('SIGHUP', () => void daemon.reload('SIGHUP'))
  })
  try {
    await daemon.start()
  } catch (e) {
    await daemon.stop().catch(() => {})
    if (e instanceof StartupError) {
      log.fatal({ exitCode: e.exitCode }, e.message)
      throw e
    }
    throw e
  }
  await done
  return 0
}
