/**
 * Which program of an object to load. Pure: works on the program list libbpf read from the ELF file.
 *
 * Only programs an interface can run count as XDP here: type BPF_PROG_TYPE_XDP with an attach type other than
 * BPF_XDP_DEVMAP / BPF_XDP_CPUMAP (SEC("xdp/devmap"), SEC("xdp/cpumap"): run by a map entry after a redirect,
 * rejected by dev_xdp_attach with EINVAL: net/core/dev.c).
 */
import { BPF_PROG_TYPE_XDP, BPF_XDP_CPUMAP, BPF_XDP_DEVMAP, type ProgramSpec } from '../ffi/bpf-object.js'
import { err, ok, type Result } from '../result.js'

export type SelectError =
  /** `wanted` is not in the object; `available` lists every program there with its type. */
  | { kind: 'not-found'; wanted: string; available: ProgramSpec[] }
  /** `wanted` exists but an interface cannot run it. */
  | { kind: 'not-xdp'; wanted: string; program: ProgramSpec }
  /** No name given and no XDP program in the object. */
  | { kind: 'none'; available: ProgramSpec[] }
  /** No name given and several XDP programs: the operator must name one. */
  | { kind: 'ambiguous'; candidates: string[] }

export function isInterfaceXdp(p: ProgramSpec): boolean {
  return p.type === BPF_PROG_TYPE_XDP && p.expectedAttachType !== BPF_XDP_DEVMAP && p.expectedAttachType !== BPF_XDP_CPUMAP
}

/** By name when one is given; otherwise the object's only XDP program. */
export function selectProgram(programs: readonly ProgramSpec[], wanted?: string): Result<ProgramSpec, SelectError> {
  if (wanted !== undefined) {
    const p = programs.find((q) => q.name === wanted)
    if (!p) return err({ kind: 'not-found', wanted, available: [...programs] })
    return isInterfaceXdp(p) ? ok(p) : err({ kind: 'not-xdp', wanted, program: p })
  }
  const xdp = programs.filter(isInterfaceXdp)
  if (xdp.length === 1) return ok(xdp[0]!)
  if (xdp.length === 0) return err({ kind: 'none', available: [...programs] })
  return err({ kind: 'ambiguous', candidates: xdp.map((p) => p.name) })
}

const describe = (p: ProgramSpec): string => `${p.name} (${p.typeName}, SEC("${p.sectionName}"))`

/** A sentence for an operator, e.g. `holds 2 XDP programs (xdp_first, xdp_second); name one`. */
export function describeSelectError(e: SelectError): string {
  switch (e.kind) {
    case 'not-found':
      return `no such program in the object; it holds: ${e.available.map(describe).join(', ') || 'no programs'}`
    case 'not-xdp':
      return `is a ${e.program.typeName} program (SEC("${e.program.sectionName}")), not one an interface can run as XDP`
    case 'none':
      return `holds no XDP program; it holds: ${e.available.map(describe).join(', ') || 'no programs'}`
    case 'ambiguous':
      return `holds ${e.candidates.length} XDP programs (${e.candidates.join(', ')}); name the one to load`
  }
}
