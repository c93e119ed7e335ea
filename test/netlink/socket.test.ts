/**
 * NetlinkSocket's pure parts. The socket itself is exercised against the kernel by the rtnl and daemon tests.
 */
import t from 'tap'
import { windowStarts } from '../../src/netlink/socket.js'

/** A request list from a picture: '.' a request, '+' one that goes with the one before it. */
const reqs = (picture: string) => [...picture].map((c) => ({ withPrevious: c === '+' }))

t.test('windowStarts: every max requests, never between a request and one that goes with it', async (t) => {
  const cases: [string, number, number[], string][] = [
    ['', 4, [], 'nothing to send'],
    ['...', 4, [0], 'fewer than a window'],
    ['........', 4, [0, 4], 'whole windows'],
    ['.........', 4, [0, 4, 8], 'a short last window'],
    ['...+....', 4, [0, 4], 'the pair at 2-3 ends the first window: no cut needed'],
    ['....+...', 4, [0, 3, 7], 'the pair at 3-4 would be cut at 4: the window ends before it'],
    ['..+.+...', 4, [0, 3, 7], 'a pair at 1-2 stays whole; the one at 3-4 starts the next window'],
    ['.+++++..', 4, [0, 4], 'a chain longer than a window is cut at max: nothing else can be done'],
    ['.+.+.+.+', 2, [0, 2, 4, 6], 'pairs that fit exactly'],
    ['+...', 2, [0, 2], 'a first request marked withPrevious has nothing before it'],
  ]
  for (const [picture, max, starts, why] of cases) t.same(windowStarts(reqs(picture), max), starts, `${picture || '(empty)'}/${max}: ${why}`)
})

t.test('windowStarts: every request is in exactly one window, in order, none over max, no pair split where it fits', async (t) => {
  for (let seed = 1; seed <= 200; seed++) {
    let x = seed
    const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    const picture = Array.from({ length: Math.floor(rnd() * 40) }, (_, i) => (i > 0 && rnd() < 0.3 ? '+' : '.')).join('')
    const max = 1 + Math.floor(rnd() * 8)
    const s = windowStarts(reqs(picture), max)
    const ends = [...s.slice(1), picture.length]
    const ok = s.every((start, k) => ends[k]! > start && ends[k]! - start <= max) && (picture.length === 0 ? s.length === 0 : s[0] === 0)
    if (!ok) t.fail(`seed ${seed}: ${picture}/${max} -> ${s}`)
    for (const start of s) {
      // a cut before a '+' only when the chain it belongs to is longer than a window
      if (picture[start] !== '+') continue
      let chainStart = start
      while (chainStart > 0 && picture[chainStart] === '+') chainStart--
      let chainEnd = start
      while (chainEnd + 1 < picture.length && picture[chainEnd + 1] === '+') chainEnd++
      if (chainEnd - chainStart + 1 <= max) t.fail(`seed ${seed}: ${picture}/${max} cut a chain of ${chainEnd - chainStart + 1} at ${start}`)
    }
  }
  t.pass('200 random pictures')
})
