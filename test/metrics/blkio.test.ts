import t from 'tap';
import { BLKIO_METRICS } from '../../src/metrics/container/blkio.js';
import { container, runContainer, snapshotOf } from './fixtures/run-specs.js';

t.test('device name lookup with fallback to empty', async (t) => {
  const c = container('/a', {
    blkio: [
      { major: 8, minor: 0, bytes: { Read: 4096, Write: 8192, Sync: 12000, Async: 288, Discard: 0, Total: 12288 } },
      { major: 253, minor: 1, bytes: { Read: 1, Write: 2 } },
    ],
    spec: {},
  });
  const snap = snapshotOf([c], { '8:0': '/dev/sda', '8:1': '/dev/sda1' });
  t.same(runContainer(BLKIO_METRICS, c, snap), [
    'container_blkio_device_usage_total{device="",major="253",minor="1",operation="Read"} 1',
    'container_blkio_device_usage_total{device="",major="253",minor="1",operation="Write"} 2',
    'container_blkio_device_usage_total{device="/dev/sda",major="8",minor="0",operation="Async"} 288',
    'container_blkio_device_usage_total{device="/dev/sda",major="8",minor="0",operation="Discard"} 0',
    'container_blkio_device_usage_total{device="/dev/sda",major="8",minor="0",operation="Read"} 4096',
    'container_blkio_device_usage_total{device="/dev/sda",major="8",minor="0",operation="Sync"} 12000',
    'container_blkio_device_usage_total{device="/dev/sda",major="8",minor="0",operation="Total"} 12288',
    'container_blkio_device_usage_total{device="/dev/sda",major="8",minor="0",operation="Write"} 8192',
    'container_fs_reads_bytes_total{device=""} 1',
    'container_fs_reads_bytes_total{device="/dev/sda"} 4096',
    'container_fs_writes_bytes_total{device=""} 2',
    'container_fs_writes_bytes_total{device="/dev/sda"} 8192',
  ]);
});

t.test('a device without Read/Write rows feeds only blkio_device_usage', async (t) => {
  const c = container('/a', { blkio: [{ major: 8, minor: 16, bytes: { Discard: 5 } }], spec: {} });
  t.same(runContainer(BLKIO_METRICS, c, snapshotOf([c], { '8:16': '/dev/sdb' })), [
    'container_blkio_device_usage_total{device="/dev/sdb",major="8",minor="16",operation="Discard"} 5',
  ]);
});

t.test('no blkio data, or no devices: nothing', async (t) => {
  t.same(runContainer(BLKIO_METRICS, container('/a', { spec: {} }), snapshotOf([])), []);
  t.same(runContainer(BLKIO_METRICS, container('/a', { blkio: [], spec: {} }), snapshotOf([])), []);
});
