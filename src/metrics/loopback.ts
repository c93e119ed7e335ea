/** Whether the metrics endpoint can be reached from the network. Pure. */
import { BlockList, isIPv4, isIPv6 } from 'node:net'

/**
 * 127.0.0.0/8 and ::1; node's BlockList matches IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) against the first.
 * Made on first use: a BlockList loads two more of node's modules, ~1 ms of every start-up, and only a config with
 * `metrics:` asks.
 */
let loopback: BlockList | null = null
function loopbackList(): BlockList {
  if (!loopback) {
    loopback = new BlockList()
    loopback.addSubnet('127.0.0.0', 8, 'ipv4')
    loopback.addAddress('::1', 'ipv6')
  }
  return loopback
}

/**
 * Whether `host` (as `metrics:` gives it: an address without brackets, or a host name) is loopback, reachable only
 * from this host (or this network namespace): `localhost`, 127.0.0.0/8, ::1 in any spelling. Any other name may
 * resolve to anything, so it counts as reachable.
 */
export function isLoopback(host: string): boolean {
  if (/^localhost\.?$/i.test(host)) return true
  if (isIPv4(host)) return loopbackList().check(host, 'ipv4')
  return isIPv6(host) && loopbackList().check(host, 'ipv6')
}
