/**
 * /metrics/resource of the real exporter, read as metrics-server reads it (test/support/metrics-server-decode.ts), on a
 * pod made of real Docker containers the way the kubelet (cri-dockerd) makes them: a pod cgroup as their parent, the
 * kubelet's labels, a sandbox named POD, a container that burns CPU (`--cpus 0.25`) and one that holds 16 MiB of
 * memory (a file on its /dev/shm, which is shmem and so counts in the working set).
 *
 * The values are compared with the kernel's files for the same cgroups, read by this test before and after the scrape
 * (podvisor reads them on the scrape: gather ahead is off, the warm-up gather is over, and each scrape asks for a long
 * deadline, so it runs a gather of its own): CPU between the two reads, the working set (usage − inactive_file) equal
 * in a window where the kernel's value did not move. metrics-server's own rules decide what is kept, and two scrapes
 * give it a CPU rate.
 */
import t from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { requireDaemon, run } from '../support/daemons.js';
import { startExporter, type Running } from '../support/exporter.js';
import { flatKeyed, removeCgroupDirs } from '../support/cgroups.js';
import { kubeletContainerArgs } from '../support/kubelet-labels.js';
import { decodeResourceBody, parseText, resourceUsage, type MetricsBatch, type Series } from '../support/metrics-server-decode.js';
import { poll } from '../support/poll.js';

const IMAGE = 'podvisor-test:1';
const NAMESPACE = 'podvisor-e2e';
/** Scrapes and CLIs are costly: every 250 ms, for up to 60 s. */
const SLOW = { everyMs: 250, timeoutMs: 60_000 };
/** Asked of every scrape, so a slow gather on a loaded machine is waited for rather than answered from an older one. */
const SCRAPE_TIMEOUT_SECONDS = '120';
const SHM_BYTES = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------------------------
// The kernel's files

interface Hierarchies {
  /** The directory of cgroup `rel` holding `controller`'s files. */
  dir(controller: 'cpuacct' | 'memory', rel: string): string;
  /** A process's cgroup, as /proc/<pid>/cgroup says (the memory hierarchy's on v1). */
  cgroupOf(pid: number): string;
  v2: boolean;
}

/** cgroup v1 (this project's hosts: v1 controllers) or a pure v2 host. */
function hierarchies(): Hierarchies | string {
  const v1 = new Map<string, string>();
  let v2Mount: string | undefined;
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    const [fstype, , superOptions] = (right ?? '').split(' ');
    const mountPoint = left?.split(' ')[4] ?? '';
    if (fstype === 'cgroup') for (const c of (superOptions ?? '').split(',')) v1.set(c, mountPoint);
    if (fstype === 'cgroup2' && fs.existsSync(path.join(mountPoint, 'cgroup.controllers'))) {
      const controllers = fs.readFileSync(path.join(mountPoint, 'cgroup.controllers'), 'utf8');
      if (controllers.includes('memory') && controllers.includes('cpu')) v2Mount = mountPoint;
    }
  }
  const cpuacct = v1.get('cpuacct');
  const memory = v1.get('memory');
  if (cpuacct !== undefined && memory !== undefined) {
    return {
      v2: false,
      dir: (controller, rel) => path.join(controller === 'cpuacct' ? cpuacct : memory, rel),
      cgroupOf: (pid) => {
        for (const line of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
          const [, controllers, p] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
          if ((controllers ?? '').split(',').includes('memory') && p !== undefined) return p;
        }
        throw new Error(`/proc/${pid}/cgroup: no memory hierarchy`);
      },
    };
  }
  if (v2Mount !== undefined) {
    const root = v2Mount;
    return {
      v2: true,
      dir: (_controller, rel) => path.join(root, rel),
      cgroupOf: (pid) => {
        const p = /^0::(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1];
        if (p === undefined) throw new Error(`/proc/${pid}/cgroup: no v2 line`);
        return p;
      },
    };
  }
  return `neither v1 cpuacct and memory hierarchies nor a v2 one with cpu and memory (v1: ${[...v1.keys()].join(',') || 'none'})`;
}

