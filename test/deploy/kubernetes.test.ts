/**
 * The Kubernetes manifests in deploy/kubernetes/, without a cluster:
 *
 *  - every object against the Kubernetes API schema as the kubernetes-models package has it (generated from the
 *    API's OpenAPI document). Two checks, because its runtime validate() (ajv, per object) checks types, required
 *    fields and formats but lets unknown fields through, as the OpenAPI schemas do: a misspelled field is caught by
 *    type-checking the object against the package's TypeScript interface for its kind with the TypeScript compiler,
 *    whose excess-property check refuses any field the API does not have, at any depth. Both are shown to fail on a
 *    deliberately broken copy;
 *  - kustomization.yaml lists every manifest of the directory, and kubectl (when installed) renders it;
 *  - the ConfigMap's config passes the daemon's own validation (parseConfig, what `xdplinkd check` runs first) and
 *    agrees with the DaemonSet: pins, the control socket and the namespace directories on host paths, the probes on
 *    the metrics listener, and a documented reason in docs/kubernetes.md for every capability added.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { join, posix } from 'node:path'
import ts from 'typescript'
import { parseAllDocuments } from 'yaml'
import { DaemonSet, type IDaemonSet } from 'kubernetes-models/apps/v1'
import { ConfigMap, Namespace, ServiceAccount, type IConfigMap, type IContainer } from 'kubernetes-models/v1'
import { parseConfig } from '../../src/config/validate.js'

const ROOT = new URL('../../', import.meta.url).pathname
const DIR = join(ROOT, 'deploy/kubernetes')
const DOC = readFileSync(join(ROOT, 'docs/kubernetes.md'), 'utf8')
/** Where the image reads its config (the ConfigMap is mounted as this directory). */
const CONFIG_PATH = '/etc/xdplinkd/config.yaml'

interface Model {
  validate(): void
}
/** Each kind the manifests may use: its model class (runtime schema) and its interface (for the compiler). */
const KINDS: Record<string, { model: new (data: never) => Model; module: string; iface: string }> = {
  'v1/Namespace': { model: Namespace, module: 'kubernetes-models/v1', iface: 'INamespace' },
  'v1/ServiceAccount': { model: ServiceAccount, module: 'kubernetes-models/v1', iface: 'IServiceAccount' },
  'v1/ConfigMap': { model: ConfigMap, module: 'kubernetes-models/v1', iface: 'IConfigMap' },
  'apps/v1/DaemonSet': { model: DaemonSet, module: 'kubernetes-models/apps/v1', iface: 'IDaemonSet' },
}

interface Manifest {
  /** `daemonset.yaml`, or `daemonset.yaml#2` for the third document of a file. */
  where: string
  data: Record<string, unknown>
}

const manifestFiles = (): string[] =>
  readdirSync(DIR)
    .filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')
    .sort()

function parseManifests(file: string, text: string): { manifests: Manifest[]; errors: string[] } {
  const manifests: Manifest[] = []
  const errors: string[] = []
  // As kubectl reads them (sigs.k8s.io/yaml over go-yaml): YAML 1.1, where `yes` is a boolean and 0644 octal.
  const docs = parseAllDocuments(text, { version: '1.1' })
  if (!Array.isArray(docs)) return { manifests, errors: [`${file}: not YAML documents`] }
  docs.forEach((doc, i) => {
    const where = docs.length > 1 ? `${file}#${i}` : file
    for (const e of [...doc.errors, ...doc.warnings]) errors.push(`${where}: ${e.message}`)
    const data: unknown = doc.toJS()
    if (data === null || typeof data !== 'object' || Array.isArray(data)) errors.push(`${where}: not an object`)
    else manifests.push({ where, data: data as Record<string, unknown> })
  })
  return { manifests, errors }
}

const kindOf = (m: Manifest): string => `${String(m.data.apiVersion)}/${String(m.data.kind)}`

