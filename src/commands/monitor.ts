import { DEFAULT_NETNS_DIRS, HOST_NETNS } from '../config/types.js'
import { NetnsStuckError } from '../ffi/netns.js'
import { RtnlClient } from '../rtnl/client.js'
import { LinkTable } from '../links/table.js'
import type { Namespace, NetnsEvent } from '../netns/registry.js'
import { selectNamespaces, selects, type NetnsSelector } from '../netns/select.js'
import { eventJson, eventJsonIn, eventText, eventTextIn, netnsChangeText, printable, type NetnsChange } from './format.js'
import { CommandNetns, usageError } from './namespaces.js'
import { untilSignal } from './signals.js'

export interface MonitorOptions {
  json: boolean
  rcvbuf?: number
  /** `--netns NAME` / `--all-namespaces`; absent: this namespace, printed as before namespaces. */
  netns?: NetnsSelector
  /** `--netns-dir`: where namespace files are named (default DEFAULT_NETNS_DIRS). */
  netnsDirs?: readonly string[]
  /** `--insecure-paths`: the directories' owners and modes are not judged. */
  insecurePaths?: boolean
  out?: NodeJS.WritableStream
  err?: NodeJS.WritableStream
}

/**
 * `xdplinkd monitor`: the link table's events as they happen, until SIGINT/SIGTERM. The initial dump is not printed
 * as events (it is the starting point); a resync after an overrun prints the differences it found.
 */
