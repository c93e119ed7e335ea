/**
 * libbpf's messages: the print callback libbpf calls (libbpf_set_print), each printf-style message formatted from
 * its va_list with libc's vsnprintf, and handed to the innermost capture or else to the logger.
 */
import koffi, { type LibraryHandle } from 'koffi'
import { libc } from './libc.js'

// <bpf/libbpf.h> enum libbpf_print_level
export const LIBBPF_WARN = 0
export const LIBBPF_INFO = 1
export const LIBBPF_DEBUG = 2

export type LibbpfLevel = 'warn' | 'info' | 'debug'
export interface LibbpfMessage {
  level: LibbpfLevel
  /** One formatted message; may span lines (the verifier log arrives as one message). */
  text: string
}
export type LibbpfSink = (m: LibbpfMessage) => void

const LEVELS: Record<number, LibbpfLevel> = { [LIBBPF_WARN]: 'warn', [LIBBPF_INFO]: 'info', [LIBBPF_DEBUG]: 'debug' }

/**
 * libbpf's default printer (libbpf.c, __base_pr) writes WARN and INFO to stderr and drops DEBUG; keep that until the
 * daemon routes messages to its logger with setLibbpfLogger.
 */
const stderrSink: LibbpfSink = (m) => {
  if (m.level !== 'debug') process.stderr.write(m.text.endsWith('\n') ? m.text : `${m.text}\n`)
}
let defaultSink: LibbpfSink = stderrSink
const captures: LibbpfSink[] = []

/** Where libbpf's messages go outside captureLibbpfLog (null: back to stderr as libbpf would). */
export function setLibbpfLogger(sink: LibbpfSink | null): void {
  defaultSink = sink ?? stderrSink
}

/**
 * Runs `fn` with libbpf's messages sent to `sink` instead of the logger. libbpf prints synchronously from inside the
 * call that fails (bpf_object__open_mem, bpf_object__load), and every call here is synchronous, so the messages a
 * call produces arrive before it returns and belong to it. Nested captures go to the innermost sink. The callback
 * is in place before libbpf's first call (libbpf.ts installs it as it loads the library).
 */
export function captureLibbpfLog<T>(sink: LibbpfSink, fn: () => T): T {
  captures.push(sink)
  try {
    return fn()
  } finally {
    captures.pop()
  }
}

/**
 * Runs an asynchronous libbpf call (BpfObject.loadAsync) with libbpf's printing off. A message printed on koffi's
 * worker thread would stop it until the event loop has run the callback (~65 of them in a load; a main thread busy
 * with a dump made the load 2-3x slower), so the callers load quietly and, if that fails, load again synchronously
 * with the messages captured (programs/kernel.ts). While this runs, another libbpf call prints nothing either (only
 * ffi/btf.ts's, for the `maps` view, could: its warnings are lost); two at once would turn printing back on early:
 * the registry runs one load at a time.
 */
export async function withoutLibbpfLog<T>(fn: () => Promise<T>): Promise<T> {
  setPrint(null)
  try {
    return await fn()
  } finally {
    setPrint(printHandle)
  }
}

/**
 * `int (*libbpf_print_fn_t)(enum libbpf_print_level, const char *, va_list)`. On x86-64 and arm64 a va_list
 * parameter arrives as a pointer (SysV: an array type decays; AAPCS64: a 32-byte struct goes by reference), so it is
 * declared `void *` and handed on to vsnprintf as is.
 */
const PrintFnT = koffi.proto('int xdplinkd_libbpf_print_fn(int level, const char *fmt, void *ap)')

/**
 * The size of a va_list object, for copying one (what va_copy does) before a measuring vsnprintf consumes it:
 * x86-64 SysV `struct __va_list_tag[1]` is 24 bytes, AAPCS64 `struct __va_list` is 32. Elsewhere we do not copy and
 * format once into a fixed buffer.
 */
const VA_LIST_SIZE: number | null = process.arch === 'x64' ? 24 : process.arch === 'arm64' ? 32 : null
/** Most messages fit here; only a long verifier log needs the second, exact-size pass. */
const SCRATCH_SIZE = 64 * 1024
/** The kernel caps a verifier log at 16 MiB before 6.4 and libbpf doubles its buffer up to that; stop beyond it. */
const MAX_MESSAGE = 32 * 1024 * 1024
const scratch = Buffer.alloc(SCRATCH_SIZE)

type Vsnprintf = (buf: Buffer, size: number, fmt: string, ap: unknown) => number

/**
 * Formats one printf-style message from libbpf. vsnprintf consumes the va_list, so the first pass formats a byte
 * copy of it into a scratch buffer; when the message was longer, the second pass formats the original into a
 * buffer of the exact size. Both run while libbpf's frame (which the va_list points into) is still live.
 */
function formatMessage(vsnprintf: Vsnprintf, fmt: string, ap: unknown): string {
  if (VA_LIST_SIZE === null) {
    const n = vsnprintf(scratch, SCRATCH_SIZE, fmt, ap)
    return n < 0 ? fmt : scratch.toString('utf8', 0, Math.min(n, SCRATCH_SIZE - 1))
  }
  const copy = Buffer.from(new Uint8Array(koffi.view(ap, VA_LIST_SIZE)))
  const n = vsnprintf(scratch, SCRATCH_SIZE, fmt, copy)
  if (n < 0) return fmt
  if (n < SCRATCH_SIZE) return scratch.toString('utf8', 0, n)
  const size = Math.min(n + 1, MAX_MESSAGE)
  const big = Buffer.alloc(size)
  vsnprintf(big, size, fmt, ap)
  return big.toString('utf8', 0, size - 1)
}

let printHandle: unknown = null
let setPrint: (fn: unknown) => void = () => {}
/** @internal libbpf.ts calls this once, as it loads libbpf (`lib`). */
export function installLibbpfPrint(lib: LibraryHandle): void {
  const fn = libc.func('int vsnprintf(void *buf, size_t size, const char *fmt, void *ap)')
  const vsnprintf: Vsnprintf = (buf, size, fmt, ap) => fn(buf, size, fmt, ap) as number
  // Registered (not transient): libbpf keeps the pointer in a global and calls it from any later call. One slot for
  // the life of the process; never unregistered.
  printHandle = koffi.register((level: number, fmt: string | null, ap: unknown): number => {
    try {
      const text = fmt === null ? '' : formatMessage(vsnprintf, fmt, ap)
      const m: LibbpfMessage = { level: LEVELS[level] ?? 'debug', text }
      const sink = captures[captures.length - 1] ?? defaultSink
      sink(m)
    } catch {
      // A throw would only make koffi return 0 to libbpf; losing one log line is the lesser harm.
    }
    return 0
  }, koffi.pointer(PrintFnT))
  const set = lib.func('libbpf_set_print', 'void *', [koffi.pointer(PrintFnT)])
  setPrint = (fn) => void set(fn)
  setPrint(printHandle)
}
