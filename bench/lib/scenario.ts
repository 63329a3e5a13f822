/**
 * The busy node: N Kubernetes-shaped containers, split between Docker and containerd (k8s.io namespace), each alone
 * in its pod cgroup with the kubelet's labels, like bench/containers.sh and test/e2e/runtimes.test.ts make them.
 *
 *   Docker      name `podvisor-bench-d<i>`, `--cgroup-parent /kubepods/burstable/pod<uid>`, `podvisor-test:1`
 *   containerd  id `podvisorbenchc<i, 50 digits>`, `ctr run --cgroup /kubepods/besteffort/pod<uid>/<id>`
 *
 * Both run `sleep 86400` and carry `io.kubernetes.{pod.name,pod.namespace,pod.uid,container.name}` and
 * `podvisor.bench.files=<files per container>`: that label is how the harness knows a container is its own (it never
 * touches one without it). Pod uids are `00000000-0000-4000-8000-{d,c}<i in hex, 11 digits>`, inside the range
 * `bench/containers.sh down` cleans up.
 *
 * Why the containerd id is not `podvisor-bench-c<i>`: cAdvisor 0.38.7 only claims a containerd cgroup whose last
 * element contains 64 `[a-z0-9]` characters, and takes those 64 as the container id (containerdCgroupRegexp); any
 * other id leaves the container unnamed in cAdvisor. `podvisorbenchc` + 50 digits is 64 such characters.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pool, run } from './exec.js';
import { fillContainer } from './files.js';
import { Progress } from './progress.js';

export const DOCKER_IMAGE = 'podvisor-test:1';
export const CONTAINERD_IMAGE = 'docker.io/library/podvisor-test:1';
export const CONTAINERD_NS = 'k8s.io';
export const FILES_LABEL = 'podvisor.bench.files';
const CGROUP_ROOT = '/sys/fs/cgroup';

export type Runtime = 'docker' | 'containerd';

export interface BenchContainer {
  runtime: Runtime;
  index: number;
  /** Docker: the container name; containerd: the container id. Either way the `name` label both exporters give it. */
  name: string;
  podUid: string;
  podName: string;
  /** the pod cgroup (the container's cgroup is below it) */
  podCgroup: string;
}

export function benchContainer(runtime: Runtime, index: number): BenchContainer {
  const r = runtime === 'docker' ? 'd' : 'c';
  const podUid = `00000000-0000-4000-8000-${r}${index.toString(16).padStart(11, '0')}`;
  return {
    runtime,
    index,
    name: runtime === 'docker' ? `podvisor-bench-d${index}` : `podvisorbenchc${String(index).padStart(50, '0')}`,
    podUid,
    podName: `podvisor-bench-${r}${index}`,
    podCgroup: `/kubepods/${runtime === 'docker' ? 'burstable' : 'besteffort'}/pod${podUid}`,
  };
}

/** N containers: the first ceil(N/2) in Docker, the rest in containerd. */
export function containersFor(n: number): BenchContainer[] {
  const docker = Math.ceil(n / 2);
  return [
    ...Array.from({ length: docker }, (_, i) => benchContainer('docker', i)),
    ...Array.from({ length: n - docker }, (_, i) => benchContainer('containerd', i)),
  ];
}

const kubeLabels = (c: BenchContainer, files: number): string[] => [
  `io.kubernetes.pod.name=${c.podName}`,
  `io.kubernetes.pod.namespace=bench-ns-${c.index % 5}`,
  `io.kubernetes.pod.uid=${c.podUid}`,
  'io.kubernetes.container.name=app',
  `${FILES_LABEL}=${files}`,
];

/** Set by down(): no container is started or filled after it; in-flight ones are waited for, then removed too. */
let stopping = false;
let inFlight = 0;

async function tracked<T>(f: () => Promise<T>): Promise<T> {
  if (stopping) throw new Error('stopping: the bench containers are being removed');
  inFlight++;
  try {
    return await f();
  } finally {
    inFlight--;
  }
}

async function start(c: BenchContainer, files: number): Promise<void> {
  const labels = kubeLabels(c, files).flatMap((l) => ['--label', l]);
  if (c.runtime === 'docker') {
    await run('docker', ['run', '-d', '--name', c.name, '--cgroup-parent', c.podCgroup, ...labels, DOCKER_IMAGE, 'sleep', '86400'], { timeoutMs: 120_000 });
  } else {
    await run('ctr', ['-n', CONTAINERD_NS, 'run', '-d', '--cgroup', `${c.podCgroup}/${c.name}`, ...labels, CONTAINERD_IMAGE, c.name, 'sleep', '86400'], {
      timeoutMs: 120_000,
    });
  }
}

