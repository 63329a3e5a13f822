/**
 * The accelerator families as data: cAdvisor's container_accelerator_* (names, help, labels, units), the per-device
 * machine_accelerator_*, podvisor's own podvisor_accelerator_*, absence where a value is absent, and nothing at all
 * on a node where the kind is off or NVML was not found.
 */
import t from 'tap';
import { ACCELERATOR_METRICS } from '../../src/metrics/container/accelerator.js';
import { ACCELERATOR_MACHINE_METRICS } from '../../src/metrics/accelerator.js';
import { renderSnapshot } from '../../src/metrics/index.js';
import type { AcceleratorDevice } from '../../src/model/accelerator.js';
import type { Snapshot } from '../../src/model/snapshot.js';
import { container, runContainer, runMachine } from './fixtures/run-specs.js';

const ids = { machineId: 'm', systemUuid: 'u', bootId: 'b' };
const A = 'GPU-11111111-2222-3333-4444-555555555555';
const MIG = 'MIG-0f0f0f0f-1111-2222-3333-444444444444';

const devices: AcceleratorDevice[] = [
  {
    uuid: A,
    index: 0,
    minor: 0,
    model: 'NVIDIA H100 80GB HBM3',
    memoryTotalBytes: 85899345920,
    memoryUsedBytes: 1e9,
    utilizationPercent: 42,
    powerWatts: 312.5,
    temperatureCelsius: 61,
  },
  {
    uuid: MIG,
    index: 1,
    model: 'NVIDIA A100-SXM4-40GB MIG 1g.5gb',
    mig: { parentUuid: 'GPU-x', gpuInstanceId: 7, computeInstanceId: 0 },
    memoryTotalBytes: 5e9,
    memoryUsedBytes: 2e9,
  },
];

function snapshot(rest: Partial<Snapshot> = {}): Snapshot {
  return { timestampMs: 0, containers: [], machine: { ...ids }, deviceNames: new Map(), collectorErrors: {}, ...rest };
}

t.test("container_accelerator_*: cAdvisor's names, help and labels, one sample per attributed device", async (t) => {
  t.same(
    ACCELERATOR_METRICS.map((s) => [s.name, s.type, s.labels, s.help]),
    [
      [
        'container_accelerator_duty_cycle',
        'gauge',
        ['make', 'model', 'acc_id'],
        'Percent of time over the past sample period during which the accelerator was actively processing.',
      ],
      ['container_accelerator_memory_total_bytes', 'gauge', ['make', 'model', 'acc_id'], 'Total accelerator memory.'],
      ['container_accelerator_memory_used_bytes', 'gauge', ['make', 'model', 'acc_id'], 'Total accelerator memory allocated.'],
    ],
  );
  const c = container(
    '/kubepods/pod1/abc',
    { spec: {} },
    {
      accelerators: [
        { uuid: A, model: 'NVIDIA H100 80GB HBM3', source: 'process', memoryTotalBytes: 85899345920, memoryUsedBytes: 1e9, dutyCycle: 40 },
        { uuid: MIG, model: 'MIG 1g.5gb', source: 'pod_resources', memoryTotalBytes: 5e9 },
      ],
    },
  );
  t.same(runContainer(ACCELERATOR_METRICS, c, snapshot()), [
    `container_accelerator_duty_cycle{make="nvidia",model="NVIDIA H100 80GB HBM3",acc_id="${A}"} 40`,
    `container_accelerator_memory_total_bytes{make="nvidia",model="MIG 1g.5gb",acc_id="${MIG}"} 5000000000`,
    `container_accelerator_memory_total_bytes{make="nvidia",model="NVIDIA H100 80GB HBM3",acc_id="${A}"} 85899345920`,
    `container_accelerator_memory_used_bytes{make="nvidia",model="NVIDIA H100 80GB HBM3",acc_id="${A}"} 1000000000`,
  ]);
  t.same(runContainer(ACCELERATOR_METRICS, container('/x', { spec: {} }), snapshot()), [], 'no accelerators, no samples');
});

