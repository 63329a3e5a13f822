/**
 * GPU attribution: which container uses which accelerator, and how much of it. Sources, in order:
 * 1. the kubelet's PodResources API: device ids (GPU and MIG UUIDs, `uuid::N` time-slicing replicas, GKE's `nvidiaN`)
 *    allocated to (namespace, pod, container);
 * 2. NVML's process lists: host pid → /proc/<pid>/cgroup → the container whose cgroup (or container id) that is;
 * 3. cgroup v1 devices.list (major 195, minor < 128), as cAdvisor did, for a container neither of the above placed.
 * Only runtime containers get series: never the root, a pod-level, QoS or system cgroup, nor a sandbox.
 *
 * Values of a container on a device: memory total is the device's; memory used and duty cycle are the container's own
 * (the sum over its processes of their memory and SM share) where NVML lists processes; where it cannot split a
 * device (MIG parents, GPUs without per-process utilization) a container that has the device alone gets the device's
 * value, and containers sharing it get nothing (absent, never a guess).
 */
import type { AcceleratorDevice, AcceleratorSample, AcceleratorStatus, AttributionSource, ContainerAccelerator } from '../model/accelerator.js';
import type { RuntimeContainer } from '../model/runtime.js';
import type { ContainerSnapshot } from '../model/snapshot.js';
import type { DeviceAssignment } from '../gpu/pod-resources/client.js';
import { isContainerId } from '../guards.js';

/** The accelerator collector as a gather sees it: the last NVML poll and the last PodResources answer. */
export interface Accelerators {
  sample(): AcceleratorSample | undefined;
  assignments(): readonly DeviceAssignment[] | undefined;
  status(): Omit<AcceleratorStatus, 'attributions'>;
}

/** What attribution reads from the host, each answer undefined when there is none. */
export interface AttributionReads {
  /** The cgroup paths /proc/<pid>/cgroup lists for a host pid; undefined when the process is gone. */
  pidCgroups(pid: number): readonly string[] | undefined;
  /** GPU minors (major 195, minor < 128) a cgroup's v1 devices.list allows; undefined without devices.list (v2). */
  gpuMinors(cgroupId: string): readonly number[] | undefined;
}

export interface Attribution {
  /** By index into the containers given. */
  perContainer: Map<number, ContainerAccelerator[]>;
  attributions: Record<AttributionSource, number>;
  /** PodResources device ids of nvidia.com resources that match no device NVML reported. */
  unknownDeviceIds: string[];
}

const NVIDIA_MAJOR = 195;
/** Minors from 128 up are nvidiactl (255), nvidia-modeset (254) and friends, not GPUs. */
const MAX_GPU_MINOR = 127;

/** The GPU minors a devices.list allows by name (`a *:*` and `c 195:*` name none, as in cAdvisor). */
export function gpuMinorsOf(rules: readonly { type: string; major?: number; minor?: number }[]): number[] {
  const minors: number[] = [];
  for (const r of rules) {
    if (r.type === 'c' && r.major === NVIDIA_MAJOR && r.minor !== undefined && r.minor <= MAX_GPU_MINOR && !minors.includes(r.minor)) minors.push(r.minor);
  }
  return minors;
}

/**
 * The device a PodResources id names: a UUID (`GPU-…`, `MIG-…`) with any `::replica` suffix dropped, the old MIG form
 * `MIG-GPU-<uuid>/<gi>/<ci>`, or GKE's `nvidia<minor>`, `nvidia<minor>/gi<gi>`, `nvidia<minor>/vgpu<n>`.
 */
export function resolveDeviceId(id: string, devices: readonly AcceleratorDevice[]): AcceleratorDevice | undefined {
  const base = id.split('::')[0] ?? id;
  const exact = devices.find((d) => d.uuid === base);
  if (exact !== undefined) return exact;
  const oldMig = /^MIG-(GPU-[0-9a-fA-F-]+)\/(\d+)\/(\d+)$/.exec(base);
  if (oldMig !== null) {
    const [, parent, gi, ci] = oldMig;
    return devices.find(
      (d) => d.mig !== undefined && d.mig.parentUuid === parent && d.mig.gpuInstanceId === Number(gi) && d.mig.computeInstanceId === Number(ci),
    );
  }
  const gke = /^nvidia(\d+)(?:\/(gi|vgpu)(\d+))?$/.exec(base);
  if (gke === null) return undefined;
  const [, minor, kind, n] = gke;
  const gpu = devices.find((d) => d.mig === undefined && d.minor === Number(minor));
  if (gpu === undefined || kind !== 'gi') return gpu;
  return devices.find((d) => d.mig?.parentUuid === gpu.uuid && d.mig.gpuInstanceId === Number(n));
}

/** The runtime containers among the cgroups of a gather (no root, pod, QoS or system cgroup, no sandbox). */
function eligible(owners: readonly (RuntimeContainer | undefined)[]): Set<number> {
  const out = new Set<number>();
  owners.forEach((o, i) => {
    if (o?.kind === 'container') out.add(i);
  });
  return out;
}

/** Finds the container of a pid's cgroup paths: the path itself, else the container id in it, else a path suffix. */
function pidMatcher(containers: readonly ContainerSnapshot[], owners: readonly (RuntimeContainer | undefined)[], ok: ReadonlySet<number>) {
  const byPath = new Map<string, number>();
  const byId = new Map<string, number>();
  for (const i of ok) {
    const c = containers[i];
    const o = owners[i];
    if (c !== undefined) byPath.set(c.id, i);
    if (o !== undefined && isContainerId(o.id)) byId.set(o.id, i);
  }
  return (paths: readonly string[]): number | undefined => {
    for (const p of paths) {
      const i = byPath.get(p);
      if (i !== undefined) return i;
    }
    for (const p of paths) {
      const ids = p.match(/[0-9a-f]{64}/g);
      const i = ids === null ? undefined : byId.get(ids[ids.length - 1] ?? '');
      if (i !== undefined) return i;
    }
    // Outside our cgroup namespace the kernel prints `/../..` before the part below our root: match that part's end.
    for (const p of paths) {
      const tail = p.replace(/^(\/\.\.)+/, '');
      if (tail === p || tail.length <= 1) continue;
      for (const [path, i] of byPath) if (path.endsWith(tail)) return i;
    }
    return undefined;
  };
}