/** The harness's own containers present now (by the files label): Docker name → label value and state; containerd ids. */
export interface Present {
  docker: Map<string, { files: string; running: boolean }>;
  containerd: Map<string, { running: boolean }>;
}

export async function present(): Promise<Present> {
  const docker = new Map<string, { files: string; running: boolean }>();
  const d = await run('docker', ['ps', '-a', '--filter', `label=${FILES_LABEL}`, '--format', `{{.Names}}\t{{.Label "${FILES_LABEL}"}}\t{{.State}}`], {
    timeoutMs: 60_000,
  });
  for (const line of d.stdout.split('\n')) {
    const [name, files, state] = line.split('\t');
    if (name !== undefined && name !== '' && files !== undefined) docker.set(name, { files, running: state === 'running' });
  }
  const ids = await ctrIds(`labels."${FILES_LABEL}"`);
  const running = new Set(
    (await run('ctr', ['-n', CONTAINERD_NS, 'tasks', 'ls'], { timeoutMs: 60_000 })).stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f[2] === 'RUNNING')
      .map((f) => f[0]),
  );
  return { docker, containerd: new Map(ids.map((id) => [id, { running: running.has(id) }])) };
}

/** containerd container ids in k8s.io matching a ctr filter. */
async function ctrIds(filter: string): Promise<string[]> {
  return (await run('ctr', ['-n', CONTAINERD_NS, 'containers', 'ls', '-q', filter], { timeoutMs: 60_000 })).stdout.split('\n').filter((l) => l !== '');
}

export interface SetupStats {
  n: number;
  docker: number;
  containerd: number;
  started: number;
  reused: number;
  startS: number;
  filled: number;
  filesWritten: number;
  fillS: number;
}

/**
 * Makes the first `n` bench containers exist and run, each with `files` files in its writable layer (only the missing
 * ones are started and filled). Containers of the harness with another files-per-container are refused: the node
 * state would not be what the report says.
 */
/**
 * Refuses to start on containers an earlier (--keep) run left with another files-per-container: the node state would
 * not be what the report says. Called before anything is created or removed.
 */
export async function checkLeftovers(files: number): Promise<number> {
  const have = await present();
  const ctrWithFiles = new Set(await ctrIds(`labels."${FILES_LABEL}"==${files}`));
  const wrongD = [...have.docker].filter(([, v]) => v.files !== String(files)).map(([k]) => k);
  const wrongC = [...have.containerd.keys()].filter((id) => !ctrWithFiles.has(id));
  if (wrongD.length + wrongC.length > 0) {
    throw new Error(
      `${wrongD.length + wrongC.length} bench container(s) left by an earlier --keep run have another --files-per-container (e.g. ${[...wrongD, ...wrongC][0] ?? ''}): remove them with bench/containers.sh down, or rerun with their count`,
    );
  }
  return have.docker.size + have.containerd.size;
}

export async function ensure(n: number, files: number, log: (s: string) => void): Promise<SetupStats> {
  await checkLeftovers(files);
  const want = containersFor(n);
  const have = await present();
  // The harness's containers beyond this N (left by a bigger --keep run) would be load the report does not show.
  const wanted = new Set(want.map((c) => c.name));
  const extra = [...have.docker.keys(), ...have.containerd.keys()]
    .filter((name) => !wanted.has(name))
    .map(parseName)
    .filter((c): c is BenchContainer => c !== undefined);
  if (extra.length > 0) {
    log(`N=${n}: removing ${extra.length} bench container(s) beyond this N, left by an earlier --keep run`);
    await pool(extra, 8, removeOne);
    for (const c of extra) (c.runtime === 'docker' ? have.docker : have.containerd).delete(c.name);
  }
  const isUp = (c: BenchContainer): boolean => (c.runtime === 'docker' ? have.docker.get(c.name) : have.containerd.get(c.name))?.running === true;
  const exists = (c: BenchContainer): boolean => (c.runtime === 'docker' ? have.docker : have.containerd).has(c.name);
  const todo = want.filter((c) => !isUp(c));
  // A container of ours that exists but does not run (a crashed earlier run) is replaced.
  for (const c of todo.filter(exists)) await removeOne(c);

  const stats: SetupStats = {
    n,
    docker: want.filter((c) => c.runtime === 'docker').length,
    containerd: want.filter((c) => c.runtime === 'containerd').length,
    started: todo.length,
    reused: want.length - todo.length,
    startS: 0,
    filled: 0,
    filesWritten: 0,
    fillS: 0,
  };
  if (todo.length > 0) {
    const p = new Progress(`starting containers for N=${n}`, todo.length);
    let d = 0;
    let c = 0;
    await pool(todo, 8, async (x) => {
      await tracked(() => start(x, files));
      if (x.runtime === 'docker') d++;
      else c++;
      p.tick(1, `docker ${d}, containerd ${c}`);
    });
    p.finish();
    stats.startS = p.elapsedS;
  }
  // Filling is idempotent (a marker file): reused containers cost one exec each.
  if (files > 0) {
    const p = new Progress(`writing ${files} files into each writable layer`, want.length);
    let written = 0;
    await pool(want, 4, async (x) => {
      const r = await tracked(() => fillContainer(x, files, CONTAINERD_NS));
      written += r.written;
      if (r.written > 0) stats.filled++;
      p.tick(1, `${written.toLocaleString('en')} files written`);
    });
    p.finish();
    stats.fillS = p.elapsedS;
    stats.filesWritten = written;
  }
  log(
    `N=${n}: ${stats.docker} Docker + ${stats.containerd} containerd containers (${stats.started} started in ${stats.startS.toFixed(1)} s, ${stats.reused} already there); ${stats.filesWritten} files written in ${stats.fillS.toFixed(1)} s`,
  );
  return stats;
}

