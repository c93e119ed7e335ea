/**
 * The daemon's own command line, `run [--config PATH] [--log-level LEVEL] [--insecure-paths] [--watch-config]`, read
 * without yargs.
 * yargs and cliui take 30-40 ms to load, on every start of the service, to parse three options. Anything this does
 * not recognise exactly (help, an unknown or repeated option, a value that looks like an option, camelCase
 * spellings, `--no-...`) returns null and goes to yargs, which stays the one place that defines usage and errors.
 */
import type { RunOptions } from '../commands/run.js'

export const DEFAULT_CONFIG = '/etc/xdplinkd/config.yaml'
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const

type RunArgs = Pick<RunOptions, 'configPath' | 'logLevel' | 'insecurePaths' | 'watchConfig'>

/** The options of `run` when `args` (argv after node and the script) is a plain run command line, else null. */
export function parseRunArgs(args: readonly string[]): RunArgs | null {
  if (args[0] !== 'run') return null
  let configPath: string | undefined
  let logLevel: string | undefined
  let insecurePaths: boolean | undefined
  let watchConfig: boolean | undefined
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!
    const eq = a.startsWith('--') ? a.indexOf('=') : -1
    const name = eq > 0 ? a.slice(0, eq) : a
    const value = (): string | null => {
      const v = eq > 0 ? a.slice(eq + 1) : args[++i]
      return v === undefined || v === '' || v.startsWith('-') ? null : v
    }
    switch (name) {
      case '--config':
      case '-c': {
        if (configPath !== undefined) return null
        const v = value()
        if (v === null) return null
        configPath = v
        break
      }
      case '--log-level': {
        if (logLevel !== undefined) return null
        const v = value()
        if (v === null || !(LOG_LEVELS as readonly string[]).includes(v)) return null
        logLevel = v
        break
      }
      case '--insecure-paths':
        if (insecurePaths !== undefined || eq > 0) return null
        insecurePaths = true
        break
      case '--watch-config':
        if (watchConfig !== undefined || eq > 0) return null
        watchConfig = true
        break
      default:
        return null
    }
  }
  return { configPath: configPath ?? DEFAULT_CONFIG, logLevel: logLevel ?? 'info', insecurePaths: insecurePaths ?? false, watchConfig: watchConfig ?? false }
}
