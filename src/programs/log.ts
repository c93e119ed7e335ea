/**
 * What to keep of libbpf's messages when a load fails. Pure.
 *
 * libbpf 1.x prints, at WARN level, the verifier's whole log as one message between
 * "-- BEGIN PROG LOAD LOG --" and "-- END PROG LOAD LOG --" (libbpf.c, bpf_object_load_prog), after retrying with a
 * log buffer it doubles until the kernel stops answering ENOSPC: up to 16 MiB for a large program. An error keeps
 * only the last lines (the verifier stops at the first instruction it rejects, so the reason is at the end) and
 * the verifier's reason picked out of the full text.
 */
import type { LibbpfMessage } from '../ffi/libbpf-log.js'

export const DEFAULT_LOG_LINES = 50
/** A line longer than this is cut: register state dumps of wide programs can run to kilobytes. */
export const MAX_LINE = 400

const BEGIN = '-- BEGIN PROG LOAD LOG --'
const END = '-- END PROG LOAD LOG --'

/** Keeps the last `max` non-empty WARN/INFO lines (DEBUG is libbpf narrating its work, not why it failed). */
export class LogTail {
  readonly #max: number
  #lines: string[] = []
  #reason: string | undefined
  #firstWarning: string | undefined

  constructor(max = DEFAULT_LOG_LINES) {
    this.#max = max
  }

  add(m: LibbpfMessage): void {
    if (m.level === 'debug') return
    const reason = verifierReason(m.text)
    if (reason !== undefined) this.#reason = reason
    for (const raw of m.text.split('\n')) {
      const line = raw.trimEnd()
      if (line === '') continue
      this.#lines.push(line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line)
      if (m.level === 'warn' && this.#firstWarning === undefined && line.startsWith('libbpf:')) this.#firstWarning = line
    }
    // Trim in batches so a 16 MiB log costs one pass, not one splice a line.
    if (this.#lines.length > 2 * this.#max) this.#lines = this.#lines.slice(-this.#max)
  }

  /** The kept lines, oldest first. */
  lines(): string[] {
    return this.#lines.slice(-this.#max)
  }

  /** The verifier's reason for the last rejected program, if libbpf printed a verifier log. */
  get verifierReason(): string | undefined {
    return this.#reason
  }

  /**
   * libbpf's first own warning, without the prefix: libbpf reports the cause first and then each caller on the way
   * out (`couldn't reuse pinned map ...: parameter mismatch`, then `map 'x': failed to create`, then `failed to
   * load object`), so the first one is the most specific.
   */
  get firstWarning(): string | undefined {
    return this.#firstWarning?.replace(/^libbpf:\s*/, '')
  }
}

/**
 * Lines of a verifier log that narrate rather than judge: instructions and register state (`12: (69) r1 = ...`,
 * `0: R1=ctx() R10=fp0`), source (`; if (...)`), branch and precision tracking, and the closing statistics
 * (kernel/bpf/verifier.c, print_verification_stats).
 */
const NARRATION = [
  /^\d+: /,
  /^; /,
  /^;$/,
  /^from \d+ to \d+:/,
  /^R\d+(_\w+)?=/,
  /^(last_idx|regs=|parent didn't|mark_precise|frame\d|Live regs|Func#|Validating|propagating) ?/,
  /^processed \d+ insns/,
  /^verification time /,
  /^stack depth /,
  /^\.\.\./,
]

/**
 * The verifier's reason in one line, from a libbpf message holding a verifier log: the last two lines that are not
 * narration, e.g. "invalid access to packet, off=12 size=2, R1(id=0,off=12,r=0); R1 offset is outside of the
 * packet". Undefined when the message holds no verifier log or the log gives no reason.
 */
export function verifierReason(text: string): string | undefined {
  const b = text.indexOf(BEGIN)
  if (b < 0) return undefined
  const e = text.indexOf(END, b)
  // The reason is near the end; 64 KiB of tail is plenty and keeps a 16 MiB log from being split whole.
  const body = text.slice(b + BEGIN.length, e < 0 ? undefined : e).slice(-64 * 1024)
  const judged = body
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !NARRATION.some((re) => re.test(l)))
  if (judged.length === 0) return undefined
  return judged
    .slice(-2)
    .map((l) => (l.length > MAX_LINE ? `${l.slice(0, MAX_LINE)}…` : l))
    .join('; ')
}
