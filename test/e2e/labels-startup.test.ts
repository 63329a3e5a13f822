/**
 * No unlabelled series right after start (issue 12): from the first exposition podvisor serves, no series of a
 * container that belongs to an up runtime carries `name=""` or a name other than its runtime's (Docker's name,
 * containerd's id), or, for a Kubernetes container, an empty or wrong pod, namespace or container. At startup the first
 * gather waits for every configured runtime's first container list (`--runtime-startup-grace`); after it, a cgroup
 * named after a container id that a runtime has not looked up yet is held out of the exposition until its lookup
 * returns (`--label-hold`). Against the real Docker and containerd:
 *
 *   1. the exporter is scraped in a tight loop from the moment its port accepts connections, with N Docker and M
 *      containerd containers of ours (PODVISOR_E2E_STARTUP_DOCKER, default 20; PODVISOR_E2E_STARTUP_CONTAINERD,
 *      default 5) and every other container on the machine (`bench/containers.sh up 200` on the busy CI run);
 *   2. the same with Docker answering through a proxy that holds every chunk of every answer back 1 s;
 *   3. containers started after startup are labelled in the first exposition that has their cgroup;
 *   4. a runtime whose socket does not exist is not waited for: ready under a grace of 10 minutes;
 *   5. a runtime that accepts and never answers is given up on after the grace (the only way to readiness when its
 *      calls may take 10 minutes), and its containers are then exposed with empty labels.
 * No durations are asserted: every wait is a poll with a generous bound.
 */
import t, { type Test } from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { removeCtrContainer, requireDaemon, run } from '../support/daemons.js';
import { assertBuilt, freePort, MAIN } from '../support/exporter.js';
import { removeCgroupDirs } from '../support/cgroups.js';
import { poll, until } from '../support/poll.js';
import { socketPath } from '../support/socket-path.js';
import { startSlowProxy } from '../support/slow-proxy.js';

// The slow-Docker run lists every container of the machine at 4 inspects a second: with 200 bench containers that
// alone is about a minute, next to another file (tap's jobs: 2) on 2 cores. .taprc's 240 s is too tight for that.
t.setTimeout(600_000);

const IMAGE = 'podvisor-test:1';
const CTR_IMAGE = 'docker.io/library/podvisor-test:1';
const PREFIX = 'podvisor-t-labels-startup';
const NAMESPACE = 'podvisor-e2e-labels';

function count(env: string, dflt: number): number {
  const v = process.env[env];
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(v)) throw new Error(`${env}=${v}: not a whole number`);
  return Number(v);
}
const N_DOCKER = count('PODVISOR_E2E_STARTUP_DOCKER', 20);
const N_CTR = count('PODVISOR_E2E_STARTUP_CONTAINERD', 5);

// ---------------------------------------------------------------- containers

interface Kube {
  pod: string;
  namespace: string;
  container: string;
}

/** What every series of one container's cgroup must carry. */
interface Expect {
  /** For messages: `docker <name>` or `containerd <id>`. */
  what: string;
  /** The `name` label: Docker's name (without its `/`), containerd's id. */
  name: string;
  /** The io.kubernetes.* labels, when the container has any. */
  kube?: Kube;
}

function kubeOf(labels: Record<string, string> | null | undefined): Kube | undefined {
  if (labels === null || labels === undefined || !Object.keys(labels).some((k) => k.startsWith('io.kubernetes.'))) return undefined;
  return {
    pod: labels['io.kubernetes.pod.name'] ?? '',
    namespace: labels['io.kubernetes.pod.namespace'] ?? '',
    container: labels['io.kubernetes.container.name'] ?? '',
  };
}

/**
 * The cgroup of process `pid` as podvisor names cgroups (the path below the hierarchy root), from what the kernel
 * says in /proc/<pid>/cgroup: the memory controller's line on v1, the `0::` line on v2. Undefined when it is gone.
 */
function cgroupOfPid(pid: number): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n').map((l) => l.split(':'));
  const line = lines.find((f) => f[1]?.split(',').includes('memory')) ?? lines.find((f) => f[0] === '0' && f[1] === '');
  const p = line?.slice(2).join(':');
  return p === undefined || p === '' ? undefined : p;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Every running Docker container of this dockerd, by cgroup: its name and its io.kubernetes.* labels. */
