/**
 * The containerd client: gRPC over containerd's unix socket, with podvisor's own protos (`proto/`). It returns
 * RuntimeContainer / RuntimeEvent only; protobuf shapes never leave src/runtime/containerd/.
 *
 * Every call carries the `containerd-namespace` header (Version and Events/Subscribe need none), a deadline of
 * `timeoutMs`, and is cancelled when the caller's AbortSignal aborts. A failure rejects with one sentence naming
 * the socket, the call and the cause: `containerd at /run/containerd/containerd.sock: Containers/List in namespace
 * k8s.io: 14 UNAVAILABLE: No connection established…`.
 *
 * list() reports each answered call (Containers/List and Tasks/List per namespace) to its `onProgress`; socketMissing()
 * tells whether the socket exists at all.
 *
 * A container whose OCI spec is not valid JSON is still returned, without the spec-derived fields (cgroupsPath,
 * env; a non-CRI container then counts as owning its network): one odd container must not hide every other.
 */
import { statSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ContainerdError, errorMessage } from '../../errors.js';
import type { RuntimeClient, RuntimeEvent, RuntimeVersion } from '../types.js';
import type { RuntimeContainer } from '../../model/runtime.js';
import {
  decodeEnvelope,
  decodeEvent,
  decodeGetContainer,
  decodeGetTask,
  decodeListContainers,
  decodeListTasks,
  decodeUsage,
  decodeVersion,
  toRuntimeContainer,
  type ProcessMessage,
  type UsageMessage,
} from './decode.js';
import { loadContainerdProtos, lookupMethod, services, type Method } from './proto.js';

export interface ContainerdClientOptions {
  /** Socket path, e.g. `/run/containerd/containerd.sock` (k3s: `/run/k3s/containerd/containerd.sock`). */
  address: string;
  /** Namespaces to list and watch, e.g. `['k8s.io', 'moby']`. */
  namespaces: string[];
  /** Deadline of each unary call. */
  timeoutMs: number;
  /** Directory holding podvisor's containerd protos (default: `proto/` of this package). */
  protoDir?: string;
}

/** containerd allows 16 MiB messages; grpc-js accepts 4 MiB by default and Containers/List carries every spec. */
export const MAX_RECEIVE_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Cap grpc-js' reconnect backoff (default 120 s) so a restarted containerd is seen again within seconds. */
export const MAX_RECONNECT_BACKOFF_MS = 5_000;

const NAMESPACE_HEADER = 'containerd-namespace';

function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'number' && 'metadata' in err;
}

/** The socket path of an address (`/run/containerd/containerd.sock`, `unix:///…`, `unix:relative.sock`). */
function socketPathOf(address: string): string {
  return address.startsWith('unix://') ? address.slice('unix://'.length) : address.replace(/^unix:/, '');
}

function grpcTarget(address: string): string {
  const path = socketPathOf(address);
  return path.startsWith('/') ? `unix://${path}` : `unix:${path}`;
}

interface MethodTable {
  version: Method;
  containersList: Method;
  containersGet: Method;
  tasksList: Method;
  tasksGet: Method;
  snapshotsUsage: Method;
  eventsSubscribe: Method;
}

function methodTable(def: PackageDefinition): MethodTable {
  return {
    version: lookupMethod(def, services.version, 'Version'),
    containersList: lookupMethod(def, services.containers, 'List'),
    containersGet: lookupMethod(def, services.containers, 'Get'),
    tasksList: lookupMethod(def, services.tasks, 'List'),
    tasksGet: lookupMethod(def, services.tasks, 'Get'),
    snapshotsUsage: lookupMethod(def, services.snapshots, 'Usage'),
    eventsSubscribe: lookupMethod(def, services.events, 'Subscribe'),
  };
}

/** `/containerd.services.tasks.v1.Tasks/List` → `Tasks/List`. */
function shortName(path: string): string {
  const [, service = '', method = ''] = path.split('/');
  return `${service.slice(service.lastIndexOf('.') + 1)}/${method}`;
}

