/**
 * `xdplinkd check`: exit statuses, what it prints, and that it leaves nothing behind (no pin, no attachment).
 * The command's own logic runs without root against injected links and loads; the end-to-end tests run the built
 * CLI in a private namespace with real objects and skip when not root.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import t, { type Test } from 'tap'
import { checkCommand, type CheckJson, type NamespacesSeen } from '../../src/commands/check.js'
import type { Config } from '../../src/config/index.js'
import { ProgramLoadError } from '../../src/programs/errors.js'
import type { CheckedProgram } from '../../src/programs/kernel.js'
import type { LinkState } from '../../src/rtnl/link.js'
import { buildObjects, tempBpffs, tempPlainDir } from '../helpers/bpf.js'
import { netnsDir } from '../helpers/mounts.js'
import { CLI, ROOT, makeNetns, needsRoot, type Netns } from '../helpers/netns.js'

/**
 * A directory for configs and objects under /tmp: /tmp is root-owned and sticky, mkdtemp makes the directory 0700
 * and the files are written 0644, so the strict path checks pass without --insecure-paths (for root, and for a
 * user, who trusts their own uid).
 */
function tempDir(t: Test): string {
  const dir = mkdtempSync('/tmp/xdpl-check-')
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function writeFile(dir: string, name: string, text: string | Buffer): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  chmodSync(path, 0o644)
  return path
}

const link = (ifindex: number, name: string, kind: string | null = 'veth'): LinkState => ({
  ifindex,
  name,
  flags: 0,
  up: false,
  running: false,
  operState: 'down',
  kind,
  altNames: [],
  master: null,
  xdp: null,
})

/** Runs checkCommand with captured output. */
async function check(
  opts: Partial<Parameters<typeof checkCommand>[0]> & { configPath: string },
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = new PassThrough()
  const err = new PassThrough()
  let stdout = ''
  let stderr = ''
  out.on('data', (d: Buffer) => (stdout += d.toString()))
  err.on('data', (d: Buffer) => (stderr += d.toString()))
  const code = await checkCommand({ insecurePaths: false, json: false, out, err, ...opts })
  return { code, stdout, stderr }
}

