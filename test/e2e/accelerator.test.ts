/**
 * The accelerator kind end to end: the real exporter (dist/main.js) loads the fake libnvidia-ml the way it loads the
 * real one (--nvml-library), asks a fake kubelet PodResources server on a unix socket, and attributes GPUs to real
 * Docker containers whose real init pids the fake NVML reports, through the real /proc/<pid>/cgroup. Checked: two
 * containers time-sharing one GPU each get their own memory and SM share, an allocated idle GPU reads 0, a process in
 * a cgroup that is no container gives no container series, devices.list (cgroup v1) places a container nothing else
 * does, a GPU lost mid-run drops and returns, a hung NVML call takes the GPU series down while /metrics and /healthz
 * answer and SIGTERM still ends the process, NVML shut down on a normal exit, and startup without NVML or with a bad
 * --nvml-library.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { findNvmlLibrary } from '../../src/gpu/nvml/find.js';
import { removeCgroupDirs } from '../support/cgroups.js';
import { requireDaemon, run } from '../support/daemons.js';
import { runExporter, startExporter, type Running } from '../support/exporter.js';
import { buildFakeNvml, fakeNvmlEnv, readNvmlLog, writeScenario, type FakeGpu, type FakeScenario } from '../support/fake-nvml.js';
import { FakePodResources } from '../support/fake-pod-resources.js';
import { kubeletContainerArgs } from '../support/kubelet-labels.js';
import { poll } from '../support/poll.js';
import { socketPath } from '../support/socket-path.js';

const IMAGE = 'podvisor-test:1';
const GiB = 2 ** 30;
const A = 'GPU-0e2e0e2e-aaaa-4444-8888-000000000000';
const B = 'GPU-0e2e0e2e-bbbb-4444-8888-000000000001';
const NS = 'podvisor-gpu';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The exposition's samples (text format 0.0.4), label values unescaped. */
function parse(body: string): Sample[] {
  const out: Sample[] = [];
  for (const line of body.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] ?? ''] = (l[2] ?? '').replace(/\\(.)/g, '$1');
    out.push({ name: m[1] ?? '', labels, value: Number(m[3]) });
  }
  return out;
}

const find = (samples: Sample[], name: string, labels: Record<string, string>): Sample[] =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));

async function scrape(ex: Running): Promise<Sample[]> {
  return parse(await (await fetch(`${ex.url}/metrics`)).text());
}

/** Files of one test: the scenario, the fake's call log, and the env that points the fake at them. */
function nvmlFiles(t: Test): { scenario: string; log: string; env: NodeJS.ProcessEnv } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-gpu-e2e-'));
  fs.chmodSync(dir, 0o755);
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const scenario = path.join(dir, 'scenario');
  const log = path.join(dir, 'calls.log');
  return { scenario, log, env: { ...process.env, ...fakeNvmlEnv(scenario, log) } };
}

