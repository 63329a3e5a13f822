/**
 * podvisor's own view of a runtime's container and of a runtime's registration. Runtime client types (dockerode,
 * protobuf, CRI-O JSON) never leave their client file: each client validates what it receives and returns these.
 */
export type RuntimeName = 'docker' | 'containerd' | 'crio';

export interface RuntimeContainer {
  runtime: RuntimeName;
  /** The container id (64 hex for Docker, containerd CRI and CRI-O). */
  id: string;
  /** cAdvisor's `name` label (Aliases[0]): Docker's name without `/`, containerd's id, CRI-O's `k8s_…` name. */
  name: string;
  /** The image as the user named it (`nginx:1.25`, `docker.io/library/nginx:1.25`). */
  image: string;
  /** Runtime labels (Kubernetes' `io.kubernetes.*` among them). */
  labels: Readonly<Record<string, string>>;
  /** Environment variables from the container's config (for --env-metadata-whitelist); absent if unknown. */
  env?: Readonly<Record<string, string>>;
  /** The container's init pid on the host, if running. */
  pid?: number;
  /** Unix seconds. */
  createdAt?: number;
  /** Unix seconds, if it ever started. */
  startedAt?: number;
  /** `sandbox` for a pod sandbox / pause / infra container. */
  kind: 'container' | 'sandbox';
  /**
   * Whether this container owns its network namespace, so its network series are reported (once per pod):
   * a sandbox, or a plain Docker container not in `container:` / `host` network mode.
   */
  networkOwner: boolean;
  /** The cgroup path the runtime put the container in, when it says (containerd's spec `linux.cgroupsPath`). */
  cgroupsPath?: string;
  /** For disk usage (issue 4): writable layer dir, log dir, snapshotter and key, containerd namespace. */
  upperDir?: string;
  logDir?: string;
  snapshotter?: string;
  snapshotKey?: string;
  namespace?: string;
}

/** Registration state, for podvisor_runtime_up / podvisor_runtime_info and /readyz. */
export interface RuntimeStatus {
  runtime: RuntimeName;
  up: boolean;
  /** Raw version string ('' until registered). */
  version: string;
  apiVersion: string;
  /** Parsed `major.minor[.patch]`, or 'unknown'. */
  parsedVersion: string;
  lastError?: string;
  lastErrorAt?: string;
  containers: number;
}

/** The kubelet's label set. Empty strings where unknown; runtime factories fill them in. */
export interface ContainerLabels {
  name: string;
  image: string;
  container: string;
  pod: string;
  namespace: string;
}

export const EMPTY_LABELS: Readonly<ContainerLabels> = Object.freeze({ name: '', image: '', container: '', pod: '', namespace: '' });