async function dockerContainers(): Promise<Map<string, Expect>> {
  const out = new Map<string, Expect>();
  const ids = (await run('docker', ['ps', '-q', '--no-trunc'], { timeoutMs: 60_000 })).stdout.split('\n').filter((l) => l !== '');
  if (ids.length === 0) return out;
  const format = ['--format', '{{json .Id}}\t{{.State.Pid}}\t{{json .Name}}\t{{json .Config.Labels}}'];
  let lines: string[];
  try {
    lines = (await run('docker', ['inspect', ...format, ...ids], { timeoutMs: 120_000 })).stdout.split('\n');
  } catch {
    // One of them went away between ps and inspect (another test's): one at a time, skipping what is gone.
    lines = (
      await mapLimit(ids, 8, (id) =>
        run('docker', ['inspect', ...format, id]).then(
          (r) => r.stdout,
          () => '',
        ),
      )
    )
      .join('\n')
      .split('\n');
  }
  for (const line of lines) {
    const [id, pid, name, labels] = line.split('\t');
    if (id === undefined || pid === undefined || name === undefined || labels === undefined) continue;
    const cgroup = cgroupOfPid(Number(pid));
    if (Number(pid) <= 0 || cgroup === undefined) continue;
    const dockerName = String(JSON.parse(name)).replace(/^\//, '');
    const e: Expect = { what: `docker ${dockerName} (${String(JSON.parse(id)).slice(0, 12)})`, name: dockerName };
    const kube = kubeOf(JSON.parse(labels) as Record<string, string> | null);
    if (kube !== undefined) e.kube = kube;
    out.set(cgroup, e);
  }
  return out;
}

/** Every running containerd container in k8s.io, by cgroup (its task's, as the kernel says): its io.kubernetes.* labels. */
async function ctrContainers(): Promise<Map<string, Expect>> {
  const out = new Map<string, Expect>();
  const tasks = (await run('ctr', ['-n', 'k8s.io', 'tasks', 'ls'], { timeoutMs: 60_000 })).stdout
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[2] === 'RUNNING');
  const found = await mapLimit(tasks, 8, async ([id = '', pid = '0']) => {
    const cgroup = cgroupOfPid(Number(pid));
    if (cgroup === undefined) return undefined;
    const info = await run('ctr', ['-n', 'k8s.io', 'containers', 'info', id]).then(
      (r) => JSON.parse(r.stdout) as { Labels?: Record<string, string> | null },
      () => undefined,
    );
    if (info === undefined) return undefined;
    const e: Expect = { what: `containerd ${id}`, name: id };
    const kube = kubeOf(info.Labels);
    if (kube !== undefined) e.kube = kube;
    return [cgroup, e] as const;
  });
  for (const f of found) if (f !== undefined) out.set(f[0], f[1]);
  return out;
}

async function machineContainers(withCtr: boolean): Promise<Map<string, Expect>> {
  const d = await dockerContainers();
  if (withCtr) for (const [k, v] of await ctrContainers()) d.set(k, v);
  return d;
}

interface Ours {
  /** cgroup → expectation, for the containers this test started. */
  cgroups: Map<string, Expect>;
}

/** A Kubernetes-shaped Docker container in its own pod cgroup; returns its cgroup. Removed in `t`'s teardown. */
async function startDocker(t: Test, name: string, pod: string): Promise<{ cgroup: string; expect: Expect }> {
  const uid = crypto.randomUUID();
  const parent = `/kubepods/burstable/pod${uid}`;
  t.teardown(async () => {
    await run('docker', ['rm', '-f', name], { timeoutMs: 60_000 }).catch(() => undefined);
    removeCgroupDirs(parent);
  });
  const labels = ['io.kubernetes.pod.name', pod, 'io.kubernetes.pod.namespace', NAMESPACE, 'io.kubernetes.pod.uid', uid, 'io.kubernetes.container.name', 'app'];
  const args = ['run', '-d', '--name', name, '--cgroup-parent', parent];
  for (let i = 0; i < labels.length; i += 2) args.push('--label', `${labels[i]}=${labels[i + 1]}`);
  const id = (await run('docker', [...args, IMAGE, 'sleep', '3600'], { timeoutMs: 120_000 })).stdout.trim();
  return { cgroup: `${parent}/${id}`, expect: { what: `docker ${name}`, name, kube: { pod, namespace: NAMESPACE, container: 'app' } } };
}

