/**
 * The config file's JSON Schema. schema/config.schema.json is this object, serialized (test/config/schema.test.ts
 * fails when the two differ by a byte), and validate.ts compiles this object: what editors check and what the
 * daemon checks cannot drift apart. Checks a schema cannot express (max-settle >= settle, glob syntax, port range,
 * duplicate names) live in validate.ts.
 *
 * `x-expected` is an annotation of ours: the "expected ..." half of the error message for a value that fails the
 * type, pattern, length or range keywords next to it. Validators that do not know it ignore it.
 */
import { XDP_ENTRY_MODES } from '../rtnl/xdp.js'
import { DEFAULT_NETNS, DEFAULT_NETNS_DIRS } from './types.js'

export const SCHEMA_ID = 'urn:xdplinkd:config'

/** Longest duration: Node's timers hold at most 2^31-1 ms and fire after 1 ms when given more. */
export const MAX_DURATION_MS = 2147483647

export const configSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: SCHEMA_ID,
  title: 'xdplinkd configuration',
  description:
    'Which XDP programs xdplinkd keeps attached to which network interfaces. Default path: /etc/xdplinkd/config.yaml.',
  type: 'object',
  'x-expected': 'a mapping with at least the key "attach"',
  additionalProperties: false,
  required: ['attach'],
  properties: {
    settle: {
      $ref: '#/$defs/duration',
      description: 'How long a link must be quiet (no netlink change) before it is reconciled. Default 50ms.',
      default: '50ms',
    },
    'max-settle': {
      $ref: '#/$defs/duration',
      description: 'A link that keeps changing is reconciled at the latest this long after its first change. Must be >= settle. Default 1s.',
      default: '1s',
    },
    bpffs: {
      $ref: '#/$defs/absolutePath',
      description: 'Directory on a BPF filesystem where loaded programs and their maps are pinned.',
      default: '/sys/fs/bpf/xdplinkd',
    },
    'on-exit': {
      enum: ['keep', 'detach'],
      description: 'What happens to the attached programs when xdplinkd exits: keep them attached (the protection stays during a restart), or detach the ones it attached.',
      default: 'keep',
    },
    'control-socket': {
      $ref: '#/$defs/absolutePath',
      description: 'Unix socket for xdplinkd\'s control commands (at most 107 bytes: sun_path).',
      default: '/run/xdplinkd/control.sock',
    },
    'control-group': {
      type: ['string', 'integer', 'null'],
      pattern: '^[A-Za-z_][A-Za-z0-9_.-]*[$]?$',
      maxLength: 32,
      minimum: 0,
      maximum: 4294967294,
      'x-expected': 'a group name (from /etc/group) or a group id, such as xdpops or 4242',
      description:
        'Members of this group (primary or supplementary) may use the control socket besides root. Absent or null: root only. The socket file\'s mode is checked first, by the kernel (see docs/reference.md).',
    },
    metrics: {
      type: ['string', 'null'],
      pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9._-]+):[0-9]{1,5}$',
      'x-expected': 'host:port, such as 127.0.0.1:9477 or [::1]:9477',
      description: 'Where to serve Prometheus metrics. Absent or null: no metrics endpoint.',
    },
    'netns-dirs': {
      type: 'array',
      items: { $ref: '#/$defs/absolutePath' },
      'x-expected': 'a list of absolute directory paths',
      default: [...DEFAULT_NETNS_DIRS],
      description:
        'Directories of network namespace files (bind mounts of /proc/PID/ns/net): a namespace there is named by its file name in "netns". Default: /run/netns (ip netns, containerd, CRI-O) and /run/docker/netns (Docker). Empty: only the daemon\'s own namespace ("host") can be managed.',
    },
    attach: {
      type: 'array',
      items: { $ref: '#/$defs/attachEntry' },
      'x-expected': 'a list of attach entries',
      description:
        'Ordered: for each link, the first entry that matches it (and whose "netns" matches the link\'s namespace) decides which program it gets. A link that no entry matches gets none, and a program xdplinkd attached to it is detached; an empty list therefore detaches everything xdplinkd attached.',
    },
  },
  $defs: {
    duration: {
      type: ['string', 'integer'],
      pattern: '^[0-9]+(\\.[0-9]+)?(ms|s|m)$',
      minimum: 0,
      maximum: MAX_DURATION_MS,
      'x-expected': 'a duration such as "50ms", "1.5s" or "2m", or a whole number of milliseconds',
    },
    absolutePath: {
      type: 'string',
      pattern: '^/[^\\u0000]*$',
      'x-expected': 'an absolute path',
    },
    glob: {
      type: 'string',
      minLength: 1,
      'x-expected': 'a shell glob on interface names, such as "eth*" or "ens[0-9]*"',
      description:
        'Matched against the link name and each alternative name: * ? [...] [!...] {a,b} and \\ escapes. Link names have at most 15 bytes, alternative names at most 127.',
    },
    netnsGlob: {
      type: 'string',
      minLength: 1,
      'x-expected': 'a shell glob on namespace names, such as "cni-*" or "host"',
      description:
        'Matched against a namespace\'s name: its file name in a directory of "netns-dirs", or "host" for the daemon\'s own namespace (which * matches too). Same syntax as interface globs; no "/".',
    },
    kind: {
      type: 'string',
      pattern: '^[a-z0-9][a-z0-9_.-]*$',
      'x-expected': 'a link kind (IFLA_INFO_KIND in lower case, such as veth, bridge, vlan) or device',
    },
    mapName: {
      type: 'string',
      pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
      maxLength: 255,
      'x-expected': 'the name of a map in the object (its C variable name)',
    },
    mapContents: {
      type: ['array', 'object'],
      'x-expected': 'a list of keys, or a mapping with "keys", "entries", "value" or "file"',
      additionalProperties: false,
      minProperties: 1,
      properties: {
        keys: {
          type: 'array',
          'x-expected': 'a list of keys',
          description: 'Keys the map holds, each with the value of "value" (all zero bytes without it): a set, such as a block list of prefixes.',
        },
        entries: {
          type: ['array', 'object'],
          items: { $ref: '#/$defs/mapEntry' },
          'x-expected': 'a mapping of keys to values, or a list of {key, value}',
          description: 'Keys with their own values: "KEY: VALUE" pairs, or a list of {key: KEY, value: VALUE} where a key is not a plain scalar (a struct).',
        },
        value: {
          description: 'The value of every key of "keys" and "file". Absent: all zero bytes.',
        },
        file: {
          type: 'string',
          minLength: 1,
          pattern: '^[^\\u0000]*$',
          'x-expected': 'the path of a file of keys, one a line',
          description:
            'More keys, one a line ("#" starts a comment), with the value of "value"; a relative path is relative to the config file\'s directory. Checked like object files, and watched: a change is applied without a reload.',
        },
      },
    },
    mapEntry: {
      type: 'object',
      'x-expected': 'a mapping with "key" and "value"',
      additionalProperties: false,
      required: ['key', 'value'],
      properties: { key: {}, value: {} },
    },
    attachEntry: {
      type: 'object',
      'x-expected': 'a mapping with at least "interfaces" and "object"',
      additionalProperties: false,
      required: ['interfaces', 'object'],
      properties: {
        interfaces: {
          type: 'array',
          minItems: 1,
          items: { $ref: '#/$defs/glob' },
          'x-expected': 'a non-empty list of interface name globs',
          description: 'A link matches when its name or any of its alternative names matches one of these globs.',
        },
        exclude: {
          type: 'array',
          items: { $ref: '#/$defs/glob' },
          'x-expected': 'a list of interface name globs',
          description: 'A link is left to later entries when its name or any alternative name matches one of these.',
        },
        kinds: {
          type: 'array',
          minItems: 1,
          items: { $ref: '#/$defs/kind' },
          'x-expected': 'a non-empty list of link kinds',
          description:
            'Only links of these kinds (IFLA_INFO_KIND: veth, bridge, vlan, ...) match; "device" stands for links without a kind, such as physical NICs. Absent: any kind.',
        },
        netns: {
          type: 'array',
          minItems: 1,
          items: { $ref: '#/$defs/netnsGlob' },
          'x-expected': 'a non-empty list of namespace name globs',
          default: [...DEFAULT_NETNS],
          description:
            'The network namespaces whose links the entry is for, by name: "host" is the daemon\'s own, any other name a file in a directory of "netns-dirs". Absent: ["host"] only.',
        },
        object: {
          type: 'string',
          minLength: 1,
          pattern: '^[^\\u0000]*$',
          'x-expected': 'the path of a BPF ELF object file',
          description: 'A relative path is relative to the config file\'s directory.',
        },
        program: {
          type: 'string',
          pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
          'x-expected': 'the name of an XDP program in the object (its C function name)',
          description: 'Optional when the object holds exactly one XDP program.',
        },
        mode: {
          enum: [...XDP_ENTRY_MODES],
          default: 'auto',
          description: 'auto lets the kernel choose (native where the driver supports XDP, else generic).',
        },
        'replace-foreign': {
          type: 'boolean',
          'x-expected': 'true or false',
          default: false,
          description: 'May xdplinkd replace an XDP program it did not attach (another tool\'s)? Default false: such a link is left alone.',
        },
        maps: {
          type: 'object',
          'x-expected': 'a mapping of map names (as in the object) to their declared contents',
          propertyNames: { $ref: '#/$defs/mapName' },
          additionalProperties: { $ref: '#/$defs/mapContents' },
          description:
            'The contents xdplinkd keeps in the program\'s maps, typed by each map\'s BTF (docs/maps.md). A map named here holds exactly what is declared, after start-up and every reload; a map not named is never touched. Entries that share a program (same object and program) share its maps: they may not declare different contents for one map.',
        },
        name: {
          type: 'string',
          minLength: 1,
          maxLength: 64,
          pattern: '^[^\\u0000-\\u001f\\u007f]*$',
          'x-expected': 'a label of 1 to 64 printable characters',
          description: 'Label for logs and metrics; unique within the file. Default "attach[<index>]".',
        },
      },
    },
  },
} as const