/** kubernetes-models' validate() on each object: types, required fields, formats. */
function validateModels(manifests: Manifest[]): string[] {
  const errors: string[] = []
  for (const m of manifests) {
    const k = KINDS[kindOf(m)]
    if (k === undefined) {
      errors.push(`${m.where}: no model for ${kindOf(m)} (add it to KINDS)`)
      continue
    }
    try {
      new k.model(m.data as never).validate()
    } catch (e) {
      errors.push(`${m.where}: ${(e as Error).message}`)
    }
  }
  return errors
}

/**
 * Each object as an object literal typed with its kind's interface, compiled (no output) by TypeScript: an unknown
 * field anywhere is "Object literal may only specify known properties". The source exists only in memory, placed in
 * this directory so that `kubernetes-models` resolves from the repository's node_modules. TypeScript reports the
 * first such field of each object; fix it and run again to see the next.
 */
const parsed = new Map<string, ts.SourceFile>()

function typeCheck(manifests: Manifest[]): string[] {
  const file = join(ROOT, 'test/deploy/__manifests__.ts')
  const imports = new Map<string, Set<string>>()
  const starts: Array<{ line: number; where: string }> = []
  let body = ''
  let line = 0
  manifests.forEach((m, i) => {
    const k = KINDS[kindOf(m)]
    if (k === undefined) return // validateModels says so
    if (!imports.has(k.module)) imports.set(k.module, new Set())
    imports.get(k.module)?.add(k.iface)
    const decl = `export const m${i}: ${k.iface} = ${JSON.stringify(m.data, null, 2)}\n`
    starts.push({ line, where: m.where })
    body += decl
    line += decl.split('\n').length - 1
  })
  const head = [...imports].map(([mod, names]) => `import type { ${[...names].join(', ')} } from '${mod}'\n`).join('')
  const source = head + body
  const offset = head.split('\n').length - 1

  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: [],
  }
  const host = ts.createCompilerHost(options)
  const getSourceFile = host.getSourceFile.bind(host)
  const fileExists = host.fileExists.bind(host)
  const readFile = host.readFile.bind(host)
  host.getSourceFile = (f, lang, ...rest) => {
    if (f === file) return ts.createSourceFile(f, source, lang)
    // The package's declarations, parsed once for all the checks of this file
    let sf = parsed.get(f)
    if (sf === undefined) {
      sf = getSourceFile(f, lang, ...rest)
      if (sf !== undefined) parsed.set(f, sf)
    }
    return sf
  }
  host.fileExists = (f) => f === file || fileExists(f)
  host.readFile = (f) => (f === file ? source : readFile(f))
  const program = ts.createProgram([file], options, host)
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n')
    if (d.file === undefined || d.start === undefined) return text
    const at = d.file.getLineAndCharacterOfPosition(d.start).line - offset
    const where = [...starts].reverse().find((s) => s.line <= at)?.where ?? d.file.fileName
    return `${where}: ${text}`
  })
}

/** Everything wrong with these manifests as the API server's schema sees it. */
const schemaErrors = (manifests: Manifest[]): string[] => [...validateModels(manifests), ...typeCheck(manifests)]

function load(): Manifest[] {
  const all: Manifest[] = []
  for (const f of manifestFiles()) {
    const { manifests, errors } = parseManifests(f, readFileSync(join(DIR, f), 'utf8'))
    if (errors.length > 0) throw new Error(errors.join('\n'))
    all.push(...manifests)
  }
  return all
}

