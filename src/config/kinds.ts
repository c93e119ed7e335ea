/**
 * "Did you mean" for `kinds:`. A kind is any IFLA_INFO_KIND a driver registers (rtnl_link_register(), the `kind` of
 * its struct rtnl_link_ops), and an out-of-tree module can register one of its own, so an unfamiliar kind is never
 * an error. But a kind a letter away from a well-known one (`vet`, `vlans`) is almost surely a typo, and it would
 * silently match nothing; that is worth a warning from `xdplinkd check` and in the daemon's log. Pure.
 */
import { suggest } from './suggest.js'
import { NO_KIND, entryLabel, type Config } from './types.js'

/**
 * IFLA_INFO_KIND values of in-tree drivers (the `.kind` of their rtnl_link_ops), plus NO_KIND. Not complete, and it
 * does not need to be: it only feeds suggestions.
 */
export const KNOWN_KINDS: readonly string[] = [
  NO_KIND,
  'amt', 'bareudp', 'batadv', 'bond', 'bridge', 'can', 'dsa', 'dummy', 'erspan', 'geneve', 'gre', 'gretap', 'gtp',
  'hsr', 'ifb', 'ip6erspan', 'ip6gre', 'ip6gretap', 'ip6tnl', 'ipip', 'ipoib', 'ipvlan', 'ipvtap', 'lowpan',
  'macsec', 'macvlan', 'macvtap', 'netkit', 'nlmon', 'openvswitch', 'ppp', 'rmnet', 'sit', 'team', 'tun', 'vcan',
  'veth', 'virt_wifi', 'vlan', 'vrf', 'vti', 'vti6', 'vxcan', 'vxlan', 'wireguard', 'wwan', 'xfrm',
]

const KNOWN = new Set(KNOWN_KINDS)

/**
 * Farther than this (edits) from every known kind, an unknown kind is taken as deliberate (a module's own). Short
 * kinds are a couple of edits from many others ('ab' from 'amt'), so they get one edit only.
 */
const maxTypoDistance = (kind: string): number => (kind.length <= 4 ? 1 : 2)

export interface KindHint {
  /** The entry's index in `attach:`. */
  index: number
  kind: string
  suggestion: string
  /** `attach[0] (lab): kinds: "vet" is not a known link kind; did you mean "veth"? ...` */
  message: string
}

/** One hint per (entry, kind) that looks like a typo of a known kind. */
export function kindHints(config: Pick<Config, 'entries'>): KindHint[] {
  const hints: KindHint[] = []
  for (const e of config.entries) {
    for (const kind of e.kinds ?? []) {
      if (KNOWN.has(kind)) continue
      const suggestion = suggest(kind, KNOWN_KINDS, maxTypoDistance(kind))
      if (suggestion === null) continue
      hints.push({
        index: e.index,
        kind,
        suggestion,
        message:
          `${entryLabel(e)}: kinds: "${kind}" is not a known link kind; did you mean "${suggestion}"? ` +
          `As written it matches only links whose IFLA_INFO_KIND is exactly "${kind}"`,
      })
    }
  }
  return hints
}