t.test('the command, with injected links and loads (no root)', async (t) => {
  const dir = tempDir(t)
  writeFile(dir, 'a.o', 'a')
  writeFile(dir, 'b.o', 'b')
  const config = writeFile(
    dir,
    'config.yaml',
    [
      'attach:',
      '  - name: first',
      '    interfaces: ["va*"]',
      '    object: a.o',
      '    mode: generic',
      '  - interfaces: ["v*", "dm*"]',
      '    exclude: ["vz*"]',
      '    object: b.o',
      '    program: xdp_b',
      '  - name: third',
      '    interfaces: ["w*"]',
      '    object: a.o',
      '',
    ].join('\n'),
  )
  const links = async () => [link(5, 'vb0'), link(1, 'lo', null), link(3, 'va0'), link(4, 'va1'), link(6, 'vz0'), link(7, 'dm0', 'dummy')]
  const loads: string[] = []
  const ok = async (objectPath: string, programName?: string): Promise<CheckedProgram> => {
    loads.push(`${objectPath}:${programName ?? ''}`)
    const name = programName ?? 'xdp_a'
    return { name, kernelName: name, tag: objectPath.endsWith('a.o') ? 'aaaaaaaaaaaaaaaa' : 'bbbbbbbbbbbbbbbb', verifiedInsns: 12 }
  }

  t.test('--json: entries in file order, first match wins, unmatched counted; one load per object and program', async (t) => {
    loads.length = 0
    const r = await check({ configPath: config, json: true, links, load: ok })
    t.equal(r.code, 0)
    t.equal(r.stderr, '')
    const j = JSON.parse(r.stdout) as CheckJson
    t.same(j, {
      ok: true,
      config,
      control: { socket: '/run/xdplinkd/control.sock', group: null },
      netnsDirs: ['/run/netns', '/run/docker/netns'],
      entries: [
        {
          entry: 'first',
          index: 0,
          object: join(dir, 'a.o'),
          program: 'xdp_a',
          tag: 'aaaaaaaaaaaaaaaa',
          verifiedInsns: 12,
          mode: 'generic',
          netns: ['host'],
          links: [
            { ifindex: 3, name: 'va0' },
            { ifindex: 4, name: 'va1' },
          ],
        },
        {
          entry: 'attach[1]',
          index: 1,
          object: join(dir, 'b.o'),
          program: 'xdp_b',
          tag: 'bbbbbbbbbbbbbbbb',
          verifiedInsns: 12,
          mode: 'auto',
          netns: ['host'],
          links: [
            { ifindex: 5, name: 'vb0' },
            { ifindex: 7, name: 'dm0' },
          ],
        },
        { entry: 'third', index: 2, object: join(dir, 'a.o'), program: 'xdp_a', tag: 'aaaaaaaaaaaaaaaa', verifiedInsns: 12, mode: 'auto', netns: ['host'], links: [] },
      ],
      unmatched: 2,
      warnings: [],
    })
    t.same(loads, [`${join(dir, 'a.o')}:`, `${join(dir, 'b.o')}:xdp_b`], 'a.o loaded once for two entries')
  })

  t.test('text: each entry with its object, program, mode, netns and links; unmatched links and netns-dirs at the end', async (t) => {
    const r = await check({ configPath: config, links, load: ok })
    t.equal(r.code, 0)
    t.equal(
      r.stdout,
      [
        'attach[0] (first)',
        `  object   ${join(dir, 'a.o')}`,
        '  program  xdp_a  tag aaaaaaaaaaaaaaaa  12 insns verified',
        '  mode     generic',
        '  netns    host',
        '  links    va0 (3), va1 (4)',
        '',
        'attach[1]',
        `  object   ${join(dir, 'b.o')}`,
        '  program  xdp_b  tag bbbbbbbbbbbbbbbb  12 insns verified',
        '  mode     auto',
        '  netns    host',
        '  links    vb0 (5), dm0 (7)',
        '',
        'attach[2] (third)',
        `  object   ${join(dir, 'a.o')}`,
        '  program  xdp_a  tag aaaaaaaaaaaaaaaa  12 insns verified',
        '  mode     auto',
        '  netns    host',
        '  links    none in this namespace',
        '',
        '2 links matched by no entry: lo, vz0',
        'namespace files (netns-dirs): /run/netns, /run/docker/netns',
        `${config}: ok, 3 entries; 4 links would get a program (nothing attached)`,
        '',
      ].join('\n'),
    )
  })

  t.test('control-group: who may use the control socket, in the text and the JSON', async (t) => {
    const withGroup = writeFile(dir, 'group.yaml', ['control-socket: /run/x/c.sock', 'control-group: 4242', 'attach: []', ''].join('\n'))
    const text = await check({ configPath: withGroup, links, load: ok })
    t.equal(text.code, 0)
    t.match(text.stdout, /\nnamespace files \(netns-dirs\): [^\n]*\ncontrol socket \/run\/x\/c\.sock: root and members of gid 4242 may ask\n[^\n]*: ok, 0 entries;/)
    const j = JSON.parse((await check({ configPath: withGroup, json: true, links, load: ok })).stdout) as CheckJson
    t.same(j.control, { socket: '/run/x/c.sock', group: { name: null, gid: 4242 } })
    const unknown = writeFile(dir, 'nogroup.yaml', ['control-group: no-such-group-here', 'attach: []', ''].join('\n'))
    const bad = await check({ configPath: unknown, links, load: ok })
    t.equal(bad.code, 78)
    t.match(bad.stderr, /nogroup\.yaml:1:16: control-group: expected a group in \/etc\/group or a group id, got "no-such-group-here"/)
  })

  t.test('every failing entry is reported on stderr, named; exit 65; the plan is still printed', async (t) => {
    const failing = async (objectPath: string, programName?: string): Promise<CheckedProgram> => {
      if (objectPath.endsWith('b.o')) {
        throw new ProgramLoadError({ stage: 'load', objectPath, program: programName, detail: 'rejected by the verifier: nope', errno: 13 })
      }
      return ok(objectPath, programName)
    }
    const r = await check({ configPath: config, json: true, links, load: failing })
    t.equal(r.code, 65)
    t.equal(r.stderr, `attach[1]: ${join(dir, 'b.o')}: program xdp_b: rejected by the verifier: nope (EACCES)\n`)
    const j = JSON.parse(r.stdout) as CheckJson
    t.equal(j.ok, false)
    t.match(j.entries[1], { program: 'xdp_b', tag: null, error: /rejected by the verifier: nope/ })
    t.equal(j.entries[1]!.links.length, 2)
    t.notOk('error' in j.entries[0]!)

    const text = await check({ configPath: config, links, load: failing })
    t.equal(text.code, 65)
    t.match(text.stdout, /program {2}xdp_b: FAILED to load \(reason on stderr\)/)
    t.match(text.stdout, /: 1 of 3 entries FAILED to load\n$/)
  })

  t.test('an error other than a load failure is not swallowed', async (t) => {
    const boom = async (): Promise<CheckedProgram> => {
      throw new Error('boom')
    }
    await t.rejects(check({ configPath: config, links, load: boom }), /boom/)
  })

  t.test('a kind that looks like a typo: a warning on stderr and in --json, exit 0, the entry as written', async (t) => {
    const typo = writeFile(dir, 'typo.yaml', ['attach:', '  - name: lab', '    interfaces: ["v*"]', '    kinds: [vet, dummy]', '    object: a.o', ''].join('\n'))
    const r = await check({ configPath: typo, json: true, links, load: ok })
    t.equal(r.code, 0, 'allowed: a module may register any kind')
    const warning = 'attach[0] (lab): kinds: "vet" is not a known link kind; did you mean "veth"? As written it matches only links whose IFLA_INFO_KIND is exactly "vet"'
    t.equal(r.stderr, `warning: ${warning}\n`)
    const j = JSON.parse(r.stdout) as CheckJson
    t.same(j.warnings, [warning])
    t.same(j.entries[0]!.links, [], 'no veth matches "vet"')
  })

  t.test('netns and netns-dirs: each entry\'s namespaces, the links of this one (host) only for entries for it', async (t) => {
    const ns = writeFile(
      dir,
      'netns.yaml',
      [
        'netns-dirs: [/run/netns/, /srv/ns]',
        'attach:',
        '  - name: pods',
        '    interfaces: ["v*"]',
        '    object: a.o',
        '    netns: ["cni-*", myns]',
        '  - name: everywhere',
        '    interfaces: ["va*"]',
        '    object: b.o',
        '    netns: ["*"]',
        '  - interfaces: ["v*"]',
        '    object: a.o',
        '',
      ].join('\n'),
    )
    const j = JSON.parse((await check({ configPath: ns, json: true, links, load: ok })).stdout) as CheckJson
    t.same(j.netnsDirs, ['/run/netns', '/srv/ns'])
    t.same(
      j.entries.map((e) => [e.entry, e.netns, e.links.map((l) => l.name)]),
      [
        ['pods', ['cni-*', 'myns'], []],
        ['everywhere', ['*'], ['va0', 'va1']],
        ['attach[2]', ['host'], ['vb0', 'vz0']],
      ],
      'the pods entry is skipped here, as the daemon skips it for its own namespace',
    )
    const text = await check({ configPath: ns, links, load: ok })
    t.equal(text.code, 0)
    t.match(text.stdout, /^attach\[0\] \(pods\)\n(?: {2}.*\n){2} {2}mode {5}auto\n {2}netns {4}cni-\*, myns\n {2}links {4}none: this namespace is host, which netns does not match\n\n/)
    t.match(text.stdout, /\nattach\[1\] \(everywhere\)\n(?: {2}.*\n){3} {2}netns {4}\*\n {2}links {4}va0 \(3\), va1 \(4\)\n/)
    t.match(text.stdout, /\n2 links matched by no entry: lo, dm0\nnamespace files \(netns-dirs\): \/run\/netns, \/srv\/ns\n[^\n]*: ok, 3 entries; 4 links would get a program/)

    const none = writeFile(dir, 'nodirs.yaml', ['netns-dirs: []', 'attach:', '  - interfaces: ["v*"]', '    object: a.o', '    netns: ["*"]', ''].join('\n'))
    const n = await check({ configPath: none, links, load: ok })
    t.match(n.stdout, /\n {2}netns {4}\*\n {2}links {4}va0 \(3\), va1 \(4\), vb0 \(5\), vz0 \(6\)\n/)
    t.match(n.stdout, /\nnamespace files \(netns-dirs\): none, so only host can be managed\n/)
    t.same((JSON.parse((await check({ configPath: none, json: true, links, load: ok })).stdout) as CheckJson).netnsDirs, [])

    const useless = writeFile(dir, 'useless.yaml', ['netns-dirs: []', 'attach:', '  - interfaces: ["v*"]', '    object: a.o', '    netns: ["cni-*"]', ''].join('\n'))
    const bad = await check({ configPath: useless, links, load: ok })
    t.equal(bad.code, 78)
    t.equal(bad.stdout, '')
    t.equal(
      bad.stderr,
      `${useless}:5:13: attach[0].netns[0]: expected a glob that matches "host": netns-dirs is empty, so no other namespace can be managed, got "cni-*"\n`,
    )
  })

  t.test('no entries: nothing to load, every link unmatched', async (t) => {
    const empty = writeFile(dir, 'empty.yaml', 'attach: []\n')
    const r = await check({ configPath: empty, links, load: ok })
    t.equal(r.code, 0)
    t.match(r.stdout, /^no attach entries: xdplinkd would detach every program it attached\n\n6 links matched by no entry/)
  })
})

