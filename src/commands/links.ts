import { RtnlClient } from '../rtnl/client.js'
import { linkJson, linksTable } from './format.js'

/** `xdplinkd links`: one dump of the namespace's links. */
export async function linksCommand(opts: { json: boolean; out?: NodeJS.WritableStream }): Promise<number> {
  const out = opts.out ?? process.stdout
  const client = new RtnlClient({ subscribe: false })
  try {
    const links = (await client.dumpLinks()).sort((a, b) => a.ifindex - b.ifindex)
    out.write(opts.json ? JSON.stringify(links.map(linkJson)) + '\n' : linksTable(links))
    return 0
  } finally {
    client.close()
  }
}