/** A Kubernetes-shaped containerd container (k8s.io, a 64-hex id as CRI makes them) in its own pod cgroup. */
async function startCtr(t: Test, pod: string, container: string): Promise<{ id: string; cgroup: string; expect: Expect }> {
  const uid = crypto.randomUUID();
  const id = crypto.randomBytes(32).toString('hex');
  const cgroup = `/kubepods/besteffort/pod${uid}/${id}`;
  t.teardown(async () => {
    await removeCtrContainer(id);
    removeCgroupDirs(cgroup);
    removeCgroupDirs(`/kubepods/besteffort/pod${uid}`);
  });
  const labels = [
    'io.kubernetes.pod.name',
    pod,
    'io.kubernetes.pod.namespace',
    NAMESPACE,
    'io.kubernetes.pod.uid',
    uid,
    'io.kubernetes.container.name',
    container,
  ];
  const args = ['-n', 'k8s.io', 'run', '-d', '--cgroup', cgroup];
  for (let i = 0; i < labels.length; i += 2) args.push('--label', `${labels[i]}=${labels[i + 1]}`);
  await run('ctr', [...args, CTR_IMAGE, id, 'sleep', '3600'], { timeoutMs: 120_000 });
  return { id, cgroup, expect: { what: `containerd ${id}`, name: id, kube: { pod, namespace: NAMESPACE, container } } };
}

// ---------------------------------------------------------------- the exporter

interface Exporter {
  url: string;
  stderr: () => string;
  /** Why the process is gone, or undefined while it runs. */
  gone: () => string | undefined;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Starts dist/main.js on a free loopback port and resolves as soon as the port accepts a connection (polled with bare
 * connects, not through a log line or /readyz): from the first instant anyone could scrape it. Stopped in teardown
 * (SIGTERM; SIGKILL if it is still there after a generous 20 s).
 */
async function launch(t: Test, args: readonly string[]): Promise<Exporter> {
  assertBuilt();
  const port = await freePort();
  const proc = spawn(process.execPath, [MAIN, `--listen-address=127.0.0.1:${port}`, '--disk-usage=false', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const gone = (): string | undefined =>
    proc.exitCode !== null || proc.signalCode !== null ? `exporter exited (${proc.exitCode ?? proc.signalCode}): ${stderr}` : undefined;
  t.teardown(async () => {
    if (gone() !== undefined) return;
    proc.kill('SIGTERM');
    const kill = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(kill);
  });
  await until('the exporter to accept connections', () => canConnect(port), {
    everyMs: 5,
    timeoutMs: 60_000,
    giveUp: gone,
    describe: () => `stderr: ${stderr}`,
  });
  return { url: `http://127.0.0.1:${port}`, stderr: () => stderr, gone };
}

/** One GET; undefined when no HTTP answer came (refused, reset). */
async function get(url: string): Promise<{ status: number; body: string } | undefined> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(120_000) });
    return { status: r.status, body: await r.text() };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- the exposition

interface Series {
  metric: string;
  id: string;
  labels: Record<string, string>;
}

/** The series of `body` whose `id` label `want` accepts (podvisor writes `id` first: `name{id="…",…}`). */
function* seriesOf(body: string, want: (id: string) => boolean): Generator<Series> {
  let from = 0;
  while (from < body.length) {
    let end = body.indexOf('\n', from);
    if (end < 0) end = body.length;
    const line = body.slice(from, end);
    from = end + 1;
    const at = line.indexOf('{id="');
    if (at <= 0 || line.startsWith('#')) continue;
    const id = line.slice(at + 5, line.indexOf('"', at + 5));
    if (!want(id)) continue;
    const labels: Record<string, string> = {};
    for (const m of line.slice(at, line.lastIndexOf('}') + 1).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1] ?? ''] = m[2] ?? '';
    yield { metric: line.slice(0, at), id, labels };
  }
}

