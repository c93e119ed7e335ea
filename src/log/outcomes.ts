/**
 * The reconciler's outcomes as log lines: the one place that words them. Each line carries the link's context
 * (`ifindex`, `ifname`, `entry`) and an `action` field, which journald gets as IFINDEX, IFNAME, ENTRY and ACTION
 * (journal.ts KNOWN_FIELDS), so `journalctl ACTION=conflict` lists every conflict. Pure apart from the logger call:
 * `outcomeLine` is the table, `logOutcome` writes it.
 */
import type { Logger } from 'pino'
import { failureCode, failureReason } from '../reconcile/failure.js'
import type { ReconcilerEvent } from '../reconcile/reconciler.js'

export type LineLevel = 'debug' | 'info' | 'warn'

export interface Line {
  level: LineLevel
  fields: Record<string, unknown>
  msg: string
}

/** The log line for an outcome or reconciler event. */
export function outcomeLine(e: ReconcilerEvent): Line {
  switch (e.kind) {
    case 'cut-off':
      return { level: 'debug', fields: { links: e.links }, msg: `stopping: the requests for ${e.links} links were cut off` }
    case 'reread-failed':
      return { level: 'warn', fields: { links: e.links }, msg: `reading links again failed: ${e.message}; they are retried with backoff` }
    case 'not-atomic':
      return {
        level: 'warn',
        fields: { ifindex: e.link.ifindex, ifname: e.link.name },
        msg: 'replacing without XDP_FLAGS_REPLACE (kernel < 5.7): the swap is not atomic',
      }
  }
  // Every line's fields written out in full, the link's three first: an object literal costs about a third of
  // `{ ...ctx, action }` while V8 still runs this in its interpreter, as it does through a start-up's 1,000 lines,
  // and a start-up over 10,000 links ended 10 MB smaller (bench part d, 98.3 -> 86.5 MB resident).
  const { link } = e
  const { ifindex, entry } = link
  const name = link.name
  switch (e.kind) {
    case 'attached':
      return { level: 'info', fields: { ifindex, ifname: name, entry, action: 'attach', progId: e.progId, mode: e.mode }, msg: `${name}: attached program ${e.progId} (${e.mode})` }
    case 'replaced':
      return {
        level: 'info',
        fields: { ifindex, ifname: name, entry, action: 'replace', progId: e.progId, mode: e.mode, oldProgId: e.oldProgId },
        msg: `${name}: replaced program ${e.oldProgId} with ${e.progId} (${e.mode}${e.foreign ? ', foreign' : ''})`,
      }
    case 'remoded':
      return {
        level: 'info',
        fields: { ifindex, ifname: name, entry, action: 'attach', progId: e.progId, mode: e.mode, oldProgId: e.oldProgId },
        msg: `${name}: moved program from ${e.from} to ${e.mode} mode (detach, then attach: not atomic)`,
      }
    case 'detached':
      return { level: 'info', fields: { ifindex, ifname: name, entry, action: 'detach', progId: e.progId, mode: e.mode }, msg: `${name}: detached program ${e.progId}` }
    case 'recovered':
      return { level: 'info', fields: { ifindex, ifname: name, entry, action: 'recovered' }, msg: `${name}: recovered after ${e.failures} failed attempts` }
    case 'conflict':
      return {
        level: 'warn',
        fields: { ifindex, ifname: name, entry, action: 'conflict', progId: e.foreignProgId, mode: e.mode },
        msg: `${name}: a program xdplinkd does not own (id ${e.foreignProgId}) is attached; leaving it (set replace-foreign to take over)`,
      }
    case 'fallback': {
      if (e.native === 'unsupported') {
        // The kernel's own words say it best ("Underlying driver does not support XDP in native mode").
        const why = e.failure.source === 'kernel' && e.failure.extAck ? e.failure.extAck : failureCode(e.failure)
        return { level: 'info', fields: { ifindex, ifname: name, entry, action: 'fallback', mode: 'generic' }, msg: `${name}: no native XDP here (${why}); using generic mode` }
      }
      return {
        level: 'warn',
        fields: { ifindex, ifname: name, entry, action: 'fallback', mode: 'generic', code: failureCode(e.failure) },
        msg: `${name}: native XDP refused (${failureReason(e.failure)}); using generic mode`,
      }
    }
    case 'failed':
      // The first failure and every change of reason are warnings; the same reason again is debug, so a link that
      // keeps failing does not flood the journal.
      return {
        level: e.repeated ? 'debug' : 'warn',
        fields: { ifindex, ifname: name, entry, action: 'error', errno: e.failure.errno, code: failureCode(e.failure), source: e.failure.source, kind: e.action, retryMs: e.retryInMs },
        msg: `${name}: ${e.action} failed: ${failureReason(e.failure)}; retrying in ${e.retryInMs} ms`,
      }
  }
}

export function logOutcome(log: Logger, e: ReconcilerEvent, netns?: string): void {
  const l = outcomeLine(e)
  // A namespace other than the daemon's own is named in a field (`netns`, journald's NETNS) and in the text, so that
  // two eth0 in two pods read apart in `journalctl` without -o verbose.
  if (netns === undefined) log[l.level](l.fields, l.msg)
  else log[l.level]({ netns, ...l.fields }, `netns ${netns}: ${l.msg}`)
}