t.test('namespaces other than host: per namespace, which links would get which entry (injected namespaces, no root)', async (t) => {
  const dir = tempDir(t)
  writeFile(dir, 'a.o', 'a')
  writeFile(dir, 'b.o', 'b')
  const config = writeFile(
    dir,
    'pods.yaml',
    [
      'netns-dirs: [/srv/ns]',
      'attach:',
      '  - name: pods',
      '    interfaces: [eth0]',
      '    netns: ["pod-*"]',
      '    object: a.o',
      '  - interfaces: ["v*"]',
      '    netns: [host, "pod-*"]',
      '    object: b.o',
      '',
    ].join('\n'),
  )
  const links = async () => [link(2, 'eth0'), link(1, 'lo', null), link(3, 'va')]
  const load = async (objectPath: string): Promise<CheckedProgram> => {
    const name = objectPath.endsWith('a.o') ? 'xdp_a' : 'xdp_b'
    return { name, kernelName: name, tag: '0123456789abcdef', verifiedInsns: 7 }
  }
  const refused = '/srv/ns/pod-2 is not used as a network namespace: entering it was refused (setns: EPERM): xdplinkd needs CAP_SYS_ADMIN'
  const asked: string[] = []
  const namespaces = async (c: Config): Promise<NamespacesSeen> => {
    asked.push(c.path)
    return {
      host: { id: 'net:[1]', paths: [] },
      others: [
        { name: 'other', id: 'net:[3]', paths: ['/srv/ns/other'], links: null },
        { name: 'pod-1', id: 'net:[2]', paths: ['/srv/ns/pod-1'], links: [link(3, 'eth0'), link(1, 'lo', null), link(2, 'vx')] },
        { name: 'pod-2', id: null, paths: ['/srv/ns/pod-2'], links: null, error: refused },
      ],
      warnings: ['ignoring /srv/ns/host: the name host is reserved'],
    }
  }

  const j = await check({ configPath: config, json: true, links, load, namespaces })
  t.equal(j.code, 0, 'a namespace that cannot be entered is reported, not fatal')
  t.equal(j.stderr, 'warning: ignoring /srv/ns/host: the name host is reserved\n')
  const json = JSON.parse(j.stdout) as CheckJson
  t.same(
    json.entries.map((e) => [e.entry, e.links.map((l) => l.name)]),
    [
      ['pods', []],
      ['attach[1]', ['va']],
    ],
    'the top-level fields stay those of host',
  )
  t.equal(json.unmatched, 2)
  t.same(json.warnings, ['ignoring /srv/ns/host: the name host is reserved'])
  t.same(json.namespaces, [
    {
      name: 'host',
      id: 'net:[1]',
      paths: [],
      wanted: true,
      links: [
        { ifindex: 1, name: 'lo', entry: null, index: null },
        { ifindex: 2, name: 'eth0', entry: null, index: null },
        { ifindex: 3, name: 'va', entry: 'attach[1]', index: 1 },
      ],
    },
    { name: 'other', id: 'net:[3]', paths: ['/srv/ns/other'], wanted: false, links: null },
    {
      name: 'pod-1',
      id: 'net:[2]',
      paths: ['/srv/ns/pod-1'],
      wanted: true,
      links: [
        { ifindex: 1, name: 'lo', entry: null, index: null },
        { ifindex: 2, name: 'vx', entry: 'attach[1]', index: 1 },
        { ifindex: 3, name: 'eth0', entry: 'pods', index: 0 },
      ],
    },
    { name: 'pod-2', id: null, paths: ['/srv/ns/pod-2'], wanted: true, links: null, error: refused },
  ])

  const text = await check({ configPath: config, links, load, namespaces })
  t.equal(text.code, 0)
  t.equal(
    text.stdout.slice(text.stdout.indexOf('\n2 links matched')),
    [
      '',
      '2 links matched by no entry: lo, eth0',
      '',
      'network namespace pod-1 (/srv/ns/pod-1)',
      '  attach[0] (pods)  eth0 (3)',
      '  attach[1]         vx (2)',
      '  no entry          lo (1)',
      '',
      'network namespace pod-2 (/srv/ns/pod-2)',
      `  not looked at: ${refused}`,
      '',
      '1 network namespace no entry is for: other',
      '',
      'namespace files (netns-dirs): /srv/ns',
      `${config}: ok, 2 entries; 3 links in 2 network namespaces would get a program (nothing attached)`,
      '',
    ].join('\n'),
  )

  // A config for host only looks at no namespace file, and its JSON has no per-namespace view.
  const hostOnly = writeFile(dir, 'host.yaml', ['netns-dirs: [/srv/ns]', 'attach:', '  - interfaces: ["v*"]', '    object: b.o', ''].join('\n'))
  asked.length = 0
  const h = JSON.parse((await check({ configPath: hostOnly, json: true, links, load, namespaces })).stdout) as CheckJson
  t.same(asked, [], 'not asked')
  t.notOk('namespaces' in h)
})