/** What is wrong with one series' labels, or undefined. */
function wrong(s: Series, e: Expect): string | undefined {
  const problems: string[] = [];
  const name = s.labels.name ?? '';
  // A Docker container named by its id was labelled through containerd's `moby` namespace (Docker's own containers
  // there carry no io.kubernetes.* labels), not by Docker.
  if (name === '') problems.push('name is empty');
  else if (name !== e.name) problems.push(`name is not ${JSON.stringify(e.name)}`);
  if (e.kube !== undefined) {
    for (const k of ['pod', 'namespace', 'container'] as const) {
      if (s.labels[k] !== e.kube[k]) problems.push(`${k}=${JSON.stringify(s.labels[k] ?? null)}, want ${JSON.stringify(e.kube[k])}`);
    }
  }
  // The name is shown whatever is wrong: a 64-hex one says which runtime (containerd) named the cgroup.
  return problems.length === 0 ? undefined : `${s.metric}{id="${s.id}",name="${s.labels.name ?? ''}"} of ${e.what}: ${problems.join(', ')}`;
}

/** podvisor_runtime_up by runtime. */
function runtimeUp(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of body.matchAll(/^podvisor_runtime_up\{runtime="(\w+)"\} (\S+)$/gm)) out[m[1] ?? ''] = m[2] ?? '';
  return out;
}

interface Tally {
  /** Successful (200) expositions read. */
  expositions: number;
  /** Series checked, by cgroup. */
  checked: Map<string, number>;
  /** The first few problems, by cgroup (containers that went away meanwhile are dropped from them at the end). */
  bad: Map<string, string[]>;
  /** podvisor_runtime_up in the first 200 body, and which of `must` it had. */
  firstUp?: Record<string, string>;
  firstHad?: Set<string>;
  /** Every status seen, in order, run-length encoded (for messages). */
  statuses: string[];
}

function note(tally: Tally, what: string): void {
  const last = tally.statuses[tally.statuses.length - 1];
  const m = last === undefined ? null : /^(.*?)(?: x(\d+))?$/.exec(last);
  if (m !== null && m[1] === what) tally.statuses[tally.statuses.length - 1] = `${what} x${Number(m[2] ?? 1) + 1}`;
  else tally.statuses.push(what);
}

/**
 * Scrapes /metrics in a tight loop from now (the port just started accepting connections) until /readyz has said 200
 * and `readyScrapes` expositions were read after that. Checks every series of every cgroup in `expect` in every
 * 200 body as it comes (bodies are not kept: at 200 containers each is megabytes).
 */
async function scrapeThroughStartup(ex: Exporter, expect: ReadonlyMap<string, Expect>, timeoutMs: number, readyScrapes = 3): Promise<Tally> {
  const tally: Tally = { expositions: 0, checked: new Map(), bad: new Map(), statuses: [] };
  const deadline = performance.now() + timeoutMs;
  let afterReady = 0;
  let ready = false;
  for (let i = 0; afterReady < readyScrapes; i++) {
    const why = ex.gone();
    if (why !== undefined) throw new Error(why);
    if (performance.now() > deadline || i >= 100_000) {
      throw new Error(`not ready after ${timeoutMs} ms (${i} scrapes): ${tally.statuses.join(', ')}; stderr: ${ex.stderr()}`);
    }
    const m = await get(`${ex.url}/metrics`);
    note(tally, m === undefined ? 'no answer' : `metrics ${m.status}`);
    if (m?.status === 200) {
      tally.expositions++;
      if (tally.firstUp === undefined) {
        tally.firstUp = runtimeUp(m.body);
        tally.firstHad = new Set();
      }
      for (const s of seriesOf(m.body, (id) => expect.has(id))) {
        const e = expect.get(s.id);
        if (e === undefined) continue;
        if (tally.expositions === 1) tally.firstHad?.add(s.id);
        tally.checked.set(s.id, (tally.checked.get(s.id) ?? 0) + 1);
        const w = wrong(s, e);
        if (w !== undefined) {
          const list = tally.bad.get(s.id) ?? [];
          if (list.length < 3) list.push(`exposition ${tally.expositions}: ${w}`);
          tally.bad.set(s.id, list);
        }
      }
      if (ready) afterReady++;
    }
    if (!ready) {
      const r = await get(`${ex.url}/readyz`);
      note(tally, r === undefined ? 'readyz no answer' : `readyz ${r.status}`);
      ready = r?.status === 200;
    }
  }
  return tally;
}

