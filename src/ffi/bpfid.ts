/**
 * Descriptors for programs we know only by id: the one attached to a link that we did not load in this process
 * (ours from an earlier run, or a foreign one with `replace-foreign`), needed for IFLA_XDP_EXPECTED_FD.
 * BPF_PROG_GET_FD_BY_ID needs CAP_SYS_ADMIN (kernel/bpf/syscall.c bpf_prog_get_fd_by_id).
 */
import koffi from 'koffi'
import { SyscallError } from './errno.js'
import { Fd } from './fd.js'

const lib = koffi.load('libbpf.so.1')
const getFdById = lib.func('int bpf_prog_get_fd_by_id(uint32_t id)')

/** Opens program `id`; null when no such program exists (ENOENT). */
export function progFdById(id: number): Fd | null {
  const rc = getFdById(id) as number
  if (rc >= 0) return new Fd(rc, `bpf prog ${id}`)
  if (-rc === 2) return null
  throw new SyscallError('bpf_prog_get_fd_by_id', -rc, `program id ${id}`)
}
