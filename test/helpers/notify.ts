import type { Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { watchReadable } from '../../src/ffi/libc.js'
import { bindUnix, receiveDatagram, unixDatagramSocket } from '../../src/ffi/unix.js'

/** A stand-in for PID 1's notify socket: collects every datagram as it arrives, on the event loop. */
export function listen(t: Test, address?: string): { address: string; messages: string[] } {
  let addr = address
  if (!addr) {
    const dir = mkdtempSync(join(tmpdir(), 'xdplinkd-notify-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    addr = join(dir, 'notify')
  }
  const fd = unixDatagramSocket({ nonblocking: true, label: 'test-notify' })
  bindUnix(fd, addr)
  const messages: string[] = []
  const drain = (): void => {
    for (let d = receiveDatagram(fd); d; d = receiveDatagram(fd)) messages.push(d.data.toString('utf8'))
  }
  // Draining on the loop matters: the sender blocks once net.unix.max_dgram_qlen datagrams (often 10) are queued.
  const watch = watchReadable(fd.raw, drain)
  t.teardown(() => {
    watch.close()
    fd.close()
  })
  return { address: addr, messages }
}

