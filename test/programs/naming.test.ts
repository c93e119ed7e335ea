import t from 'tap'
import {
  DEFAULT_BPFFS_DIR,
  PIN_DIR_RE,
  isPinnableMapName,
  isValidProgramName,
  parsePinDirName,
  pinDirName,
  pinLayout,
} from '../../src/programs/naming.js'

const HASH = 'c5be5e43e92881da'.padEnd(64, '0')

t.test('pin directory names: 16 hex digits of the hash, a dash, the program', async (t) => {
  t.equal(pinDirName(HASH, 'xdp_pass'), 'c5be5e43e92881da-xdp_pass')
  t.same(parsePinDirName('c5be5e43e92881da-xdp_pass'), { hashPrefix: 'c5be5e43e92881da', program: 'xdp_pass' })
  t.ok(PIN_DIR_RE.test(pinDirName(HASH, 'a_very_long_program_name_beyond_fifteen')))
})

t.test('anything else is not ours', async (t) => {
  for (const n of ['maps.debug', 'progs.debug', 'xdplinkd', 'C5BE5E43E92881DA-xdp', 'c5be5e43e92881d-xdp', 'c5be5e43e92881da-', 'c5be5e43e92881da-../x', 'c5be5e43e92881da-a.b']) {
    t.equal(parsePinDirName(n), null, n)
  }
})

t.test('names that would escape the directory are refused', async (t) => {
  t.throws(() => pinDirName(HASH, '../etc'), RangeError)
  t.throws(() => pinDirName(HASH, 'a/b'), RangeError)
  t.throws(() => pinDirName(HASH, ''), RangeError)
  t.throws(() => pinDirName('abc', 'xdp'), RangeError)
  t.notOk(isValidProgramName('1abc'))
  t.ok(isValidProgramName('_x1'))
  t.ok(isPinnableMapName('blocklist_v4'))
  t.notOk(isPinnableMapName('xdp_pass.rodata'), 'internal maps are not pinned')
})

t.test('layout', async (t) => {
  const l = pinLayout('/sys/fs/bpf/xdplinkd', 'c5be5e43e92881da-xdp_pass')
  t.equal(l.dir, '/sys/fs/bpf/xdplinkd/c5be5e43e92881da-xdp_pass')
  t.equal(l.prog, '/sys/fs/bpf/xdplinkd/c5be5e43e92881da-xdp_pass/prog')
  t.equal(l.map('xdp_stats'), '/sys/fs/bpf/xdplinkd/c5be5e43e92881da-xdp_pass/maps/xdp_stats')
  t.equal(DEFAULT_BPFFS_DIR, '/sys/fs/bpf/xdplinkd')
})
