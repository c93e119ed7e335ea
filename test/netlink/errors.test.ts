import t from 'tap'
import { NetlinkError } from '../../src/netlink/errors.js'

t.test('NetlinkError: errno, code and message', async (t) => {
  const cases: [string, NetlinkError, { errno: number; code: string; seq: number; message: string }][] = [
    [
      'negative errno from the wire, with ext-ack text',
      new NetlinkError(-22, 7, "Native and generic XDP can't be active at the same time."),
      {
        errno: 22,
        code: 'EINVAL',
        seq: 7,
        message: "netlink: EINVAL (seq 7): Native and generic XDP can't be active at the same time.",
      },
    ],
    ['positive errno, no text', new NetlinkError(105, 3), { errno: 105, code: 'ENOBUFS', seq: 3, message: 'netlink: ENOBUFS (seq 3)' }],
    ['unknown errno', new NetlinkError(-4000, 1), { errno: 4000, code: 'E4000', seq: 1, message: 'netlink: E4000 (seq 1)' }],
    [
      'fromErrno, for errors made locally',
      NetlinkError.fromErrno(125, 0, 'netlink socket closed'),
      { errno: 125, code: 'ECANCELED', seq: 0, message: 'netlink: ECANCELED (seq 0): netlink socket closed' },
    ],
  ]
  for (const [name, e, want] of cases) {
    t.type(e, Error, name)
    t.equal(e.name, 'NetlinkError', name)
    t.match({ errno: e.errno, code: e.code, seq: e.seq, message: e.message }, want, name)
  }
  const withOffset = new NetlinkError(-34, 8, 'Attribute failed policy validation', 32)
  t.equal(withOffset.extAckOffset, 32)
  t.equal(withOffset.extAck, 'Attribute failed policy validation')
  t.equal(new NetlinkError(-1, 0).extAck, undefined)
  t.equal(new NetlinkError(-1, 0).extAckOffset, undefined)
})

t.test('an error made locally never carries its text as the kernel\'s', async (t) => {
  const local = NetlinkError.fromErrno(125, 0, 'netlink socket closed')
  t.match(local, { origin: 'local', extAck: undefined, extAckOffset: undefined, detail: 'netlink socket closed' })
  t.match(new NetlinkError(-16, 4, 'XDP program already attached'), { origin: 'kernel', extAck: 'XDP program already attached', detail: undefined })
})