export function attributeAccelerators(
  sample: AcceleratorSample,
  assignments: readonly DeviceAssignment[] | undefined,
  containers: readonly ContainerSnapshot[],
  owners: readonly (RuntimeContainer | undefined)[],
  reads: AttributionReads,
): Attribution {
  const ok = eligible(owners);
  const devices = sample.devices;
  /** container index → device uuid → how it was found (the first source wins). */
  const pairs = new Map<number, Map<string, AttributionSource>>();
  const pair = (i: number, uuid: string, source: AttributionSource): void => {
    let m = pairs.get(i);
    if (m === undefined) pairs.set(i, (m = new Map<string, AttributionSource>()));
    if (!m.has(uuid)) m.set(uuid, source);
  };

  // 1. PodResources.
  const unknownDeviceIds: string[] = [];
  if (assignments !== undefined) {
    const byKey = new Map<string, number>();
    for (const i of ok) {
      const l = containers[i]?.labels;
      if (l !== undefined && l.namespace !== '' && l.pod !== '' && l.container !== '') byKey.set(`${l.namespace}/${l.pod}/${l.container}`, i);
    }
    for (const a of assignments) {
      const gpuResource = a.resourceName.startsWith('nvidia.com/');
      const i = byKey.get(`${a.namespace}/${a.pod}/${a.container}`);
      for (const id of a.deviceIds) {
        const device = resolveDeviceId(id, devices);
        if (device === undefined) {
          if (gpuResource && !unknownDeviceIds.includes(id)) unknownDeviceIds.push(id);
          continue;
        }
        if (i !== undefined) pair(i, device.uuid, 'pod_resources');
      }
    }
  }

  // 2. NVML processes → cgroups.
  const match = pidMatcher(containers, owners, ok);
  const pidOwner = new Map<number, number | undefined>();
  const ownerOf = (pid: number): number | undefined => {
    if (!pidOwner.has(pid)) {
      const paths = reads.pidCgroups(pid);
      pidOwner.set(pid, paths === undefined ? undefined : match(paths));
    }
    return pidOwner.get(pid);
  };
  for (const d of devices) {
    for (const p of d.processes ?? []) {
      const i = ownerOf(p.pid);
      if (i !== undefined) pair(i, d.uuid, 'process');
    }
    for (const u of d.processUtilization ?? []) {
      const i = ownerOf(u.pid);
      if (i !== undefined) pair(i, d.uuid, 'process');
    }
  }

  // 3. devices.list, for the containers nothing above placed.
  for (const i of ok) {
    if (pairs.has(i)) continue;
    const c = containers[i];
    const minors = c === undefined ? undefined : reads.gpuMinors(c.id);
    for (const minor of minors ?? []) {
      const d = devices.find((x) => x.mig === undefined && x.minor === minor);
      if (d !== undefined) pair(i, d.uuid, 'devices_list');
    }
  }

  const sharing = new Map<string, number>();
  for (const m of pairs.values()) for (const uuid of m.keys()) sharing.set(uuid, (sharing.get(uuid) ?? 0) + 1);
  const attributions: Record<AttributionSource, number> = { pod_resources: 0, process: 0, devices_list: 0 };
  const perContainer = new Map<number, ContainerAccelerator[]>();
  for (const [i, m] of [...pairs].sort((a, b) => a[0] - b[0])) {
    const list: ContainerAccelerator[] = [];
    for (const [uuid, source] of m) {
      const d = devices.find((x) => x.uuid === uuid);
      if (d === undefined) continue;
      attributions[source]++;
      list.push(containerValues(d, source, sharing.get(uuid) === 1, (pid) => ownerOf(pid) === i));
    }
    list.sort((a, b) => (a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0));
    perContainer.set(i, list);
  }
  return { perContainer, attributions, unknownDeviceIds };
}

/** One container's values on one device. */
export function containerValues(d: AcceleratorDevice, source: AttributionSource, exclusive: boolean, mine: (pid: number) => boolean): ContainerAccelerator {
  const out: ContainerAccelerator = { uuid: d.uuid, model: d.model, source };
  if (d.memoryTotalBytes !== undefined) out.memoryTotalBytes = d.memoryTotalBytes;
  const used = d.processes === undefined ? (exclusive ? d.memoryUsedBytes : undefined) : ownMemory(d.processes, mine);
  if (used !== undefined) out.memoryUsedBytes = used;
  const duty =
    d.processUtilization === undefined
      ? exclusive
        ? d.utilizationPercent
        : undefined
      : Math.min(
          100,
          d.processUtilization.filter((u) => mine(u.pid)).reduce((sum, u) => sum + u.smPercent, 0),
        );
  if (duty !== undefined) out.dutyCycle = duty;
  return out;
}

/** The memory of the container's processes: 0 with none; absent when every one of them is "not available". */
function ownMemory(processes: readonly { pid: number; memoryBytes?: number }[], mine: (pid: number) => boolean): number | undefined {
  const own = processes.filter((p) => mine(p.pid));
  if (own.length === 0) return 0;
  const known = own.filter((p) => p.memoryBytes !== undefined);
  if (known.length === 0) return undefined;
  return known.reduce((sum, p) => sum + (p.memoryBytes ?? 0), 0);
}