/**
 * The assertions of tests 1 and 2 over a tally: every series of every container that was there before the exporter
 * started and is still there now carried its labels, in every exposition from the first; the first exposition came
 * with both runtimes up and had every container of ours.
 */
function assertTally(t: Test, tally: Tally, before: ReadonlyMap<string, Expect>, after: ReadonlyMap<string, Expect>, ours: Ours): void {
  // A container another test removed (or started) meanwhile is not held to anything.
  const stable = [...before.keys()].filter((k) => after.has(k));
  const bad = stable.flatMap((k) => tally.bad.get(k) ?? []);
  const checked = stable.reduce((n, k) => n + (tally.checked.get(k) ?? 0), 0);
  const badCgroups = stable.filter((k) => tally.bad.has(k)).length;
  t.comment(
    `${tally.expositions} expositions; ${checked} series of ${stable.length} containers checked (${ours.cgroups.size} ours); scrapes: ${tally.statuses.join(', ')}`,
  );
  t.ok(checked > 0, `series of the machine's containers were checked (${checked})`);
  t.same(bad.slice(0, 30), [], `no series of a container with an empty or wrong name or pod labels (${badCgroups} containers had some)`);
  t.same(tally.firstUp?.docker, '1', 'the first 200 came with Docker registered (podvisor_runtime_up 1)');
  t.same(tally.firstUp?.containerd, '1', 'the first 200 came with containerd registered (podvisor_runtime_up 1)');
  const missing = [...ours.cgroups].filter(([k]) => tally.firstHad?.has(k) !== true).map(([, e]) => e.what);
  t.same(missing, [], 'the first 200 had every container of ours');
}

// ---------------------------------------------------------------- 1 and 2: from the first instant

t.test('no series of a container has empty labels, from the first exposition on', async (t) => {
  if (!(await requireDaemon(t, 'docker')) || !(await requireDaemon(t, 'containerd'))) return;
  const suffix = crypto.randomBytes(3).toString('hex');
  const ours: Ours = { cgroups: new Map() };
  const docker = await mapLimit(
    Array.from({ length: N_DOCKER }, (_, i) => i),
    8,
    (i) => startDocker(t, `${PREFIX}-${suffix}-${i}`, `startup-${suffix}-${i}`),
  );
  const ctr = await mapLimit(
    Array.from({ length: N_CTR }, (_, i) => i),
    8,
    (i) => startCtr(t, `startup-c-${suffix}-${i}`, `ctr-${i}`),
  );
  for (const c of [...docker, ...ctr]) ours.cgroups.set(c.cgroup, c.expect);

  // Every container of the machine, and first of all ours, which must be among them (else the list is broken).
  const before = await machineContainers(true);
  const notListed = [...ours.cgroups].filter(([k]) => !before.has(k)).map(([k, e]) => `${e.what} at ${k}`);
  t.same(notListed, [], 'every container of ours is listed with the cgroup it was started in');
  t.comment(`${before.size} containers on the machine (${N_DOCKER} Docker and ${N_CTR} containerd ones of ours)`);

  await t.test('against the real daemons', async (t) => {
    const ex = await launch(t, []);
    const tally = await scrapeThroughStartup(ex, before, 120_000);
    assertTally(t, tally, before, await machineContainers(true), ours);
  });

  await t.test('with Docker answering every chunk 1 s late', async (t) => {
    const proxy = await startSlowProxy('/var/run/docker.sock');
    t.teardown(() => proxy.close());
    // The first list inspects every container of the machine through the proxy, 4 at a time, each answer 1 s late:
    // about (containers / 4) s, over a minute with the 200 bench containers. Each call gets 30 s (a busy dockerd's
    // answer, plus the proxy's second); the scrapes get as long as such a list could take, generously.
    const dockerCount = [...before.values()].filter((e) => e.what.startsWith('docker ')).length;
    const listS = Math.ceil(dockerCount / 4) + 10;
    const ex = await launch(t, [`--docker-endpoint=unix://${proxy.path}`, '--runtime-timeout=30s']);
    const tally = await scrapeThroughStartup(ex, before, 120_000 + 6_000 * listS);
    assertTally(t, tally, before, await machineContainers(true), ours);
    t.ok(proxy.delayedChunks > 0, `Docker answered through the slow proxy (${proxy.delayedChunks} chunks on ${proxy.connections} connections)`);
  });
});

