/** Every command's argv, parsed by yargs: usage, help, version and errors are defined here. */
import { readFileSync } from 'node:fs'
import { isatty } from 'node:tty'
import { resolve } from 'node:path'
import yargs, { type Argv } from 'yargs'
import { DEFAULT_NETNS_DIRS, DEFAULTS } from '../config/types.js'
import { netnsName, type NetnsSelector } from '../netns/select.js'
import { DEFAULT_CONFIG, LOG_LEVELS } from './fast-run.js'
import { run } from './outcome.js'

/**
 * --rcvbuf: a whole number of bytes. The kernel clamps what SO_RCVBUFFORCE asks for (at least SOCK_MIN_RCVBUF, about
 * 2 KiB, and at most INT_MAX / 2: net/core/sock.c __sock_set_rcvbuf), so only the shape is checked here.
 */
export function rcvbufBytes(v: unknown): number | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || v > 0x3fffffff) {
    throw new Error(`--rcvbuf: expected a whole number of bytes from 1 to 1073741823, got ${String(v)}`)
  }
  return v
}

/** --netns: a namespace's name (netns/select.ts netnsName says what is refused). */
export function netnsArg(v: unknown): string | undefined {
  if (v === undefined) return undefined
  const r = netnsName(String(v))
  if (!r.ok) throw new Error(`--netns: ${r.error}`)
  return r.value
}

/**
 * --netns-dir: absolute after resolving against the working directory, and normalized (`//`, `.`, a trailing `/`),
 * so that a directory given twice is looked at once and messages name it one way.
 */
export function netnsDirsArg(v: unknown): string[] | undefined {
  if (v === undefined) return undefined
  return (Array.isArray(v) ? v : [v]).map((d) => {
    const dir = String(d)
    if (dir === '' || dir.includes('\0')) throw new Error(`--netns-dir: expected a directory, got ${JSON.stringify(dir)}`)
    return resolve(dir)
  })
}

/** The namespace options of `links` and `monitor`. */
function netnsOptions<T>(y: Argv<T>) {
  return y
    .option('netns', {
      type: 'string',
      coerce: netnsArg,
      describe: 'the links of one network namespace: host (this one) or the name of a namespace file in a --netns-dir',
    })
    .option('all-namespaces', {
      type: 'boolean',
      describe: 'the links of every network namespace: host first, then those of the --netns-dir directories by name',
    })
    .option('netns-dir', {
      type: 'string',
      array: true,
      requiresArg: true,
      coerce: netnsDirsArg,
      describe: `a directory of network namespace files, repeatable (default: ${DEFAULT_NETNS_DIRS.join(', ')})`,
    })
    .option('insecure-paths', {
      type: 'boolean',
      describe: 'look in --netns-dir directories that others than root could change (development only)',
    })
    .check((a) => {
      // A string makes it a usage error (exit 1, with the --help hint), as yargs' own are.
      if (a.netns !== undefined && a['all-namespaces']) return '--netns and --all-namespaces: give one of them'
      for (const o of ['netns-dir', 'insecure-paths'] as const) {
        if (a[o] !== undefined && a.netns === undefined && !a['all-namespaces']) {
          return `--${o}: only with --netns or --all-namespaces (without them, only this namespace is shown)`
        }
      }
      return true
    })
}

/** What the namespace options ask for; nothing when none was given (the command is as before namespaces). */
export function netnsChoice(a: { netns?: string; 'all-namespaces'?: boolean; 'netns-dir'?: string[]; 'insecure-paths'?: boolean }): {
  netns?: NetnsSelector
  netnsDirs?: string[]
  insecurePaths?: boolean
} {
  const netns: NetnsSelector | undefined = a['all-namespaces'] ? { kind: 'all' } : a.netns !== undefined ? { kind: 'one', name: a.netns } : undefined
  if (!netns) return {}
  return {
    netns,
    ...(a['netns-dir'] !== undefined ? { netnsDirs: [...new Set(a['netns-dir'])] } : {}),
    ...(a['insecure-paths'] ? { insecurePaths: true } : {}),
  }
}

/** top --interval: seconds between samples, 0.1 to 3600 (a rate over less than 0.1 s is mostly noise). */
export function intervalArg(v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0.1 || v > 3600) {
    throw new Error(`--interval: expected seconds from 0.1 to 3600, got ${String(v)}`)
  }
  return v
}

/** top --count: a whole number of tables, at least 1. */
export function countArg(v: unknown): number | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error(`--count: expected a whole number from 1, got ${String(v)}`)
  return v
}

/** --socket of the commands that ask the daemon; by default the config's `control-socket:` default. */
function socketOption<T>(y: Argv<T>) {
  return y.option('socket', { type: 'string', default: DEFAULTS.controlSocket, describe: "the daemon's control socket" })
}