/** Docker containers shaped as the kubelet starts them, in one pod; removed at teardown. */
async function startPod(
  t: Test,
  podBase: string,
  containers: Record<string, string[]>,
): Promise<Record<string, { id: string; name: string; pod: string; pid: number; cgroup: string }>> {
  const uid = crypto.randomUUID();
  const pod = `${podBase}-${uid.slice(0, 8)}`;
  const parent = `/kubepods/besteffort/pod${uid}`;
  const names: string[] = [];
  t.teardown(async () => {
    if (names.length > 0) await run('docker', ['rm', '-f', ...names], { timeoutMs: 60_000 }).catch(() => undefined);
    removeCgroupDirs(parent);
  });
  const out: Record<string, { id: string; name: string; pod: string; pid: number; cgroup: string }> = {};
  for (const [container, extra] of Object.entries(containers)) {
    const name = `podvisor-gpu-${pod}-${container}`;
    names.push(name);
    const { stdout } = await run(
      'docker',
      ['run', '-d', '--name', name, ...kubeletContainerArgs({ parent, pod, namespace: NS, uid, container }), ...extra, IMAGE, 'sleep', '3600'],
      { timeoutMs: 60_000 },
    );
    const id = stdout.trim();
    const pid = Number((await run('docker', ['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim());
    out[container] = { id, name, pod, pid, cgroup: `${parent}/${id}` };
  }
  return out;
}

const common = (lib: string): string[] => [
  `--nvml-library=${lib}`,
  '--accelerator-interval=200ms',
  '--pod-resources-interval=200ms',
  '--containerd-address=',
  '--crio-endpoint=',
  '--disk-usage=false',
  '--runtime-containers-only',
];

const h100 = (over: Partial<FakeGpu> = {}): FakeGpu => ({
  uuid: A,
  name: 'NVIDIA H100 80GB HBM3',
  minor: 0,
  memTotal: 80 * GiB,
  memUsed: 17 * GiB,
  memFree: 63 * GiB,
  utilGpu: 65,
  powerMw: 250_000,
  tempC: 55,
  migMode: 0,
  compute: [],
  samples: [],
  ...over,
});
const l4 = (over: Partial<FakeGpu> = {}): FakeGpu => ({
  uuid: B,
  name: 'NVIDIA L4',
  minor: 1,
  memTotal: 24 * GiB,
  memUsed: GiB,
  memFree: 23 * GiB,
  utilGpu: 0,
  powerMw: 30_000,
  tempC: 35,
  compute: [],
  samples: [],
  ...over,
});

t.test('time-shared and allocated GPUs, attributed through PodResources and NVML processes to Docker containers', async (t) => {
  if (!(await requireDaemon(t, 'docker'))) return;
  const lib = buildFakeNvml().path;
  const files = nvmlFiles(t);
  const pod = await startPod(t, 'trainer', { train: [], evaluate: [], idle: [] });
  const { train, evaluate, idle } = pod;
  if (train === undefined || evaluate === undefined || idle === undefined) throw new Error('containers not started');

  // A process of ours in a cgroup of ours: a GPU user that is no container.
  const raw = `/podvisor-e2e-gpu-${crypto.randomBytes(4).toString('hex')}`;
  const memoryRoot = '/sys/fs/cgroup/memory';
  const sleeper = spawn('sleep', ['3600'], { stdio: 'ignore' });
  const sleeperExited = new Promise((resolve) => sleeper.on('exit', resolve));
  t.teardown(async () => {
    sleeper.kill('SIGKILL');
    await sleeperExited;
    if (v1) fs.rmdirSync(path.join(memoryRoot, raw));
  });
  const rawPid = sleeper.pid ?? 0;
  const v1 = fs.existsSync(path.join(memoryRoot, 'cgroup.procs'));
  if (v1) {
    fs.mkdirSync(path.join(memoryRoot, raw));
    fs.writeFileSync(path.join(memoryRoot, raw, 'cgroup.procs'), String(rawPid));
  }

  writeScenario(files.scenario, {
    driverVersion: '550.54.15',
    gpus: [
      h100({
        compute: [
          { pid: train.pid, mem: 10 * GiB },
          { pid: evaluate.pid, mem: 6 * GiB },
        ],
        samples: [
          { pid: train.pid, sm: 40, mem: 10 },
          { pid: evaluate.pid, sm: 25, mem: 5 },
        ],
      }),
      l4({ compute: [{ pid: rawPid, mem: GiB }] }),
    ],
  });
  const kubelet = await FakePodResources.start(socketPath('podres'), [
    {
      namespace: NS,
      name: train.pod,
      containers: [
        { name: 'train', devices: [{ resourceName: 'nvidia.com/gpu', ids: [`${A}::0`] }] },
        { name: 'evaluate', devices: [{ resourceName: 'nvidia.com/gpu', ids: [`${A}::1`] }] },
        { name: 'idle', devices: [{ resourceName: 'nvidia.com/gpu', ids: [B] }] },
      ],
    },
    // A pod whose GPU NVML does not report (a replaced card, another node's id): a warning, nothing else.
    {
      namespace: NS,
      name: 'ghost',
      containers: [{ name: 'app', devices: [{ resourceName: 'nvidia.com/gpu', ids: ['GPU-deadbeef-0000-0000-0000-000000000000'] }] }],
    },
  ]);
  t.teardown(() => kubelet.stop());

  const ex = await startExporter([...common(lib), `--pod-resources-socket=${kubelet.path}`, `--raw-cgroup-prefix-allowlist=${raw}`], files.env);
  t.teardown(() => ex.stop());
  let last: Sample[] = [];
  const samples = await poll(
    'GPU series for all three containers',
    async () => {
      const s = await scrape(ex);
      last = s;
      return find(s, 'container_accelerator_memory_used_bytes', { pod: train.pod }).length === 3 ? s : undefined;
    },
    { everyMs: 250, describe: () => JSON.stringify(find(last, 'container_accelerator_memory_used_bytes', {}).map((x) => [x.labels.id, x.value])) },
  );

  const gpu = (container: string, name: string): Sample[] => find(samples, name, { namespace: NS, pod: train.pod, container });
  for (const [container, c] of Object.entries(pod)) {
    const s = gpu(container, 'container_accelerator_memory_total_bytes');
    t.equal(s.length, 1, `${container}: one accelerator`);
    t.same(
      { id: s[0]?.labels.id, name: s[0]?.labels.name, image: s[0]?.labels.image, make: s[0]?.labels.make },
      { id: c.cgroup, name: c.name, image: IMAGE, make: 'nvidia' },
      `${container}: the six kubelet labels and make`,
    );
  }
  t.same(
    gpu('train', 'container_accelerator_memory_used_bytes').map((s) => [s.labels.acc_id, s.labels.model, s.value]),
    [[A, 'NVIDIA H100 80GB HBM3', 10 * GiB]],
    "train: its own process's GPU memory",
  );
  t.same(
    gpu('evaluate', 'container_accelerator_memory_used_bytes').map((s) => [s.labels.acc_id, s.value]),
    [[A, 6 * GiB]],
    'evaluate, on the same GPU: its own',
  );
  t.same(
    gpu('train', 'container_accelerator_duty_cycle').map((s) => s.value),
    [40],
    "train: its processes' SM share",
  );
  t.same(
    gpu('evaluate', 'container_accelerator_duty_cycle').map((s) => s.value),
    [25],
  );
  t.same(
    gpu('train', 'container_accelerator_memory_total_bytes').map((s) => s.value),
    [80 * GiB],
  );
  t.same(
    ['container_accelerator_memory_used_bytes', 'container_accelerator_duty_cycle'].map((n) => gpu('idle', n).map((s) => [s.labels.acc_id, s.value])),
    [[[B, 0]], [[B, 0]]],
    'idle: allocated, untouched: 0, not absent',
  );
  t.same(
    samples.filter((s) => s.name.startsWith('container_accelerator_') && (s.labels.container === '' || s.labels.container === undefined)),
    [],
    'no container_accelerator series on a pod cgroup, the root, or a cgroup that is no container',
  );
  if (v1) t.ok(find(samples, 'container_memory_usage_bytes', { id: raw }).length === 1, 'the raw cgroup itself is reported (its process holds L4 memory)');
  t.same(
    find(samples, 'machine_accelerator_memory_used_bytes', {}).map((s) => [s.labels.acc_id, s.labels.gpu, s.labels.model, s.value]),
    [
      [A, '0', 'NVIDIA H100 80GB HBM3', 17 * GiB],
      [B, '1', 'NVIDIA L4', GiB],
    ],
    'per GPU, for node dashboards',
  );
  t.same(
    find(samples, 'machine_accelerator_power_watts', {}).map((s) => s.value),
    [250, 30],
  );
  t.same(
    find(samples, 'machine_accelerator_duty_cycle', {}).map((s) => s.value),
    [65, 0],
  );
  t.same(
    find(samples, 'podvisor_accelerator_up', {}).map((s) => [s.labels.source, s.value]),
    [
      ['nvml', 1],
      ['pod_resources', 1],
    ],
  );
  t.match(ex.stderr(), /level=warn msg="the kubelet allocated GPUs NVML does not report[^"]*" deviceIds=GPU-deadbeef-0000-0000-0000-000000000000\n/);
  t.same(
    find(samples, 'podvisor_accelerator_attributions', {}).map((s) => [s.labels.source, s.value]),
    [
      ['pod_resources', 3],
      ['process', 0],
      ['devices_list', 0],
    ],
  );

  // The kubelet goes away (its socket with it): its last answer serves for a while, and podvisor says it is down.
  await kubelet.stop();
  const down = await poll('pod_resources down', async () => {
    const s = await scrape(ex);
    return find(s, 'podvisor_accelerator_up', { source: 'pod_resources' })[0]?.value === 0 ? s : undefined;
  });
  t.equal(find(down, 'container_accelerator_memory_used_bytes', { pod: train.pod }).length, 3, 'attribution continues from its last answer');
});

t.test('without PodResources: NVML processes, devices.list, a GPU lost and back, and shutdown releases NVML', async (t) => {
  if (!(await requireDaemon(t, 'docker'))) return;
  const lib = buildFakeNvml().path;
  const files = nvmlFiles(t);
  const devicesV1 = fs.existsSync('/sys/fs/cgroup/devices/devices.list');
  const pod = await startPod(t, 'infer', { server: [], legacy: devicesV1 ? ['--device-cgroup-rule', 'c 195:1 rwm'] : [] });
  const { server, legacy } = pod;
  if (server === undefined || legacy === undefined) throw new Error('containers not started');
  const scenario: FakeScenario = {
    gpus: [h100({ compute: [{ pid: server.pid, mem: 3 * GiB }], samples: [{ pid: server.pid, sm: 70, mem: 30 }] }), l4()],
  };
  writeScenario(files.scenario, scenario);
  const missing = path.join(path.dirname(files.scenario), 'no-kubelet.sock');
  const ex = await startExporter([...common(lib), `--pod-resources-socket=${missing}`], files.env);
  t.teardown(() => ex.stop());
  const samples = await poll(
    'the server container placed by its process',
    async () => {
      const s = await scrape(ex);
      return find(s, 'container_accelerator_memory_used_bytes', { container: 'server' }).length === 1 ? s : undefined;
    },
    { everyMs: 250 },
  );
  t.same(
    find(samples, 'container_accelerator_memory_used_bytes', { container: 'server' }).map((s) => [s.labels.acc_id, s.value]),
    [[A, 3 * GiB]],
  );
  t.same(
    find(samples, 'container_accelerator_duty_cycle', { container: 'server' }).map((s) => s.value),
    [70],
  );
  t.same(
    find(samples, 'podvisor_accelerator_up', {}).map((s) => s.labels.source),
    ['nvml'],
    'no pod_resources series while its socket does not exist',
  );
  if (devicesV1) {
    // cgroup v1: the device rule names /dev/nvidia1 (195:1), the L4; nothing else places this container.
    t.same(
      find(samples, 'container_accelerator_memory_total_bytes', { container: 'legacy' }).map((s) => [s.labels.acc_id, s.value]),
      [[B, 24 * GiB]],
      'devices.list (major 195), as cAdvisor',
    );
    t.same(
      find(samples, 'podvisor_accelerator_attributions', {}).map((s) => [s.labels.source, s.value]),
      [
        ['pod_resources', 0],
        ['process', 1],
        ['devices_list', 1],
      ],
    );
  } else {
    t.same(find(samples, 'container_accelerator_memory_total_bytes', { container: 'legacy' }), [], 'cgroup v2: no devices.list to read');
  }

  writeScenario(files.scenario, { gpus: [h100({ lost: true }), l4()] });
  const lost = await poll('the lost GPU to drop out', async () => {
    const s = await scrape(ex);
    return find(s, 'machine_accelerator_memory_total_bytes', {}).length === 1 ? s : undefined;
  });
  t.same(
    find(lost, 'machine_accelerator_memory_total_bytes', {}).map((s) => s.labels.acc_id),
    [B],
    'the other GPU stays',
  );
  t.same(find(lost, 'container_accelerator_memory_used_bytes', { container: 'server' }), [], "the lost GPU's container series drop with it");
  t.equal(find(lost, 'podvisor_accelerator_up', { source: 'nvml' })[0]?.value, 1);
  writeScenario(files.scenario, scenario);
  await poll('the GPU back', async () => {
    const s = await scrape(ex);
    return find(s, 'container_accelerator_memory_used_bytes', { container: 'server' }).length === 1 ? s : undefined;
  });

  const exited = await ex.stop();
  t.equal(exited.code, 0);
  t.ok(
    readNvmlLog(files.log).some(([f]) => f === 'nvmlShutdown'),
    'NVML shut down on SIGTERM',
  );
});

t.test('a hung NVML call: GPU series down, /metrics and /healthz answer, SIGTERM still ends the process', async (t) => {
  const lib = buildFakeNvml().path;
  const files = nvmlFiles(t);
  writeScenario(files.scenario, { gpus: [h100(), l4()] });
  for (const inWorker of [false, true]) {
    const ex = await startExporter(
      [...common(lib), '--accelerator-timeout=300ms', '--pod-resources-socket=', ...(inWorker ? ['--gather-in-worker'] : [])],
      files.env,
    );
    let exited = false;
    t.teardown(async () => {
      if (!exited) {
        ex.proc.kill('SIGKILL');
        await ex.stop();
      }
    });
    const where = inWorker ? 'gather in a worker' : 'gather on the HTTP thread';
    await poll(`${where}: GPU series`, async () => ((await scrape(ex)).some((s) => s.name === 'machine_accelerator_power_watts') ? true : undefined), {
      everyMs: 250,
    });
    writeScenario(files.scenario, { gpus: [h100({ hang: ['nvmlDeviceGetPowerUsage'] }), l4()] });
    const down = await poll(`${where}: the collector down`, async () => {
      const s = await scrape(ex);
      return find(s, 'podvisor_accelerator_up', { source: 'nvml' })[0]?.value === 0 ? s : undefined;
    });
    t.same(
      down.filter((s) => s.name.startsWith('machine_accelerator_') || s.name.startsWith('container_accelerator_')),
      [],
      `${where}: no GPU series while a call hangs`,
    );
    t.ok(
      down.some((s) => s.name === 'container_cpu_usage_seconds_total'),
      `${where}: every other family is served`,
    );
    t.ok((find(down, 'podvisor_accelerator_errors_total', { source: 'nvml' })[0]?.value ?? 0) >= 1, `${where}: the timeout is counted`);
    t.equal((await fetch(`${ex.url}/healthz`)).status, 200, `${where}: /healthz answers`);
    const result = await ex.stop();
    exited = true;
    t.equal(result.code, 0, `${where}: SIGTERM ends the process, though a thread is stuck in the driver`);
    t.match(result.stderr, /level=error msg="nvmlDeviceGetPowerUsage: no answer within 300 ms: accelerator series are left out until it returns"/);
    if (!inWorker) t.match(result.stderr, /NVML was not shut down/);
    writeScenario(files.scenario, { gpus: [h100(), l4()] });
  }
  t.notOk(
    readNvmlLog(files.log).some(([f]) => f === 'nvmlShutdown'),
    'no nvmlShutdown behind a hung call',
  );
});

t.test('startup: no NVML is one info line and no GPU series; a --nvml-library that does not load is a startup error', async (t) => {
  const bad = await runExporter(['--nvml-library=/nonexistent/libnvidia-ml.so.1', '--listen-address=127.0.0.1:0']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /^podvisor: --nvml-library: cannot load NVML library \/nonexistent\/libnvidia-ml\.so\.1: .+\n$/, 'one readable line');

  if (findNvmlLibrary('/') !== undefined) {
    t.comment('this machine has an NVML library under /: the not-found case is not checked here');
    return;
  }
  const ex = await startExporter(['--containerd-address=', '--crio-endpoint=', '--disk-usage=false']);
  t.teardown(() => ex.stop());
  await poll('a scrape', async () => ((await fetch(`${ex.url}/metrics`)).ok ? true : undefined));
  const body = await (await fetch(`${ex.url}/metrics`)).text();
  t.notMatch(body, /^(# (HELP|TYPE) )?(container|machine|podvisor)_accelerator_/m, 'no accelerator family, not even its HELP line');
  t.match(ex.stderr(), /level=info msg="accelerator metrics off: no NVML library/);
  t.notMatch(ex.stderr(), /level=(warn|error)/, 'no warning or error');
});