export async function monitorCommand(opts: MonitorOptions): Promise<number> {
  if (opts.netns) return monitorNamespaces(opts, opts.netns)
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

/** What is shown of a namespace: the daemon's own is host, and needs no directory (`--netns host`). */
type Shown = Pick<Namespace, 'id' | 'name' | 'host'>

/** One namespace followed: its own sockets (made inside it) and link table. */
interface Followed {
  ns: Shown
  client: RtnlClient
  table: LinkTable
  /** Its events are printed (not while its first dump is the starting point of the whole monitor). */
  live: boolean
}

/**
 * `monitor --netns NAME` / `--all-namespaces`: each namespace the selector picks is followed through sockets of its
 * own, as the daemon does (an overrun in one resyncs that one). Namespaces are followed as they come and go: one that
 * appears (a file bound in a directory) is announced and its links are printed as `add` events, since they are new
 * to whoever reads; one whose last file goes is announced gone and let go (its sockets closed, so the kernel can
 * free it). `host` alone watches no directory.
 */
async function monitorNamespaces(opts: MonitorOptions, sel: NetnsSelector): Promise<number> {
  const out = opts.out ?? process.stdout
  const errOut = opts.err ?? process.stderr
  const hostOnly = sel.kind === 'one' && sel.name === HOST_NETNS
  const dirs = opts.netnsDirs ?? DEFAULT_NETNS_DIRS
  const followed = new Map<string, Followed>()
  const say = (line: string): void => void errOut.write(`xdplinkd: ${printable(line)}\n`)

  const print = (f: Followed, e: Parameters<typeof eventText>[0]): void => {
    if (!opts.json) out.write((hostOnly ? eventText(e) : eventTextIn(f.ns.name, e)) + '\n')
    else out.write(JSON.stringify(eventJsonIn(f.ns.name, e)) + '\n')
  }
  const announce = (c: NetnsChange): void => void out.write((opts.json ? JSON.stringify(c) : netnsChangeText(c)) + '\n')

  const follow = (ns: Shown, live: boolean, fd: number | undefined): Followed | null => {
    let client: RtnlClient
    try {
      client = new RtnlClient({ rcvbuf: opts.rcvbuf, netnsFd: fd })
    } catch (e) {
      if (e instanceof NetnsStuckError) throw e
      say(`network namespace ${ns.name}: cannot open netlink there: ${(e as Error).message}`)
      return null
    }
    const f: Followed = { ns, client, table: new LinkTable(client), live }
    f.table.on('event', (e) => {
      if (f.live) print(f, e)
    })
    f.table.on('resync', (r) => {
      if (r.reason !== 'overrun') return
      errOut.write(`${hostOnly ? '' : `${printable(f.ns.name)}: `}resync after overrun: ${r.events} differences, ${r.links} links\n`)
    })
    f.table.on('error', (e) => say(`network namespace ${f.ns.name}: ${e.message}`))
    client.on('error', (e) => say(`network namespace ${f.ns.name}: ${e.message}`))
    followed.set(ns.id, f)
    return f
  }
  const letGo = (id: string): Followed | undefined => {
    const f = followed.get(id)
    if (!f) return undefined
    followed.delete(id)
    f.live = false
    f.client.close()
    return f
  }

  let found: CommandNetns | null = null
  const onEvent = (e: NetnsEvent): void => {
    if (e.kind === 'removed') {
      const f = letGo(e.namespace.id)
      if (f) announce({ netns: f.ns.name, event: 'netns-remove', id: f.ns.id })
      return
    }
    if (e.kind !== 'added' && e.kind !== 'renamed') return
    const had = followed.get(e.namespace.id)
    if (had) {
      const oldName = had.ns.name
      had.ns = e.namespace
      if (oldName !== e.namespace.name) announce({ netns: e.namespace.name, event: 'netns-rename', oldName, id: e.namespace.id })
      return
    }
    // Added, or renamed into the name `--netns` asked for.
    if (!selects(sel, e.namespace)) return
    const fd = found?.fdOf(e.namespace.id)
    if (!fd) return
    announce({ netns: e.namespace.name, event: 'netns-add', id: e.namespace.id, paths: [...e.namespace.paths] })
    const f = follow(e.namespace, true, fd)
    f?.table.start().catch((err: Error) => {
      // Gone while its links were being dumped (its sockets closed under the dump): its removal said it all.
      if (followed.get(e.namespace.id) === f) say(`network namespace ${e.namespace.name}: ${err.message}`)
    })
  }

  // Nothing else may hold the event loop: the directories are watched without holding it (fs.watch, not
  // persistent, as the daemon wants it), and with `--netns NAME` the sockets go when its namespace goes.
  const keepAlive = setInterval(() => {}, 2 ** 31 - 1)
  try {
    const stop = untilSignal()
    let picked: Shown[]
    if (hostOnly) picked = [{ id: HOST_NETNS, name: HOST_NETNS, host: true }]
    else {
      found = await CommandNetns.open({
        dirs,
        insecurePaths: opts.insecurePaths,
        onWarning: sel.kind === 'all' ? (w) => say(`warning: ${w.message}`) : undefined,
        onEvent,
      })
      const r = selectNamespaces(found.namespaces(), sel, dirs, sel.kind === 'one' ? found.whyNot(sel.name) : undefined)
      if (!r.ok) throw usageError(printable(r.error))
      picked = r.value
    }
    const starting: Promise<void>[] = []
    for (const ns of picked) {
      const fd = ns.host ? undefined : (found?.fdOf(ns.id) ?? null)
      if (fd === null) continue
      const f = follow(ns, false, fd)
      // One that goes while its links are being dumped was announced gone; the others start regardless.
      if (!f) continue
      starting.push(
        f.table.start().catch((err: unknown) => {
          if (followed.get(ns.id) === f) throw err
        }),
      )
    }
    await Promise.all(starting)
    let links = 0
    for (const f of followed.values()) {
      f.live = true
      links += f.table.size
    }
    const where = hostOnly ? '' : ` in ${followed.size} network namespace${followed.size === 1 ? '' : 's'}`
    const more = sel.kind === 'all' ? ` (and those bound in ${dirs.join(', ')} from now on)` : ''
    errOut.write(`monitoring ${links} links${printable(where + more)}; Ctrl-C to stop\n`)
    await stop
    return 0
  } finally {
    clearInterval(keepAlive)
    found?.close()
    for (const id of [...followed.keys()]) letGo(id)
  }
}