/** grpc-js status messages can end in an empty `Resolution note: `; drop it. */
function statusMessage(err: grpc.ServiceError): string {
  return err.message.replace(/\s*Resolution note:\s*$/, '').trim();
}

export class ContainerdClient implements RuntimeClient {
  readonly runtime = 'containerd' as const;
  readonly address: string;
  readonly namespaces: readonly string[];
  readonly timeoutMs: number;
  readonly #client: grpc.Client;
  readonly #m: MethodTable;

  constructor(opts: ContainerdClientOptions) {
    this.address = opts.address;
    this.namespaces = [...opts.namespaces];
    this.timeoutMs = opts.timeoutMs;
    this.#m = methodTable(loadContainerdProtos(opts.protoDir));
    this.#client = new grpc.Client(grpcTarget(opts.address), grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': MAX_RECEIVE_MESSAGE_BYTES,
      'grpc.max_reconnect_backoff_ms': MAX_RECONNECT_BACKOFF_MS,
    });
  }

  async version(signal: AbortSignal): Promise<RuntimeVersion> {
    const res = await this.#unary(this.#m.version, {}, undefined, signal);
    return { version: this.#decode(this.#m.version, undefined, () => decodeVersion(res)), apiVersion: '' };
  }

  async list(signal: AbortSignal, _known?: (id: string) => RuntimeContainer | undefined, onProgress?: () => void): Promise<RuntimeContainer[]> {
    const perNs = await Promise.all(this.namespaces.map((ns) => this.#listNamespace(ns, signal, onProgress)));
    return perNs.flat();
  }

  /** The socket does not exist (no containerd on this node). */
  socketMissing(): boolean {
    try {
      return statSync(socketPathOf(this.address), { throwIfNoEntry: false }) === undefined;
    } catch {
      return false; // EACCES, ENOTDIR…: cannot tell, so not "missing"
    }
  }

  async inspect(id: string, signal: AbortSignal): Promise<RuntimeContainer | undefined> {
    for (const ns of this.namespaces) {
      let res: unknown;
      try {
        res = await this.#unary(this.#m.containersGet, { id }, ns, signal);
      } catch (err) {
        if (err instanceof ContainerdError && err.grpcCode === grpc.status.NOT_FOUND) continue;
        throw err;
      }
      const c = this.#decode(this.#m.containersGet, ns, () => decodeGetContainer(res));
      let task: ProcessMessage | undefined;
      try {
        const t = await this.#unary(this.#m.tasksGet, { container_id: id }, ns, signal);
        task = this.#decode(this.#m.tasksGet, ns, () => decodeGetTask(t));
      } catch (err) {
        if (!(err instanceof ContainerdError && err.grpcCode === grpc.status.NOT_FOUND)) throw err;
      }
      return toRuntimeContainer(c, ns, task);
    }
    return undefined;
  }

  /**
   * Disk usage of a container's snapshot (Snapshots/Usage). Expensive on the server for active overlay snapshots
   * (it walks the upper dir): call it off the scrape path and cache the result.
   */
  async snapshotUsage(namespace: string, snapshotter: string, key: string, signal: AbortSignal): Promise<UsageMessage> {
    const res = await this.#unary(this.#m.snapshotsUsage, { snapshotter, key }, namespace, signal);
    return this.#decode(this.#m.snapshotsUsage, namespace, () => decodeUsage(res));
  }

  /**
   * Streams /containers/* and /tasks/* events of our namespaces until `signal` aborts (resolves) or the stream
   * ends (resolves) or fails (rejects). An event that cannot be decoded, or an `onEvent` that throws, ends the
   * stream with a rejection.
   */
  events(onEvent: (e: RuntimeEvent) => void, signal: AbortSignal): Promise<void> {
    const m = this.#m.eventsSubscribe;
    const filters = this.namespaces.flatMap((ns) => [
      `namespace==${JSON.stringify(ns)},topic~="^/containers/"`,
      `namespace==${JSON.stringify(ns)},topic~="^/tasks/"`,
    ]);
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        resolve();
        return;
      }
      const call = this.#client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, { filters }, new grpc.Metadata(), {});
      let settled = false;
      const finish = (err?: Error): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onAbort = (): void => {
        finish();
        call.cancel();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      call.on('data', (msg: unknown) => {
        if (settled) return;
        try {
          const env = decodeEnvelope(msg);
          if (!this.namespaces.includes(env.namespace) || env.event === undefined) return;
          const e = decodeEvent(env.event);
          if (e !== undefined) onEvent(e);
        } catch (err) {
          finish(
            err instanceof ContainerdError ? err : new ContainerdError(`containerd at ${this.address}: ${shortName(m.path)}: ${describe(err)}`, undefined, err),
          );
          call.cancel();
        }
      });
      call.on('error', (err: unknown) => {
        if (signal.aborted) finish();
        else finish(this.#error(m, undefined, err, signal));
      });
      call.on('end', () => finish());
    });
  }

  async close(): Promise<void> {
    this.#client.close();
  }

  async #listNamespace(ns: string, signal: AbortSignal, onProgress: (() => void) | undefined): Promise<RuntimeContainer[]> {
    const call = async (m: Method, req: object): Promise<unknown> => {
      const res = await this.#unary(m, req, ns, signal);
      onProgress?.();
      return res;
    };
    const [cres, tres] = await Promise.all([call(this.#m.containersList, { filters: [] }), call(this.#m.tasksList, {})]);
    const containers = this.#decode(this.#m.containersList, ns, () => decodeListContainers(cres));
    const tasks = new Map(this.#decode(this.#m.tasksList, ns, () => decodeListTasks(tres)).map((p) => [p.containerId, p]));
    return containers.map((c) => toRuntimeContainer(c, ns, tasks.get(c.id)));
  }

  /** Run a decoder; a shape mismatch becomes a ContainerdError naming the call. */
  #decode<T>(m: Method, ns: string | undefined, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new ContainerdError(`${this.#where(m, ns)}: unexpected response: ${describe(err)}`, undefined, err);
    }
  }

  #where(m: Method, ns: string | undefined): string {
    return `containerd at ${this.address}: ${shortName(m.path)}${ns !== undefined ? ` in namespace ${ns}` : ''}`;
  }

  #error(m: Method, ns: string | undefined, err: unknown, signal: AbortSignal): ContainerdError {
    const where = this.#where(m, ns);
    if (signal.aborted) {
      return new ContainerdError(`${where}: aborted: ${describe(signal.reason)}`, grpc.status.CANCELLED, err);
    }
    if (isServiceError(err)) {
      // grpc-js messages already read `14 UNAVAILABLE: …`.
      return new ContainerdError(`${where}: ${statusMessage(err)}`, err.code, err);
    }
    return new ContainerdError(`${where}: ${describe(err)}`, undefined, err);
  }

  #unary(m: Method, req: object, ns: string | undefined, signal: AbortSignal): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      if (signal.aborted) {
        reject(this.#error(m, ns, undefined, signal));
        return;
      }
      const md = new grpc.Metadata();
      if (ns !== undefined) md.set(NAMESPACE_HEADER, ns);
      const onAbort = (): void => call.cancel();
      const call = this.#client.makeUnaryRequest(
        m.path,
        m.requestSerialize,
        m.responseDeserialize,
        req,
        md,
        { deadline: Date.now() + this.timeoutMs },
        (err, res) => {
          signal.removeEventListener('abort', onAbort);
          if (err) reject(this.#error(m, ns, err, signal));
          else resolve(res);
        },
      );
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

function describe(err: unknown): string {
  return err === undefined ? 'no reason given' : errorMessage(err);
}
