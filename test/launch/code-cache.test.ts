import t from 'tap'
import { CODE_CACHE_HEADER_BYTES, CODE_CACHE_MAGIC, decodeCodeCache, encodeCodeCache } from '../../src/launch/code-cache.js'

const bundle = Buffer.from('module.exports.main = async () => {}\n')
const v8 = Buffer.from([1, 2, 3, 4, 5])
const file = encodeCodeCache(bundle, v8)

t.test('a cache file names the bundle it was made from', async (t) => {
  t.equal(file.length, CODE_CACHE_HEADER_BYTES + v8.length)
  t.same(file.subarray(0, CODE_CACHE_MAGIC.length), CODE_CACHE_MAGIC)
  const r = decodeCodeCache(file, bundle)
  t.ok(r.ok)
  if (r.ok) t.same(r.value, v8, "V8's bytes come back as they were")
})

t.test('a cache file is used only with the very bundle it was made from', async (t) => {
  const sameLength = Buffer.from(bundle)
  sameLength[sameLength.length - 3] = 0x20 // one byte changed: V8 alone would not notice (it checks the length)
  const cases: [string, Buffer, Buffer, string][] = [
    ['another bundle of the same length', file, sameLength, 'made from another bundle'],
    ['another bundle', file, Buffer.from('x'), 'made from another bundle'],
    ['an empty file', Buffer.alloc(0), bundle, 'not a code cache of xdplinkd'],
    ['the header alone, no V8 bytes', file.subarray(0, CODE_CACHE_HEADER_BYTES), bundle, 'not a code cache of xdplinkd'],
    ['a file cut inside the header', file.subarray(0, 20), bundle, 'not a code cache of xdplinkd'],
    ['V8 bytes without a header (a cache of another tool)', Buffer.concat([v8, Buffer.alloc(64)]), bundle, 'not a code cache of xdplinkd'],
    ['another format version', Buffer.concat([Buffer.from('XDPLCC\x00\x02', 'latin1'), file.subarray(8)]), bundle, 'not a code cache of xdplinkd'],
  ]
  for (const [what, f, b, why] of cases) t.same(decodeCodeCache(f, b), { ok: false, error: why }, what)
})
