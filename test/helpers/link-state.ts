import { EventEmitter } from 'node:events'
import type { LinkSource, RtnlClientEvents, LinkNotification } from '../../src/rtnl/client.js'
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

/** A kernel stand-in: holds links, answers dumps, and can run code "while the dump is in flight". */
export class FakeSource extends EventEmitter<RtnlClientEvents> implements LinkSource {
  kernel = new Map<number, LinkState>()
  duringDump: (() => void)[] = []
  dumps = 0
  async dumpLinks(): Promise<LinkState[]> {
    this.dumps++
    const snapshot = [...this.kernel.values()]
    await new Promise((r) => setImmediate(r))
    const hook = this.duringDump.shift()
    hook?.()
    return snapshot
  }
  /** A change in the kernel, with its notification. */
  set(l: LinkState, notify = true): void {
    this.kernel.set(l.ifindex, l)
    if (notify) this.emit('link', { type: 'new', link: l } satisfies LinkNotification)
  }
  del(ifindex: number, notify = true): void {
    const l = this.kernel.get(ifindex)!
    this.kernel.delete(ifindex)
    if (notify) this.emit('link', { type: 'del', link: l })
  }
}

