import t from 'tap'
import { defaultTrustedUids, octal, statProblems, type StatLike } from '../../src/config/permissions.js'

const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000
const dir = (uid: number, perm: number): StatLike => ({ uid, mode: S_IFDIR | perm, isDir: true })
const file = (uid: number, perm: number): StatLike => ({ uid, mode: S_IFREG | perm, isDir: false })
const link = (uid: number): StatLike => ({ uid, mode: S_IFLNK | 0o777, isDir: false, isSymlink: true })

t.test('statProblems over stat tuples', async (t) => {
  const table: [why: string, st: StatLike, problems: string[]][] = [
    ['root file 0644', file(0, 0o644), []],
    ['root file 0600', file(0, 0o600), []],
    ['root file 0444', file(0, 0o444), []],
    ['root file 0755 (executable does not matter)', file(0, 0o755), []],
    ['root file setuid 04755', file(0, 0o4755), []],
    ['non-root owner', file(1000, 0o644), ['owned by uid 1000, not root']],
    ['nobody', file(65534, 0o600), ['owned by uid 65534, not root']],
    ['g+w', file(0, 0o664), ['writable by group (mode 0664)']],
    ['o+w', file(0, 0o646), ['writable by others (mode 0646)']],
    ['g+w and o+w', file(0, 0o666), ['writable by group and others (mode 0666)']],
    ['non-root and o+w', file(1000, 0o602), ['owned by uid 1000, not root', 'writable by others (mode 0602)']],
    ['sticky bit on a file means nothing', file(0, 0o1666), ['writable by group and others (mode 1666)']],
    ['root dir 0755', dir(0, 0o755), []],
    ['root dir 0700', dir(0, 0o700), []],
    ['root dir 0775', dir(0, 0o775), ['writable by group without the sticky bit (mode 0775)']],
    ['root dir 0777', dir(0, 0o777), ['writable by group and others without the sticky bit (mode 0777)']],
    ['root dir 1777 (/tmp)', dir(0, 0o1777), []],
    ['root dir 1775', dir(0, 0o1775), []],
    ['root dir 1755', dir(0, 0o1755), []],
    ['non-root dir 0755', dir(1000, 0o755), ['owned by uid 1000, not root']],
    ['non-root dir 1777: its owner may delete anything in it', dir(1000, 0o1777), ['owned by uid 1000, not root', 'writable by group and others (mode 1777)']],
    ['root symlink', link(0), []],
    ['non-root symlink (its mode is meaningless)', link(65534), ['owned by uid 65534, not root']],
  ]
  for (const [why, st, problems] of table) t.same(statProblems(st), problems, why)
})

t.test('exclusive: a directory whose entries are trusted by name is writable by its owner only, sticky or not', async (t) => {
  const table: [why: string, st: StatLike, problems: string[]][] = [
    ['root dir 0700', dir(0, 0o700), []],
    ['root dir 0755', dir(0, 0o755), []],
    ['root dir 1777 (a plain `mount -t bpf` root)', dir(0, 0o1777), ['writable by group and others (mode 1777)']],
    ['root dir 1770', dir(0, 0o1770), ['writable by group (mode 1770)']],
    ['root dir 0777', dir(0, 0o777), ['writable by group and others (mode 0777)']],
    ['nobody dir 0700', dir(65534, 0o700), ['owned by uid 65534, not root']],
    ['a file is judged as ever', file(0, 0o600), []],
  ]
  for (const [why, st, problems] of table) t.same(statProblems(st, [0], { exclusive: true }), problems, why)
})

t.test('an unprivileged daemon also trusts its own uid', async (t) => {
  t.same(defaultTrustedUids(0), [0])
  t.same(defaultTrustedUids(998), [0, 998])
  t.same(statProblems(file(998, 0o644), [0, 998]), [])
  t.same(statProblems(dir(998, 0o1777), [0, 998]), [])
  t.same(statProblems(file(1000, 0o644), [0, 998]), ['owned by uid 1000, not root or uid 998'])
})

t.test('octal', async (t) => {
  t.equal(octal(0o644), '0644')
  t.equal(octal(0o1777), '1777')
  t.equal(octal(0o7), '0007')
  t.equal(octal(S_IFDIR | 0o755), '0755')
})

t.test('a read-only mount: nobody can write there, so modes that let others write are no problem; owners still are', async (t) => {
  let asked = 0
  const ro = { readOnlyMount: () => (asked++, true) }
  t.same(statProblems(dir(0, 0o777), [0], ro), [], 'a ConfigMap volume root (0777, mounted read-only)')
  t.same(statProblems(file(0, 0o666), [0], ro), [])
  t.same(statProblems(dir(1000, 0o777), [0], ro), ['owned by uid 1000, not root'])
  const before = asked
  t.same(statProblems(dir(0, 0o755), [0], ro), [])
  t.equal(asked, before, 'not asked when nobody else could write anyway')
  t.same(statProblems(dir(0, 0o777), [0], { readOnlyMount: () => false }), ['writable by group and others without the sticky bit (mode 0777)'])
})
