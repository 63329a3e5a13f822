/**
 * The newer container families against the kernel's own files, on real Docker containers: each value podvisor exports
 * is compared with the file the kernel keeps for the same cgroup, read by this test around podvisor's scrape.
 *
 * - container_oom_events_total: a container limited to 32 MiB (no swap) stays up (`sleep`), and a `tail /dev/zero`
 *   exec'd into it is OOM-killed; its memory.oom_control `oom_kill`, its parent's, and /proc/vmstat `oom_kill` for `/`.
 * - container_fs_{reads,writes}{,_bytes}_total: direct I/O in a container, against its blkio files (the group
 *   podvisor's reader documents: CFQ, then BFQ, then blk-throttle, the first with device rows), or nothing when the
 *   kernel attributes nothing to the cgroup.
 * - container_ulimits_soft: `--ulimit nofile=1234:5678`, confirmed in /proc/<pid>/limits first.
 * - container_memory_kernel_usage: memory.kmem.usage_in_bytes, between two reads around the scrape.
 * - --enable-metrics=cpu reads nothing else (no other container family), with one `cpu="total"` row per cgroup;
 *   cpu,percpu gives the cpuNN rows instead.
 * - --runtime-containers-only: `/`, the runtimes' containers and their pod cgroups, nothing else.
 *
 * Counters are compared in a window where the kernel's value did not move between the read before and the read after
 * the scrape (podvisor gathers inside that window: gather ahead is off, the warm-up gather is over, and the scrape
 * asks for a long deadline, so every scrape runs a gather of its own and is never answered from an older one).
 * The kernel files are cgroup v1's (this project's hosts: v1 controllers, an empty cgroup2 at /sys/fs/cgroup/unified).
 */
import t from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { requireDaemon, run } from '../support/daemons.js';
import { startExporter, type Running } from '../support/exporter.js';
import { flatKeyed, removeCgroupDirs } from '../support/cgroups.js';
import { kubeletContainerArgs } from '../support/kubelet-labels.js';
import { poll } from '../support/poll.js';

const IMAGE = 'podvisor-test:1';
/** Scrapes and CLIs are costly: every 250 ms, for up to 60 s. */
const SLOW = { everyMs: 250, timeoutMs: 60_000 };
/** Asked of every scrape, so a slow gather on a loaded machine is waited for rather than answered from an older one. */
const SCRAPE_TIMEOUT_SECONDS = '120';

// ---------------------------------------------------------------------------------------------------------------
// The text exposition, parsed

