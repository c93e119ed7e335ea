import t from 'tap'
import { DEFAULT_CONFIG, parseRunArgs } from '../../src/cli/fast-run.js'

t.test('plain run command lines are read without yargs', async (t) => {
  t.same(parseRunArgs(['run']), { configPath: DEFAULT_CONFIG, logLevel: 'info', insecurePaths: false, watchConfig: false })
  t.same(parseRunArgs(['run', '--config', '/c.yaml', '--insecure-paths', '--log-level', 'debug']), {
    configPath: '/c.yaml',
    logLevel: 'debug',
    insecurePaths: true,
    watchConfig: false,
  })
  t.same(parseRunArgs(['run', '-c', 'rel.yaml', '--log-level=warn']), {
    configPath: 'rel.yaml',
    logLevel: 'warn',
    insecurePaths: false,
    watchConfig: false,
  })
  t.same(parseRunArgs(['run', '--watch-config', '-c', '/k/config.yaml']), {
    configPath: '/k/config.yaml',
    logLevel: 'info',
    insecurePaths: false,
    watchConfig: true,
  })
  t.same(parseRunArgs(['run', '--config=/x.yaml']), { configPath: '/x.yaml', logLevel: 'info', insecurePaths: false, watchConfig: false })
})

t.test('anything else is left to yargs (null)', async (t) => {
  for (const args of [
    [],
    ['links'],
    ['run', '--help'],
    ['run', '-h'],
    ['run', '--version'],
    ['run', 'extra'],
    ['run', '--config'],
    ['run', '--config', ''],
    ['run', '--config', '--insecure-paths'],
    ['run', '--config', 'a', '--config', 'b'],
    ['run', '-c=a'],
    ['run', '--logLevel', 'info'],
    ['run', '--log-level', 'verbose'],
    ['run', '--log-level'],
    ['run', '--insecure-paths=false'],
    ['run', '--insecure-paths', '--insecure-paths'],
    ['run', '--no-insecure-paths'],
    ['run', '--watch-config=true'],
    ['run', '--watch-config', '--watch-config'],
    ['run', '--'],
  ]) {
    t.equal(parseRunArgs(args), null, args.join(' '))
  }
})