export async function parseAndRun(argv: string[]): Promise<void> {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  await yargs(argv)
    .scriptName('xdplinkd')
    .usage('$0 <command> [options]\n\nKeeps XDP programs attached to the network interfaces a config file names.')
    .command(
      'links',
      'list the links of this network namespace with their XDP programs',
      (y) => netnsOptions(y.option('json', { type: 'boolean', default: false, describe: 'print a JSON array' })),
      (a) => run(async () => (await import('../commands/links.js')).linksCommand({ json: a.json, ...netnsChoice(a) })),
    )
    .command(
      'monitor',
      'print link events (add, change, rename, remove) as they happen, until SIGINT/SIGTERM',
      (y) =>
        netnsOptions(
          y
            .option('json', { type: 'boolean', default: false, describe: 'one JSON object per line' })
            .option('rcvbuf', { type: 'number', coerce: rcvbufBytes, describe: 'netlink receive buffer in bytes (default 8 MiB)' }),
        ),
      (a) => run(async () => (await import('../commands/monitor.js')).monitorCommand({ json: a.json, rcvbuf: a.rcvbuf, ...netnsChoice(a) })),
    )
    .command(
      'run',
      'run the daemon in the foreground until SIGTERM/SIGINT (SIGHUP reloads)',
      (y) =>
        y
          .option('config', { alias: 'c', type: 'string', default: DEFAULT_CONFIG, describe: 'config file' })
          .option('log-level', { type: 'string', default: 'info', choices: LOG_LEVELS })
          .option('insecure-paths', {
            type: 'boolean',
            default: false,
            describe: 'accept config and object files, and a control socket directory, writable by others (development only; logged)',
          })
          .option('rcvbuf', { type: 'number', coerce: rcvbufBytes, describe: 'netlink receive buffer for link notifications, bytes (default 8 MiB)' })
          .option('watch-config', {
            type: 'boolean',
            default: false,
            describe: 'reload when the config file changes (an edit, a rename over it, a ConfigMap update), as on SIGHUP',
          }),
      (a) =>
        run(async () =>
          (await import('../commands/run.js')).runCommand({
            configPath: a.config,
            logLevel: a['log-level'],
            insecurePaths: a['insecure-paths'],
            rcvbuf: a.rcvbuf,
            watchConfig: a['watch-config'],
          }),
        ),
    )
    .command(
      'check',
      'validate the config and load every object (the verifier included) without attaching or pinning anything; show what would attach where',
      (y) =>
        y
          .option('config', { alias: 'c', type: 'string', default: DEFAULT_CONFIG, describe: 'config file' })
          .option('insecure-paths', { type: 'boolean', default: false, describe: 'accept files writable by others (development only)' })
          .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' }),
      (a) =>
        run(async () =>
          (await import('../commands/check.js')).checkCommand({ configPath: a.config, insecurePaths: a['insecure-paths'], json: a.json }),
        ),
    )
    .command(
      'status',
      "ask the running daemon for every link's state, the loaded programs and the counters",
      (y) => socketOption(y).option('json', { type: 'boolean', default: false, describe: 'print one JSON object' }),
      (a) => run(async () => (await import('../commands/status.js')).statusCommand({ json: a.json, socket: a.socket })),
    )
    .command(
      'top',
      'packets and bytes per second of each link by XDP action, busiest first, refreshed until q or Ctrl-C',
      (y) =>
        socketOption(y)
          .option('interval', { alias: 'i', type: 'number', default: 1, coerce: intervalArg, describe: 'seconds between samples' })
          .option('count', { alias: 'n', type: 'number', coerce: countArg, describe: 'stop after this many tables' }),
      (a) =>
        run(async () =>
          (await import('../commands/top.js')).topCommand({ socket: a.socket, intervalMs: Math.round(a.interval * 1000), count: a.count }),
        ),
    )
    .command(
      'maps',
      "ask the running daemon for each program's maps: type, sizes, entries now, and whether it manages their contents",
      (y) => socketOption(y).option('json', { type: 'boolean', default: false, describe: 'print one JSON object' }),
      (a) => run(async () => (await import('../commands/maps.js')).mapsCommand({ json: a.json, socket: a.socket })),
    )
    .command(
      'reload',
      'ask the running daemon to re-read its config; exit 0 when the new config is in force, 1 when it was rejected',
      (y) => socketOption(y),
      (a) => run(async () => (await import('../commands/reload.js')).reloadCommand({ socket: a.socket })),
    )
    .demandCommand(1, 'name a command')
    .strict()
    .version(pkg.version)
    .help()
    .alias('h', 'help')
    // Only a terminal has columns. process.stdout is not touched otherwise: creating it puts a pipe on fd 1 into
    // non-blocking mode, and pino's synchronous writes then sleep 100 ms whenever the pipe is full (sonic-boom's
    // EAGAIN retry).
    .wrap(isatty(1) ? Math.min(100, process.stdout.columns || 100) : 100)
    .fail((msg, err) => {
      // yargs reports a value its `coerce` refused as an error of its own kind (YError), and a `check` that returned a
      // string with that string in place of the error: usage errors like the rest.
      if (err && err.name !== 'YError' && (err as unknown) !== msg) throw err
      process.stderr.write(`xdplinkd: ${msg ?? err.message} (see xdplinkd --help)\n`)
      process.exit(1)
    })
    .parseAsync()
}
