import t from 'tap'
import { NetlinkError } from '../../src/netlink/errors.js'
import { SyscallError } from '../../src/ffi/errno.js'
import { failureCode, failureReason, libbpfFailure, netlinkFailure, type LinkFailure } from '../../src/reconcile/failure.js'

t.test('where a failure came from decides how it reads: only the kernel\'s text is written as the kernel\'s', async (t) => {
  const cases: [string, LinkFailure, string, string][] = [
    ['kernel, with ext-ack', netlinkFailure(new NetlinkError(-16, 3, 'XDP program already attached')), 'EBUSY', 'EBUSY: XDP program already attached'],
    ['kernel, without', netlinkFailure(new NetlinkError(-95, 3)), 'EOPNOTSUPP', 'EOPNOTSUPP'],
    ['local: socket closed', netlinkFailure(NetlinkError.fromErrno(125, 0, 'netlink socket closed')), 'ECANCELED', 'ECANCELED (netlink socket closed)'],
    ['local: a request we would not send', netlinkFailure(NetlinkError.fromErrno(22, 0, 'RTM_SETLINK IFLA_XDP: invalid ifindex 0')), 'EINVAL', 'EINVAL (RTM_SETLINK IFLA_XDP: invalid ifindex 0)'],
    ['libbpf', libbpfFailure(new SyscallError('bpf_prog_get_fd_by_id', 1, 'program id 99')), 'EPERM', 'EPERM (libbpf: bpf_prog_get_fd_by_id: EPERM (program id 99))'],
  ]
  for (const [name, f, code, reason] of cases) {
    t.equal(failureCode(f), code, `${name}: code`)
    t.equal(failureReason(f), reason, `${name}: reason`)
  }
  t.match(netlinkFailure(NetlinkError.fromErrno(125, 0, 'netlink socket closed')), { source: 'local' })
  t.match(netlinkFailure(new NetlinkError(-16, 3, 'x')), { source: 'kernel', extAck: 'x' })
  t.match(libbpfFailure(new Error('no errno')), { source: 'libbpf', errno: 1 }, 'an error without errno counts as EPERM')
})
