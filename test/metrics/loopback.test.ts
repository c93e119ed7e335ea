import t from 'tap'
import { isLoopback } from '../../src/metrics/loopback.js'

t.test('loopback or reachable from the network', async (t) => {
  const table: [host: string, loopback: boolean][] = [
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['127.255.255.255', true],
    ['localhost', true],
    ['LOCALHOST', true],
    ['localhost.', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::0001', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false], // every address
    ['::', false],
    ['10.0.0.1', false],
    ['128.0.0.1', false],
    ['126.255.255.255', false],
    ['192.168.1.10', false],
    ['::2', false],
    ['fe80::1', false],
    ['::ffff:10.0.0.1', false],
    ['localhost.localdomain', false], // a name: whatever it resolves to
    ['metrics.example.com', false],
    ['my-localhost', false],
  ]
  for (const [host, loopback] of table) t.equal(isLoopback(host), loopback, host)
})