const manifests = load()
const one = <T>(kind: string): T => {
  const found = manifests.filter((m) => kindOf(m) === kind)
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`)
  return found[0]?.data as T
}

t.test('every manifest passes the Kubernetes API schema', async (t) => {
  t.same(
    manifests.map(kindOf).sort(),
    ['apps/v1/DaemonSet', 'v1/ConfigMap', 'v1/Namespace', 'v1/ServiceAccount'],
    'the objects expected, one each',
  )
  t.same(validateModels(manifests), [], 'kubernetes-models validate()')
  t.same(typeCheck(manifests), [], 'no field the API does not have')
})

t.test('a broken copy fails', async (t) => {
  const text = readFileSync(join(DIR, 'daemonset.yaml'), 'utf8')
  /** The errors of daemonset.yaml with the first line (not a comment) matching `from` changed to `to`. */
  const broken = (from: RegExp, to: string): string[] => {
    const line = new RegExp(`^( *(?:- )?)${from.source}`, 'm')
    t.match(text, line, `daemonset.yaml has ${from.source}`)
    const { manifests, errors } = parseManifests('daemonset.yaml', text.replace(line, `$1${to}`))
    return [...errors, ...schemaErrors(manifests)]
  }
  // Misspellings at several depths: pod spec, container security context, a volume mount, the update strategy,
  // and one that differs only in case. validate() alone passes each of these.
  for (const [key, typo] of [
    ['hostNetwork', 'hostNetwrok'],
    ['readOnlyRootFilesystem', 'readOnlyRootFileSystem'],
    ['mountPropagation', 'mountPropogation'],
    ['maxSurge', 'maxSurgee'],
    ['priorityClassName', 'priorityClass'],
  ] as const) {
    const errors = broken(new RegExp(`${key}:`), `${typo}:`)
    t.ok(errors.some((e) => e.includes(`'"${typo}"' does not exist`)), `${typo} is refused`, { errors })
  }
  // A wrong type, a missing required field: validate()'s to catch.
  const wrongType = broken(/hostNetwork: true/, 'hostNetwork: "true"')
  t.ok(wrongType.some((e) => /hostNetwork must be boolean/.test(e)), 'a string for a boolean is refused', { errors: wrongType })
  const noName = broken(/(?<=- )name: xdplinkd/, '')
  t.ok(noName.some((e) => /containers\/0 must have required property '?name'?/.test(e)), 'a container without a name is refused', {
    errors: noName,
  })
})

t.test('kustomization.yaml lists every manifest, and renders', async (t) => {
  const k = parseAllDocuments(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8'))
  if (!Array.isArray(k) || k.length !== 1) throw new Error('kustomization.yaml: expected one document')
  const kust = k[0]?.toJS() as { apiVersion: string; kind: string; namespace: string; resources: string[] }
  t.equal(kust.apiVersion, 'kustomize.config.k8s.io/v1beta1')
  t.equal(kust.kind, 'Kustomization')
  t.same([...kust.resources].sort(), manifestFiles(), 'resources: every manifest of deploy/kubernetes, nothing else')
  t.equal(kust.namespace, one<{ metadata: { name: string } }>('v1/Namespace').metadata.name, 'into the namespace it creates')

  const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' })
  t.test('kubectl kustomize', { skip: kubectl.status === 0 ? false : 'kubectl is not installed' }, async (t) => {
    const r = spawnSync('kubectl', ['kustomize', DIR], { encoding: 'utf8', timeout: 60_000 })
    t.equal(r.status, 0, 'renders', { stderr: r.stderr })
    const { manifests: rendered, errors } = parseManifests('(kubectl kustomize)', r.stdout)
    t.same(errors, [])
    t.equal(rendered.length, manifests.length, 'every object')
    t.same(schemaErrors(rendered), [], 'the rendered objects pass the schema too')
    for (const m of rendered) {
      if (m.data.kind === 'Namespace') continue
      t.equal((m.data.metadata as { namespace?: string }).namespace, kust.namespace, `${String(m.data.kind)} in ${kust.namespace}`)
    }
  })
})

t.test("the ConfigMap's config and the DaemonSet agree", async (t) => {
  const cm = one<IConfigMap>('v1/ConfigMap')
  const ds = one<IDaemonSet>('apps/v1/DaemonSet')
  const text = cm.data?.['config.yaml']
  if (text === undefined) throw new Error('the ConfigMap has no config.yaml')
  const parsed = parseConfig(text, CONFIG_PATH)
  if (!parsed.ok) {
    t.fail('the config is valid', { errors: parsed.error.map((e) => `${e.line}:${e.col}: ${e.path}: ${e.message}`) })
    return
  }
  const config = parsed.value
  t.equal(config.onExit, 'keep', 'on-exit: keep, so that a stopping pod leaves its programs attached')
  t.ok(config.entries.some((e) => e.netns.some((g) => g !== 'host')), "an entry for pods' namespaces")

  const pod = ds.spec?.template.spec
  if (pod === undefined) throw new Error('no pod template')
  t.equal(pod.containers.length, 1)
  const c = pod.containers[0] as IContainer
  const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]))
  const mounts = c.volumeMounts ?? []
  /** The mount that holds `path`, and its volume. */
  const mountOf = (path: string) => {
    const m = mounts
      .filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`))
      .sort((a, b) => b.mountPath.length - a.mountPath.length)[0]
    return m && { mount: m, volume: volumes.get(m.name) }
  }
  /** `path` is on a host path mounted at the same place, so what is there is the node's. */
  const onHost = (path: string, what: string) => {
    const at = mountOf(path)
    t.ok(at?.volume?.hostPath, `${what} (${path}) is on a hostPath volume`)
    t.equal(at?.volume?.hostPath?.path, at?.mount.mountPath, `${what}: the node's directory at the same path`)
    return at
  }

  t.equal(pod.hostNetwork, true, "the host's network namespace")
  const cfg = mountOf(CONFIG_PATH)
  t.equal(cfg?.volume?.configMap?.name, cm.metadata?.name, `${CONFIG_PATH} comes from the ConfigMap`)
  t.equal(cfg?.mount.mountPath, posix.dirname(CONFIG_PATH), 'mounted as the directory')
  t.notOk(cfg?.mount.subPath ?? cfg?.mount.subPathExpr, 'not with subPath, which the kubelet never updates')

  const pins = onHost(config.bpffs, 'bpffs')
  t.not(pins?.mount.readOnly, true, 'the pins are writable')
  const sock = onHost(posix.dirname(config.controlSocket), "the control socket's directory")
  t.not(sock?.mount.readOnly, true, 'the control socket can be made')
  t.equal(ds.spec?.updateStrategy?.rollingUpdate?.maxSurge, 0, 'no surge: the control socket on the node allows one daemon at a time')
  for (const dir of config.netnsDirs) {
    const ns = onHost(dir, 'a namespace directory')
    t.equal(ns?.mount.mountPath, dir, `${dir} is mounted itself`)
    t.equal(ns?.mount.mountPropagation, 'HostToContainer', `${dir}: namespaces bound after the pod started appear in it`)
  }

  if (config.metrics === null) throw new Error('the probes need the metrics listener')
  const ports = new Map((c.ports ?? []).map((p) => [p.name, p.containerPort]))
  for (const [name, probe, path] of [
    ['startup', c.startupProbe, '/healthz'],
    ['liveness', c.livenessProbe, '/healthz'],
    ['readiness', c.readinessProbe, '/readyz'],
  ] as const) {
    const get = probe?.httpGet
    const port = typeof get?.port === 'string' ? ports.get(get.port) : get?.port
    t.same([get?.host, port, get?.path], [config.metrics.host, config.metrics.port, path], `${name} probe on the metrics listener`)
  }

  const sc = c.securityContext
  t.equal(sc?.readOnlyRootFilesystem, true, 'read-only root filesystem')
  t.not(sc?.privileged, true, 'not privileged')
  t.same(sc?.capabilities?.drop, ['ALL'], 'every capability dropped but those added')
  for (const cap of sc?.capabilities?.add ?? []) {
    t.match(DOC, new RegExp(`^\\| \`CAP_${cap}\` \\|`, 'm'), `docs/kubernetes.md says why CAP_${cap}`)
  }
})
