/** Messages between the HTTP thread and the gather worker, with guards: nothing crosses unchecked. */
import type { LogLevel } from '../log.js';
import { isRecord, isStringArray } from '../guards.js';
import type { EncodedFamilies, EncodedFamily } from '../metrics/exposition.js';
import type { GatherOptions } from '../gather/setup.js';
import type { GatherResult } from './engine.js';
import type { RuntimeStatus } from '../model/runtime.js';
import { METRIC_KINDS, type MetricKind } from '../model/kinds.js';

function isMetricKind(k: string): k is MetricKind {
  return METRIC_KINDS.some((m) => m === k);
}

export interface WorkerInit {
  engine: GatherOptions;
  logLevel: LogLevel;
}

export type WorkerReply = { type: 'result'; id: number; result: GatherResult } | { type: 'error'; id: number; message: string };

export function isWorkerInit(v: unknown): v is WorkerInit {
  if (!isRecord(v) || !isRecord(v.engine)) return false;
  const e = v.engine;
  return (
    typeof v.logLevel === 'string' &&
    typeof e.rootfs === 'string' &&
    Array.isArray(e.allowPrefixes) &&
    e.allowPrefixes.every((p) => typeof p === 'string') &&
    typeof e.machineInfoIntervalMs === 'number' &&
    (e.gatherThreads === undefined || typeof e.gatherThreads === 'number') &&
    isRecord(e.layout) &&
    e.layout.v1 instanceof Map &&
    (e.runtimes === undefined || isRuntimeConfig(e.runtimes)) &&
    (e.kinds === undefined || (isStringArray(e.kinds) && e.kinds.every(isMetricKind))) &&
    (e.runtimeContainersOnly === undefined || typeof e.runtimeContainersOnly === 'boolean') &&
    (e.disk === undefined || (isRecord(e.disk) && typeof e.disk.concurrency === 'number' && typeof e.disk.intervalMs === 'number'))
  );
}

function isFamily(v: unknown, size: number): v is EncodedFamily {
  return (
    isRecord(v) &&
    typeof v.name === 'string' &&
    typeof v.help === 'string' &&
    typeof v.type === 'string' &&
    ['counter', 'gauge', 'untyped', 'histogram', 'summary'].includes(v.type) &&
    typeof v.start === 'number' &&
    typeof v.end === 'number' &&
    v.start >= 0 &&
    v.start <= v.end &&
    v.end <= size &&
    (v.omEnd === undefined || (typeof v.omEnd === 'number' && v.omEnd >= v.end && v.omEnd <= size))
  );
}

function isRuntimeConfig(v: unknown): boolean {
  if (!isRecord(v) || !isRecord(v.extraLabels)) return false;
  const x = v.extraLabels;
  return (
    typeof v.dockerEndpoint === 'string' &&
    typeof v.containerdAddress === 'string' &&
    isStringArray(v.containerdNamespaces) &&
    typeof v.crioEndpoint === 'string' &&
    typeof v.timeoutMs === 'number' &&
    typeof v.startupGraceMs === 'number' &&
    typeof v.labelHoldMs === 'number' &&
    typeof x.storeContainerLabels === 'boolean' &&
    isStringArray(x.whitelistedContainerLabels) &&
    isStringArray(x.envMetadataWhitelist)
  );
}

function isRuntimeStatus(v: unknown): v is RuntimeStatus {
  return (
    isRecord(v) &&
    (v.runtime === 'docker' || v.runtime === 'containerd' || v.runtime === 'crio') &&
    typeof v.up === 'boolean' &&
    typeof v.version === 'string' &&
    typeof v.apiVersion === 'string' &&
    typeof v.parsedVersion === 'string' &&
    typeof v.containers === 'number' &&
    (v.lastError === undefined || typeof v.lastError === 'string') &&
    (v.lastErrorAt === undefined || typeof v.lastErrorAt === 'string')
  );
}

/** Encoded families whose every family lies inside its bytes. */
function isEncodedFamilies(v: unknown): v is EncodedFamilies {
  if (!isRecord(v) || !(v.bytes instanceof Uint8Array) || !Array.isArray(v.families)) return false;
  const size = v.bytes.byteLength;
  return v.families.every((f) => isFamily(f, size));
}

export function isWorkerReply(v: unknown): v is WorkerReply {
  if (!isRecord(v) || typeof v.id !== 'number') return false;
  if (v.type === 'error') return typeof v.message === 'string';
  if (v.type !== 'result' || !isRecord(v.result)) return false;
  const r = v.result;
  return (
    typeof r.timestampMs === 'number' &&
    typeof r.durationMs === 'number' &&
    typeof r.containers === 'number' &&
    Array.isArray(r.runtimes) &&
    r.runtimes.every(isRuntimeStatus) &&
    isEncodedFamilies(r.body) &&
    isEncodedFamilies(r.resource)
  );
}
