import { posix } from 'node:path'
import t from 'tap'
import type { ConfigError } from '../../src/config/errors.js'
import { parseConfig, parseGroupFile, parseHostPort, repr } from '../../src/config/validate.js'
import { err, ok } from '../../src/result.js'

const FILE = '/etc/xdplinkd/config.yaml'
const lines = (...ls: string[]): string => `${ls.join('\n')}\n`
/** A valid attach list, for cases about top-level keys. */
const ATTACH = ['attach:', '  - interfaces: [eth0]', '    object: /opt/x.o']

function errorsOf(text: string): ConfigError[] {
  const r = parseConfig(text, FILE)
  return r.ok ? [] : r.error
}

type Expected = [line: number, col: number, path: string, message: string | RegExp]

/** Every case lists every error it must produce, in file order, with position, key path and message. */
const cases: { name: string; yaml: string; errors: Expected[] }[] = [
  {
    name: 'enum: the example from the design',
    yaml: lines(
      'settle: 50ms',
      'attach:',
      '  - interfaces: [eth0]',
      '    object: a.o',
      '  - interfaces: [eth1]',
      '    object: b.o',
      '    mode: nativ',
    ),
    errors: [[7, 11, 'attach[1].mode', 'expected one of auto, native, generic, offload, got "nativ"']],
  },
  {
    name: 'enum: on-exit',
    yaml: lines('on-exit: destroy', ...ATTACH),
    errors: [[1, 10, 'on-exit', 'expected one of keep, detach, got "destroy"']],
  },
  {
    name: 'unknown top-level key, with a suggestion',
    yaml: lines('max_settle: 1s', ...ATTACH),
    errors: [[1, 1, 'max_settle', 'unknown key (did you mean "max-settle"?); expected one of settle, max-settle, bpffs, on-exit, control-socket, control-group, metrics, netns-dirs, attach']],
  },
  {
    name: 'unknown key in an entry: reported at the key',
    yaml: lines(...ATTACH, '    interface: [eth1]', '    zzz: 1'),
    errors: [
      [4, 5, 'attach[0].interface', /^unknown key \(did you mean "interfaces"\?\); expected one of interfaces, exclude, kinds, netns, object, program, mode, replace-foreign, maps, name$/],
      [5, 5, 'attach[0].zzz', /^unknown key; expected one of interfaces,/],
    ],
  },
  {
    name: 'YAML 1.1 merge keys are not merged: << is an unknown key',
    yaml: lines('base: &b {object: x.o}', 'attach:', '  - <<: *b', '    interfaces: [eth0]'),
    errors: [
      [1, 1, 'base', /^unknown key; expected one of settle/],
      [3, 5, 'attach[0].object', 'missing required key; expected the path of a BPF ELF object file'],
      [3, 5, 'attach[0]["<<"]', /^unknown key/],
    ],
  },
  {
    name: 'missing attach',
    yaml: lines('settle: 50ms'),
    errors: [[1, 1, 'attach', 'missing required key; expected a list of attach entries']],
  },
  {
    name: 'missing interfaces and object: at the entry',
    yaml: lines('attach:', '  - mode: generic', '  - name: second'),
    errors: [
      [2, 5, 'attach[0].interfaces', 'missing required key; expected a non-empty list of interface name globs'],
      [2, 5, 'attach[0].object', 'missing required key; expected the path of a BPF ELF object file'],
      [3, 5, 'attach[1].interfaces', /^missing required key/],
      [3, 5, 'attach[1].object', /^missing required key/],
    ],
  },
  {
    name: 'types',
    yaml: lines(
      'settle: true',
      'bpffs: 7',
      'metrics: 9477',
      'attach:',
      '  - interfaces: eth0',
      '    exclude: 3',
      '    kinds: veth',
      '    object: [a.o]',
      '    program: 42',
      '    replace-foreign: yes',
      '    name: {a: 1}',
      '  - nope',
    ),
    errors: [
      [1, 9, 'settle', 'expected a duration such as "50ms", "1.5s" or "2m", or a whole number of milliseconds, got true'],
      [2, 8, 'bpffs', 'expected an absolute path, got 7'],
      [3, 10, 'metrics', 'expected host:port, such as 127.0.0.1:9477 or [::1]:9477, got 9477'],
      [5, 17, 'attach[0].interfaces', 'expected a non-empty list of interface name globs, got "eth0"'],
      [6, 14, 'attach[0].exclude', 'expected a list of interface name globs, got 3'],
      [7, 12, 'attach[0].kinds', 'expected a non-empty list of link kinds, got "veth"'],
      [8, 13, 'attach[0].object', 'expected the path of a BPF ELF object file, got a list'],
      [9, 14, 'attach[0].program', /^expected the name of an XDP program in the object \(its C function name\), got 42$/],
      [10, 22, 'attach[0].replace-foreign', 'expected true or false, got "yes"'],
      [11, 11, 'attach[0].name', 'expected a label of 1 to 64 printable characters, got a mapping'],
      [12, 5, 'attach[1]', 'expected a mapping with at least "interfaces" and "object", got "nope"'],
    ],
  },
  {
    name: 'attach of the wrong type',
    yaml: lines('attach:', '  interfaces: [eth0]'),
    errors: [[2, 3, 'attach', 'expected a list of attach entries, got a mapping']],
  },
  {
    name: 'empty lists, empty strings, bad names',
    yaml: lines(
      'attach:',
      '  - interfaces: []',
      '    kinds: []',
      '    object: ""',
      '    name: ""',
      '  - interfaces: ["", eth0]',
      '    exclude: [""]',
      '    kinds: [Veth, "", device]',
      '    object: x.o',
      '    program: xdp-pass',
      `    name: "${'n'.repeat(65)}"`,
      '  - interfaces: [eth0]',
      '    object: x.o',
      '    name: "tab\\there"',
    ),
    errors: [
      [2, 17, 'attach[0].interfaces', 'expected a non-empty list of interface name globs, got an empty list'],
      [3, 12, 'attach[0].kinds', 'expected a non-empty list of link kinds, got an empty list'],
      [4, 13, 'attach[0].object', 'expected the path of a BPF ELF object file, got ""'],
      [5, 11, 'attach[0].name', 'expected a label of 1 to 64 printable characters, got ""'],
      [6, 18, 'attach[1].interfaces[0]', 'expected a shell glob on interface names, such as "eth*" or "ens[0-9]*", got ""'],
      [7, 15, 'attach[1].exclude[0]', /^expected a shell glob on interface names/],
      [8, 13, 'attach[1].kinds[0]', 'expected a link kind (IFLA_INFO_KIND in lower case, such as veth, bridge, vlan) or device, got "Veth"'],
      [8, 19, 'attach[1].kinds[1]', /^expected a link kind .*, got ""$/],
      [10, 14, 'attach[1].program', /^expected the name of an XDP program .*, got "xdp-pass"$/],
      [11, 11, 'attach[1].name', /^expected a label of 1 to 64 printable characters, got "n{65}"$/],
      [14, 11, 'attach[2].name', 'expected a label of 1 to 64 printable characters, got "tab\\there"'],
    ],
  },
  {
    name: 'durations the schema rejects',
    yaml: lines('settle: -5ms', 'max-settle: -5', ...ATTACH),
    errors: [
      [1, 9, 'settle', /^expected a duration .*, got "-5ms"$/],
      [2, 13, 'max-settle', /^expected a duration .*, got -5$/],
    ],
  },
  {
    name: 'durations: unknown units, spaces, fractions of a number, NaN, infinity, too long',
    yaml: lines('settle: 5h', 'max-settle: 5 ms', ...ATTACH),
    errors: [
      [1, 9, 'settle', /got "5h"$/],
      [2, 13, 'max-settle', /got "5 ms"$/],
    ],
  },
  {
    name: 'durations: NaN and infinities',
    yaml: lines('settle: .nan', 'max-settle: .inf', ...ATTACH),
    errors: [
      [1, 9, 'settle', /^expected a duration .*, got NaN$/],
      [2, 13, 'max-settle', /^expected a duration .*, got Infinity$/],
    ],
  },
  {
    name: 'durations: numbers must be whole milliseconds',
    yaml: lines('settle: 1.5', ...ATTACH),
    errors: [[1, 9, 'settle', /^expected a duration .*, got 1.5$/]],
  },
  {
    name: 'durations: strings must come to whole milliseconds',
    yaml: lines('settle: 0.5ms', ...ATTACH),
    errors: [[1, 9, 'settle', 'expected a whole number of milliseconds, got "0.5ms" (0.5ms)']],
  },
  {
    name: "durations: Node's timer limit",
    yaml: lines('settle: 2147483648', 'max-settle: 40000m', ...ATTACH),
    errors: [
      [1, 9, 'settle', /^expected a duration .*, got 2147483648$/],
      [2, 13, 'max-settle', 'expected at most 2147483647ms (about 24.8 days, Node\'s timer limit), got "40000m"'],
    ],
  },
  {
    name: 'max-settle below settle: at max-settle',
    yaml: lines('settle: 2s', 'max-settle: 1500ms', ...ATTACH),
    errors: [[2, 13, 'max-settle', 'expected a duration of at least settle (2s), got "1500ms"']],
  },
  {
    name: 'settle above the default max-settle: at settle',
    yaml: lines('settle: 2s', ...ATTACH),
    errors: [[1, 9, 'settle', 'expected at most max-settle (by default 1s), got "2s": set max-settle as well']],
  },
  {
    name: 'paths',
    yaml: lines('bpffs: sys/fs/bpf', `control-socket: /run/${'s'.repeat(110)}.sock`, ...ATTACH),
    errors: [
      [1, 8, 'bpffs', 'expected an absolute path, got "sys/fs/bpf"'],
      [2, 17, 'control-socket', 'expected a path of at most 107 bytes (sun_path), got 120 bytes'],
    ],
  },
  {
    name: 'metrics',
    yaml: lines('metrics: "[::1]:0"', ...ATTACH),
    errors: [[1, 10, 'metrics', 'expected a port from 1 to 65535, got "[::1]:0"']],
  },
  {
    name: 'metrics without a port',
    yaml: lines('metrics: localhost', ...ATTACH),
    errors: [[1, 10, 'metrics', 'expected host:port, such as 127.0.0.1:9477 or [::1]:9477, got "localhost"']],
  },
  {
    name: 'globs',
    yaml: lines(
      'attach:',
      '  - interfaces: ["ens[0-9", "!eth0", "a/b", "(eth|ens)0", "[z-a]", "eth{0", "veth\\\\"]',
      '    exclude: ["x)"]',
      '    object: x.o',
      `  - interfaces: ["${'a'.repeat(128)}", "${'a'.repeat(127)}", "${'b'.repeat(16)}*"]`,
      '    object: x.o',
    ),
    errors: [
      [2, 18, 'attach[0].interfaces[0]', /^invalid glob: Missing closing: "\]".*, got "ens\[0-9"$/],
      [2, 29, 'attach[0].interfaces[1]', /^a leading "!" would negate the glob, which is not supported: list the links to leave out under "exclude"/],
      [2, 38, 'attach[0].interfaces[2]', 'interface names cannot contain "/", got "a/b"'],
      [2, 45, 'attach[0].interfaces[3]', /^"\(" is not glob syntax here: use \{a,b\} for alternatives/],
      [2, 59, 'attach[0].interfaces[4]', /^invalid glob \(a reversed range/],
      [2, 68, 'attach[0].interfaces[5]', /^invalid glob: Missing closing: "\}"/],
      [2, 77, 'attach[0].interfaces[6]', /^invalid glob/],
      [3, 15, 'attach[0].exclude[0]', /^"\)" is not glob syntax here/],
      [5, 18, 'attach[1].interfaces[0]', /^can never match: it needs at least 128 bytes, but link names have at most 15 and alternative names at most 127, got "a+\.\.\."$/],
    ],
  },
  {
    name: 'duplicate names, also against a default name',
    yaml: lines(
      'attach:',
      '  - interfaces: [a]',
      '    object: x.o',
      '    name: edge',
      '  - interfaces: [b]',
      '    object: x.o',
      '    name: edge',
      '  - interfaces: [c]',
      '    object: x.o',
      '    name: attach[3]',
      '  - interfaces: [d]',
      '    object: x.o',
    ),
    errors: [
      [7, 11, 'attach[1].name', 'expected a name not used before, got "edge", the name of attach[0]'],
      [11, 5, 'attach[3]', 'expected a name not used before, got "attach[3]", the name of attach[2]'],
    ],
  },
  {
    name: 'netns: a non-empty list of namespace name globs',
    yaml: lines(
      'attach:',
      '  - interfaces: [eth0]',
      '    object: x.o',
      '    netns: cni-*',
      '  - interfaces: [eth0]',
      '    object: x.o',
      '    netns: []',
      '  - interfaces: [eth0]',
      '    object: x.o',
      '    netns: ["", 7, null]',
    ),
    errors: [
      [4, 12, 'attach[0].netns', 'expected a non-empty list of namespace name globs, got "cni-*"'],
      [7, 12, 'attach[1].netns', 'expected a non-empty list of namespace name globs, got an empty list'],
      [10, 13, 'attach[2].netns[0]', 'expected a shell glob on namespace names, such as "cni-*" or "host", got ""'],
      [10, 17, 'attach[2].netns[1]', 'expected a shell glob on namespace names, such as "cni-*" or "host", got 7'],
      [10, 20, 'attach[2].netns[2]', 'expected a shell glob on namespace names, such as "cni-*" or "host", got null (no value)'],
    ],
  },
  {
    name: 'netns globs: the interface glob rules, for file names',
    yaml: lines(
      'attach:',
      '  - interfaces: [eth0]',
      '    object: x.o',
      `    netns: ["cni-*", "run/netns/x", "!host", "(a|b)", "cni-[", "[z-a]", "${'n'.repeat(256)}", "${'n'.repeat(255)}", "${'m'.repeat(200)}*"]`,
    ),
    errors: [
      [4, 22, 'attach[0].netns[1]', 'namespace names cannot contain "/", got "run/netns/x"'],
      [4, 37, 'attach[0].netns[2]', 'a leading "!" would negate the glob, which is not supported: list the namespaces to manage instead (write "\\!" for a literal "!"), got "!host"'],
      [4, 46, 'attach[0].netns[3]', /^"\(" is not glob syntax here: use \{a,b\} for alternatives/],
      [4, 55, 'attach[0].netns[4]', /^invalid glob: Missing closing: "\]"/],
      [4, 64, 'attach[0].netns[5]', /^invalid glob \(a reversed range/],
      [4, 73, 'attach[0].netns[6]', /^can never match: it needs at least 256 bytes, but namespace names are file names, of at most 255 bytes \(NAME_MAX\), got "n+\.\.\."$/],
    ],
  },
  {
    name: 'netns-dirs: absolute, without "..", each directory once (after normalization)',
    yaml: lines(
      'netns-dirs:',
      '  - /run/netns',
      '  - run/netns',
      '  - /run/netns/',
      '  - //run//netns/.',
      '  - /run/x/../netns',
      '  - /var/run/netns',
      '  - 7',
      '  - ""',
      '  - "/run/a\\0b"',
      ...ATTACH,
    ),
    errors: [
      [3, 5, 'netns-dirs[1]', 'expected an absolute path, got "run/netns"'],
      [4, 5, 'netns-dirs[2]', 'expected a directory not listed before, got "/run/netns/", the directory of netns-dirs[0]'],
      [5, 5, 'netns-dirs[3]', 'expected a directory not listed before, got "//run//netns/.", the directory of netns-dirs[0]'],
      [6, 5, 'netns-dirs[4]', 'expected a path without ".." components (resolved after symlinks, it need not mean what it reads as), got "/run/x/../netns"'],
      [8, 5, 'netns-dirs[6]', 'expected an absolute path, got 7'],
      [9, 5, 'netns-dirs[7]', 'expected an absolute path, got ""'],
      [10, 5, 'netns-dirs[8]', 'expected an absolute path, got "/run/a\\u0000b"'],
    ],
  },
  {
    name: 'netns-dirs: a list',
    yaml: lines('netns-dirs: /run/netns', ...ATTACH),
    errors: [[1, 13, 'netns-dirs', 'expected a list of absolute directory paths, got "/run/netns"']],
  },
  {
    name: 'netns-dirs empty: a netns glob that cannot match "host" can never match, at the glob',
    yaml: lines(
      'netns-dirs: []',
      'attach:',
      '  - interfaces: [eth0]',
      '    object: x.o',
      '  - interfaces: [eth1]',
      '    object: x.o',
      '    netns: [host, "cni-*", "*", "h?st", "{host,pod}", "[!h]*"]',
      '  - name: pods',
      '    interfaces: [eth2]',
      '    object: x.o',
      '    netns: ["cni-*"]',
    ),
    errors: [
      [7, 19, 'attach[1].netns[1]', 'expected a glob that matches "host": netns-dirs is empty, so no other namespace can be managed, got "cni-*"'],
      [7, 55, 'attach[1].netns[5]', 'expected a glob that matches "host": netns-dirs is empty, so no other namespace can be managed, got "[!h]*"'],
      [11, 13, 'attach[2].netns[0]', /^expected a glob that matches "host": netns-dirs is empty/],
    ],
  },
  {
    name: 'netns-dirs invalid: the netns globs are checked for syntax only',
    yaml: lines('netns-dirs: [run]', 'attach:', '  - interfaces: [eth0]', '    object: x.o', '    netns: ["cni-*"]'),
    errors: [[1, 14, 'netns-dirs[0]', 'expected an absolute path, got "run"']],
  },
  {
    name: 'unknown keys near the netns keys: aliases, and an entry key at the top',
    yaml: lines(
      'netns_dirs: [/run/netns]',
      'namespace-dirs: [/run/netns]',
      'netns: [host]',
      'namespaces: [host]',
      'attach:',
      '  - interfaces: [eth0]',
      '    object: x.o',
      '    namespaces: ["cni-*"]',
      '    Network_Namespace: [host]',
      '    netn: [host]',
      '    netns-dirs: [/run/netns]',
    ),
    errors: [
      [1, 1, 'netns_dirs', /^unknown key \(did you mean "netns-dirs"\?\); expected one of settle,/],
      [2, 1, 'namespace-dirs', /^unknown key \(did you mean "netns-dirs"\?\);/],
      [3, 1, 'netns', /^unknown key \("netns" is a key of each attach entry\); expected one of settle,/],
      [4, 1, 'namespaces', /^unknown key; expected one of settle,/],
      [8, 5, 'attach[0].namespaces', /^unknown key \(did you mean "netns"\?\); expected one of interfaces,/],
      [9, 5, 'attach[0].Network_Namespace', /^unknown key \(did you mean "netns"\?\);/],
      [10, 5, 'attach[0].netn', /^unknown key \(did you mean "netns"\?\);/],
      [11, 5, 'attach[0].netns-dirs', /^unknown key; expected one of interfaces,/],
    ],
  },
  {
    name: 'an error inside an aliased node is reported at the anchor',
    yaml: lines('attach:', '  - interfaces: &globs ["eth[", eth1]', '    object: x.o', '  - interfaces: *globs', '    object: y.o'),
    errors: [
      [2, 25, 'attach[0].interfaces[0]', /^invalid glob/],
      [2, 25, 'attach[1].interfaces[0]', /^invalid glob/],
    ],
  },
  {
    name: 'YAML: syntax error',
    yaml: lines('attach:', '  - interfaces: [eth0', '    object: x.o'),
    errors: [[3, 5, '', /^YAML: /]],
  },
  {
    name: 'YAML: duplicate keys, each reported',
    yaml: lines('settle: 1ms', 'settle: 2ms', 'attach:', '  - interfaces: [a]', '    object: x.o', '    object: y.o'),
    errors: [
      [2, 1, '', 'YAML: Map keys must be unique'],
      [6, 5, '', 'YAML: Map keys must be unique'],
    ],
  },
  {
    name: 'YAML: more than one document',
    yaml: lines(...ATTACH, '---', ...ATTACH),
    errors: [[4, 1, '', 'YAML: expected one document, but "---" starts another']],
  },
  {
    name: 'YAML: an unknown tag',
    yaml: lines('settle: !seconds 5', ...ATTACH),
    errors: [[1, 9, '', /^YAML: Unresolved tag: !seconds/]],
  },
  {
    name: 'YAML: tab indentation',
    yaml: lines('attach:', '\t- interfaces: [a]'),
    errors: [[2, 1, '', /^YAML: /]],
  },
  {
    name: 'empty file',
    yaml: '',
    errors: [[1, 1, '', 'the file holds no settings; expected a mapping with at least the key "attach"']],
  },
  {
    name: 'only comments',
    yaml: lines('# nothing yet', '# still nothing'),
    errors: [[1, 1, '', 'the file holds no settings; expected a mapping with at least the key "attach"']],
  },
  {
    name: 'a list at the top',
    yaml: lines('- interfaces: [eth0]'),
    errors: [[1, 1, '', 'expected a mapping with at least the key "attach", got a list']],
  },
]

t.test('validation errors: position, key path, message; all of them, in file order', async (t) => {
  for (const c of cases) {
    const got = errorsOf(c.yaml)
    t.test(c.name, async (t) => {
      t.equal(got.length, c.errors.length, `error count; got:\n${got.map(String).join('\n')}`)
      c.errors.forEach(([line, col, path, message], i) => {
        const e = got[i]
        if (e === undefined) return t.fail(`missing error ${i}: ${path}: ${String(message)}`)
        t.equal(e.file, FILE, `[${i}] file`)
        t.same([e.line, e.col, e.path], [line, col, path], `[${i}] ${e.toString()}`)
        if (typeof message === 'string') t.equal(e.message, message, `[${i}] message`)
        else t.match(e.message, message, `[${i}] message`)
      })
    })
  }
})

t.test('toString is file:line:col: path: message', async (t) => {
  const [e] = errorsOf(cases[0]?.yaml ?? '')
  t.equal(String(e), '/etc/xdplinkd/config.yaml:7:11: attach[1].mode: expected one of auto, native, generic, offload, got "nativ"')
  const [syntax] = errorsOf('attach: [\n')
  t.match(String(syntax), /^\/etc\/xdplinkd\/config\.yaml:\d+:\d+: YAML: /, 'no key path for syntax errors')
})

t.test('defaults', async (t) => {
  const r = parseConfig(lines(...ATTACH), FILE)
  t.same(r, {
    ok: true,
    value: {
      path: FILE,
      settleMs: 50,
      maxSettleMs: 1000,
      bpffs: '/sys/fs/bpf/xdplinkd',
      onExit: 'keep',
      controlSocket: '/run/xdplinkd/control.sock',
      controlGroup: null,
      metrics: null,
      netnsDirs: ['/run/netns', '/run/docker/netns'],
      entries: [
        {
          index: 0,
          name: 'attach[0]',
          interfaces: ['eth0'],
          exclude: [],
          kinds: null,
          netns: ['host'],
          object: '/opt/x.o',
          program: null,
          mode: 'auto',
          replaceForeign: false,
          maps: [],
        },
      ],
    },
  })
})

t.test('every setting', async (t) => {
  const r = parseConfig(
    lines(
      'settle: 0.1s',
      'max-settle: 2m',
      'bpffs: /sys/fs/bpf/other/',
      'on-exit: detach',
      'control-socket: /run/x//ctl.sock',
      'control-group: 4242',
      'metrics: "[::1]:9100"',
      'netns-dirs: [/run/netns/, "//var/run/./netns", /]',
      'attach:',
      '  - interfaces: ["veth*", xdpl*]',
      '    exclude: [veth9]',
      '    kinds: [veth, device, veth]',
      '    netns: [host, "cni-*"]',
      '    object: ../bpf/xdp_pass.o',
      '    program: xdp_pass',
      '    mode: generic',
      '    replace-foreign: true',
      '    name: test links',
      '  - interfaces: ["*"]',
      '    object: /opt/drop.o',
      '    mode: offload',
    ),
    FILE,
  )
  t.same(r, {
    ok: true,
    value: {
      path: FILE,
      settleMs: 100,
      maxSettleMs: 120000,
      bpffs: '/sys/fs/bpf/other',
      onExit: 'detach',
      controlSocket: '/run/x/ctl.sock',
      controlGroup: { name: null, gid: 4242 },
      metrics: { host: '::1', port: 9100 },
      netnsDirs: ['/run/netns', '/var/run/netns', '/'],
      entries: [
        {
          index: 0,
          name: 'test links',
          interfaces: ['veth*', 'xdpl*'],
          exclude: ['veth9'],
          kinds: ['veth', 'device'],
          netns: ['host', 'cni-*'],
          object: '/etc/bpf/xdp_pass.o',
          program: 'xdp_pass',
          mode: 'generic',
          replaceForeign: true,
          maps: [],
        },
        {
          index: 1,
          name: 'attach[1]',
          interfaces: ['*'],
          exclude: [],
          kinds: null,
          netns: ['host'],
          object: '/opt/drop.o',
          program: null,
          mode: 'offload',
          replaceForeign: false,
          maps: [],
        },
      ],
    },
  })
})

t.test('an empty attach list is valid (it detaches whatever xdplinkd attached)', async (t) => {
  const r = parseConfig('attach: []\n', FILE)
  t.ok(r.ok)
  if (r.ok) t.same(r.value.entries, [])
})

t.test('netns and netns-dirs: what each setting gives', async (t) => {
  const entry = (netns: string): string[] => ['attach:', '  - interfaces: [eth0]', '    object: x.o', ...(netns === '' ? [] : [`    netns: ${netns}`])]
  const table: [yaml: string[], netnsDirs: string[], netns: string[]][] = [
    [entry(''), ['/run/netns', '/run/docker/netns'], ['host']],
    [['netns-dirs: []', ...entry('')], [], ['host']],
    [['netns-dirs: []', ...entry('[host]')], [], ['host']],
    [['netns-dirs: []', ...entry('["*"]')], [], ['*']],
    [['netns-dirs: []', ...entry('["h*", "{host,x}", "[h]ost"]')], [], ['h*', '{host,x}', '[h]ost']],
    [['netns-dirs: [/srv/ns]', ...entry('["cni-*"]')], ['/srv/ns'], ['cni-*']],
    [['netns-dirs: [/run/netns/, /run/docker/netns//]', ...entry('[cni-*, "myns", host, host]')], ['/run/netns', '/run/docker/netns'], ['cni-*', 'myns', 'host', 'host']],
    [['netns-dirs: ["/run/./netns"]', ...entry('[\\!odd, "a.b", ".hidden", "ns with spaces"]')], ['/run/netns'], ['\\!odd', 'a.b', '.hidden', 'ns with spaces']],
    [entry(`["${'n'.repeat(255)}"]`), ['/run/netns', '/run/docker/netns'], ['n'.repeat(255)]],
  ]
  for (const [yaml, netnsDirs, netns] of table) {
    const r = parseConfig(lines(...yaml), FILE)
    t.same(r.ok ? [r.value.netnsDirs, r.value.entries[0]?.netns] : r.error.map(String), [netnsDirs, netns], yaml.join(' / '))
  }
})

t.test('metrics: null means off', async (t) => {
  for (const v of ['null', '~', '']) {
    const r = parseConfig(lines(`metrics: ${v}`, ...ATTACH), FILE)
    t.equal(r.ok && r.value.metrics, null, JSON.stringify(v))
  }
})

t.test('control-group: a name looked up in the group table, or a number; errors at the value', async (t) => {
  const groups = ok(new Map([['xdpops', 4242], ['adm', 4]]))
  const table: [yaml: string, opts: Parameters<typeof parseConfig>[2], want: unknown][] = [
    ['control-group: xdpops', { groups }, { name: 'xdpops', gid: 4242 }],
    ['control-group: 4242', {}, { name: null, gid: 4242 }],
    ['control-group: 0', {}, { name: null, gid: 0 }],
    ['control-group: 4294967294', {}, { name: null, gid: 4294967294 }],
    ['control-group: null', {}, null],
    ['control-group:', {}, null],
    ['control-group: adm', { groups }, { name: 'adm', gid: 4 }],
    ['control-group: "machine$"', { groups: ok(new Map([['machine$', 7]])) }, { name: 'machine$', gid: 7 }],
  ]
  for (const [yaml, opts, want] of table) {
    const r = parseConfig(lines(yaml, ...ATTACH), FILE, opts)
    t.same(r.ok ? r.value.controlGroup : r.error.map(String), want, yaml)
  }
  const expected = 'a group name (from /etc/group) or a group id, such as xdpops or 4242'
  const rejected: [yaml: string, opts: Parameters<typeof parseConfig>[2], message: string][] = [
    ['control-group: nosuch', { groups }, 'expected a group in /etc/group or a group id, got "nosuch", which /etc/group does not have (for a group from LDAP or another NSS source, give its number)'],
    ['control-group: xdpops', {}, 'cannot look up group "xdpops": /etc/group: it was not read; give the group\'s number instead'],
    ['control-group: xdpops', { groups: err('EACCES: permission denied') }, 'cannot look up group "xdpops": /etc/group: EACCES: permission denied; give the group\'s number instead'],
    ['control-group: -1', {}, `expected ${expected}, got -1`],
    ['control-group: 4294967295', {}, `expected ${expected}, got 4294967295`],
    ['control-group: 1.5', {}, `expected ${expected}, got 1.5`],
    ['control-group: "4242"', { groups }, `expected ${expected}, got "4242"`],
    ['control-group: "ops team"', { groups }, `expected ${expected}, got "ops team"`],
    ['control-group: ""', { groups }, `expected ${expected}, got ""`],
    [`control-group: ${'g'.repeat(33)}`, { groups }, `expected ${expected}, got "${'g'.repeat(33)}"`],
    ['control-group: [adm]', { groups }, `expected ${expected}, got a list`],
    ['control-group: true', { groups }, `expected ${expected}, got true`],
  ]
  for (const [yaml, opts, message] of rejected) {
    const r = parseConfig(lines(yaml, ...ATTACH), FILE, opts)
    t.same(r.ok ? r.value : r.error.map(String), [`${FILE}:1:16: control-group: ${message}`], yaml)
  }
})

t.test('the group file: name:password:GID:members, first line for a name wins, the rest skipped', async (t) => {
  const text = [
    'root:x:0:',
    'adm:x:4:syslog,alice',
    '# a comment:x:5:',
    '+nisgroup::77:',
    '-other::78:',
    'xdpops:x:4242:alice,bob',
    'xdpops:x:9999:',
    'broken:x:notanumber:',
    'short:x:12',
    'big:x:4294967295:',
    '',
    'last:*:100:',
  ].join('\n')
  t.same([...parseGroupFile(text)], [
    ['root', 0],
    ['adm', 4],
    ['xdpops', 4242],
    ['last', 100],
  ])
})

t.test('durations', async (t) => {
  const table: [string, number][] = [
    ['0', 0],
    ['0ms', 0],
    ['50', 50],
    ['50ms', 50],
    ['1s', 1000],
    ['1.5s', 1500],
    ['0.1s', 100],
    ['0.001s', 1],
    ['2m', 120000],
    ['0.5m', 30000],
    ['"250ms"', 250],
    ['1e3', 1000],
    ['2147483647', 2147483647],
  ]
  for (const [v, ms] of table) {
    const r = parseConfig(lines(`settle: ${v}`, `max-settle: ${v}`, ...ATTACH), FILE)
    t.same(r.ok && [r.value.settleMs, r.value.maxSettleMs], [ms, ms], v)
  }
  const rejected = ['-1', '-1ms', '1h', '1d', '1us', '5 s', 's', '.5s', '1.5', '"50"', '0.0001s', 'NaN', '.nan', '.inf', '-.inf', '1s500ms', '2147483648', '35792m', 'true', '[1s]']
  for (const v of rejected) {
    const r = parseConfig(lines(`settle: ${v}`, 'max-settle: 2147483647', ...ATTACH), FILE)
    t.notOk(r.ok, v)
    if (!r.ok) t.same(r.error.map((e) => [e.path, e.line, e.col]), [['settle', 1, 9]], `${v}: ${r.error.map(String).join('; ')}`)
  }
})

t.test('relative object paths are relative to the config file directory', async (t) => {
  const table: [file: string, object: string, want: string][] = [
    ['/etc/xdplinkd/config.yaml', 'x.o', '/etc/xdplinkd/x.o'],
    ['/etc/xdplinkd/config.yaml', './bpf/x.o', '/etc/xdplinkd/bpf/x.o'],
    ['/etc/xdplinkd/config.yaml', '../../opt/x.o', '/opt/x.o'],
    ['/etc/xdplinkd/config.yaml', '/usr/lib/xdplinkd/x.o', '/usr/lib/xdplinkd/x.o'],
    ['/etc/xdplinkd/config.yaml', '/usr//lib/./x.o', '/usr/lib/x.o'],
    ['/config.yaml', 'x.o', '/x.o'],
    ['/etc/xdplinkd/../xdplinkd/config.yaml', 'x.o', '/etc/xdplinkd/x.o'],
    ['examples/config.yaml', '../bpf/xdp_pass.o', posix.resolve('bpf/xdp_pass.o')],
  ]
  for (const [file, object, want] of table) {
    const r = parseConfig(lines('attach:', '  - interfaces: [eth0]', `    object: ${object}`), file)
    t.equal(r.ok && r.value.entries[0]?.object, want, `${file} + ${object}`)
    t.equal(r.ok && r.value.path, posix.resolve(file), 'config path is absolute')
  }
})

t.test('errors name the config file as an absolute path', async (t) => {
  const r = parseConfig('attach: 1\n', 'conf/c.yaml')
  t.equal(!r.ok && r.error[0]?.file, posix.resolve('conf/c.yaml'))
})

t.test('parseHostPort', async (t) => {
  const good: [string, string, number][] = [
    ['127.0.0.1:9477', '127.0.0.1', 9477],
    ['0.0.0.0:1', '0.0.0.0', 1],
    ['[::1]:9477', '::1', 9477],
    ['[::]:65535', '::', 65535],
    ['[fe80::1%eth0]:80', 'fe80::1%eth0', 80],
    ['localhost:9477', 'localhost', 9477],
    ['metrics.example-host.internal:9100', 'metrics.example-host.internal', 9100],
  ]
  for (const [s, host, port] of good) t.same(parseHostPort(s), { ok: true, value: { host, port } }, s)
  const bad: [string, RegExp][] = [
    ['9477', /^expected host:port/],
    [':9477', /^expected an IP address or a host name/],
    ['localhost:', /^expected host:port/],
    ['localhost:0', /^expected a port from 1 to 65535/],
    ['localhost:65536', /^expected a port from 1 to 65535/],
    ['::1:9477', /^expected host:port/],
    ['[::g]:9477', /^expected an IPv6 address in the brackets/],
    ['[127.0.0.1]:9477', /^expected an IPv6 address in the brackets/],
    ['999.1.1.1:80', /^expected a valid IPv4 address/],
    ['bad_host:80', /^expected an IP address or a host name/],
    ['-host:80', /^expected an IP address or a host name/],
    ['a..b:80', /^expected an IP address or a host name/],
  ]
  for (const [s, message] of bad) {
    const r = parseHostPort(s)
    t.match(r.ok ? null : r.error, message, s)
  }
})

t.test('repr', async (t) => {
  t.equal(repr(undefined), 'nothing')
  t.equal(repr(null), 'null (no value)')
  t.equal(repr('a"b'), '"a\\"b"')
  t.equal(repr([]), 'an empty list')
  t.equal(repr([1]), 'a list')
  t.equal(repr({}), 'a mapping')
  t.equal(repr(false), 'false')
  t.equal(repr('x'.repeat(200)).length, 80)
})

t.test('maps: the list form, keys/value, entries (mapping and list), file; every key and value located', async (t) => {
  const yaml = lines(
    'attach:',
    '  - interfaces: [eth0]',
    '    object: xdp_blocklist.o',
    '    maps:',
    '      blocklist_v4: [192.0.2.0/24, 198.51.100.7]',
    '      blocklist_v6:',
    '        keys:',
    '          - 2001:db8::/32',
    '        value: 1',
    '        file: lists/v6.txt',
    '      ports:',
    '        entries:',
    '          443: { limit: 10 }',
    '      flows:',
    '        entries:',
    '          - key: { src: 10.0.0.1, port: 53 }',
    '            value: 7',
  )
  const r = parseConfig(yaml, FILE)
  if (!r.ok) return void t.fail(r.error.map(String).join('\n'))
  const maps = r.value.entries[0]!.maps
  const at = (line: number, col: number, path: string) => ({ file: FILE, line, col, path })
  t.same(maps, [
    {
      map: 'blocklist_v4',
      at: at(5, 7, 'attach[0].maps.blocklist_v4'),
      items: [
        { key: '192.0.2.0/24', at: at(5, 22, 'attach[0].maps.blocklist_v4[0]') },
        { key: '198.51.100.7', at: at(5, 36, 'attach[0].maps.blocklist_v4[1]') },
      ],
      file: null,
      fileAt: null,
    },
    {
      map: 'blocklist_v6',
      at: at(6, 7, 'attach[0].maps.blocklist_v6'),
      items: [{ key: '2001:db8::/32', at: at(8, 13, 'attach[0].maps.blocklist_v6.keys[0]') }],
      value: 1,
      valueAt: at(9, 16, 'attach[0].maps.blocklist_v6.value'),
      file: '/etc/xdplinkd/lists/v6.txt',
      fileAt: at(10, 15, 'attach[0].maps.blocklist_v6.file'),
    },
    {
      map: 'ports',
      at: at(11, 7, 'attach[0].maps.ports'),
      items: [{ key: '443', value: { limit: 10 }, at: at(13, 11, 'attach[0].maps.ports.entries.443'), valueAt: at(13, 16, 'attach[0].maps.ports.entries.443') }],
      file: null,
      fileAt: null,
    },
    {
      map: 'flows',
      at: at(14, 7, 'attach[0].maps.flows'),
      items: [
        {
          key: { src: '10.0.0.1', port: 53 },
          value: 7,
          at: at(16, 18, 'attach[0].maps.flows.entries[0].key'),
          valueAt: at(17, 20, 'attach[0].maps.flows.entries[0].value'),
        },
      ],
      file: null,
      fileAt: null,
    },
  ])
})

t.test('maps: what the schema refuses, at the key or value', async (t) => {
  const cases: [string[], number, number, string, RegExp][] = [
    [['      "bad name": [1]'], 5, 7, 'attach[0].maps["bad name"]', /expected the name of a map in the object/],
    [['      m: {}'], 5, 10, 'attach[0].maps.m', /expected a list of keys, or a mapping with "keys", "entries", "value" or "file"/],
    [['      m: { key: [1] }'], 5, 12, 'attach[0].maps.m.key', /^unknown key \(did you mean "keys"\?\)/],
    [['      m: 5'], 5, 10, 'attach[0].maps.m', /expected a list of keys, or a mapping/],
    [['      m: { entries: [ { key: 1 } ] }'], 5, 23, 'attach[0].maps.m.entries[0].value', /^missing required key$/],
    [['      m: { file: "" }'], 5, 18, 'attach[0].maps.m.file', /expected the path of a file of keys/],
  ]
  for (const [extra, line, col, path, message] of cases) {
    const errors = errorsOf(lines(...ATTACH, '    maps:', ...extra))
    t.equal(errors.length, 1, `${extra.join(' / ')}: ${errors.map(String).join(' | ')}`)
    const e = errors[0]
    t.same([e?.line, e?.col, e?.path], [line, col, path], `${extra.join(' / ')}: ${String(e)}`)
    t.match(e?.message, message)
  }
})
