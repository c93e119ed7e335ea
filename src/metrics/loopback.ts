/** Whether the metrics endpoint can be reached from the network. Pure. */
import { BlockList, isIPv4, isIPv6 } from 'node:net'

/** 127.0.0.0/8 and ::1; node's BlockList matches IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) against the first. */
const LOOPBACK = new BlockList()
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4')
LOOPBACK.addAddress('::1', 'ipv6')

/**
 * Whether `host` (as `metrics:` gives it: an address without brackets, or a host name) is loopback, reachable only
 * from this host (or this network namespace): `localhost`, 127.0.0.0/8, ::1 in any spelling. Any other name may
 * resolve to anything, so it counts as reachable.
 */
export function isLoopback(host: string): boolean {
  if (/^localhost\.?$/i.test(host)) return true
  if (isIPv4(host)) return LOOPBACK.check(host, 'ipv4')
  return isIPv6(host) && LOOPBACK.check(host, 'ipv6')
}
