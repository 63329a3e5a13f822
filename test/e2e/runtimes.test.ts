/**
 * Runtime factories against the real daemons: Kubernetes-shaped Docker and containerd containers get their labels;
 * a Docker that says it is version `dev` still registers; containerd started after podvisor is picked up; a hung
 * runtime cannot push a scrape past its deadline.
 */
import t from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { requireDaemon, removeCtrContainer, run } from '../support/daemons.js';
import { startExporter } from '../support/exporter.js';
import { removeCgroupDirs } from '../support/cgroups.js';
import { poll, until } from '../support/poll.js';
import { socketPath } from '../support/socket-path.js';

const DOCKER_SOCK = '/var/run/docker.sock';

/** Scrapes are costly: poll them every 250 ms, for up to 60 s (registration, first gathers on a loaded machine). */
const SCRAPES = { everyMs: 250, timeoutMs: 60_000 };

/** The six base labels of `name`'s series for cgroup `id`, or undefined. */
function labelsOf(body: string, name: string, id: string): Record<string, string> | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${name}{id="${id}"`));
  if (line === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const m of line.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[m[1] ?? ''] = m[2] ?? '';
  return out;
}

const metrics = async (url: string): Promise<string> => (await fetch(`${url}/metrics`)).text();

t.test('Docker and containerd containers in /kubepods get pod, namespace, container, image, name', async (t) => {
  if (!(await requireDaemon(t, 'docker')) || !(await requireDaemon(t, 'containerd'))) return;
  const ex = await startExporter(['--crio-endpoint=/nonexistent/crio.sock']);
  t.teardown(() => ex.stop());
  const uid = crypto.randomUUID();
  const suffix = uid.slice(0, 8);
  const dockerName = `podvisor-rt-${suffix}`;
  const ctrId = crypto.randomBytes(32).toString('hex');
  const ctrUid = crypto.randomUUID();
  t.teardown(async () => {
    await run('docker', ['rm', '-f', dockerName], { timeoutMs: 60_000 }).catch(() => undefined);
    await removeCtrContainer(ctrId);
    removeCgroupDirs(`/kubepods/besteffort/pod${ctrUid}/${ctrId}`);
    removeCgroupDirs(`/kubepods/besteffort/pod${ctrUid}`);
    removeCgroupDirs(`/kubepods/burstable/pod${uid}`);
  });
  // Both started after the exporter: they must show up with labels.
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
        'io.kubernetes.pod.name=shop-0',
        '--label',
        'io.kubernetes.pod.namespace=podvisor-e2e',
        '--label',
        `io.kubernetes.pod.uid=${uid}`,
        '--label',
        'io.kubernetes.container.name=app',
        'podvisor-test:1',
        'sleep',
        '600',
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
      'docker.io/library/podvisor-test:1',
      ctrId,
      'sleep',
      '600',
    ],
    { timeoutMs: 60_000 },
  );

  const dockerCg = `/kubepods/burstable/pod${uid}/${dockerId}`;
  const ctrCg = `/kubepods/besteffort/pod${ctrUid}/${ctrId}`;
  const body = await poll(
    'labels on both containers',
    async () => {
      const b = await metrics(ex.url);
      return labelsOf(b, 'container_memory_usage_bytes', dockerCg)?.pod === 'shop-0' && labelsOf(b, 'container_memory_usage_bytes', ctrCg)?.pod === 'cache-0'
        ? b
        : undefined;
    },
    SCRAPES,
  );
  t.same(labelsOf(body, 'container_memory_usage_bytes', dockerCg), {
    id: dockerCg,
    name: dockerName,
    image: 'podvisor-test:1',
    container: 'app',
    pod: 'shop-0',
    namespace: 'podvisor-e2e',
  });
  t.same(labelsOf(body, 'container_memory_usage_bytes', ctrCg), {
    id: ctrCg,
    name: ctrId,
    image: 'docker.io/library/podvisor-test:1',
    container: 'redis',
    pod: 'cache-0',
    namespace: 'podvisor-e2e-2',
  });
  t.same(
    labelsOf(body, 'container_memory_usage_bytes', `/kubepods/burstable/pod${uid}`),
    {
      id: `/kubepods/burstable/pod${uid}`,
      name: '',
      image: '',
      container: '',
      pod: 'shop-0',
      namespace: 'podvisor-e2e',
    },
    'the pod cgroup: pod and namespace, container and image empty',
  );
  t.match(body, /\npodvisor_runtime_up\{runtime="docker"\} 1\n/);
  t.match(body, /\npodvisor_runtime_up\{runtime="containerd"\} 1\n/);
  t.match(body, /\npodvisor_runtime_up\{runtime="crio"\} 0\n/);
  t.match(body, /\npodvisor_runtime_info\{runtime="docker",version="[^"]+",parsed_version="\d+\.\d+(\.\d+)?",api_version="1\.\d+"\} 1\n/);
  const ready = (await (await fetch(`${ex.url}/readyz`)).json()) as { ready: boolean; runtimes: { runtime: string; up: boolean; lastError?: string }[] };
  t.equal(ready.ready, true, 'a missing runtime degrades labels, not readiness');
  t.match(ready.runtimes.find((r) => r.runtime === 'crio')?.lastError ?? '', /crio/, '/readyz names the CRI-O failure');

  await run('docker', ['rm', '-f', dockerName], { timeoutMs: 60_000 });
  await until(
    'the removed container to disappear',
    async () => labelsOf(await metrics(ex.url), 'container_memory_usage_bytes', dockerCg) === undefined,
    SCRAPES,
  );
  t.pass('a removed container disappears');
});

t.test('a Docker that reports version "dev" still registers and labels', async (t) => {
  if (!(await requireDaemon(t, 'docker'))) return;
  // A proxy in front of the real Docker socket that rewrites /version's Version to "dev".
  const sock = socketPath('devdocker');
  fs.rmSync(sock, { force: true });
  const proxy = http.createServer((req, res) => {
    const up = http.request({ socketPath: DOCKER_SOCK, path: req.url, method: req.method, headers: req.headers }, (r) => {
      if (/^(\/v[\d.]+)?\/version(\?|$)/.test(req.url ?? '')) {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => {
          const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          const body = JSON.stringify(typeof v === 'object' && v !== null ? { ...v, Version: 'dev' } : v);
          res.writeHead(r.statusCode ?? 500, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        });
        return;
      }
      res.writeHead(r.statusCode ?? 500, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    // A client that goes away (the exporter's event stream) takes its upstream request with it.
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => proxy.listen(sock, r));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        proxy.closeAllConnections();
        proxy.close(() => r());
      }),
  );
  const name = `podvisor-dev-${crypto.randomUUID().slice(0, 8)}`;
  t.teardown(() => run('docker', ['rm', '-f', name], { timeoutMs: 60_000 }).catch(() => undefined));
  const id = (
    await run(
      'docker',
      [
        'run',
        '-d',
        '--name',
        name,
        '--label',
        'io.kubernetes.pod.name=dev-0',
        '--label',
        'io.kubernetes.pod.namespace=dev-ns',
        '--label',
        'io.kubernetes.container.name=main',
        'podvisor-test:1',
        'sleep',
        '600',
      ],
      { timeoutMs: 60_000 },
    )
  ).stdout.trim();
  const ex = await startExporter([
    `--docker-endpoint=unix://${sock}`,
    '--containerd-address=',
    '--crio-endpoint=',
    `--raw-cgroup-prefix-allowlist=/docker/${id}`,
  ]);
  t.teardown(() => ex.stop());
  const body = await poll(
    'the dev Docker container labelled',
    async () => {
      const b = await metrics(ex.url);
      return labelsOf(b, 'container_memory_usage_bytes', `/docker/${id}`)?.pod === 'dev-0' ? b : undefined;
    },
    SCRAPES,
  );
  t.same(labelsOf(body, 'container_memory_usage_bytes', `/docker/${id}`), {
    id: `/docker/${id}`,
    name,
    image: 'podvisor-test:1',
    container: 'main',
    pod: 'dev-0',
    namespace: 'dev-ns',
  });
  t.match(body, /\npodvisor_runtime_info\{runtime="docker",version="dev",parsed_version="unknown",api_version="[^"]+"\} 1\n/);
  t.notMatch(body, /podvisor_runtime_up\{runtime="containerd"/, 'an empty address turns a runtime off');
});

