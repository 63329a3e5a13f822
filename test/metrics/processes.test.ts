import t from 'tap';
import { PROCESS_METRICS } from '../../src/metrics/container/processes.js';
import { container, runContainer, snapshotOf } from './fixtures/run-specs.js';

const snap = snapshotOf([]);

t.test('process counts from /proc, threads from pids', async (t) => {
  const c = container('/a', { pids: { current: 12, max: 0 }, spec: {} }, { processes: { processes: 2, fileDescriptors: 9, sockets: 1 } });
  t.same(runContainer(PROCESS_METRICS, c, snap), [
    'container_file_descriptors 9',
    'container_processes 2',
    'container_sockets 1',
    'container_threads 12',
    'container_threads_max 0',
  ]);
});

t.test('partial data emits only what was read', async (t) => {
  const c = container('/a', { pids: { current: 3 }, spec: {} }, { processes: { processes: 1 } });
  t.same(runContainer(PROCESS_METRICS, c, snap), ['container_processes 1', 'container_threads 3']);
  t.same(runContainer(PROCESS_METRICS, container('/a', { spec: {} }), snap), []);
});
