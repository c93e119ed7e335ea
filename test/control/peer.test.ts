import t from 'tap'
import { allowedText, groupText, mayAsk, type AccessPolicy, type PeerCredentials } from '../../src/control/peer.js'

const peer = (uid: number, gid: number, groups: number[] | null = []): PeerCredentials => ({ pid: 100, uid, gid, groups })
const ROOT_ONLY: AccessPolicy = { uids: [0], group: null }
const OPS: AccessPolicy = { uids: [0], group: { name: 'xdpops', gid: 4242 } }
const OPS_BY_NUMBER: AccessPolicy = { uids: [0], group: { name: null, gid: 4242 } }
const AS_USER: AccessPolicy = { uids: [0, 1000], group: null }

t.test('who may ask', async (t) => {
  const table: [why: string, peer: PeerCredentials, policy: AccessPolicy, may: boolean][] = [
    ['root', peer(0, 0), ROOT_ONLY, true],
    ['root, whatever its groups', peer(0, 5, null), OPS, true],
    ['a user, no group configured', peer(1000, 1000), ROOT_ONLY, false],
    ['a user whose primary (effective) gid is the group', peer(1000, 4242), OPS, true],
    ['a user with the group as a supplementary group', peer(1000, 1000, [27, 4242]), OPS, true],
    ['a user in other groups only', peer(1000, 1000, [27, 100]), OPS, false],
    ['a group given by number works the same', peer(1000, 1000, [4242]), OPS_BY_NUMBER, true],
    ['no SO_PEERGROUPS (Linux < 4.13): the primary gid still counts', peer(1000, 4242, null), OPS, true],
    ['no SO_PEERGROUPS: nothing else does', peer(1000, 1000, null), OPS, false],
    ['gid 0 without uid 0 is not root', peer(1000, 0, [0]), ROOT_ONLY, false],
    ['a daemon running as a user answers that user', peer(1000, 1000), AS_USER, true],
    ['and root', peer(0, 0), AS_USER, true],
    ['and nobody else', peer(1001, 1000), AS_USER, false],
  ]
  for (const [why, p, policy, may] of table) t.equal(mayAsk(p, policy), may, why)
})

t.test('how the policy is named in answers and warnings', async (t) => {
  t.equal(groupText({ name: 'xdpops', gid: 4242 }), 'group xdpops (gid 4242)')
  t.equal(groupText({ name: null, gid: 4242 }), 'gid 4242')
  t.equal(allowedText(ROOT_ONLY), 'root')
  t.equal(allowedText(AS_USER), 'root or uid 1000')
  t.equal(allowedText(OPS), 'root or members of group xdpops (gid 4242)')
  t.equal(allowedText(OPS_BY_NUMBER), 'root or members of gid 4242')
})
