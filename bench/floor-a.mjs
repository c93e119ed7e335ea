/**
 * The floor for part (a): the least a Node.js process built on this project's netlink layer can do. It opens a
 * program bpftool pinned, dumps the links, and attaches the program (generic mode) to every link whose name starts
 * with PREFIX in one batch, then exits: no config, no logging, no debounce, no pins of its own. Bundled like the
 * command (bench/parts.mjs builds it into dist/bench/), so its start-up is what a minimal daemon's would be.
 *
 *   node dist/bench/floor-a.mjs PIN PREFIX   ->  prints {"attached": N, "errors": N}
 */
import { objGet } from '../dist/ffi/bpf-fd.js'
import { RtnlClient } from '../dist/rtnl/client.js'
import { XDP_FLAGS_SKB_MODE, XDP_FLAGS_UPDATE_IF_NOEXIST } from '../dist/rtnl/constants.js'

const [pin, prefix] = process.argv.slice(2)
const prog = objGet(pin)
const client = new RtnlClient({ subscribe: false })
const links = (await client.dumpLinks()).filter((l) => l.name.startsWith(prefix))
const results = await client.setXdp(links.map((l) => ({ ifindex: l.ifindex, req: { fd: prog.raw, flags: XDP_FLAGS_SKB_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST } })))
const errors = results.filter((r) => !r.ok).length
process.stdout.write(`${JSON.stringify({ attached: results.length - errors, errors })}\n`)
client.close()
prog.close()
