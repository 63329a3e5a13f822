import t from 'tap';
import { MACHINE_METRICS } from '../../src/metrics/machine.js';
import { runMachine } from './fixtures/run-specs.js';

const ids = { machineId: 'm', systemUuid: 'u', bootId: 'b' };

t.test('all machine gauges', async (t) => {
  const m = { ...ids, cpuCores: 2, cpuPhysicalCores: 2, cpuSockets: 1, memoryBytes: 25_276_514_304, swapBytes: 0 };
  t.same(runMachine(MACHINE_METRICS, m), [
    'machine_cpu_cores 2',
    'machine_cpu_physical_cores 2',
    'machine_cpu_sockets 1',
    'machine_memory_bytes 25276514304',
    'machine_swap_bytes 0',
  ]);
});

t.test('unknown machine values emit nothing', async (t) => {
  t.same(runMachine(MACHINE_METRICS, { ...ids, cpuCores: 4 }), ['machine_cpu_cores 4']);
  t.same(runMachine(MACHINE_METRICS, ids), []);
});

t.test('machine specs: gauges, no extra labels, help present', async (t) => {
  for (const spec of MACHINE_METRICS) {
    t.equal(spec.type, 'gauge', spec.name);
    t.same(spec.labels, [], spec.name);
    t.ok(spec.help.length > 0, spec.name);
    t.match(spec.name, /^machine_/);
  }
});