// ---------------------------------------------------------------- 3: after startup

t.test('containers started after startup are labelled in the first exposition that has them', async (t) => {
  if (!(await requireDaemon(t, 'docker')) || !(await requireDaemon(t, 'containerd'))) return;
  const ex = await launch(t, []);
  await until('ready', async () => (await get(`${ex.url}/readyz`))?.status === 200, { everyMs: 100, timeoutMs: 120_000, giveUp: ex.gone });

  // Their cgroups are known before they exist: the Docker one is the only child of a pod cgroup of a fresh uid, the
  // containerd one is named by an id chosen here. So the loop can look for them before `docker run` returns.
  const suffix = crypto.randomBytes(3).toString('hex');
  const dockerUid = crypto.randomUUID();
  const dockerPod = `/kubepods/burstable/pod${dockerUid}/`;
  const dockerName = `${PREFIX}-late-${suffix}`;
  const dockerExpect: Expect = { what: `docker ${dockerName}`, name: dockerName, kube: { pod: `late-${suffix}`, namespace: NAMESPACE, container: 'app' } };
  const ctrUid = crypto.randomUUID();
  const ctrId = crypto.randomBytes(32).toString('hex');
  const ctrCgroup = `/kubepods/besteffort/pod${ctrUid}/${ctrId}`;
  const ctrExpect: Expect = { what: `containerd ${ctrId}`, name: ctrId, kube: { pod: `late-c-${suffix}`, namespace: NAMESPACE, container: 'late' } };
  t.teardown(async () => {
    await run('docker', ['rm', '-f', dockerName], { timeoutMs: 60_000 }).catch(() => undefined);
    removeCgroupDirs(dockerPod.slice(0, -1));
    await removeCtrContainer(ctrId);
    removeCgroupDirs(ctrCgroup);
    removeCgroupDirs(`/kubepods/besteffort/pod${ctrUid}`);
  });

  const expectOf = (id: string): Expect | undefined => (id === ctrCgroup ? ctrExpect : id.startsWith(dockerPod) ? dockerExpect : undefined);
  const seen = new Map<string, { first: number; series: number; firstNames: string[] }>();
  /** The first few problems of each container. */
  const bad = new Map<string, string[]>();
  const statuses: string[] = [];
  let stop = false;
  let expositions = 0;
  const loop = (async () => {
    for (let i = 0; !stop && i < 100_000; i++) {
      const m = await get(`${ex.url}/metrics`);
      if (m?.status !== 200) {
        if (statuses.length < 20) statuses.push(m === undefined ? 'no answer' : `${m.status}: ${m.body.slice(0, 200)}`);
        continue;
      }
      expositions++;
      for (const s of seriesOf(m.body, (id) => expectOf(id) !== undefined)) {
        const e = expectOf(s.id);
        if (e === undefined) continue;
        const rec = seen.get(e.what) ?? { first: expositions, series: 0, firstNames: [] };
        rec.series++;
        if (rec.first === expositions) rec.firstNames.push(s.labels.name ?? '');
        seen.set(e.what, rec);
        const w = wrong(s, e);
        const list = bad.get(e.what) ?? [];
        if (w !== undefined && list.length < 3) list.push(`exposition ${expositions}${rec.first === expositions ? ' (the first with it)' : ''}: ${w}`);
        bad.set(e.what, list);
      }
    }
  })();
  try {
    const [d, c] = await Promise.all([
      run(
        'docker',
        [
          'run',
          '-d',
          '--name',
          dockerName,
          '--cgroup-parent',
          dockerPod.slice(0, -1),
          '--label',
          `io.kubernetes.pod.name=late-${suffix}`,
          '--label',
          `io.kubernetes.pod.namespace=${NAMESPACE}`,
          '--label',
          `io.kubernetes.pod.uid=${dockerUid}`,
          '--label',
          'io.kubernetes.container.name=app',
          IMAGE,
          'sleep',
          '3600',
        ],
        { timeoutMs: 120_000 },
      ),
      run(
        'ctr',
        [
          '-n',
          'k8s.io',
          'run',
          '-d',
          '--cgroup',
          ctrCgroup,
          '--label',
          `io.kubernetes.pod.name=late-c-${suffix}`,
          '--label',
          `io.kubernetes.pod.namespace=${NAMESPACE}`,
          '--label',
          `io.kubernetes.pod.uid=${ctrUid}`,
          '--label',
          'io.kubernetes.container.name=late',
          CTR_IMAGE,
          ctrId,
          'sleep',
          '3600',
        ],
        { timeoutMs: 120_000 },
      ),
    ]);
    t.comment(`started docker ${d.stdout.trim().slice(0, 12)} and containerd ${ctrId.slice(0, 12)}${c.stderr === '' ? '' : `: ${c.stderr.trim()}`}`);
    // Past the label hold (10 s by default) a cgroup is exposed even unlabelled: 120 s is room for that and more.
    await until('both new containers in an exposition', () => seen.has(dockerExpect.what) && seen.has(ctrExpect.what), {
      everyMs: 100,
      timeoutMs: 120_000,
      giveUp: ex.gone,
      describe: () => `seen: ${[...seen.keys()].join(', ')}; ${expositions} expositions; non-200: ${statuses.join(' | ')}`,
    });
    // A few more expositions with them in, for the ones after the first.
    const at = expositions;
    await until('3 more expositions', () => expositions >= at + 3, { everyMs: 50, timeoutMs: 60_000, giveUp: ex.gone });
  } finally {
    stop = true;
    await loop;
  }
  for (const [what, r] of seen)
    t.comment(`${what}: first in exposition ${r.first} of ${expositions}, named ${JSON.stringify([...new Set(r.firstNames)])} there`);
  for (const e of [dockerExpect, ctrExpect]) {
    const rec = seen.get(e.what);
    t.ok((rec?.series ?? 0) > 0, `series of ${e.what} were checked (${rec?.series ?? 0})`);
    t.same([...new Set(rec?.firstNames)], [e.name], `the first exposition with ${e.what} named it ${JSON.stringify(e.name)}`);
  }
  t.same([...bad.values()].flat(), [], 'every series of the new containers carried their labels, in the first exposition with them and after');
});

