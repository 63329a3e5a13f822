/**
 * Loads podvisor's own containerd `.proto` files (`proto/`, see proto/README.md) with @grpc/proto-loader and looks up
 * the method definitions the client calls. Field names keep their proto case (`snapshot_key`), int64 becomes a
 * number, enums become their names (`RUNNING`), bytes a Buffer, and absent fields their defaults.
 */
import { fileURLToPath } from 'node:url';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import type { MethodDefinition } from '@grpc/grpc-js';

/** `proto/` at the repository root: three levels up from both src/runtime/containerd/ and dist/runtime/containerd/. */
export const defaultProtoDir = fileURLToPath(new URL('../../../proto/', import.meta.url));

export const protoFiles = [
  'containerd/services/version/v1/version.proto',
  'containerd/services/containers/v1/containers.proto',
  'containerd/services/tasks/v1/tasks.proto',
  'containerd/services/snapshots/v1/snapshots.proto',
  'containerd/services/events/v1/events.proto',
  'containerd/events/container.proto',
  'containerd/events/task.proto',
] as const;

export const loaderOptions = {
  keepCase: true,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: false,
} as const;

export function loadContainerdProtos(protoDir: string = defaultProtoDir): PackageDefinition {
  return loadSync([...protoFiles], { ...loaderOptions, includeDirs: [protoDir] });
}

/** The services podvisor calls, by full name. */
export const services = {
  version: 'containerd.services.version.v1.Version',
  containers: 'containerd.services.containers.v1.Containers',
  tasks: 'containerd.services.tasks.v1.Tasks',
  snapshots: 'containerd.services.snapshots.v1.Snapshots',
  events: 'containerd.services.events.v1.Events',
} as const;

export type Method = MethodDefinition<object, object>;

/** One method of one service; throws if our proto files lack it (a packaging error, not a runtime condition). */
export function lookupMethod(def: PackageDefinition, service: string, name: string): Method {
  const svc = def[service];
  if (svc === undefined || 'format' in svc) throw new Error(`containerd protos: service ${service} is not defined`);
  const m = svc[name];
  if (m === undefined) throw new Error(`containerd protos: ${service}/${name} is not defined`);
  return m;
}
