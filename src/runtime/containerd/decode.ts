/**
 * Validates what containerd returns (as decoded by proto-loader from our `proto/`) and maps it to podvisor's
 * RuntimeContainer / RuntimeEvent. Nothing here trusts a shape: every field is checked by a guard, and a response
 * that does not match is an Error naming the message and the field.
 */
import { ResponseShapeError } from '../../errors.js';
import { isRecord, isStringArray, isStringRecord } from '../../guards.js';
import type { RuntimeEvent } from '../types.js';
import type { RuntimeContainer } from '../../model/runtime.js';

type Json = Record<string, unknown>;

/** A decoding mismatch: `<what>: <why>`. */
function shapeError(what: string, why: string): ResponseShapeError {
  return new ResponseShapeError(`${what}: ${why}`);
}

function str(m: Json, field: string, what: string): string {
  const v = m[field];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw shapeError(what, `field ${field} is not a string`);
  return v;
}

function num(m: Json, field: string, what: string): number {
  const v = m[field];
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw shapeError(what, `field ${field} is not a number`);
  return v;
}

function optRecord(m: Json, field: string, what: string): Json | undefined {
  const v = m[field];
  if (v === undefined || v === null) return undefined;
  if (!isRecord(v)) throw shapeError(what, `field ${field} is not a message`);
  return v;
}

/** google.protobuf.Any as proto-loader decodes it. */
export interface AnyMessage {
  typeUrl: string;
  value: Buffer;
}

function optAny(m: Json, field: string, what: string): AnyMessage | undefined {
  const v = optRecord(m, field, what);
  if (v === undefined) return undefined;
  const typeUrl = str(v, 'type_url', `${what}.${field}`);
  const value = v['value'];
  if (!Buffer.isBuffer(value)) throw shapeError(`${what}.${field}`, 'field value is not bytes');
  return { typeUrl, value };
}

/** google.protobuf.Timestamp → Unix seconds (with the fraction); undefined when absent or zero. */
function optTimestamp(m: Json, field: string, what: string): number | undefined {
  const v = optRecord(m, field, what);
  if (v === undefined) return undefined;
  const seconds = num(v, 'seconds', `${what}.${field}`);
  const nanos = num(v, 'nanos', `${what}.${field}`);
  if (seconds === 0 && nanos === 0) return undefined;
  return seconds + nanos / 1e9;
}

/** What podvisor keeps of containerd's `Container`. */
export interface ContainerMessage {
  id: string;
  labels: Record<string, string>;
  image: string;
  spec?: AnyMessage;
  snapshotter: string;
  snapshotKey: string;
  createdAt?: number;
  sandbox: string;
}

export function decodeContainer(v: unknown, what = 'Container'): ContainerMessage {
  if (!isRecord(v)) throw shapeError(what, 'not a message');
  const id = str(v, 'id', what);
  if (id === '') throw shapeError(what, 'empty id');
  const labels = v['labels'] ?? {};
  if (!isStringRecord(labels)) throw shapeError(`${what} ${id}`, 'labels are not a string map');
  const spec = optAny(v, 'spec', `${what} ${id}`);
  const createdAt = optTimestamp(v, 'created_at', `${what} ${id}`);
  return {
    id,
    labels: { ...labels },
    image: str(v, 'image', what),
    ...(spec !== undefined ? { spec } : {}),
    snapshotter: str(v, 'snapshotter', what),
    snapshotKey: str(v, 'snapshot_key', what),
    ...(createdAt !== undefined ? { createdAt } : {}),
    sandbox: str(v, 'sandbox', what),
  };
}

export function decodeListContainers(v: unknown): ContainerMessage[] {
  if (!isRecord(v)) throw shapeError('ListContainersResponse', 'not a message');
  const list = v['containers'] ?? [];
  if (!Array.isArray(list)) throw shapeError('ListContainersResponse', 'containers is not a list');
  return list.map((c) => decodeContainer(c));
}

export function decodeGetContainer(v: unknown): ContainerMessage {
  if (!isRecord(v)) throw shapeError('GetContainerResponse', 'not a message');
  return decodeContainer(v['container'], 'GetContainerResponse.container');
}

/** What podvisor keeps of containerd's task `Process`. */
export interface ProcessMessage {
  containerId: string;
  pid: number;
  status: string;
}

