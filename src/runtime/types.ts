/** What a runtime client is: a narrow interface every runtime (Docker, containerd, CRI-O) implements. */
import type { RuntimeContainer, RuntimeName } from '../model/runtime.js';

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
   * list is one call ignore it. `onProgress` is called after each successful answer that advances the listing (the
   * list request, each inspect): the factory bounds a listing by how long it goes without progress, not as a whole.
   */
  list(signal: AbortSignal, known?: (id: string) => RuntimeContainer | undefined, onProgress?: () => void): Promise<RuntimeContainer[]>;
  /** One container; `undefined` if the runtime does not know it (404 / NotFound). */
  inspect(id: string, signal: AbortSignal): Promise<RuntimeContainer | undefined>;
  /**
   * Streams container events until `signal` aborts or the stream ends; resolves when it ends, rejects on error.
   * Optional: a runtime without events is resynced by listing.
   */
  events?(onEvent: (e: RuntimeEvent) => void, signal: AbortSignal): Promise<void>;
  /** Bytes and inodes of a snapshot (containerd's Snapshots/Usage), where the runtime can tell without a walk. */
  snapshotUsage?(namespace: string, snapshotter: string, key: string, signal: AbortSignal): Promise<{ size: number; inodes: number }>;
  /**
   * True when the endpoint is a unix socket path that does not exist (no runtime on this node, so startup need not
   * wait for it); false for TCP endpoints and sockets that exist. Never throws. Optional: absent means "unknown".
   */
  socketMissing?(): boolean;
  close(): Promise<void>;
}
