/**
 * Errors of the link layer that the link table (src/links/) acts on. Kept apart from client.ts so that the table,
 * pure code, does not load the FFI to recognise them.
 */
import type { LinkState } from './link.js'

/**
 * dumpLinks() got no consistent dump (a link storm kept interrupting it: NLM_F_DUMP_INTR on every attempt, see
 * net/netlink/af_netlink.c nl_dump_check_consistent). `links` is what its last attempt saw: real links, each as it
 * was, but perhaps not all of them, so a link's absence from it proves nothing.
 */
export class PartialDumpError extends Error {
  constructor(
    readonly links: LinkState[],
    cause: Error,
  ) {
    super(cause.message, { cause })
    this.name = 'PartialDumpError'
  }
}
