/**
 * Docker Engine API bodies → podvisor's types. Pure: every function takes the parsed body as `unknown`, checks the
 * fields it uses with type guards and throws ResponseShapeError naming the first bad field (the client adds endpoint and path).
 */
import path from 'node:path';
import type { RuntimeEvent, RuntimeVersion } from '../types.js';
import type { RuntimeContainer } from '../../model/runtime.js';
import { ResponseShapeError } from '../../errors.js';
import { isRecord } from '../../guards.js';

const SANDBOX_TYPE_LABEL = 'io.kubernetes.docker.type';
const CONTAINER_NAME_LABEL = 'io.kubernetes.container.name';
const NEVER = '0001-01-01';

/** A field's value; Docker's `null` (Labels, Env) counts as absent. */
function field(obj: Record<string, unknown>, key: string): unknown {
  return obj[key] ?? undefined;
}

function optString(obj: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = field(obj, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new ResponseShapeError(`${where}${key} is ${describe(v)}, not a string`);
  return v;
}

function reqString(obj: Record<string, unknown>, key: string, where: string): string {
  const v = optString(obj, key, where);
  if (v === undefined) throw new ResponseShapeError(`${where}${key} is missing`);
  return v;
}

function optRecord(obj: Record<string, unknown>, key: string, where: string): Record<string, unknown> | undefined {
  const v = field(obj, key);
  if (v === undefined) return undefined;
  if (!isRecord(v)) throw new ResponseShapeError(`${where}${key} is ${describe(v)}, not an object`);
  return v;
}

function optNumber(obj: Record<string, unknown>, key: string, where: string): number | undefined {
  const v = field(obj, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ResponseShapeError(`${where}${key} is ${describe(v)}, not a number`);
  return v;
}

function stringMap(obj: Record<string, unknown>, key: string, where: string): Record<string, string> {
  const v = optRecord(obj, key, where);
  const out: Record<string, string> = {};
  if (v === undefined) return out;
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw new ResponseShapeError(`${where}${key}.${k} is ${describe(val)}, not a string`);
    out[k] = val;
  }
  return out;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return isRecord(v) ? 'an object' : 'a non-JSON object';
  return `a ${typeof v}`;
}

/** `2024-05-01T10:00:00.123456789Z` → unix seconds (whole, as cAdvisor's `.Unix()`); undefined if unparsable. */
export function rfc3339ToUnix(s: string): number | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$/i.exec(s);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1] ?? ''}${(m[2] ?? '').toUpperCase()}`);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}

/** `/version` → RuntimeVersion. Any string is accepted as the version (`dev`, `''`, `20.10.24+dfsg1`). */
export function versionFromBody(body: unknown): RuntimeVersion {
  if (!isRecord(body)) throw new ResponseShapeError(`body is ${describe(body)}, not an object`);
  return {
    version: optString(body, 'Version', '') ?? '',
    apiVersion: optString(body, 'ApiVersion', '') ?? '',
  };
}

/** `/containers/json` → the container ids it lists. */
export function idsFromListBody(body: unknown): string[] {
  if (!Array.isArray(body)) throw new ResponseShapeError(`body is ${describe(body)}, not an array`);
  return body.map((item: unknown, i) => {
    if (!isRecord(item)) throw new ResponseShapeError(`[${i}] is ${describe(item)}, not an object`);
    return reqString(item, 'Id', `[${i}].`);
  });
}

/** `Config.Env` (`K=V`) → `{ k: V }` with keys lowercased as cAdvisor does; entries without `=` are skipped. */
export function envFromList(env: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (env === undefined || env === null) return out;
  if (!Array.isArray(env)) throw new ResponseShapeError(`Config.Env is ${describe(env)}, not an array`);
  env.forEach((kv: unknown, i) => {
    if (typeof kv !== 'string') throw new ResponseShapeError(`Config.Env[${i}] is ${describe(kv)}, not a string`);
    const eq = kv.indexOf('=');
    if (eq <= 0) return;
    out[kv.slice(0, eq).toLowerCase()] = kv.slice(eq + 1);
  });
  return out;
}

/** `/containers/{id}/json` → RuntimeContainer. */
export function containerFromInspect(body: unknown): RuntimeContainer {
  if (!isRecord(body)) throw new ResponseShapeError(`body is ${describe(body)}, not an object`);
  const id = reqString(body, 'Id', '');
  const name = reqString(body, 'Name', '').replace(/^\//, '');
  const config = optRecord(body, 'Config', '') ?? {};
  const state = optRecord(body, 'State', '') ?? {};
  const hostConfig = optRecord(body, 'HostConfig', '') ?? {};
  const graphData = optRecord(optRecord(body, 'GraphDriver', '') ?? {}, 'Data', 'GraphDriver.') ?? {};

  const labels = stringMap(config, 'Labels', 'Config.');
  const c: RuntimeContainer = {
    runtime: 'docker',
    id,
    name,
    image: optString(config, 'Image', 'Config.') ?? '',
    labels,
    env: envFromList(config['Env']),
    kind: labels[SANDBOX_TYPE_LABEL] === 'podsandbox' || labels[CONTAINER_NAME_LABEL] === 'POD' ? 'sandbox' : 'container',
    networkOwner: true,
  };

  const pid = optNumber(state, 'Pid', 'State.');
  if (pid !== undefined && pid > 0) c.pid = pid;

  const created = optString(body, 'Created', '');
  if (created !== undefined && !created.startsWith(NEVER)) {
    const t = rfc3339ToUnix(created);
    if (t !== undefined) c.createdAt = t;
  }
  const started = optString(state, 'StartedAt', 'State.');
  if (started !== undefined && !started.startsWith(NEVER)) {
    const t = rfc3339ToUnix(started);
    if (t !== undefined) c.startedAt = t;
  }

  const networkMode = optString(hostConfig, 'NetworkMode', 'HostConfig.') ?? '';
  c.networkOwner = !networkMode.startsWith('container:') && networkMode !== 'host';

  const upperDir = optString(graphData, 'UpperDir', 'GraphDriver.Data.');
  if (upperDir) c.upperDir = upperDir;
  const logPath = optString(body, 'LogPath', '');
  if (logPath) c.logDir = path.dirname(logPath);
  return c;
}

const KEPT_ACTIONS: ReadonlySet<RuntimeEvent['action']> = new Set(['create', 'start', 'die', 'destroy', 'rename', 'update']);

function isKeptAction(a: string): a is RuntimeEvent['action'] {
  return (KEPT_ACTIONS as ReadonlySet<string>).has(a);
}

/**
 * One decoded `/events` object → RuntimeEvent, or undefined for events the cache does not need (other types, other
 * actions, no id). `exec_start: sh -c …` style suffixes are stripped. Falls back to the legacy `status`/`id` fields.
 */
export function eventFromMessage(msg: Record<string, unknown>): RuntimeEvent | undefined {
  const type = msg['Type'];
  if (type !== undefined && type !== 'container') return undefined;
  const rawAction = typeof msg['Action'] === 'string' ? msg['Action'] : msg['status'];
  if (typeof rawAction !== 'string') return undefined;
  const action = (rawAction.split(':', 1)[0] ?? '').trim();
  if (!isKeptAction(action)) return undefined;
  const actor = msg['Actor'];
  const id = isRecord(actor) && typeof actor['ID'] === 'string' ? actor['ID'] : msg['id'];
  if (typeof id !== 'string' || id === '') return undefined;
  return { id, action };
}