interface Sample {
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/y;

function unescapeLabel(v: string): string {
  return v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(v: string): number {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  return Number(v);
}

/** Every sample line of a text 0.0.4 body; throws on a line it cannot read. */
function parseSamples(body: string): Sample[] {
  const out: Sample[] = [];
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const name = NAME.exec(line)?.[0];
    if (name === undefined) throw new Error(`not a sample line: ${line}`);
    let i = name.length;
    const labels: Record<string, string> = {};
    if (line[i] === '{') {
      i++;
      while (line[i] !== '}') {
        LABEL.lastIndex = i;
        const m = LABEL.exec(line);
        if (m === null) throw new Error(`bad labels at column ${i}: ${line}`);
        labels[m[1] ?? ''] = unescapeLabel(m[2] ?? '');
        i = LABEL.lastIndex;
      }
      i++;
    }
    if (line[i] !== ' ') throw new Error(`no value: ${line}`);
    out.push({ name, labels, value: parseValue(line.slice(i + 1).split(' ')[0] ?? '') });
  }
  return out;
}

/** The family names a body declares (`# TYPE`) or has samples of. */
function familyNames(body: string, samples: readonly Sample[]): Set<string> {
  const names = new Set(samples.map((s) => s.name));
  for (const m of body.matchAll(/^# TYPE (\S+) /gm)) names.add(m[1] ?? '');
  return names;
}

function rows(samples: readonly Sample[], name: string, id: string): Sample[] {
  return samples.filter((s) => s.name === name && s.labels.id === id);
}

/** The one sample of `name` for `id` (with `extra` labels), or undefined when there is none. */
function one(samples: readonly Sample[], name: string, id: string, extra: Record<string, string> = {}): Sample | undefined {
  const found = rows(samples, name, id).filter((s) => Object.entries(extra).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} for ${id} ${JSON.stringify(extra)}`);
  return found[0];
}

interface Scrape {
  body: string;
  samples: Sample[];
}

async function scrape(ex: Running): Promise<Scrape> {
  const r = await fetch(`${ex.url}/metrics`, { headers: { 'x-prometheus-scrape-timeout-seconds': SCRAPE_TIMEOUT_SECONDS } });
  const body = await r.text();
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${body.slice(0, 200)}`);
  return { body, samples: parseSamples(body) };
}

/** Waits for the exporter's warm-up gather, so that no scrape below joins a gather that started before it. */
async function ready(ex: Running): Promise<void> {
  await poll('the first gather', async () => ((await fetch(`${ex.url}/readyz`)).status === 200 ? true : undefined), SLOW);
}

/** A scrape that has every one of `ids` (their labels resolved: a container still being looked up is held back). */
function scrapeWith(ex: Running, ids: readonly string[]): Promise<Scrape> {
  let missing: string[] = [];
  return poll(
    `a scrape with ${ids.join(', ')}`,
    async () => {
      const s = await scrape(ex);
      missing = ids.filter((id) => !s.samples.some((x) => x.labels.id === id));
      return missing.length === 0 ? s : undefined;
    },
    { ...SLOW, describe: () => `missing ${missing.join(', ')}` },
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The kernel's files, read by the test

/** Where the v1 hierarchy of `controller` is mounted (from /proc/self/mountinfo), or undefined. */
function v1Mount(controller: string): string | undefined {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    const [fstype, , superOptions] = (right ?? '').split(' ');
    if (fstype === 'cgroup' && (superOptions ?? '').split(',').includes(controller)) return left?.split(' ')[4];
  }
  return undefined;
}

/** A process's cgroup in the v1 hierarchy of `controller`, from /proc/<pid>/cgroup. */
function v1CgroupOf(pid: number, controller: string): string | undefined {
  for (const line of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const [, controllers, p] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if ((controllers ?? '').split(',').includes(controller)) return p;
  }
  return undefined;
}

function oomKill(file: string): number {
  const v = flatKeyed(file).get('oom_kill');
  if (v === undefined) throw new Error(`${file}: no oom_kill line`);
  return v;
}

/** A blkio file's device rows: `maj:min` → operation → value (the `Total` line without a device is left out). */
function blkioRows(file: string): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const [dev, op, v] = line.split(' ');
    if (dev === undefined || op === undefined || v === undefined || !/^\d+:\d+$/.test(dev)) continue;
    out.set(dev, { ...out.get(dev), [op]: Number(v) });
  }
  return out;
}

/** `maj:min` → `/dev/<name>`, from /proc/partitions. */
function partitions(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of fs.readFileSync('/proc/partitions', 'utf8').split('\n')) {
    const [major, minor, , name] = line.trim().split(/\s+/);
    if (major !== undefined && /^\d+$/.test(major) && name !== undefined) out.set(`${major}:${minor}`, `/dev/${name}`);
  }
  return out;
}

/** The blkio groups podvisor's v1 reader tries, in its order (src/cgroup/v1.ts, as opencontainers/cgroups fs/blkio.go). */
const BLKIO_GROUPS = [
  { name: 'cfq', bytes: 'blkio.io_service_bytes_recursive', serviced: 'blkio.io_serviced_recursive' },
  { name: 'bfq', bytes: 'blkio.bfq.io_service_bytes_recursive', serviced: 'blkio.bfq.io_serviced_recursive' },
  { name: 'throttle', bytes: 'blkio.throttle.io_service_bytes_recursive', serviced: 'blkio.throttle.io_serviced_recursive' },
] as const;

interface Blkio {
  group: string;
  bytes: Map<string, Record<string, number>>;
  serviced: Map<string, Record<string, number>>;
}

