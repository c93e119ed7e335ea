/** parseListFile: a list file's keys and their lines, read from the text as they are iterated. */
import t from 'tap'
import { parseListFile } from '../../src/maps/listfile.js'

t.test('parseListFile: keys one a line, comments and blanks dropped, lines counted from 1', async (t) => {
  const cases: [string, string, [string, number][], number][] = [
    ['nothing', '', [], 1],
    ['one key, no newline at the end', '10.0.0.0/8', [['10.0.0.0/8', 1]], 1],
    ['one key and its newline', '10.0.0.0/8\n', [['10.0.0.0/8', 1]], 2],
    ['blanks around a key, empty and blank lines', '\n  10.0.0.0/8 \t\n   \n192.0.2.7\n', [['10.0.0.0/8', 2], ['192.0.2.7', 4]], 5],
    ['comments: whole lines, after a key, on later lines', '# feed\n10.0.0.0/8 # rfc1918\n#x\n192.0.2.7\n198.51.100.0/24#y\n', [['10.0.0.0/8', 2], ['192.0.2.7', 4], ['198.51.100.0/24', 5]], 6],
    ['a comment only at the end of the file', '10.0.0.0/8\n192.0.2.7 # last', [['10.0.0.0/8', 1], ['192.0.2.7', 2]], 2],
    ['\\r\\n endings', '10.0.0.0/8\r\n# c\r\n192.0.2.7\r\n', [['10.0.0.0/8', 1], ['192.0.2.7', 3]], 4],
    ['a key repeated stays repeated (declare.ts makes it one entry)', '1.2.3.4\n1.2.3.4\n', [['1.2.3.4', 1], ['1.2.3.4', 2]], 3],
  ]
  for (const [what, text, keys, lines] of cases) {
    const list = parseListFile('/l.txt', text, 'v1')
    const want = keys.map(([key, line]) => ({ key, line }))
    t.same([...list.keys], want, what)
    t.same([...list.keys], want, `${what}: again`)
    t.equal(list.lines, lines, `${what}: ${lines} lines, at most as many keys`)
    t.same({ path: list.path, version: list.version }, { path: '/l.txt', version: 'v1' })
  }
})