function readNumber(file: string): number {
  return Number(fs.readFileSync(file, 'utf8').trim());
}

/** Cumulative CPU of a cgroup in ns: v1 cpuacct.usage, v2 cpu.stat usage_usec. */
function cpuNs(h: Hierarchies, rel: string): number {
  if (!h.v2) return readNumber(path.join(h.dir('cpuacct', rel), 'cpuacct.usage'));
  const usec = flatKeyed(path.join(h.dir('cpuacct', rel), 'cpu.stat')).get('usage_usec');
  if (usec === undefined) throw new Error(`${rel}: no usage_usec in cpu.stat`);
  return usec * 1000;
}

/** The working set as cAdvisor and podvisor compute it: usage − inactive_file, at least 0. */
function workingSet(h: Hierarchies, rel: string): number {
  const dir = h.dir('memory', rel);
  const usage = readNumber(path.join(dir, h.v2 ? 'memory.current' : 'memory.usage_in_bytes'));
  const inactive = flatKeyed(path.join(dir, 'memory.stat')).get(h.v2 ? 'inactive_file' : 'total_inactive_file') ?? 0;
  return Math.max(0, usage - inactive);
}

// ---------------------------------------------------------------------------------------------------------------
// Scrapes

interface Scrape {
  text: string;
  series: Series[];
  batch: MetricsBatch;
  /** Date.now() before the request and after the answer. */
  sentMs: number;
  doneMs: number;
}

