/**
 * A second process for the map-sync tests, to be run under strace: `node map-sync.ts <pin> <spec.json> <declared.json>`
 * opens the pinned map, syncs it to the declared contents ({hex key: hex value}) and prints syncMap's answer as JSON.
 * Its only bpf() commands are BPF_OBJ_GET and the sync's own.
 */
import { readFileSync } from 'node:fs'
import { objGet } from '../../src/ffi/bpf-fd.js'
import { syncMap, type SyncSpec } from '../../src/maps/sync.js'

const [pin, specFile, declaredFile] = process.argv.slice(2)
if (!pin || !specFile || !declaredFile) {
  process.stderr.write('usage: map-sync.ts <pin> <spec.json> <declared.json>\n')
  process.exit(2)
}
const spec = JSON.parse(readFileSync(specFile, 'utf8')) as SyncSpec
const declared = new Map(
  Object.entries(JSON.parse(readFileSync(declaredFile, 'utf8')) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'hex')]),
)
const fd = objGet(pin)
const r = syncMap(fd, spec, declared)
fd.close()
process.stdout.write(JSON.stringify(r))
