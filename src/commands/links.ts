import { DEFAULT_NETNS_DIRS, HOST_NETNS } from '../config/types.js'
import { NetnsStuckError } from '../ffi/netns.js'
import { selectNamespaces, type NetnsSelector } from '../netns/select.js'
import { RtnlClient } from '../rtnl/client.js'
import { linkJson, linksTable, netnsLinksJson, netnsLinksTable, printable, type NetnsLinks } from './format.js'
import { CommandNetns, dumpLinksIn, usageError } from './namespaces.js'

export interface LinksOptions {
  json: boolean
  /** `--netns NAME` / `--all-namespaces`; absent: this namespace, printed as before namespaces. */
  netns?: NetnsSelector
  /** `--netns-dir`: where namespace files are named (default DEFAULT_NETNS_DIRS). */
  netnsDirs?: readonly string[]
  /** `--insecure-paths`: the directories' owners and modes are not judged. */
  insecurePaths?: boolean
  out?: NodeJS.WritableStream
  err?: NodeJS.WritableStream
}

/** `xdplinkd links`: one dump of the namespace's links, or of each namespace's a namespace option picks. */
export async function linksCommand(opts: LinksOptions): Promise<number> {
  const out = opts.out ?? process.stdout
  if (opts.netns) return linksOfNamespaces(opts, opts.netns)
  const client = new RtnlClient({ subscribe: false })
  try {
    const links = (await client.dumpLinks()).sort((a, b) => a.ifindex - b.ifindex)
    out.write(opts.json ? JSON.stringify(links.map(linkJson)) + '\n' : linksTable(links))
    return 0
  } finally {
    client.close()
  }
}

/**
 * The links of the namespaces a selector picks, host first, then the others by name. A namespace whose links cannot
 * be read is said on stderr and the rest are still printed (exit 1); an unknown name prints nothing (exit 1).
 */
async function linksOfNamespaces(opts: LinksOptions, sel: NetnsSelector): Promise<number> {
  const out = opts.out ?? process.stdout
  const errOut = opts.err ?? process.stderr
  const groups: NetnsLinks[] = []
  let status = 0
  if (sel.kind === 'one' && sel.name === HOST_NETNS) {
    // This namespace needs no directory: nothing is entered, nothing more is needed than without the option.
    groups.push({ netns: HOST_NETNS, links: await dumpLinksIn() })
  } else {
    const dirs = opts.netnsDirs ?? DEFAULT_NETNS_DIRS
    const found = await CommandNetns.open({
      dirs,
      insecurePaths: opts.insecurePaths,
      // With one name asked for, the other files' troubles are not ours: only those of that name are told (whyNot).
      onWarning: sel.kind === 'all' ? (w) => errOut.write(`xdplinkd: warning: ${printable(w.message)}\n`) : undefined,
    })
    try {
      const picked = selectNamespaces(found.namespaces(), sel, dirs, sel.kind === 'one' ? found.whyNot(sel.name) : undefined)
      if (!picked.ok) throw usageError(printable(picked.error))
      for (const ns of picked.value) {
        try {
          const fd = ns.host ? undefined : found.fdOf(ns.id)
          if (fd === null) throw new Error('its descriptor is not held')
          groups.push({ netns: ns.name, links: await dumpLinksIn(fd) })
        } catch (e) {
          if (e instanceof NetnsStuckError) throw e
          errOut.write(`xdplinkd: network namespace ${printable(ns.name)}: ${printable((e as Error).message)}\n`)
          status = 1
        }
      }
    } finally {
      found.close()
    }
  }
  out.write(opts.json ? JSON.stringify(netnsLinksJson(groups)) + '\n' : netnsLinksTable(groups))
  return status
}
