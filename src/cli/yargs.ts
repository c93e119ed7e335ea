/** Every command's argv, parsed by yargs: usage, help, version and errors are defined here. */
import { readFileSync } from 'node:fs'
import { isatty } from 'node:tty'
import yargs from 'yargs'
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

export async function parseAndRun(argv: string[]): Promise<void> {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  await yargs(argv)
    .scriptName('xdplinkd')
    .usage('$0 <command> [options]\n\nKeeps XDP programs attached to the network interfaces a config file names.')
    .command(
      'links',
      'list the links of this network namespace with their XDP programs',
      (y) => y.option('json', { type: 'boolean', default: false, describe: 'print a JSON array' }),
      (a) => run(async () => (await import('../commands/links.js')).linksCommand({ json: a.json })),
    )
    .command(
      'monitor',
      'print link events (add, change, rename, remove) as they happen, until SIGINT/SIGTERM',
      (y) =>
        y
          .option('json', { type: 'boolean', default: false, describe: 'one JSON object per line' })
          .option('rcvbuf', { type: 'number', coerce: rcvbufBytes, describe: 'netlink receive buffer in bytes (default 8 MiB)' }),
      (a) => run(async () => (await import('../commands/monitor.js')).monitorCommand({ json: a.json, rcvbuf: a.rcvbuf })),
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
          .option('rcvbuf', { type: 'number', coerce: rcvbufBytes, describe: 'netlink receive buffer for link notifications, bytes (default 8 MiB)' }),
      (a) =>
        run(async () =>
          (await import('../commands/run.js')).runCommand({
            configPath: a.config,
            logLevel: a['log-level'],
            insecurePaths: a['insecure-paths'],
            rcvbuf: a.rcvbuf,
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
      (y) =>
        y
          .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' })
          .option('socket', { type: 'string', default: '/run/xdplinkd/control.sock', describe: "the daemon's control socket" }),
      (a) => run(async () => (await import('../commands/status.js')).statusCommand({ json: a.json, socket: a.socket })),
    )
    .command(
      'reload',
      'ask the running daemon to re-read its config; exit 0 when the new config is in force, 1 when it was rejected',
      (y) => y.option('socket', { type: 'string', default: '/run/xdplinkd/control.sock', describe: "the daemon's control socket" }),
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
      // yargs reports a value its `coerce` refused as an error of its own kind (YError): a usage error like the rest.
      if (err && err.name !== 'YError') throw err
      process.stderr.write(`xdplinkd: ${msg ?? err.message} (see xdplinkd --help)\n`)
      process.exit(1)
    })
    .parseAsync()
}
