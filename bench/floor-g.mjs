/**
 * The floor for part (g): the least a Node.js process built on this project's netlink layer does to attach a program
 * in every namespace bound in a directory. It opens a program bpftool pinned, then for each namespace file of DIR at
 * once: opens it, one request socket inside it (setns around socket(), as the daemon's units are opened), a dump, and
 * the program attached (generic mode) to the link named IFNAME there; prints one line. No watch, no subscribed
 * socket, no config, no logging, no debounce, nothing kept open. Bundled like the command (bench/parts.mjs
 * buildFloorScript), so its start-up is what a minimal daemon's would be.
 *
 *   node dist/bench/floor-g.mjs PIN DIR IFNAME  ->  prints {"namespaces": N, "attached": N, "errors": N}
 */
import { closeSync, constants, openSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { objGet } from '../dist/ffi/bpf-fd.js'
import { RtnlClient } from '../dist/rtnl/client.js'
import { XDP_FLAGS_SKB_MODE, XDP_FLAGS_UPDATE_IF_NOEXIST } from '../dist/rtnl/constants.js'

const [pin, dir, ifname] = process.argv.slice(2)
const prog = objGet(pin)
let attached = 0
let errors = 0
const files = readdirSync(dir)
await Promise.all(
  files.map(async (f) => {
    const fd = openSync(join(dir, f), constants.O_RDONLY | constants.O_CLOEXEC)
    // The socket belongs to the namespace for good; the file is not needed once it is made.
    const client = new RtnlClient({ subscribe: false, netnsFd: fd })
    closeSync(fd)
    try {
      const links = (await client.dumpLinks()).filter((l) => l.name === ifname)
      const results = await client.setXdp(links.map((l) => ({ ifindex: l.ifindex, req: { fd: prog.raw, flags: XDP_FLAGS_SKB_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST } })))
      for (const r of results) r.ok ? attached++ : errors++
    } finally {
      client.close()
    }
  }),
)
process.stdout.write(`${JSON.stringify({ namespaces: files.length, attached, errors })}\n`)
prog.close()