export function decodeProcess(v: unknown, what = 'Process'): ProcessMessage {
  if (!isRecord(v)) throw shapeError(what, 'not a message');
  const status = v['status'];
  // enums: String; a number would be a value our proto does not name.
  const statusName = typeof status === 'string' ? status : typeof status === 'number' ? String(status) : 'UNKNOWN';
  // Tasks/List fills `id` (= the container id) and leaves `container_id` empty; accept either.
  const containerId = str(v, 'container_id', what) || str(v, 'id', what);
  return { containerId, pid: num(v, 'pid', what), status: statusName };
}

export function decodeListTasks(v: unknown): ProcessMessage[] {
  if (!isRecord(v)) throw shapeError('ListTasksResponse', 'not a message');
  const list = v['tasks'] ?? [];
  if (!Array.isArray(list)) throw shapeError('ListTasksResponse', 'tasks is not a list');
  return list.map((p) => decodeProcess(p, 'ListTasksResponse.tasks'));
}

export function decodeGetTask(v: unknown): ProcessMessage {
  if (!isRecord(v)) throw shapeError('GetResponse', 'not a message');
  return decodeProcess(v['process'], 'GetResponse.process');
}

/** The task's init process exists (it has a host pid worth reading /proc/<pid>/net/dev from). */
export function hasLivePid(p: ProcessMessage): boolean {
  return p.pid > 0 && (p.status === 'RUNNING' || p.status === 'PAUSED' || p.status === 'PAUSING');
}

export function decodeVersion(v: unknown): string {
  if (!isRecord(v)) throw shapeError('VersionResponse', 'not a message');
  return str(v, 'version', 'VersionResponse');
}

export interface UsageMessage {
  size: number;
  inodes: number;
}

export function decodeUsage(v: unknown): UsageMessage {
  if (!isRecord(v)) throw shapeError('UsageResponse', 'not a message');
  return { size: num(v, 'size', 'UsageResponse'), inodes: num(v, 'inodes', 'UsageResponse') };
}

export interface EnvelopeMessage {
  namespace: string;
  topic: string;
  event?: AnyMessage;
}

export function decodeEnvelope(v: unknown): EnvelopeMessage {
  if (!isRecord(v)) throw shapeError('Envelope', 'not a message');
  const event = optAny(v, 'event', 'Envelope');
  return {
    namespace: str(v, 'namespace', 'Envelope'),
    topic: str(v, 'topic', 'Envelope'),
    ...(event !== undefined ? { event } : {}),
  };
}

// ---- the OCI spec (Container.spec: an Any whose value is the runtime-spec as JSON) ----

/** The parts of the OCI runtime spec podvisor reads. */
export interface SpecInfo {
  cgroupsPath?: string;
  env?: Record<string, string>;
  /**
   * The network namespace: 'new' (own netns), 'joined' (a `path` to another's), 'host' (no network entry: the
   * host's netns), or undefined when the spec has no `linux.namespaces`.
   */
  netns?: 'new' | 'joined' | 'host';
}

/**
 * Parses the spec JSON. A spec that is not JSON, or not an object, yields `undefined` (the caller keeps the
 * container with the spec-derived fields absent); fields of the wrong type are ignored one by one.
 */
export function parseSpec(value: Buffer): SpecInfo | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(value.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isRecord(doc)) return undefined;
  const info: SpecInfo = {};
  const linux = doc['linux'];
  if (isRecord(linux)) {
    const cg = linux['cgroupsPath'];
    if (typeof cg === 'string' && cg !== '') info.cgroupsPath = cg;
    const nss = linux['namespaces'];
    if (Array.isArray(nss)) {
      const net = nss.find((n): n is Json => isRecord(n) && n['type'] === 'network');
      if (net === undefined) info.netns = 'host';
      else info.netns = typeof net['path'] === 'string' && net['path'] !== '' ? 'joined' : 'new';
    }
  }
  const proc = doc['process'];
  if (isRecord(proc) && isStringArray(proc['env'])) {
    const env: Record<string, string> = {};
    for (const kv of proc['env']) {
      const eq = kv.indexOf('=');
      if (eq <= 0) continue;
      env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    info.env = env;
  }
  return info;
}

export const CRI_KIND_LABEL = 'io.cri-containerd.kind';