// ---------------------------------------------------------------- 4 and 5: a runtime absent, a runtime hung

interface ReadyBody {
  ready?: boolean;
  runtimes?: { runtime: string; up: boolean; lastError?: string }[];
}

/**
 * The assertions shared by tests 4 and 5 once ready: our Docker container (Docker being down for podvisor) is exposed,
 * with empty labels, and podvisor_runtime_up says Docker is down.
 */
async function assertDockerUnlabelled(t: Test, ex: Exporter, cgroup: string): Promise<void> {
  // Exposed at once, or after the label hold when another runtime still looks its id up: polled, generously.
  const body = await poll(
    'our Docker container in an exposition',
    async () => {
      const m = await get(`${ex.url}/metrics`);
      return m?.status === 200 && m.body.includes(`{id="${cgroup}"`) ? m.body : undefined;
    },
    { everyMs: 250, timeoutMs: 120_000, giveUp: ex.gone },
  );
  const series = [...seriesOf(body, (id) => id === cgroup)];
  t.ok(series.length > 0, `series of the Docker container (${series.length})`);
  const labelled = series.filter((s) => ['name', 'image', 'container', 'pod', 'namespace'].some((k) => (s.labels[k] ?? '') !== ''));
  t.same(
    labelled.slice(0, 5).map((s) => `${s.metric}${JSON.stringify(s.labels)}`),
    [],
    'with Docker down its containers are exposed with empty labels',
  );
  t.match(body, /\npodvisor_runtime_up\{runtime="docker"\} 0\n/, 'podvisor_runtime_up{runtime="docker"} 0');
}