t.test('a config error: every error as file:line:col: key.path, exit 78, nothing loaded', async (t) => {
  const dir = tempDir(t)
  writeFile(dir, 'x.o', 'x')
  const config = writeFile(
    dir,
    'bad.yaml',
    ['attach:', '  - interfaces: ["v*"]', '    object: x.o', '    modee: native', '  - interfaces: ["w*"]', '    object: x.o', '    mode: nativ', ''].join('\n'),
  )
  // The built CLI, as an operator runs it (needs no root: the config is refused before anything reaches the kernel).
  const r = spawnSync('node', [CLI, 'check', '--config', config], { encoding: 'utf8' })
  t.equal(r.status, 78, r.stderr)
  t.equal(r.stdout, '')
  const lines = r.stderr.trim().split('\n')
  t.equal(lines.length, 2, r.stderr)
  t.match(lines[0], `${config}:4:5: attach[0].modee: unknown key`)
  t.match(lines[1], `${config}:7:11: attach[1].mode: expected one of auto, native, generic, offload, got "nativ"`)

  const j = spawnSync('node', [CLI, 'check', '--config', config, '--json'], { encoding: 'utf8' })
  t.equal(j.status, 78)
  t.match(JSON.parse(j.stdout), {
    ok: false,
    errors: [
      { file: config, line: 4, col: 5, path: 'attach[0].modee' },
      { file: config, line: 7, col: 11, path: 'attach[1].mode' },
    ],
  })

  // Objects are checked once the file is valid: a missing one is a config error too, pointing at its `object:`.
  const missing = writeFile(dir, 'missing.yaml', ['attach:', '  - interfaces: ["v*"]', '    object: missing.o', ''].join('\n'))
  const m = spawnSync('node', [CLI, 'check', '--config', missing], { encoding: 'utf8' })
  t.equal(m.status, 78)
  t.match(m.stderr, `${missing}:3:13: attach[0].object: cannot use object ${join(dir, 'missing.o')}`)

  const none = spawnSync('node', [CLI, 'check', '--config', join(dir, 'nope.yaml')], { encoding: 'utf8' })
  t.equal(none.status, 78)
  t.match(none.stderr, `${join(dir, 'nope.yaml')}: cannot read this config file`)
})

