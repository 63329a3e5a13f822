/**
 * A fake kubelet PodResources server: a grpc-js Server loaded from podvisor's own `proto/`, listening on a short unix
 * socket under os.tmpdir(). It serves List, Get and GetAllocatableResources from `pods` and `allocatable`, records
 * every call, and answers as `mode` says:
 *
 * - `normal`: the scripted answer;
 * - `delay`: the scripted answer after `ms` (a slow kubelet);
 * - `error`: the gRPC status `code` (RESOURCE_EXHAUSTED "rejected by rate limit" as the kubelet's limiter says it);
 * - `garbage`: bytes that are not a protobuf message (the server's serializer passes Buffers through untouched);
 * - `raw`: exactly `bytes` (hand-encoded messages, see encodeMessage);
 * - `hang`: never answers (the client's deadline must fire).
 *
 * stop() removes the socket; listen() binds again on the same path, so the file is a new inode, as when the kubelet
 * restarts.
 */
import { rmSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { loadPodResourcesProtos, SERVICE } from '../../src/gpu/pod-resources/client.js';
import { socketPath } from './socket-path.js';

export interface FakeDevices {
  resourceName: string;
  ids: string[];
}

export interface FakeContainer {
  name: string;
  devices?: FakeDevices[];
}

export interface FakePod {
  namespace: string;
  name: string;
  containers: FakeContainer[];
}

export type FakeMode =
  | { kind: 'normal' }
  | { kind: 'delay'; ms: number }
  | { kind: 'error'; code: grpc.status; details?: string }
  | { kind: 'garbage' }
  | { kind: 'raw'; bytes: Buffer }
  | { kind: 'hang' };

/** Not a protobuf message: protobufjs stops at "invalid wire type 6". */
export const GARBAGE = Buffer.from('not a protobuf message', 'latin1');

/** A field for encodeMessage: a number is a varint, a string or Buffer is length-delimited, an array a nested message. */
export type WireValue = number | string | Buffer | { fixed32: number } | { fixed64: bigint } | WireField[];
export type WireField = [field: number, value: WireValue];

function varint(n: number | bigint): Buffer {
  let v = BigInt(n);
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

/** Encodes a protobuf message by field number, independently of any .proto file (to check our field numbers). */
export function encodeMessage(fields: readonly WireField[]): Buffer {
  const parts: Buffer[] = [];
  for (const [field, value] of fields) {
    if (typeof value === 'number') {
      parts.push(varint(field * 8), varint(value));
    } else if (typeof value === 'string' || Buffer.isBuffer(value) || Array.isArray(value)) {
      const b = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.isBuffer(value) ? value : encodeMessage(value);
      parts.push(varint(field * 8 + 2), varint(b.length), b);
    } else if ('fixed32' in value) {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(value.fixed32);
      parts.push(varint(field * 8 + 5), b);
    } else {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(value.fixed64);
      parts.push(varint(field * 8 + 1), b);
    }
  }
  return Buffer.concat(parts);
}

function devicesToProto(d: FakeDevices): object {
  return { resource_name: d.resourceName, device_ids: d.ids, topology: { nodes: [{ ID: 0 }] } };
}

function podToProto(p: FakePod): object {
  return {
    name: p.name,
    namespace: p.namespace,
    containers: p.containers.map((c) => ({ name: c.name, devices: (c.devices ?? []).map(devicesToProto), cpu_ids: [2, 3], memory: [] })),
  };
}

function field(req: unknown, name: string): string {
  if (typeof req !== 'object' || req === null || !(name in req)) return '';
  const v: unknown = Object.getOwnPropertyDescriptor(req, name)?.value;
  return typeof v === 'string' ? v : '';
}

export class FakePodResources {
  readonly path: string;
  pods: FakePod[] = [];
  allocatable: FakeDevices[] = [];
  mode: FakeMode = { kind: 'normal' };
  /** Method names (`List`, `Get`, `GetAllocatableResources`) in the order they arrived, across restarts. */
  readonly calls: string[] = [];
  #server: grpc.Server | undefined;
  readonly #delays = new Set<NodeJS.Timeout>();

  constructor(path: string = socketPath('podres')) {
    this.path = path;
  }

  static async start(path?: string, pods: FakePod[] = []): Promise<FakePodResources> {
    const f = new FakePodResources(path);
    f.pods = pods;
    await f.listen();
    return f;
  }

  /** Bind (again, after stop()) on the same socket path: a new socket file. */
  async listen(): Promise<void> {
    rmSync(this.path, { force: true });
    const def = loadPodResourcesProtos();
    const svc = def[SERVICE];
    if (svc === undefined || 'format' in svc) throw new Error(`no service ${SERVICE}`);
    // The same methods, with a serializer that sends a Buffer as it is (garbage and hand-encoded answers).
    const passThrough: grpc.ServiceDefinition = Object.fromEntries(
      Object.entries(svc).map(([name, m]) => [name, { ...m, responseSerialize: (v: object) => (Buffer.isBuffer(v) ? v : m.responseSerialize(v)) }]),
    );
    const server = new grpc.Server();
    server.addService(passThrough, {
      List: this.#unary('List', () => ({ pod_resources: this.pods.map(podToProto) })),
      Get: this.#unary('Get', (req) => {
        const p = this.pods.find((x) => x.name === field(req, 'pod_name') && x.namespace === field(req, 'pod_namespace'));
        if (p === undefined) {
          throw Object.assign(new Error('pod not found'), {
            code: grpc.status.NOT_FOUND,
            details: `pod ${field(req, 'pod_namespace')}/${field(req, 'pod_name')} not found`,
          });
        }
        return { pod_resources: podToProto(p) };
      }),
      GetAllocatableResources: this.#unary('GetAllocatableResources', () => ({
        devices: this.allocatable.map(devicesToProto),
        cpu_ids: [0, 1, 2, 3],
        memory: [],
      })),
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix://${this.path}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    });
  }

  count(method: string): number {
    return this.calls.filter((c) => c === method).length;
  }

  async stop(): Promise<void> {
    for (const t of this.#delays) clearTimeout(t);
    this.#delays.clear();
    this.#server?.forceShutdown();
    this.#server = undefined;
    rmSync(this.path, { force: true });
  }

  #unary(method: string, answer: (req: unknown) => object): grpc.UntypedHandleCall {
    const h: grpc.handleUnaryCall<unknown, unknown> = (call, cb) => {
      this.calls.push(method);
      const mode = this.mode;
      const reply = (): void => {
        try {
          cb(null, answer(call.request));
        } catch (err) {
          cb(err instanceof Error ? err : new Error(String(err)));
        }
      };
      switch (mode.kind) {
        case 'normal':
          reply();
          return;
        case 'delay': {
          const timer = setTimeout(() => {
            this.#delays.delete(timer);
            reply();
          }, mode.ms);
          this.#delays.add(timer);
          return;
        }
        case 'error':
          cb({ code: mode.code, details: mode.details ?? (mode.code === grpc.status.RESOURCE_EXHAUSTED ? 'rejected by rate limit' : 'fake error') });
          return;
        case 'garbage':
          cb(null, GARBAGE);
          return;
        case 'raw':
          cb(null, mode.bytes);
          return;
        case 'hang':
          return;
      }
    };
    return h;
  }
}
