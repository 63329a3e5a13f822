/**
 * podvisor's own view of a runtime's container. Runtime client types (dockerode, protobuf, CRI-O JSON) never leave
 * their client file: each client validates what it receives and returns these.
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

/** A container event, reduced to what the cache needs. */
export interface RuntimeEvent {
  id: string;
  action: 'create' | 'start' | 'die' | 'destroy' | 'rename' | 'update';
}

export interface RuntimeVersion {
  /** The raw version string as the runtime reported it (`dev`, `20.10.24+dfsg1`, …). */
  version: string;
  /** API version if the runtime has one (Docker `ApiVersion`), else ''. */
  apiVersion: string;
}

/**
 * A narrow client for one runtime. Every call takes an AbortSignal (timeouts are the caller's: AbortSignal.timeout
 * combined with AbortSignal.any); a failure rejects with an Error whose message names the cause in one sentence.
 */
export interface RuntimeClient {
  readonly runtime: RuntimeName;
  /** Registration probe: reachable and answering. Must not reject because of an odd version string. */
  version(signal: AbortSignal): Promise<RuntimeVersion>;
  /**
   * Every container the runtime knows (all states). With `known`, a listed container it returns is taken from it
   * instead of being inspected again: resyncs while the event stream is up already know every change. Clients whose
   * list is one call ignore it.
   */
  list(signal: AbortSignal, known?: (id: string) => RuntimeContainer | undefined): Promise<RuntimeContainer[]>;
  /** One container; `undefined` if the runtime does not know it (404 / NotFound). */
  inspect(id: string, signal: AbortSignal): Promise<RuntimeContainer | undefined>;
  /**
   * Streams container events until `signal` aborts or the stream ends; resolves when it ends, rejects on error.
   * Optional: a runtime without events is resynced by listing.
   */
  events?(onEvent: (e: RuntimeEvent) => void, signal: AbortSignal): Promise<void>;
  /** Bytes and inodes of a snapshot (containerd's Snapshots/Usage), where the runtime can tell without a walk. */
  snapshotUsage?(namespace: string, snapshotter: string, key: string, signal: AbortSignal): Promise<{ size: number; inodes: number }>;
  close(): Promise<void>;
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
