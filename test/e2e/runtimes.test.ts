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

const DOCKER_SOCK = '/var/run/docker.sock';

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 40_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The six base labels of `name`'s series for cgroup `id`, or undefined. */
function labelsOf(body: string, name: string, id: string): Record<string, string> | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${name}{id="${id}"`));
  if (line === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const m of line.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[m[1] ?? ''] = m[2] ?? '';
  return out;
}

const metrics = async (url: string): Promise<string> => (await fetch(`${url}/metrics`)).text();
const tmpSock = (name: string): string => path.join(os.tmpdir(), `pv-${process.pid}-${name}.sock`);

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
  const body = await until('labels on both containers', async () => {
    const b = await metrics(ex.url);
    return labelsOf(b, 'container_memory_usage_bytes', dockerCg)?.pod === 'shop-0' && labelsOf(b, 'container_memory_usage_bytes', ctrCg)?.pod === 'cache-0'
      ? b
      : undefined;
  });
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
  await until('the removed container to disappear', async () => {
    const b = await metrics(ex.url);
    return labelsOf(b, 'container_memory_usage_bytes', dockerCg) === undefined ? true : undefined;
  });
  t.pass('a removed container disappears');
});

t.test('a Docker that reports version "dev" still registers and labels', async (t) => {
  if (!(await requireDaemon(t, 'docker'))) return;
  // A proxy in front of the real Docker socket that rewrites /version's Version to "dev".
  const sock = tmpSock('devdocker');
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
  const body = await until('the dev Docker container labelled', async () => {
    const b = await metrics(ex.url);
    return labelsOf(b, 'container_memory_usage_bytes', `/docker/${id}`)?.pod === 'dev-0' ? b : undefined;
  });
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

t.test('containerd started after podvisor is registered within 30 s', async (t) => {
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
  t.teardown(async () => {
    if (daemon.pid !== undefined) {
      try {
        process.kill(-daemon.pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
    await new Promise((r) => setTimeout(r, 500));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const started = Date.now();
  await until(
    'containerd registered',
    async () => ((await metrics(ex.url)).includes('podvisor_runtime_up{runtime="containerd"} 1\n') ? true : undefined),
    45_000,
  );
  const took = Date.now() - started;
  t.ok(took < 30_000, `registered ${Math.round(took / 1000)} s after containerd started`);
});

t.test('a hung runtime cannot push a scrape past its deadline', async (t) => {
  const sock = tmpSock('hung');
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
  await until('the first gather', async () => ((await fetch(`${ex.url}/readyz`)).status === 200 ? true : undefined));
  for (let i = 0; i < 3; i++) {
    const t0 = Date.now();
    const r = await fetch(`${ex.url}/metrics`, { headers: { 'x-prometheus-scrape-timeout-seconds': '5' } });
    const ms = Date.now() - t0;
    t.equal(r.status, 200);
    t.ok(ms < 5000, `scrape ${i + 1} answered in ${ms} ms, within the 5 s deadline`);
    const body = await r.text();
    t.match(body, /\npodvisor_runtime_up\{runtime="docker"\} 0\n/);
  }
});
