/**
 * A client of the kubelet's PodResources API (`/v1.PodResourcesLister/List`): plain gRPC over the kubelet's unix
 * socket, with podvisor's own `proto/kubelet/podresources/v1/api.proto`. It returns DeviceAssignment only; protobuf
 * shapes never leave this file.
 *
 * - Every call has a deadline of `timeoutMs`.
 * - The kubelet recreates its socket (a new inode) when it restarts: after any failed call, and whenever the socket
 *   file is no longer the one the channel was opened on, the next call opens a fresh channel (with its own subchannel
 *   pool, so grpc-js' reconnect backoff of the old connection is not inherited).
 * - A failed call rejects with a PodResourcesError naming the socket, the call and the gRPC status
 *   (`pod-resources at /var/lib/kubelet/pod-resources/kubelet.sock: List: 14 UNAVAILABLE: …`); a response that does
 *   not have the documented shape rejects with a ResponseShapeError naming the first bad field.
 */
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { PodResourcesError, ResponseShapeError, errorMessage } from '../../errors.js';
import { isRecord, isStringArray } from '../../guards.js';

/** One device plugin resource of one container: `nvidia.com/gpu` → `['GPU-…', 'MIG-…', 'GPU-…::3']`, ids as given. */
export interface DeviceAssignment {
  namespace: string;
  pod: string;
  container: string;
  resourceName: string;
  deviceIds: readonly string[];
}

export interface PodResourcesClientOptions {
  /** The kubelet's socket, e.g. `/var/lib/kubelet/pod-resources/kubelet.sock` (a `unix://` prefix is accepted). */
  socket: string;
  /** Deadline of each call. */
  timeoutMs: number;
  /** Directory holding podvisor's protos (default: `proto/` of this package). */
  protoDir?: string;
}

/** `proto/` at the repository root: three levels up from both src/gpu/pod-resources/ and dist/gpu/pod-resources/. */
export const defaultProtoDir = fileURLToPath(new URL('../../../proto/', import.meta.url));

export const PROTO_FILE = 'kubelet/podresources/v1/api.proto';
export const SERVICE = 'v1.PodResourcesLister';

export const loaderOptions = {
  keepCase: true,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: false,
} as const;

export function loadPodResourcesProtos(protoDir: string = defaultProtoDir): PackageDefinition {
  return loadSync([PROTO_FILE], { ...loaderOptions, includeDirs: [protoDir] });
}

export type Method = grpc.MethodDefinition<object, object>;

/** One method of PodResourcesLister; throws if our proto file lacks it (a packaging error, not a runtime condition). */
export function lookupMethod(def: PackageDefinition, name: 'List' | 'GetAllocatableResources' | 'Get'): Method {
  const svc = def[SERVICE];
  if (svc === undefined || 'format' in svc) throw new Error(`pod-resources protos: service ${SERVICE} is not defined`);
  const m = svc[name];
  if (m === undefined) throw new Error(`pod-resources protos: ${SERVICE}/${name} is not defined`);
  return m;
}

/** The kubelet answers a few MiB at most; allow room for nodes with many pods. */
export const MAX_RECEIVE_MESSAGE_BYTES = 16 * 1024 * 1024;

/** `/var/lib/…/kubelet.sock` or `unix:///var/lib/…/kubelet.sock` → the file path. */
export function socketPathOf(socket: string): string {
  return socket.startsWith('unix://') ? socket.slice('unix://'.length) : socket.replace(/^unix:/, '');
}

function grpcTarget(path: string): string {
  return path.startsWith('/') ? `unix://${path}` : `unix:${path}`;
}

/** Which socket file is there now (device, inode, change time), or undefined when it cannot be stat'ed. */
function socketIdentity(path: string): string | undefined {
  try {
    const st = statSync(path, { throwIfNoEntry: false });
    return st === undefined ? undefined : `${st.dev}:${st.ino}:${st.ctimeMs}`;
  } catch {
    return undefined;
  }
}

// ---- decoding: proto-loader objects → DeviceAssignment, every field checked ----

function shapeError(what: string, why: string): ResponseShapeError {
  return new ResponseShapeError(`${what}: ${why}`);
}

function str(m: Record<string, unknown>, field: string, what: string): string {
  const v = m[field];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw shapeError(what, `field ${field} is not a string`);
  return v;
}

function list(m: Record<string, unknown>, field: string, what: string): unknown[] {
  const v = m[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw shapeError(what, `field ${field} is not a list`);
  return v;
}

/**
 * A ListPodResourcesResponse as proto-loader decodes it → one DeviceAssignment per container and resource that has at
 * least one device id. Containers without devices, and empty ids, are left out; ids are kept exactly as the kubelet
 * gives them (`GPU-…::2` time-slicing replicas included: reducing them is attribution's job). CPU ids, memory, topology
 * and dynamic (DRA) resources are not read. Throws ResponseShapeError naming the first malformed field.
 */
export function decodeListResponse(v: unknown): DeviceAssignment[] {
  const top = 'ListPodResourcesResponse';
  if (!isRecord(v)) throw shapeError(top, 'not a message');
  const out: DeviceAssignment[] = [];
  list(v, 'pod_resources', top).forEach((p, i) => {
    const at = `${top}.pod_resources[${i}]`;
    if (!isRecord(p)) throw shapeError(at, 'not a message');
    const pod = str(p, 'name', at);
    const namespace = str(p, 'namespace', at);
    const podWhat = `pod ${namespace}/${pod}`;
    list(p, 'containers', podWhat).forEach((c, j) => {
      if (!isRecord(c)) throw shapeError(`${podWhat} containers[${j}]`, 'not a message');
      const container = str(c, 'name', `${podWhat} containers[${j}]`);
      const cWhat = `${podWhat} container ${container}`;
      list(c, 'devices', cWhat).forEach((d, k) => {
        const dWhat = `${cWhat} devices[${k}]`;
        if (!isRecord(d)) throw shapeError(dWhat, 'not a message');
        const resourceName = str(d, 'resource_name', dWhat);
        const ids = d['device_ids'] ?? [];
        if (!isStringArray(ids)) throw shapeError(dWhat, 'field device_ids is not a list of strings');
        const deviceIds = ids.filter((id) => id !== '');
        if (deviceIds.length > 0) out.push({ namespace, pod, container, resourceName, deviceIds });
      });
    });
  });
  return out;
}

// ---- gRPC ----

function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && 'code' in err && typeof err.code === 'number' && 'details' in err;
}

