import { err, ok, type Result } from '../result.js'
import { MAX_DURATION_MS } from './schema.js'

const UNIT_MS = { ms: 1, s: 1000, m: 60_000 } as const
const DURATION = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m)$/

/**
 * `"50ms"`, `"1.5s"`, `"2m"` or a whole number of milliseconds -> milliseconds. Rejects negatives, NaN, infinities,
 * unknown units, fractions of a millisecond (timers cannot honour them) and anything past Node's timer limit.
 * The error is the "expected ..." text for a ConfigError.
 */
export function parseDuration(value: unknown): Result<number, string> {
  const expected = 'a duration such as "50ms", "1.5s" or "2m", or a whole number of milliseconds'
  let ms: number
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) return err(`expected ${expected}, got ${value}`)
    ms = value
  } else if (typeof value === 'string') {
    const m = DURATION.exec(value)
    if (m === null) return err(`expected ${expected}, got ${JSON.stringify(value)}`)
    ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]
    // 0.1s is 100.00000000000001 in binary floating point; anything that close is the whole number meant.
    const rounded = Math.round(ms)
    if (Math.abs(ms - rounded) > 1e-6) return err(`expected a whole number of milliseconds, got ${JSON.stringify(value)} (${ms}ms)`)
    ms = rounded
  } else {
    return err(`expected ${expected}`)
  }
  if (ms > MAX_DURATION_MS) return err(`expected at most ${MAX_DURATION_MS}ms (about 24.8 days, Node's timer limit), got ${typeof value === 'string' ? JSON.stringify(value) : value}`)
  return ok(ms)
}

/** 1500 -> "1.5s", 50 -> "50ms": for messages. */
export function formatDuration(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`
  if (ms >= 1000) return `${ms / 1000}s`
  return `${ms}ms`
}
