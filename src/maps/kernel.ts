/**
 * The kernel's MapBackend (contents.ts): a pinned map opened with BPF_OBJ_GET, described with its BTF as the kernel
 * holds it (ffi/btf.ts mapSpecOfFd), written by sync.ts; list files read under the path rules (listfile.ts).
 */
import { objGet } from '../ffi/bpf-fd.js'
import { mapSpecOfFd } from '../ffi/btf.js'
import type { MapBackend, MapHandle } from './contents.js'
import { readListFile } from './listfile.js'
import { syncMap } from './sync.js'

export const kernelMapBackend: MapBackend = {
  open(pinPath: string): MapHandle {
    const fd = objGet(pinPath)
    try {
      const spec = mapSpecOfFd(fd)
      return {
        spec,
        sync(declared) {
          const r = syncMap(fd, spec, declared)
          if (!r.ok) throw new Error(r.error.message)
          return r.value
        },
        close: () => fd.close(),
      }
    } catch (e) {
      fd.close()
      throw e
    }
  },
  readList: readListFile,
}