interface IpLink {
  ifname: string
  xdp?: unknown
}

/** `node CLI check ...` inside the namespace, whatever its exit status. */
function runIn(ns: Netns, args: string[], cwd?: string) {
  return spawnSync('ip', ['netns', 'exec', ns.name, 'node', CLI, 'check', ...args], { encoding: 'utf8', cwd })
}

/** Every path below `dir`, for comparing a bpffs before and after. */
function tree(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort()
}

t.test('kernel', { skip: needsRoot }, async (t) => {
  const objs = buildObjects(t)
  const dir = tempDir(t)
  const pass = writeFile(dir, 'xdp_pass.o', readFileSync(objs.bundled('xdp_pass')))
  const drop = writeFile(dir, 'xdp_drop.o', readFileSync(objs.bundled('xdp_drop')))
  const bad = writeFile(dir, 'xdp_bad.o', readFileSync(objs.fixture('xdp_bad')))
  const two = writeFile(dir, 'xdp_two.o', readFileSync(objs.fixture('xdp_two')))

  t.test('a good config: the right links per entry, exit 0, no pin and no attachment', async (t) => {
    const ns = makeNetns(t)
    ns.ip('link', 'add', 'va0', 'type', 'veth', 'peer', 'name', 'vb0')
    ns.ip('link', 'add', 'va1', 'type', 'veth', 'peer', 'name', 'vb1')
    ns.ip('link', 'add', 'br0', 'type', 'bridge')
    ns.ip('link', 'set', 'va0', 'up')
    const bpffs = tempBpffs(t)
    const config = writeFile(
      dir,
      'good.yaml',
      [
        `bpffs: ${bpffs}/xdplinkd`,
        'attach:',
        '  - name: a-side',
        '    interfaces: ["va*"]',
        '    kinds: [veth]',
        `    object: ${pass}`,
        '    mode: generic',
        '  - name: rest',
        '    interfaces: ["v*", "br*"]',
        `    object: ${drop}`,
        '    program: xdp_drop',
        '',
      ].join('\n'),
    )
    const before = tree(bpffs)
    const r = runIn(ns, ['--config', config, '--json'])
    t.equal(r.status, 0, r.stderr)
    t.equal(r.stderr, '')
    const j = JSON.parse(r.stdout) as CheckJson
    const ifindex = (name: string) => ns.ipJson<{ ifindex: number }[]>('link', 'show', 'dev', name)[0]!.ifindex
    t.match(j, {
      ok: true,
      entries: [
        { entry: 'a-side', object: pass, program: 'xdp_pass', tag: /^[0-9a-f]{16}$/, mode: 'generic' },
        { entry: 'rest', object: drop, program: 'xdp_drop', tag: /^[0-9a-f]{16}$/, mode: 'auto' },
      ],
      unmatched: 1, // lo
    })
    t.same(j.entries[0]!.links, ['va0', 'va1'].map((name) => ({ ifindex: ifindex(name), name })))
    t.same(
      j.entries[1]!.links.map((l) => l.name),
      ['vb0', 'vb1', 'br0'].sort((a, b) => ifindex(a) - ifindex(b)),
      'first match: va* links are not listed again under the later entry',
    )
    t.ok((j.entries[0]!.verifiedInsns ?? 1) > 0)

    const text = runIn(ns, ['--config', config])
    t.equal(text.status, 0, text.stderr)
    t.match(text.stdout, /^attach\[0\] \(a-side\)\n {2}object {3}\S+xdp_pass\.o\n {2}program {2}xdp_pass {2}tag [0-9a-f]{16}/)
    t.match(text.stdout, /\n1 link matched by no entry: lo\n/)

    t.same(tree(bpffs), before, 'nothing pinned in the bpffs the config names')
    t.notOk(existsSync(join(bpffs, 'xdplinkd')))
    const attached = ns.ipJson<IpLink[]>('-d', 'link', 'show').filter((l) => l.xdp !== undefined)
    t.same(attached, [], 'no link carries an XDP program')
  })

  t.test('a config with an entry for pod-*: the pod eth0 under the pod namespace', async (t) => {
    const host = makeNetns(t)
    const pod = makeNetns(t, 'xdplp')
    const other = makeNetns(t, 'xdplp')
    // The CNI steps: made in host under a temporary name, one end moved into the pod and renamed eth0 there.
    host.ip('link', 'add', 'tmp0', 'type', 'veth', 'peer', 'name', 'hveth')
    host.ip('link', 'set', 'tmp0', 'netns', pod.name)
    pod.ip('link', 'set', 'tmp0', 'name', 'eth0')
    const d = netnsDir(t)
    const file = d.bind(pod.name, 'pod-1')
    const otherFile = d.bind(other.name, 'other')
    const config = writeFile(
      dir,
      'pods.yaml',
      [
        `netns-dirs: [${d.dir}]`,
        'attach:',
        '  - name: pods',
        '    interfaces: [eth0]',
        '    netns: ["pod-*"]',
        `    object: ${drop}`,
        '  - name: host-end',
        '    interfaces: [hveth]',
        `    object: ${pass}`,
        '',
      ].join('\n'),
    )
    const r = runIn(host, ['--config', config, '--json'])
    t.equal(r.status, 0, r.stderr)
    t.equal(r.stderr, '')
    const j = JSON.parse(r.stdout) as CheckJson
    const ifindex = (ns: Netns, name: string) => ns.ipJson<{ ifindex: number }[]>('link', 'show', 'dev', name)[0]!.ifindex
    t.same(j.entries[0]!.links, [], 'pods gets no link of host')
    t.same(j.entries[1]!.links, [{ ifindex: ifindex(host, 'hveth'), name: 'hveth' }])
    t.same(
      j.namespaces?.map((ns) => [ns.name, ns.paths, ns.wanted]),
      [
        ['host', [], true],
        ['other', [otherFile], false],
        ['pod-1', [file], true],
      ],
    )
    t.match(j.namespaces?.[2], { id: pod.exec('readlink', ['/proc/self/ns/net']).trim() })
    t.same(j.namespaces?.[2]?.links, [
      { ifindex: 1, name: 'lo', entry: null, index: null },
      { ifindex: ifindex(pod, 'eth0'), name: 'eth0', entry: 'pods', index: 0 },
    ])
    t.equal(j.namespaces?.[1]?.links, null, 'a namespace no entry is for is not read')

    const text = runIn(host, ['--config', config])
    t.equal(text.status, 0, text.stderr)
    t.match(text.stdout, new RegExp(`\nnetwork namespace pod-1 \\(${file}\\)\n {2}attach\\[0\\] \\(pods\\) {2}eth0 \\(${ifindex(pod, 'eth0')}\\)\n {2}no entry +lo \\(1\\)\n`))
    t.match(text.stdout, /\n1 network namespace no entry is for: other\n/)
    t.match(text.stdout, /: ok, 2 entries; 2 links in 2 network namespaces would get a program \(nothing attached\)\n$/)
    t.same(pod.ipJson<IpLink[]>('-d', 'link', 'show').filter((l) => l.xdp !== undefined), [], 'nothing attached in the pod')
  })

  t.test('no bpffs needed: a bpffs path that does not exist is neither required nor created', async (t) => {
    const ns = makeNetns(t)
    const plain = tempPlainDir(t)
    const config = writeFile(dir, 'nobpffs.yaml', [`bpffs: ${plain}/bpf/xdplinkd`, 'attach:', '  - interfaces: ["*"]', `    object: ${pass}`, ''].join('\n'))
    const r = runIn(ns, ['--config', config])
    t.equal(r.status, 0, r.stderr)
    t.same(readdirSync(plain), [])
  })

  t.test('objects that fail to load: exit 65, each failing entry named with its reason on stderr', async (t) => {
    const ns = makeNetns(t)
    ns.ip('link', 'add', 'va0', 'type', 'veth', 'peer', 'name', 'vb0')
    const config = writeFile(
      dir,
      'rejected.yaml',
      [
        'attach:',
        '  - interfaces: ["lo"]',
        `    object: ${pass}`,
        '  - interfaces: ["va*"]',
        `    object: ${bad}`,
        '  - name: two',
        '    interfaces: ["vb*"]',
        `    object: ${two}`,
        '',
      ].join('\n'),
    )
    const r = runIn(ns, ['--config', config])
    t.equal(r.status, 65, r.stderr)
    const lines = r.stderr.trim().split('\n')
    t.equal(lines.length, 2, r.stderr)
    t.match(lines[0], `attach[1]: ${bad}: program xdp_bad: rejected by the verifier: invalid access to packet`)
    t.match(lines[0], /R1 offset is outside of the packet/)
    t.match(lines[1], `attach[2] (two): ${two}: holds 2 XDP programs (xdp_first, xdp_second)`)
    t.match(r.stdout, /attach\[0\]\n {2}object {3}\S+\n {2}program {2}xdp_pass {2}tag /)
    t.match(r.stdout, /attach\[1\]\n {2}object {3}\S+\n {2}program {2}xdp_bad: FAILED to load/)
    t.match(r.stdout, /: 2 of 3 entries FAILED to load\n$/)

    const j = runIn(ns, ['--config', config, '--json'])
    t.equal(j.status, 65)
    const json = JSON.parse(j.stdout) as CheckJson
    t.equal(json.ok, false)
    t.match(json.entries[1], { program: 'xdp_bad', tag: null, error: /invalid access to packet/, links: [{ name: 'va0' }] })
    t.same(ns.ipJson<IpLink[]>('-d', 'link', 'show').filter((l) => l.xdp !== undefined), [])
  })

  t.test('the shipped examples/config.yaml checks from the repository checkout', async (t) => {
    const ns = makeNetns(t)
    ns.ip('link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth-mgmt0')
    const r = runIn(ns, ['--config', 'examples/config.yaml', '--insecure-paths'], ROOT)
    t.equal(r.status, 0, r.stderr)
    t.equal(r.stderr, '')
    t.match(r.stdout, /^attach\[0\] \(test-veths\)\n {2}object {3}\S+\/bpf\/xdp_pass\.o\n {2}program {2}xdp_pass {2}tag [0-9a-f]{16}/)
    t.match(r.stdout, / {2}mode {5}generic\n {2}netns {4}host\n {2}links {4}veth0 \(\d+\)\n/, 'veth-mgmt* is excluded')
    t.match(r.stdout, /\n2 links matched by no entry: lo, veth-mgmt0\n/)
  })
})