async function removeOne(c: BenchContainer): Promise<void> {
  if (c.runtime === 'docker') {
    await run('docker', ['rm', '-f', c.name], { timeoutMs: 120_000 }).catch(() => undefined);
  } else {
    await run('ctr', ['-n', CONTAINERD_NS, 'tasks', 'kill', '-s', 'SIGKILL', c.name], { timeoutMs: 30_000 }).catch(() => undefined);
    await run('ctr', ['-n', CONTAINERD_NS, 'tasks', 'rm', '-f', c.name], { timeoutMs: 60_000 }).catch(() => undefined);
    await run('ctr', ['-n', CONTAINERD_NS, 'containers', 'rm', c.name], { timeoutMs: 60_000 }).catch(() => undefined);
  }
  removePodCgroups(c);
}

/** rmdir of the container's and the pod's cgroup in every hierarchy, where empty (runtimes leave them behind). */
function removePodCgroups(c: BenchContainer): number {
  let removed = 0;
  let mounts: string[];
  try {
    mounts = fs.readdirSync(CGROUP_ROOT).map((m) => path.join(CGROUP_ROOT, m));
  } catch {
    return 0;
  }
  if (fs.existsSync(path.join(CGROUP_ROOT, 'cgroup.controllers'))) mounts = [CGROUP_ROOT];
  const dirs = c.runtime === 'containerd' ? [`${c.podCgroup}/${c.name}`, c.podCgroup] : [c.podCgroup];
  for (const mount of mounts) {
    for (const rel of dirs) {
      const dir = path.join(mount, rel);
      try {
        fs.rmdirSync(dir);
        removed++;
      } catch {
        // not there, or not empty
      }
    }
  }
  return removed;
}

/** Index of a bench container from its name/id, or undefined if the name is not one of ours. */
export function parseName(name: string): BenchContainer | undefined {
  let m = /^podvisor-bench-d(\d+)$/.exec(name);
  if (m !== null) return benchContainer('docker', Number(m[1]));
  m = /^podvisorbenchc(\d{50})$/.exec(name);
  if (m !== null) return benchContainer('containerd', Number(m[1]));
  return undefined;
}

/** Removes every container of the harness (label `podvisor.bench.files`) and their empty pod cgroups. */
export async function down(log: (s: string) => void): Promise<void> {
  stopping = true;
  for (let waited = 0; inFlight > 0 && waited < 60_000; waited += 200) await new Promise((r) => setTimeout(r, 200));
  if (inFlight > 0) log(`${inFlight} container start(s) still running after 60 s: check with bench/containers.sh count`);
  const have = await present();
  const all = [...have.docker.keys(), ...have.containerd.keys()].map(parseName).filter((c): c is BenchContainer => c !== undefined);
  if (all.length === 0) return;
  const p = new Progress('removing bench containers', all.length);
  // docker rm -f takes many names at once; containerd's are one by one.
  const dockerOnes = all.filter((c) => c.runtime === 'docker');
  for (let i = 0; i < dockerOnes.length; i += 50) {
    const batch = dockerOnes.slice(i, i + 50);
    await run('docker', ['rm', '-f', ...batch.map((c) => c.name)], { timeoutMs: 300_000 }).catch((err: unknown) => log(`docker rm: ${String(err)}`));
    for (const c of batch) removePodCgroups(c);
    p.tick(batch.length);
  }
  await pool(
    all.filter((c) => c.runtime === 'containerd'),
    8,
    async (c) => {
      await removeOne(c);
      p.tick();
    },
  );
  p.finish();
}
