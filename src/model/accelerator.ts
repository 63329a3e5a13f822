/**
 * GPUs (accelerators) as one NVML poll saw them, and what a gather attributes to a container. Plain data: NVML's
 * own types never leave src/gpu/. A value NVML could not give (NOT_SUPPORTED, the not-available marker) is absent.
 */

/** A process with a context on a device (NVML's compute and graphics lists, summed per pid). */
export interface AcceleratorProcess {
  /** Host pid (NVML ignores pid namespaces). */
  pid: number;
  /** Device memory the process uses, in bytes; absent when NVML says not available. */
  memoryBytes?: number;
}

/** A process's share of the device over NVML's last sample period. */
export interface AcceleratorProcessUtilization {
  pid: number;
  /** SM (compute) utilization, percent of the device. */
  smPercent: number;
}

/** A MIG device's place on its parent GPU. */
export interface MigPlacement {
  parentUuid: string;
  gpuInstanceId: number;
  computeInstanceId: number;
}

/** One accelerator: a whole GPU, or a MIG device (its own accelerator, with its parent's index). */
export interface AcceleratorDevice {
  /** NVML's UUID: `GPU-…`, or `MIG-…` for a MIG device. cAdvisor's `acc_id`. */
  uuid: string;
  /** NVML index of the GPU (of the parent GPU for a MIG device). */
  index: number;
  /** Minor number of /dev/nvidia<minor> (whole GPUs), for cgroup v1 devices.list. */
  minor?: number;
  /** nvmlDeviceGetName: cAdvisor's `model`. */
  model: string;
  mig?: MigPlacement;
  memoryTotalBytes?: number;
  memoryUsedBytes?: number;
  /** Percent of time over NVML's sample period the device was busy (absent on MIG devices and MIG-enabled GPUs). */
  utilizationPercent?: number;
  powerWatts?: number;
  temperatureCelsius?: number;
  /** Compute and graphics processes; absent when NVML could not list them (then nothing is attributed by pid). */
  processes?: readonly AcceleratorProcess[];
  /** Per-process utilization of the last sample period; absent when not supported (MIG, GPUs before Maxwell). */
  processUtilization?: readonly AcceleratorProcessUtilization[];
}

/** One NVML poll. */
export interface AcceleratorSample {
  /** When the poll finished (ms since the epoch). */
  takenAtMs: number;
  devices: readonly AcceleratorDevice[];
  driverVersion?: string;
}

/**
 * How a device was tied to a container, in the order podvisor tries them: the kubelet's PodResources API, NVML's
 * process list (host pid → /proc/<pid>/cgroup), the cgroup v1 devices.list (major 195), as cAdvisor did.
 */
export const ATTRIBUTION_SOURCES = ['pod_resources', 'process', 'devices_list'] as const;
export type AttributionSource = (typeof ATTRIBUTION_SOURCES)[number];

/** One accelerator of one container: cAdvisor's container_accelerator_* values. */
export interface ContainerAccelerator {
  uuid: string;
  model: string;
  source: AttributionSource;
  memoryTotalBytes?: number;
  /** The container's own use: the sum over its processes (the whole device's for an exclusive device NVML cannot split). */
  memoryUsedBytes?: number;
  /** The container's share of the device's busy time, percent. */
  dutyCycle?: number;
}

/** The accelerator collector's state, for podvisor_accelerator_* self-metrics. */
export interface AcceleratorStatus {
  /** NVML loaded, initialised and answering. */
  nvmlUp: boolean;
  /** The kubelet's PodResources API answered its last poll; absent when it is not configured or its socket is missing. */
  podResourcesUp?: boolean;
  /** Container–device pairs attributed in this gather, by source. */
  attributions: Readonly<Record<AttributionSource, number>>;
  /** NVML calls that failed (not NOT_SUPPORTED) or timed out since start. */
  nvmlErrors: number;
  /** PodResources polls that failed since start. */
  podResourcesErrors?: number;
}