async function scrapeResource(ex: Running): Promise<Scrape> {
  const sentMs = Date.now();
  const r = await fetch(`${ex.url}/metrics/resource`, { headers: { 'x-prometheus-scrape-timeout-seconds': SCRAPE_TIMEOUT_SECONDS } });
  const text = await r.text();
  const doneMs = Date.now();
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${text.slice(0, 200)}`);
  const type = r.headers.get('content-type');
  if (type !== 'text/plain; version=0.0.4; charset=utf-8') throw new Error(`content-type ${type}`);
  return { text, series: parseText(text), batch: decodeResourceBody(text, sentMs), sentMs, doneMs };
}

/** The one sample of `name` with exactly these labels, or undefined. */
function one(series: readonly Series[], name: string, labels: Record<string, string>): Series | undefined {
  const found = series.filter((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0];
}

/** CPU seconds as podvisor writes them, back to whole ns (the float of ns/1e9 round-trips to the nearest ns). */
function ns(seconds: number | undefined): number | undefined {
  return seconds === undefined ? undefined : Math.round(seconds * 1e9);
}

// ---------------------------------------------------------------------------------------------------------------

t.test('/metrics/resource of a Docker pod, as metrics-server reads it, against the kernel', async (t) => {
  if (!(await requireDaemon(t, 'docker'))) return;
  const h = hierarchies();
  if (typeof h === 'string') {
    t.fail(`this test reads the kernel's cgroup files: ${h}`);
    return;
  }
  const hex = crypto.randomBytes(4).toString('hex');
  const uid = crypto.randomUUID();
  const pod = `podvisor-t-resource-${hex}`;
  const podParent = `/kubepods/burstable/pod${uid}`;
  const names: string[] = [];
  t.teardown(async () => {
    if (names.length > 0) await run('docker', ['rm', '-f', ...names], { timeoutMs: 60_000 }).catch(() => undefined);
    removeCgroupDirs(podParent);
  });
  const docker = async (container: string, extra: string[], cmd: string[]): Promise<{ id: string; cgroup: string }> => {
    const name = `${pod}-${container.toLowerCase()}`;
    names.push(name);
    const args = [
      'run',
      '-d',
      '--name',
      name,
      '--restart',
      'no',
      // No network: nothing here needs one.
      '--network',
      'none',
      ...kubeletContainerArgs({ parent: podParent, pod, namespace: NAMESPACE, uid, container }),
      ...extra,
    ];
    const id = (await run('docker', [...args, IMAGE, ...cmd], { timeoutMs: 60_000 })).stdout.trim();
    const pid = Number((await run('docker', ['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim());
    return { id, cgroup: h.cgroupOf(pid) };
  };

  const sandbox = await docker('POD', ['--label', 'io.kubernetes.docker.type=podsandbox'], ['sleep', '3600']);
  const burn = await docker('burn', ['--cpus', '0.25'], ['sh', '-c', 'while :; do :; done']);
  const mem = await docker('mem', ['--shm-size', '64m'], ['sh', '-c', `head -c ${SHM_BYTES} /dev/zero > /dev/shm/fill && exec sleep 3600`]);
  for (const c of [sandbox, burn, mem]) t.equal(path.posix.dirname(c.cgroup), podParent, `${c.id.slice(0, 12)} runs in the pod cgroup (${c.cgroup})`);
  await poll('the memory user to fill its /dev/shm', () => (workingSet(h, mem.cgroup) >= SHM_BYTES ? true : undefined), {
    ...SLOW,
    describe: () => `working set ${workingSet(h, mem.cgroup)}`,
  });

  const exporter: Running = await startExporter(['--gather-ahead=false']);
  t.teardown(() => exporter.stop());
  await poll('the first gather', async () => ((await fetch(`${exporter.url}/readyz`)).status === 200 ? true : undefined), SLOW);
  const podKey = `${NAMESPACE}/${pod}`;
  // The containers are labelled once their runtime lookup answered: until then they are held back.
  const first = await poll(
    'metrics-server to keep the pod with both containers',
    async () => {
      const s = await scrapeResource(exporter);
      return s.batch.pods.get(podKey)?.size === 2 ? s : undefined;
    },
    SLOW,
  );

  await t.test('what metrics-server keeps: the node, and the pod with its two containers (not the sandbox)', async (t) => {
    const node = first.batch.node;
    t.ok(node !== undefined && node.cpuNs > 0 && node.memoryBytes > 0, `the node: CPU ${node?.cpuNs} ns, memory ${node?.memoryBytes} B`);
    const containers = first.batch.pods.get(podKey);
    t.same([...(containers?.keys() ?? [])].sort(), ['burn', 'mem'], 'burn and mem; the sandbox POD is not a container of the pod');
    for (const [name, p] of containers ?? []) {
      t.ok(p.cpuNs > 0 && p.memoryBytes > 0, `${name}: CPU ${p.cpuNs} ns, memory ${p.memoryBytes} B`);
      t.ok(p.startTimeNs > 0, `${name}: a start time (${p.startTimeNs} ns), for brand-new pods' first usage`);
    }
    t.match(first.text, /^resource_scrape_error 0$/m, 'resource_scrape_error 0');
    t.notMatch(first.text, /^podvisor_|^process_|^nodejs_/m, 'no podvisor self-metrics or process metrics');
  });

  await t.test('the values are the kernel files of the same cgroups', async (t) => {
    const rels = { pod: podParent, burn: burn.cgroup, mem: mem.cgroup };
    const memOf = (): { pod: number; burn: number; mem: number } => ({
      pod: workingSet(h, rels.pod),
      burn: workingSet(h, rels.burn),
      mem: workingSet(h, rels.mem),
    });
    let last = '';
    // The working sets must not move between the kernel reads around the scrape; CPU (burn always runs) is bounded.
    const w = await poll(
      'a scrape between two equal reads of the working sets',
      async () => {
        const memBefore = memOf();
        const cpuBefore = { pod: cpuNs(h, rels.pod), burn: cpuNs(h, rels.burn), mem: cpuNs(h, rels.mem), node: cpuNs(h, '/') };
        const s = await scrapeResource(exporter);
        const cpuAfter = { pod: cpuNs(h, rels.pod), burn: cpuNs(h, rels.burn), mem: cpuNs(h, rels.mem), node: cpuNs(h, '/') };
        const memAfter = memOf();
        last = `before ${JSON.stringify(memBefore)} after ${JSON.stringify(memAfter)}`;
        return JSON.stringify(memBefore) === JSON.stringify(memAfter) ? { s, mem: memAfter, cpuBefore, cpuAfter } : undefined;
      },
      { ...SLOW, describe: () => last },
    );
    const labels = (container: string) => ({ container, namespace: NAMESPACE, pod });
    for (const c of ['burn', 'mem'] as const) {
      const cpu = ns(one(w.s.series, 'container_cpu_usage_seconds_total', labels(c))?.value);
      t.ok(
        cpu !== undefined && cpu >= w.cpuBefore[c] && cpu <= w.cpuAfter[c],
        `${c}: container_cpu_usage_seconds_total ${cpu} ns within the kernel's ${w.cpuBefore[c]} (before) and ${w.cpuAfter[c]} (after)`,
      );
      t.equal(
        one(w.s.series, 'container_memory_working_set_bytes', labels(c))?.value,
        w.mem[c],
        `${c}: container_memory_working_set_bytes is usage − inactive_file`,
      );
    }
    t.ok(w.mem.mem >= SHM_BYTES, `the memory user's working set (${w.mem.mem}) holds its ${SHM_BYTES} B of shmem`);
    const podCpu = ns(one(w.s.series, 'pod_cpu_usage_seconds_total', { namespace: NAMESPACE, pod })?.value);
    t.ok(
      podCpu !== undefined && podCpu >= w.cpuBefore.pod && podCpu <= w.cpuAfter.pod,
      `pod_cpu_usage_seconds_total ${podCpu} ns within the pod cgroup's ${w.cpuBefore.pod} and ${w.cpuAfter.pod}`,
    );
    t.equal(one(w.s.series, 'pod_memory_working_set_bytes', { namespace: NAMESPACE, pod })?.value, w.mem.pod, "pod_memory_working_set_bytes: the pod cgroup's");
    // The pod cgroup is read before its containers (podvisor reads in path order), and counts them all (and the sandbox):
    // their sum may pass it only by what the pod used during the read window.
    const sum =
      (ns(one(w.s.series, 'container_cpu_usage_seconds_total', labels('burn'))?.value) ?? 0) +
      (ns(one(w.s.series, 'container_cpu_usage_seconds_total', labels('mem'))?.value) ?? 0);
    const window = w.cpuAfter.pod - w.cpuBefore.pod;
    t.ok(podCpu !== undefined && sum <= podCpu + window, `the containers' sum ${sum} ns ≤ the pod's ${podCpu} ns + the ${window} ns it used while read`);
    const node = ns(one(w.s.series, 'node_cpu_usage_seconds_total', {})?.value);
    t.ok(
      node !== undefined && node >= w.cpuBefore.node && node <= w.cpuAfter.node,
      `node_cpu_usage_seconds_total ${node} ns within the root cgroup's ${w.cpuBefore.node} and ${w.cpuAfter.node}`,
    );
    // Every CPU and memory sample carries the gather's start in ms: after the request was sent, before it was answered.
    const stamped = w.s.series.filter((s) => /^(node|container|pod)_(cpu|memory|swap)_/.test(s.name));
    t.ok(stamped.length >= 8, `${stamped.length} CPU, memory and swap samples`);
    t.same(
      stamped
        .filter((s) => s.timestampMs === undefined || !Number.isInteger(s.timestampMs) || s.timestampMs < w.s.sentMs || s.timestampMs > w.s.doneMs)
        .map((s) => s.raw),
      [],
      `each stamped with a whole ms between ${w.s.sentMs} and ${w.s.doneMs}`,
    );
    t.same(
      w.s.series
        .filter((s) => (s.name === 'container_start_time_seconds' || s.name === 'resource_scrape_error') && s.timestampMs !== undefined)
        .map((s) => s.raw),
      [],
      'container_start_time_seconds and resource_scrape_error carry no timestamp',
    );
  });

  await t.test('two scrapes give metrics-server a CPU rate, at later timestamps', async (t) => {
    const a = await scrapeResource(exporter);
    const b = await poll(
      'a scrape from a later gather',
      async () => {
        const s = await scrapeResource(exporter);
        return s.batch.node?.timestampMs !== a.batch.node?.timestampMs && s.batch.pods.get(podKey)?.size === 2 ? s : undefined;
      },
      SLOW,
    );
    const [ta, tb] = [a.batch.node?.timestampMs ?? 0, b.batch.node?.timestampMs ?? 0];
    t.ok(tb > ta, `the node's timestamp went forward: ${ta} → ${tb} ms`);
    const burnA = a.batch.pods.get(podKey)?.get('burn');
    const burnB = b.batch.pods.get(podKey)?.get('burn');
    if (burnA === undefined || burnB === undefined || a.batch.node === undefined || b.batch.node === undefined) {
      t.fail('both scrapes have the node and the burn container');
      return;
    }
    const rate = resourceUsage(burnB, burnA);
    t.ok(rate.nanoCores > 0, `burn: ${rate.nanoCores} nanocores over ${rate.windowMs} ms`);
    t.ok(resourceUsage(b.batch.node, a.batch.node).nanoCores > 0, 'the node: a positive rate too');
    t.equal(burnB.startTimeNs, burnA.startTimeNs, 'the same start time: no restart seen');
  });

  await t.test("one gather's /metrics/resource and /metrics/cadvisor agree", async (t) => {
    // Two requests sent together join one gather; when they did not (their timestamps differ), they are sent again.
    const pair = await poll(
      'a /metrics/resource and a /metrics/cadvisor answered from one gather',
      async () => {
        const [r, c] = await Promise.all([
          scrapeResource(exporter),
          fetch(`${exporter.url}/metrics/cadvisor`, { headers: { accept: 'text/plain', 'x-prometheus-scrape-timeout-seconds': SCRAPE_TIMEOUT_SECONDS } }).then(
            (x) => x.text(),
          ),
        ]);
        const cadvisor = parseText(c);
        const seen = cadvisor.find((s) => s.name === 'container_last_seen' && s.labels.container === 'burn' && s.labels.pod === pod)?.value;
        return seen !== undefined && Math.round(seen * 1000) === r.batch.node?.timestampMs ? { r, cadvisor } : undefined;
      },
      SLOW,
    );
    for (const c of ['burn', 'mem']) {
      const theirs = (name: string) =>
        pair.cadvisor.filter(
          (s) =>
            s.name === name && s.labels.container === c && s.labels.pod === pod && s.labels.namespace === NAMESPACE && (s.labels.cpu ?? 'total') === 'total',
        );
      const cpu = theirs('container_cpu_usage_seconds_total');
      t.equal(cpu.length, 1, `${c}: one cpu="total" row on /metrics/cadvisor`);
      const labels = { container: c, namespace: NAMESPACE, pod };
      t.equal(one(pair.r.series, 'container_cpu_usage_seconds_total', labels)?.value, cpu[0]?.value, `${c}: the same CPU seconds`);
      t.equal(
        one(pair.r.series, 'container_memory_working_set_bytes', labels)?.value,
        theirs('container_memory_working_set_bytes')[0]?.value,
        `${c}: the same working set`,
      );
      t.equal(one(pair.r.series, 'container_start_time_seconds', labels)?.value, theirs('container_start_time_seconds')[0]?.value, `${c}: the same start time`);
    }
  });
});
