import { RtnlClient } from '../rtnl/client.js'
import { LinkTable } from '../links/table.js'
import { eventJson, eventText } from './format.js'
import { untilSignal } from './signals.js'

/**
 * `xdplinkd monitor`: the link table's events as they happen, until SIGINT/SIGTERM. The initial dump is not printed
 * as events (it is the starting point); a resync after an overrun prints the differences it found.
 */
export async function monitorCommand(opts: {
  json: boolean
  rcvbuf?: number
  out?: NodeJS.WritableStream
  err?: NodeJS.WritableStream
}): Promise<number> {
  const out = opts.out ?? process.stdout
  const errOut = opts.err ?? process.stderr
  const client = new RtnlClient({ rcvbuf: opts.rcvbuf })
  const table = new LinkTable(client)
  let started = false
  table.on('event', (e) => {
    if (started) out.write((opts.json ? JSON.stringify(eventJson(e)) : eventText(e)) + '\n')
  })
  table.on('resync', (r) => {
    // Diagnostics go to stderr so that stdout stays one event per line.
    if (r.reason === 'overrun') errOut.write(`resync after overrun: ${r.events} differences, ${r.links} links\n`)
  })
  table.on('error', (e) => errOut.write(`xdplinkd: ${e.message}\n`))
  client.on('error', (e) => errOut.write(`xdplinkd: ${e.message}\n`))
  try {
    const stop = untilSignal()
    await table.start()
    started = true
    errOut.write(`monitoring ${table.size} links; Ctrl-C to stop\n`)
    await stop
    return 0
  } finally {
    client.close()
  }
}