t.test('containerd started after podvisor is registered without restarting podvisor', async (t) => {
  if (!(await requireDaemon(t, 'containerd'))) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pv-ctrd-'));
  const sock = path.join(dir, 'c.sock');
  fs.writeFileSync(
    path.join(dir, 'config.toml'),
    [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${sock}"`,
      '[ttrpc]',
      `  address = "${sock}.ttrpc"`,
      '',
    ].join('\n'),
  );
  const ex = await startExporter(['--docker-endpoint=', '--crio-endpoint=', `--containerd-address=${sock}`, '--raw-cgroup-prefix-allowlist=/nothing']);
  t.teardown(() => ex.stop());
  t.match(await metrics(ex.url), /\npodvisor_runtime_up\{runtime="containerd"\} 0\n/, 'down while containerd is not there');
  const daemon = spawn('containerd', ['--config', path.join(dir, 'config.toml')], { stdio: 'ignore', detached: true });
  const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
  t.teardown(async () => {
    const group = (signal: NodeJS.Signals): void => {
      try {
        if (daemon.pid !== undefined) process.kill(-daemon.pid, signal);
      } catch {
        // gone
      }
    };
    if (daemon.exitCode === null && daemon.signalCode === null) {
      group('SIGTERM');
      // Its root and state dirs go only once it is gone; SIGKILL if it takes more than a generous 20 s.
      const kill = setTimeout(() => group('SIGKILL'), 20_000);
      await exited;
      clearTimeout(kill);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  // The retry backoff is capped (15 s by default, see the factory tests); 90 s is several retries even on a busy
  // machine. What matters here is that it registers at all, without a restart of podvisor.
  await until('containerd registered', async () => (await metrics(ex.url)).includes('podvisor_runtime_up{runtime="containerd"} 1\n'), {
    ...SCRAPES,
    timeoutMs: 90_000,
  });
  t.match(await metrics(ex.url), /\npodvisor_runtime_up\{runtime="containerd"\} 1\n/, 'up once containerd answers');
});

t.test('a hung runtime cannot push a scrape past its deadline', async (t) => {
  const sock = socketPath('hung');
  fs.rmSync(sock, { force: true });
  const held: net.Socket[] = [];
  const hung = net.createServer((s) => held.push(s)); // accepts, never answers
  await new Promise<void>((r) => hung.listen(sock, r));
  t.teardown(() => {
    for (const s of held) s.destroy();
    hung.close();
  });
  // Runtime calls may take 10 s here: if any sat on the scrape path, a 5 s scrape deadline could not be met.
  const ex = await startExporter([`--docker-endpoint=unix://${sock}`, `--containerd-address=${sock}`, `--crio-endpoint=${sock}`, '--runtime-timeout=10s']);
  t.teardown(() => ex.stop());
  await until('the first gather', async () => (await fetch(`${ex.url}/readyz`)).status === 200, SCRAPES);
  for (let i = 0; i < 3; i++) {
    // A gather waiting on a 10 s runtime call would miss the 5 s deadline and answer 503 ("did not finish within the
    // scrape deadline"): a 200 is the proof that no runtime call sits on the scrape path. No stopwatch needed.
    const r = await fetch(`${ex.url}/metrics`, { headers: { 'x-prometheus-scrape-timeout-seconds': '5' } });
    t.equal(r.status, 200, `scrape ${i + 1} answered 200 within its 5 s deadline while every runtime hangs`);
    const body = await r.text();
    t.match(body, /\npodvisor_runtime_up\{runtime="docker"\} 0\n/);
  }
});