/** The cgroup's blkio rows from the first group whose bytes file has a device row; the throttle files (empty) if none has. */
function readBlkio(dir: string): Blkio {
  for (const g of BLKIO_GROUPS) {
    const file = path.join(dir, g.bytes);
    if (!fs.existsSync(file)) continue;
    const bytes = blkioRows(file);
    if (bytes.size > 0) return { group: g.name, bytes, serviced: blkioRows(path.join(dir, g.serviced)) };
  }
  const g = BLKIO_GROUPS[2];
  return { group: 'none', bytes: blkioRows(path.join(dir, g.bytes)), serviced: blkioRows(path.join(dir, g.serviced)) };
}

/**
 * A scrape between two reads of the kernel's counters that agree (the counters did not move while podvisor read
 * them), with those counters. Only the kernel's stability is awaited; podvisor's values are asserted by the caller.
 */
async function stableWindow<K>(what: string, ex: Running, read: () => K): Promise<{ kernel: K; scrape: Scrape }> {
  let last = '';
  return poll(
    `${what}: a scrape between two equal kernel reads`,
    async () => {
      const before = read();
      const s = await scrape(ex);
      const after = read();
      last = `before ${JSON.stringify(before)} after ${JSON.stringify(after)}`;
      return JSON.stringify(before) === JSON.stringify(after) ? { kernel: after, scrape: s } : undefined;
    },
    { ...SLOW, describe: () => last },
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The runtimes' view, for --runtime-containers-only

const POD_CGROUP = /^pod[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/;
const CONTAINERD_NAMESPACES = ['k8s.io', 'moby'];

interface RuntimeView {
  /** Every container id Docker or containerd (k8s.io, moby) knows, running or not. */
  known: Set<string>;
  /** The memory cgroups of the running ones (their init process's), by id. */
  running: Map<string, string>;
}

async function runtimeView(): Promise<RuntimeView> {
  const known = new Set<string>();
  const pids = new Map<string, number>();
  const all = (await run('docker', ['ps', '-a', '-q', '--no-trunc'], { timeoutMs: 60_000 })).stdout.split('\n').filter((l) => l !== '');
  all.forEach((id) => known.add(id));
  const up = (await run('docker', ['ps', '-q', '--no-trunc'], { timeoutMs: 60_000 })).stdout.split('\n').filter((l) => l !== '');
  if (up.length > 0) {
    const { stdout } = await run('docker', ['inspect', '-f', '{{.Id}} {{.State.Pid}}', ...up], { timeoutMs: 60_000 }).catch(() => ({ stdout: '' }));
    for (const line of stdout.split('\n')) {
      const [id, pid] = line.split(' ');
      if (id !== undefined && Number(pid) > 0) pids.set(id, Number(pid));
    }
  }
  for (const ns of CONTAINERD_NAMESPACES) {
    const ids = (await run('ctr', ['-n', ns, 'containers', 'ls', '-q'], { timeoutMs: 60_000 })).stdout.split('\n').filter((l) => l !== '');
    ids.forEach((id) => known.add(id));
    if (ns === 'moby') continue; // Docker's own containers, seen above
    for (const line of (await run('ctr', ['-n', ns, 'tasks', 'ls'], { timeoutMs: 60_000 })).stdout.split('\n').slice(1)) {
      const [id, pid, status] = line.trim().split(/\s+/);
      if (id !== undefined && status === 'RUNNING' && Number(pid) > 0) pids.set(id, Number(pid));
    }
  }
  const running = new Map<string, string>();
  for (const [id, pid] of pids) {
    try {
      const cg = v1CgroupOf(pid, 'memory');
      if (cg !== undefined) running.set(id, cg);
    } catch {
      // exited since it was listed
    }
  }
  return { known, running };
}

// ---------------------------------------------------------------------------------------------------------------

t.test('the newer container families agree with the kernel', async (t) => {
  if (!(await requireDaemon(t, 'docker'))) return;
  const memoryRoot = v1Mount('memory');
  const blkioRoot = v1Mount('blkio');
  if (memoryRoot === undefined || blkioRoot === undefined) {
    t.fail(`this test reads cgroup v1 files: memory on ${memoryRoot ?? 'no v1 hierarchy'}, blkio on ${blkioRoot ?? 'no v1 hierarchy'}`);
    return;
  }
  const hex = crypto.randomBytes(4).toString('hex');
  const uid = crypto.randomUUID();
  const podParent = `/kubepods/burstable/pod${uid}`;
  const oomName = `podvisor-t-families-${hex}-oom`;
  const ioName = `podvisor-t-families-${hex}-io`;
  const names: string[] = [];
  const exporters: Running[] = [];
  t.teardown(async () => {
    await Promise.all(exporters.map((e) => e.stop()));
    if (names.length > 0) await run('docker', ['rm', '-f', ...names], { timeoutMs: 60_000 }).catch(() => undefined);
    removeCgroupDirs(podParent);
  });
  const start = async (args: string[]): Promise<Running> => {
    const ex = await startExporter(['--gather-ahead=false', ...args]);
    exporters.push(ex);
    await ready(ex);
    return ex;
  };
  const docker = async (name: string, extra: string[]): Promise<{ id: string; pid: number }> => {
    names.push(name);
    const id = (await run('docker', ['run', '-d', '--name', name, '--restart', 'no', ...extra, IMAGE, 'sleep', '3600'], { timeoutMs: 60_000 })).stdout.trim();
    const pid = Number((await run('docker', ['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim());
    return { id, pid };
  };

  // One container to OOM-kill in (32 MiB, no swap), in Docker's own parent; one for I/O, ulimits and kernel memory,
  // Kubernetes-shaped in a pod cgroup (for the pod-level cgroup of --runtime-containers-only).
  const oom = await docker(oomName, ['--memory', '32m', '--memory-swap', '32m']);
  const io = await docker(ioName, [
    '--ulimit',
    'nofile=1234:5678',
    ...kubeletContainerArgs({ parent: podParent, pod: ioName, namespace: 'podvisor-e2e', uid, container: 'io' }),
  ]);

  // Each container's cgroup, as the kernel says, and as Docker's cgroup driver names it.
  const driver = (await run('docker', ['info', '-f', '{{.CgroupDriver}}'])).stdout.trim();
  const expected = (parent: string, id: string): string =>
    driver === 'systemd' ? `${parent === '' ? '/system.slice' : parent}/docker-${id}.scope` : `${parent === '' ? '/docker' : parent}/${id}`;
  const oomId = v1CgroupOf(oom.pid, 'memory') ?? '';
  const ioId = v1CgroupOf(io.pid, 'memory') ?? '';
  t.equal(oomId, expected('', oom.id), `the OOM container's cgroup (${driver} driver)`);
  t.equal(ioId, expected(podParent, io.id), `the I/O container's cgroup (${driver} driver)`);
  t.equal(v1CgroupOf(io.pid, 'blkio'), ioId, 'the same path in the blkio hierarchy');

  const ex = await start([]);
  const base = await scrapeWith(ex, [oomId, ioId]);

  await t.test('container_oom_events_total: the kernel oom_kill of the container, its parent and the node', async (t) => {
    const own = path.join(memoryRoot, oomId, 'memory.oom_control');
    const parentId = path.posix.dirname(oomId);
    const parent = path.join(memoryRoot, parentId, 'memory.oom_control');
    const before = oomKill(own);
    const parentBefore = oomKill(parent);
    // Allocates until the kernel kills it; `sleep` (the container's init) stays, and with it the cgroup.
    const exec = await run('docker', ['exec', oomName, 'tail', '/dev/zero'], { timeoutMs: 120_000 }).then(
      () => 'exited 0',
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    );
    await poll('the kernel to count an OOM kill in the container', () => (oomKill(own) > before ? true : undefined), {
      ...SLOW,
      describe: () => `oom_kill ${oomKill(own)}; the exec: ${exec}`,
    });
    const { kernel, scrape: s } = await stableWindow('OOM kills', ex, () => ({ own: oomKill(own), parent: oomKill(parent), node: oomKill('/proc/vmstat') }));
    t.comment(
      `kernel: container oom_kill ${before} → ${kernel.own}; parent ${parentId} ${parentBefore} → ${kernel.parent} (${
        kernel.parent > parentBefore ? 'the parent counts the kill too' : "v1 counts the kill only in the killed task's own cgroup"
      }); /proc/vmstat oom_kill ${kernel.node}; the exec: ${exec}`,
    );
    const mine = one(s.samples, 'container_oom_events_total', oomId);
    // kernel.own >= 1 here: the poll above waited for it.
    t.equal(mine?.value, kernel.own, 'the container: memory.oom_control oom_kill');
    t.equal(mine?.labels.name, oomName, 'named after the container');
    t.equal(one(s.samples, 'container_oom_events_total', parentId)?.value, kernel.parent, `the parent ${parentId}: its own memory.oom_control oom_kill`);
    const root = one(s.samples, 'container_oom_events_total', '/')?.value;
    t.equal(root, kernel.node, '/: /proc/vmstat oom_kill');
    t.ok((root ?? 0) >= kernel.own, `the node's count (${root}) includes the container's (${kernel.own})`);
  });

  await t.test('container_fs_{reads,writes}{,_bytes}_total: the blkio files of the container', async (t) => {
    // Direct I/O, so the bios are issued by the container's own processes (no page cache, no flusher thread).
    const direct = 'dd if=/dev/zero of=/tmp/pv-io bs=64k count=64 oflag=direct && dd if=/tmp/pv-io of=/dev/null bs=64k iflag=direct';
    const buffered = 'dd if=/dev/zero of=/tmp/pv-io bs=64k count=64 conv=fsync && dd if=/tmp/pv-io of=/dev/null bs=64k';
    const how = await run('docker', ['exec', ioName, 'sh', '-c', direct], { timeoutMs: 120_000 }).then(
      () => 'direct I/O (oflag=direct, iflag=direct)',
      async (err: unknown) => {
        await run('docker', ['exec', ioName, 'sh', '-c', buffered], { timeoutMs: 120_000 });
        return `write with fsync, buffered read (direct I/O failed: ${err instanceof Error ? err.message : String(err)})`;
      },
    );
    const dir = path.join(blkioRoot, ioId);
    const partitionNames = partitions();
    const { kernel, scrape: s } = await stableWindow('blkio', ex, () => {
      const b = readBlkio(dir);
      return { group: b.group, bytes: [...b.bytes], serviced: [...b.serviced] };
    });
    const bytes = new Map(kernel.bytes);
    const serviced = new Map(kernel.serviced);
    const device = (dev: string): string => partitionNames.get(dev) ?? '';
    t.comment(`${how}; kernel (${kernel.group}): bytes ${JSON.stringify(kernel.bytes)} serviced ${JSON.stringify(kernel.serviced)}`);

    const byDevice = (name: string): Map<string, number> =>
      new Map(
        rows(s.samples, name, ioId)
          .map((x): [string, number] => [x.labels.device ?? '', x.value])
          .sort(([a], [b]) => a.localeCompare(b)),
      );
    const expectedRows = (m: Map<string, Record<string, number>>, op: string): Map<string, number> => {
      const out = new Map<string, number>();
      for (const [dev, ops] of [...m].sort(([a], [b]) => device(a).localeCompare(device(b)))) if (ops[op] !== undefined) out.set(device(dev), ops[op]);
      return out;
    };
    if (bytes.size === 0) {
      t.comment('the kernel attributes no block I/O to this cgroup (no device rows): podvisor must report none');
      for (const name of ['container_fs_reads_bytes_total', 'container_fs_writes_bytes_total', 'container_blkio_device_usage_total']) {
        t.same([...byDevice(name)], [], `${name}: absent, not 0`);
      }
    } else {
      t.comment(
        `the kernel attributes ${[...bytes].map(([dev, ops]) => `${device(dev)} Read ${ops.Read} B / Write ${ops.Write} B`).join(', ')}: writes ${
          [...bytes.values()].some((ops) => (ops.Write ?? 0) > 0) ? 'were' : 'were not'
        } attributed`,
      );
      t.same([...byDevice('container_fs_reads_bytes_total')], [...expectedRows(bytes, 'Read')], 'container_fs_reads_bytes_total: Read of the bytes file');
      t.same([...byDevice('container_fs_writes_bytes_total')], [...expectedRows(bytes, 'Write')], 'container_fs_writes_bytes_total: Write of the bytes file');
    }
    // The operation counts: exactly the cgroup's rows. A container gets no row from /proc/diskstats (those counters
    // are the whole disk's; only `/` carries them).
    for (const [name, op] of [
      ['container_fs_reads_total', 'Read'],
      ['container_fs_writes_total', 'Write'],
    ] as const) {
      const want = expectedRows(serviced, op);
      const got = byDevice(name);
      t.same(
        [...got],
        [...want],
        `${name}: ${op} of ${kernel.group === 'none' ? 'the serviced file' : `blkio.${kernel.group === 'cfq' ? '' : `${kernel.group}.`}io_serviced_recursive`}`,
      );
    }
  });

  await t.test('container_ulimits_soft: the soft limits of the container init process', async (t) => {
    const openFiles = (pid: number): number | undefined => {
      const line = fs
        .readFileSync(`/proc/${pid}/limits`, 'utf8')
        .split('\n')
        .find((l) => l.startsWith('Max open files '));
      const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
      return soft === undefined ? undefined : soft === 'unlimited' ? -1 : Number(soft);
    };
    t.equal(openFiles(io.pid), 1234, '/proc/<pid>/limits: the soft limit Docker set');
    const s = await scrape(ex);
    t.equal(one(s.samples, 'container_ulimits_soft', ioId, { ulimit: 'max_open_files' })?.value, 1234, 'max_open_files of the --ulimit container');
    t.equal(
      one(s.samples, 'container_ulimits_soft', oomId, { ulimit: 'max_open_files' })?.value,
      openFiles(oom.pid),
      "the other container: its own init's limit",
    );
    t.same(
      rows(s.samples, 'container_ulimits_soft', ioId).map((x) => x.labels.ulimit),
      ['max_open_files'],
      'cAdvisor exports only max_open_files',
    );
  });

  await t.test('container_memory_kernel_usage: memory.kmem.usage_in_bytes', async (t) => {
    const file = path.join(memoryRoot, ioId, 'memory.kmem.usage_in_bytes');
    const read = (): number => Number(fs.readFileSync(file, 'utf8').trim());
    // Memory moves: podvisor's value must lie between the kernel's before and after its gather.
    const before = read();
    const s = await scrape(ex);
    const after = read();
    const v = one(s.samples, 'container_memory_kernel_usage', ioId)?.value;
    t.ok(
      v !== undefined && v >= Math.min(before, after) && v <= Math.max(before, after),
      `podvisor ${v} within the kernel's ${before} (before) and ${after} (after)`,
    );
  });

  await t.test('--enable-metrics=cpu reads and renders only cpu; cpu,percpu gives the per-cpu rows', async (t) => {
    const [cpu, percpu] = await Promise.all([start(['--enable-metrics=cpu']), start(['--enable-metrics=cpu,percpu'])]);
    const off = [
      /^container_memory_/,
      /^container_fs_/,
      /^container_blkio_/,
      /^container_oom_/,
      /^container_network_/,
      /^container_processes$/,
      /^container_threads/,
      /^container_file_descriptors$/,
      /^container_sockets$/,
      /^container_ulimits_soft$/,
    ];
    // With the default kinds every one of them is there: their absence below is the flag's doing.
    const defaults = familyNames(base.body, base.samples);
    for (const re of off)
      t.ok(
        [...defaults].some((n) => re.test(n)),
        `default kinds: a family matching ${re.source}`,
      );

    const s = await scrapeWith(cpu, [oomId, ioId]);
    const names = familyNames(s.body, s.samples);
    for (const re of off)
      t.same(
        [...names].filter((n) => re.test(n)),
        [],
        `cpu only: no family matching ${re.source}`,
      );
    const usage = s.samples.filter((x) => x.name === 'container_cpu_usage_seconds_total');
    const byId = new Map<string, string[]>();
    for (const x of usage) byId.set(x.labels.id ?? '', [...(byId.get(x.labels.id ?? '') ?? []), x.labels.cpu ?? '']);
    t.same(
      [...byId].filter(([, cpus]) => cpus.length !== 1 || cpus[0] !== 'total'),
      [],
      `exactly one cpu="total" row per cgroup (${byId.size} cgroups)`,
    );
    for (const id of ['/', oomId, ioId]) t.same(byId.get(id), ['total'], `${id}: one total row`);

    const p = await scrapeWith(percpu, [oomId, ioId]);
    for (const id of ['/', ioId]) {
      const cpus = rows(p.samples, 'container_cpu_usage_seconds_total', id).map((x) => x.labels.cpu ?? '');
      t.ok(cpus.length > 0 && cpus.every((c) => /^cpu\d{2,}$/.test(c)), `${id}: cpuNN rows only, no total (${cpus.join(',')})`);
    }
  });

  await t.test('--runtime-containers-only: /, the runtimes containers and their pod cgroups', async (t) => {
    // The runtimes' own lists are the reference: containerd's too (ctr).
    if (!(await requireDaemon(t, 'containerd'))) return;
    const only = await start(['--runtime-containers-only']);
    const idsOf = (s: Scrape): Set<string> => new Set(s.samples.map((x) => x.labels.id).filter((id): id is string => id !== undefined));
    const all = idsOf(base);
    const parentId = path.posix.dirname(oomId);
    // A runtime's container, by its id as the runtime lists it (containerd ids need not be 64-hex: the bench's are not),
    // or by the cgroup of a running one.
    const isRuntimeContainer = (id: string, view: RuntimeView): boolean => {
      const base = path.posix.basename(id);
      const hexId = /[0-9a-f]{64}/.exec(base)?.[0];
      return view.known.has(base) || (hexId !== undefined && view.known.has(hexId)) || [...view.running.values()].includes(id);
    };
    const view = await runtimeView();
    // Without the flag these are reported: their absence below is the flag's doing.
    const system = [
      ...new Set([parentId, '/kubepods', '/kubepods/burstable', ...[...all].filter((id) => !isRuntimeContainer(id, view) && !isPodLevel(id) && id !== '/')]),
    ];
    const leftoverPods = [...all].filter((id) => isPodLevel(id) && ![...all].some((c) => c.startsWith(`${id}/`)));
    t.ok(all.has(parentId), `without the flag ${parentId} is reported`);
    interface Attempt {
      ids: Set<string>;
      problems: string[];
    }
    let last: Attempt | undefined;
    let waited = '';
    await poll(
      'a scrape with exactly the runtimes containers',
      async () => {
        const before = await runtimeView();
        const s = await scrape(only);
        const after = await runtimeView();
        const ids = idsOf(s);
        const both: RuntimeView = { known: new Set([...before.known, ...after.known]), running: new Map([...before.running, ...after.running]) };
        const problems: string[] = [];
        for (const id of ids) {
          if (id === '/' || isRuntimeContainer(id, both)) continue;
          if (isPodLevel(id) && [...ids].some((c) => c.startsWith(`${id}/`) && isRuntimeContainer(c, both))) continue;
          problems.push(`reported, but neither a runtime's container nor its pod: ${id}`);
        }
        for (const [cid, cg] of before.running) {
          if (after.running.get(cid) === cg && !ids.has(cg)) problems.push(`running container ${cid.slice(0, 12)} not reported: ${cg}`);
        }
        last = { ids, problems };
        return problems.length === 0 ? last : undefined;
      },
      { ...SLOW, describe: () => last?.problems.join('; ') ?? 'no attempt' },
    ).catch((err: unknown) => (waited = err instanceof Error ? err.message : String(err)));
    t.same(
      last?.problems,
      [],
      `every id is /, a container Docker or containerd knows, or the pod cgroup of one; every running one is there${waited === '' ? '' : ` (${waited})`}`,
    );
    const ids = last?.ids ?? new Set<string>();
    t.ok(ids.has('/'), '/ is reported');
    t.ok(ids.has(oomId) && ids.has(ioId), 'both containers are reported');
    t.ok(ids.has(podParent), `the pod cgroup of the Kubernetes-shaped one: ${podParent}`);
    t.same(
      system.filter((id) => ids.has(id)),
      [],
      `no system cgroup (${system.length} without the flag: ${system.slice(0, 6).join(', ')}${system.length > 6 ? ', …' : ''})`,
    );
    t.same(
      leftoverPods.filter((id) => ids.has(id)),
      [],
      `no pod cgroup without a container (${leftoverPods.length} without the flag)`,
    );
  });
});

function isPodLevel(id: string): boolean {
  return POD_CGROUP.test(path.posix.basename(id));
}
