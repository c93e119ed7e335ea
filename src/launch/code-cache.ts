/**
 * The file that holds V8's code cache for the bundle (dist/bundle/xdplinkd.cjs.cache): a header that names the
 * bundle it was made from, then the bytes of v8.Script#createCachedData().
 *
 * V8 checks its own part against its version, its flags and the length of the source (code-serializer.cc,
 * SerializedCodeData::SanityCheck), never against the source's content. Code cached for another bundle of the same
 * length would run the old bytecode, and lazily compiled functions would be cut from the new text at the old
 * offsets. So the header carries the SHA-256 of the bundle's bytes, and a cache made from any other bundle is left
 * unused. Pure: no I/O, never throws.
 */
import { createHash } from 'node:crypto'
import { err, ok, type Result } from '../result.js'

/** 8 bytes: a name and a format version. */
export const CODE_CACHE_MAGIC = Buffer.from('XDPLCC\x00\x01', 'latin1')
const SHA256_BYTES = 32
export const CODE_CACHE_HEADER_BYTES = CODE_CACHE_MAGIC.length + SHA256_BYTES

/** Why a cache file was left unused, in the words of the log line (launch/bundle.ts). */
export type CodeCacheUnusable = 'not a code cache of xdplinkd' | 'made from another bundle'

const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest()

/** The cache file for V8's `v8Data`, made from the bundle whose bytes are `bundle`. */
export function encodeCodeCache(bundle: Buffer, v8Data: Buffer): Buffer {
  return Buffer.concat([CODE_CACHE_MAGIC, sha256(bundle), v8Data])
}

/**
 * V8's bytes out of a cache file, when it is one and was made from exactly `bundle` (hashed only once the header
 * looks right: ~1.5 ms for the 1.4 MB bundle).
 */
export function decodeCodeCache(file: Buffer, bundle: Buffer): Result<Buffer, CodeCacheUnusable> {
  if (file.length <= CODE_CACHE_HEADER_BYTES || !file.subarray(0, CODE_CACHE_MAGIC.length).equals(CODE_CACHE_MAGIC)) {
    return err('not a code cache of xdplinkd')
  }
  if (!file.subarray(CODE_CACHE_MAGIC.length, CODE_CACHE_HEADER_BYTES).equals(sha256(bundle))) return err('made from another bundle')
  return ok(file.subarray(CODE_CACHE_HEADER_BYTES))
}
