import { emitIf, type ContainerMetricSpec } from '../spec.js';
import { scalar } from './scalar.js';

const lastSeen: ContainerMetricSpec = {
  name: 'container_last_seen',
  help: 'Last time a container was seen by the exporter',
  type: 'gauge',
  labels: [],
  collect(_c, emit, snapshot) {
    emitIf(emit, snapshot.timestampMs / 1000);
  },
};

export const LIFECYCLE_METRICS: readonly ContainerMetricSpec[] = [
  scalar('container_start_time_seconds', 'gauge', 'Start time of the container since unix epoch in seconds.', (c) => c.startTimeSeconds),
  lastSeen,
];