/** containerd `Container` (+ its task, if any) → RuntimeContainer. */
export function toRuntimeContainer(c: ContainerMessage, namespace: string, task: ProcessMessage | undefined): RuntimeContainer {
  const spec = c.spec !== undefined ? parseSpec(c.spec.value) : undefined;
  const criKind = c.labels[CRI_KIND_LABEL];
  const kind: RuntimeContainer['kind'] = criKind === 'sandbox' ? 'sandbox' : 'container';
  // CRI: the sandbox owns the pod's netns. Otherwise (ctr, nerdctl, Docker's moby namespace) a container owns its
  // network unless its spec joins another netns by path or uses the host's; an unreadable spec counts as owning.
  const networkOwner = criKind !== undefined ? kind === 'sandbox' : spec?.netns !== 'joined' && spec?.netns !== 'host';
  const out: RuntimeContainer = {
    runtime: 'containerd',
    id: c.id,
    name: c.id,
    image: c.image,
    labels: c.labels,
    kind,
    networkOwner,
    namespace,
  };
  if (spec?.env !== undefined) out.env = spec.env;
  if (spec?.cgroupsPath !== undefined) out.cgroupsPath = spec.cgroupsPath;
  if (c.createdAt !== undefined) out.createdAt = c.createdAt;
  if (task !== undefined && hasLivePid(task)) out.pid = task.pid;
  if (c.snapshotter !== '') out.snapshotter = c.snapshotter;
  if (c.snapshotKey !== '') out.snapshotKey = c.snapshotKey;
  return out;
}

// ---- events (Envelope.event: an Any holding a containerd.events.* message, type_url without a prefix) ----

/**
 * Reads the length-delimited (string) fields of a protobuf message by number; other wire types are skipped.
 * The event payloads are tiny and podvisor only needs their ids, so this replaces a full decoder.
 */
export function readStringFields(buf: Buffer, wanted: readonly number[]): Map<number, string> {
  const out = new Map<number, string>();
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= buf.length) throw shapeError('event payload', 'truncated varint');
      const b = buf[pos++] ?? 0;
      if (shift < 49) result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw shapeError('event payload', 'varint longer than 10 bytes');
    }
  };
  while (pos < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) varint();
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const len = varint();
      if (pos + len > buf.length) throw shapeError('event payload', 'truncated field');
      if (wanted.includes(field)) out.set(field, buf.toString('utf8', pos, pos + len));
      pos += len;
    } else throw shapeError('event payload', `unsupported wire type ${wire}`);
    if (pos > buf.length) throw shapeError('event payload', 'truncated field');
  }
  return out;
}

/**
 * containerd.events message → action, with the field numbers (proto/containerd/events/*.proto) of the container
 * id and, for task events, of the exec id: only the init process (exec id empty or equal to the container id)
 * counts, so `ctr task exec` exits are not container deaths.
 */
const eventTypes: Readonly<Record<string, { action: RuntimeEvent['action']; idField: number; execField?: number }>> = {
  'containerd.events.ContainerCreate': { action: 'create', idField: 1 },
  'containerd.events.ContainerUpdate': { action: 'update', idField: 1 },
  'containerd.events.ContainerDelete': { action: 'destroy', idField: 1 },
  'containerd.events.TaskStart': { action: 'start', idField: 1 },
  'containerd.events.TaskExit': { action: 'die', idField: 1, execField: 2 },
  'containerd.events.TaskDelete': { action: 'die', idField: 1, execField: 5 },
};

/** Envelope event → RuntimeEvent; undefined for topics podvisor ignores (images, snapshots, exec, oom…). */
export function decodeEvent(event: AnyMessage): RuntimeEvent | undefined {
  const name = event.typeUrl.slice(event.typeUrl.lastIndexOf('/') + 1);
  const t = eventTypes[name];
  if (t === undefined) return undefined;
  const fields = readStringFields(event.value, t.execField !== undefined ? [t.idField, t.execField] : [t.idField]);
  const id = fields.get(t.idField) ?? '';
  if (id === '') throw shapeError(name, 'empty container id');
  if (t.execField !== undefined) {
    const exec = fields.get(t.execField) ?? '';
    if (exec !== '' && exec !== id) return undefined;
  }
  return { id, action: t.action };
}