/** One Kubernetes-shaped Docker container for tests 4 and 5; its cgroup, from the kernel. */
async function oneDocker(t: Test, tag: string): Promise<string> {
  const suffix = crypto.randomBytes(3).toString('hex');
  const { cgroup } = await startDocker(t, `${PREFIX}-${tag}-${suffix}`, `${tag}-${suffix}`);
  const id = cgroup.split('/').pop() ?? '';
  const pid = Number((await run('docker', ['inspect', '--format', '{{.State.Pid}}', id])).stdout.trim());
  t.equal(cgroupOfPid(pid), cgroup, 'the container runs in the cgroup it was started in');
  return cgroup;
}

// containerd looks up only k8s.io in 4 and 5: its `moby` namespace holds Docker's own containers (Docker runs on it),
// which would label them through containerd and hide what Docker being down does.
const CTR_K8S_ONLY = '--containerd-namespaces=k8s.io';

t.test('a runtime whose socket does not exist is not waited for', async (t) => {
  if (!(await requireDaemon(t, 'docker'))) return;
  const cgroup = await oneDocker(t, 'absent');
  // Waiting for that runtime would mean waiting 10 minutes: readiness well within the poll's bound shows it was not.
  const ex = await launch(t, ['--docker-endpoint=unix:///nonexistent/docker.sock', '--runtime-startup-grace=10m', CTR_K8S_ONLY]);
  const ready = await poll(
    'ready without waiting for the absent runtime',
    async () => {
      const r = await get(`${ex.url}/readyz`);
      return r?.status === 200 ? (JSON.parse(r.body) as ReadyBody) : undefined;
    },
    { everyMs: 100, timeoutMs: 120_000, giveUp: ex.gone },
  );
  t.equal(ready.runtimes?.find((r) => r.runtime === 'docker')?.up, false, '/readyz: docker is not up');
  await assertDockerUnlabelled(t, ex, cgroup);
});

t.test('a runtime that never answers is given up on after the grace', async (t) => {
  if (!(await requireDaemon(t, 'docker'))) return;
  const cgroup = await oneDocker(t, 'hung');
  const sock = socketPath('hung');
  fs.rmSync(sock, { force: true });
  const held: net.Socket[] = [];
  const hung = net.createServer((s) => held.push(s)); // accepts, never answers
  await new Promise<void>((r) => hung.listen(sock, r));
  t.teardown(() => {
    for (const s of held) s.destroy();
    hung.close();
    fs.rmSync(sock, { force: true });
  });
  // Each runtime call may take 10 minutes here, so no call of the hung runtime can fail first: readiness within the
  // poll's bound can only come from giving it up after the 2 s grace.
  const ex = await launch(t, [`--docker-endpoint=unix://${sock}`, '--runtime-startup-grace=2s', '--runtime-timeout=10m', CTR_K8S_ONLY]);
  const ready = await poll(
    'ready once the hung runtime is given up on',
    async () => {
      const r = await get(`${ex.url}/readyz`);
      return r?.status === 200 ? (JSON.parse(r.body) as ReadyBody) : undefined;
    },
    { everyMs: 100, timeoutMs: 120_000, giveUp: ex.gone },
  );
  t.ok(held.length > 0, `podvisor connected to the hung socket (${held.length} connections)`);
  t.equal(ready.runtimes?.find((r) => r.runtime === 'docker')?.up, false, '/readyz: docker is not up');
  // The give-up is logged (written before the gather it unblocks answers; this process may read it a little later).
  const line = await poll(
    'the log to say Docker was given up on',
    () => /^.*level=(?:info|warn)[^\n]*docker runtime [^\n]*(?:did not answer|no progress|grace|gave up|giving up|given up).*$/m.exec(ex.stderr())?.[0],
    { timeoutMs: 30_000, giveUp: ex.gone, describe: () => `stderr: ${ex.stderr()}` },
  );
  t.comment(`logged: ${line}`);
  await assertDockerUnlabelled(t, ex, cgroup);
});
