/** Messages between the HTTP thread and the gather worker, with guards: nothing crosses unchecked. */
import type { LogLevel } from '../config.js';
import type { RenderedFamily } from '../metrics/exposition.js';
import type { EngineOptions, GatherResult } from './engine.js';

export interface WorkerInit {
  engine: EngineOptions;
  logLevel: LogLevel;
}

export type WorkerReply = { type: 'result'; id: number; result: GatherResult } | { type: 'error'; id: number; message: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

export function isWorkerInit(v: unknown): v is WorkerInit {
  if (!isObject(v) || !isObject(v.engine)) return false;
  const e = v.engine;
  return (
    typeof v.logLevel === 'string' &&
    typeof e.rootfs === 'string' &&
    Array.isArray(e.allowPrefixes) &&
    e.allowPrefixes.every((p) => typeof p === 'string') &&
    typeof e.machineInfoIntervalMs === 'number' &&
    isObject(e.layout) &&
    e.layout.v1 instanceof Map
  );
}

function isFamily(v: unknown): v is RenderedFamily {
  return (
    isObject(v) &&
    typeof v.name === 'string' &&
    typeof v.help === 'string' &&
    typeof v.type === 'string' &&
    ['counter', 'gauge', 'histogram', 'summary'].includes(v.type) &&
    typeof v.samples === 'string' &&
    (v.openMetricsSamples === undefined || typeof v.openMetricsSamples === 'string')
  );
}

export function isWorkerReply(v: unknown): v is WorkerReply {
  if (!isObject(v) || typeof v.id !== 'number') return false;
  if (v.type === 'error') return typeof v.message === 'string';
  if (v.type !== 'result' || !isObject(v.result)) return false;
  const r = v.result;
  return (
    typeof r.timestampMs === 'number' &&
    typeof r.durationMs === 'number' &&
    typeof r.containers === 'number' &&
    Array.isArray(r.families) &&
    r.families.every(isFamily)
  );
}
