import type { LinkState } from '../../src/rtnl/link.js'

/** A link observation with sensible defaults, for table tests. */
export function link(ifindex: number, name: string, over: Partial<LinkState> = {}): LinkState {
  return {
    ifindex,
    name,
    flags: 0x1003,
    up: true,
    running: false,
    operState: 'down',
    kind: 'veth',
    altNames: [],
    master: null,
    xdp: null,
    mtu: 1500,
    address: '02:00:00:00:00:01',
    ...over,
  } as LinkState
}