t.test('machine_accelerator_*: one series per device; what the device cannot say is absent', async (t) => {
  t.same(runMachine(ACCELERATOR_MACHINE_METRICS, { ...ids }, { accelerators: devices }), [
    `machine_accelerator_duty_cycle{make="nvidia",model="NVIDIA H100 80GB HBM3",acc_id="${A}",gpu="0"} 42`,
    `machine_accelerator_memory_total_bytes{make="nvidia",model="NVIDIA A100-SXM4-40GB MIG 1g.5gb",acc_id="${MIG}",gpu="1"} 5000000000`,
    `machine_accelerator_memory_total_bytes{make="nvidia",model="NVIDIA H100 80GB HBM3",acc_id="${A}",gpu="0"} 85899345920`,
    `machine_accelerator_memory_used_bytes{make="nvidia",model="NVIDIA A100-SXM4-40GB MIG 1g.5gb",acc_id="${MIG}",gpu="1"} 2000000000`,
    `machine_accelerator_memory_used_bytes{make="nvidia",model="NVIDIA H100 80GB HBM3",acc_id="${A}",gpu="0"} 1000000000`,
    `machine_accelerator_power_watts{make="nvidia",model="NVIDIA H100 80GB HBM3",acc_id="${A}",gpu="0"} 312.5`,
    `machine_accelerator_temperature_celsius{make="nvidia",model="NVIDIA H100 80GB HBM3",acc_id="${A}",gpu="0"} 61`,
  ]);
});

t.test('rendering: accelerator families only where the kind is on and NVML was found; self-metrics with them', async (t) => {
  // Families without samples are left out of the body (metrics/exposition.ts): only those with samples count.
  const names = (s: Snapshot): string[] =>
    renderSnapshot(s)
      .filter((f) => f.samples !== '')
      .map((f) => f.name)
      .filter((n) => n.includes('_accelerator_'));
  const off = names(snapshot({ kinds: ['cpu'] }));
  t.same(off, [], 'kind off: nothing');
  const notFound = names(snapshot({ kinds: ['accelerator', 'cpu'] }));
  t.same(notFound, [], 'NVML not found (no status): no accelerator series');
  const on = renderSnapshot(
    snapshot({
      kinds: ['accelerator'],
      accelerators: devices,
      acceleratorStatus: {
        nvmlUp: true,
        podResourcesUp: false,
        nvmlErrors: 2,
        podResourcesErrors: 5,
        attributions: { pod_resources: 3, process: 1, devices_list: 0 },
      },
    }),
  );
  const text = (name: string): string => on.find((f) => f.name === name)?.samples ?? '';
  t.equal(text('podvisor_accelerator_up'), 'podvisor_accelerator_up{source="nvml"} 1\npodvisor_accelerator_up{source="pod_resources"} 0\n');
  t.equal(
    text('podvisor_accelerator_errors_total'),
    'podvisor_accelerator_errors_total{source="nvml"} 2\npodvisor_accelerator_errors_total{source="pod_resources"} 5\n',
  );
  t.equal(
    text('podvisor_accelerator_attributions'),
    'podvisor_accelerator_attributions{source="pod_resources"} 3\npodvisor_accelerator_attributions{source="process"} 1\npodvisor_accelerator_attributions{source="devices_list"} 0\n',
  );
  t.match(
    text('machine_accelerator_power_watts'),
    /^machine_accelerator_power_watts\{boot_id="b",machine_id="m",system_uuid="u",make="nvidia",model="NVIDIA H100 80GB HBM3",acc_id="GPU-[^"]+",gpu="0"\} 312\.5\n$/,
  );
  const down = renderSnapshot(
    snapshot({ kinds: ['accelerator'], acceleratorStatus: { nvmlUp: false, nvmlErrors: 1, attributions: { pod_resources: 0, process: 0, devices_list: 0 } } }),
  );
  t.equal(
    down.find((f) => f.name === 'podvisor_accelerator_up')?.samples,
    'podvisor_accelerator_up{source="nvml"} 0\n',
    'no pod_resources series when it was never seen',
  );
  t.equal(down.find((f) => f.name === 'machine_accelerator_power_watts')?.samples, '', 'NVML down: no device samples');
});