/**
 * grpc-js details made stable, so that one condition always reads the same (errors are logged once per distinct
 * message): drops the `(2026-…Z)` timestamps it appends to connection errors and its empty `Resolution note`.
 */
function stableDetails(details: string): string {
  return details
    .replace(/\s*\(\d{4}-\d\d-\d\dT[\d:.]+Z\)/g, '')
    .replace(/\.?\s*Resolution note:\s*$/, '')
    .trim();
}

interface Channel {
  client: grpc.Client;
  /** socketIdentity() when the channel was opened. */
  identity: string | undefined;
}

export class PodResourcesClient {
  readonly socket: string;
  readonly timeoutMs: number;
  readonly #path: string;
  readonly #list: Method;
  #channel: Channel | undefined;
  readonly #calls = new Set<grpc.ClientUnaryCall>();
  #closed = false;

  constructor(opts: PodResourcesClientOptions) {
    this.socket = opts.socket;
    this.timeoutMs = opts.timeoutMs;
    this.#path = socketPathOf(opts.socket);
    this.#list = lookupMethod(loadPodResourcesProtos(opts.protoDir), 'List');
  }

  /** `/v1.PodResourcesLister/List`, flattened and validated (see decodeListResponse). */
  async list(): Promise<DeviceAssignment[]> {
    const ch = this.#channelNow();
    const res = await this.#unary(ch, this.#list, {});
    try {
      return decodeListResponse(res);
    } catch (err) {
      this.#drop(ch);
      throw new ResponseShapeError(`${this.#where(this.#list)}: unexpected response: ${errorMessage(err)}`);
    }
  }

  /** Cancels calls in flight (they reject with CANCELLED) and closes the channel; later calls reject. */
  close(): void {
    this.#closed = true;
    for (const call of [...this.#calls]) call.cancel();
    this.#calls.clear();
    if (this.#channel !== undefined) this.#drop(this.#channel);
  }

  /** The channel to use now: the open one while the socket file is the one it was opened on, else a fresh one. */
  #channelNow(): Channel | undefined {
    if (this.#closed) return undefined;
    const identity = socketIdentity(this.#path);
    if (this.#channel !== undefined && this.#channel.identity === identity) return this.#channel;
    if (this.#channel !== undefined) this.#drop(this.#channel);
    this.#channel = {
      client: new grpc.Client(grpcTarget(this.#path), grpc.credentials.createInsecure(), {
        'grpc.max_receive_message_length': MAX_RECEIVE_MESSAGE_BYTES,
        // A channel of its own: the global pool would hand a fresh channel the old, backed-off subchannel.
        'grpc.use_local_subchannel_pool': 1,
      }),
      identity,
    };
    return this.#channel;
  }

  /** Closes `ch`, and forgets it when it is the current channel (a newer one is left alone). */
  #drop(ch: Channel | undefined): void {
    if (ch === undefined) return;
    if (this.#channel === ch) this.#channel = undefined;
    ch.client.close();
  }

  #where(m: Method): string {
    const name = m.path.slice(m.path.lastIndexOf('/') + 1);
    return `pod-resources at ${this.#path}: ${name}`;
  }

  #error(m: Method, err: unknown): PodResourcesError {
    const where = this.#where(m);
    if (!isServiceError(err)) return new PodResourcesError(`${where}: ${errorMessage(err)}`, undefined, err);
    const name = grpc.status[err.code] ?? 'UNKNOWN';
    // grpc-js' deadline details carry the elapsed time and the peer address: different on every call.
    const details = err.code === grpc.status.DEADLINE_EXCEEDED ? `deadline of ${this.timeoutMs} ms exceeded` : stableDetails(err.details);
    return new PodResourcesError(`${where}: ${err.code} ${name}: ${details}`, err.code, err);
  }

  #unary(ch: Channel | undefined, m: Method, req: object): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      if (ch === undefined) {
        reject(new PodResourcesError(`${this.#where(m)}: the client is closed`, grpc.status.CANCELLED));
        return;
      }
      // Held in an object: grpc-js answers asynchronously, but a synchronous callback must not meet an unset binding.
      const held: { call?: grpc.ClientUnaryCall; done?: boolean } = {};
      const deadline = Date.now() + this.timeoutMs;
      held.call = ch.client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, req, new grpc.Metadata(), { deadline }, (err, res) => {
        held.done = true;
        if (held.call !== undefined) this.#calls.delete(held.call);
        if (err) {
          this.#drop(ch);
          reject(this.#error(m, err));
        } else {
          resolve(res);
        }
      });
      if (held.done !== true) this.#calls.add(held.call);
    });
  }
}