t.test('maps: declared contents checked against the object\'s BTF, every problem with file:line:col and key path; counts when fine', { skip: needsRoot }, async (t) => {
  const objs = buildObjects(t)
  const dir = tempDir(t)
  const kinds = writeFile(dir, 'maps_kinds.o', readFileSync(objs.fixture('maps_kinds')))
  const blocklist = writeFile(dir, 'xdp_blocklist.o', readFileSync(objs.bundled('xdp_blocklist')))
  writeFile(dir, 'v6.txt', '# from a feed\n2001:db8::/32\n2001:db8:1::/48\n2001:db8::/32\n')
  const ns = makeNetns(t)
  const entry = (object: string, maps: string[]): string[] => ['  - interfaces: ["v*"]', `    object: ${object}`, '    maps:', ...maps.map((m) => `      ${m}`)]

  const good = writeFile(dir, 'good.yaml', ['attach:', ...entry(blocklist, ['blocklist_v4: [192.0.2.0/24, 198.51.100.7]', 'blocklist_v6: { file: v6.txt }']), ''].join('\n'))
  const ok = runIn(ns, ['--config', good, '--json'])
  t.equal(ok.status, 0, ok.stderr)
  t.same((JSON.parse(ok.stdout) as CheckJson).entries[0]!.maps, [
    { map: 'blocklist_v4', entries: 2 },
    { map: 'blocklist_v6', entries: 2 },
  ])
  t.match(runIn(ns, ['--config', good]).stdout, /\n {2}map {6}blocklist_v4: 2 entries declared\n {2}map {6}blocklist_v6: 2 entries declared\n/)

  const bad = writeFile(
    dir,
    'bad.yaml',
    [
      'attach:',
      ...entry(blocklist, ['blocklist_v4: [192.0.2.0/33, 192.0.2.300, 10.0.0.0/8]', 'blocklist_v5: [10.0.0.0/8]']),
      ...entry(kinds, ['flows:', '  entries:', '    - key: { saddr: 10.0.0.1, daddr: 10.0.0.2, sport: 1, dport: 53, proto: 17, prot: 1 }', '      value: { w: 1 }']),
      '',
    ].join('\n'),
  )
  const r = runIn(ns, ['--config', bad])
  t.equal(r.status, 78, 'a config error')
  const lines = r.stderr.trim().split('\n')
  t.match(lines, [
    new RegExp(`^${bad}:5:22: attach\\[0\\]\\.maps\\.blocklist_v4\\[0\\]: .*33`),
    new RegExp(`^${bad}:5:36: attach\\[0\\]\\.maps\\.blocklist_v4\\[1\\]: .*192\\.0\\.2\\.300`),
    new RegExp(`^${bad}:6:7: attach\\[0\\]\\.maps\\.blocklist_v5: program xdp_blocklist of \\S+ has no map blocklist_v5 \\(did you mean "blocklist_v4"\\?\\)`),
    new RegExp(`^${bad}:12:18: attach\\[1\\]\\.maps\\.flows\\.entries\\[0\\]\\.key\\.prot: .*unknown member "prot".*did you mean proto`),
    new RegExp(`^${bad}:12:18: attach\\[1\\]\\.maps\\.flows\\.entries\\[0\\]\\.key: missing member "pad" of struct flow`),
  ])
  t.equal(lines.length, 5, r.stderr)
})
