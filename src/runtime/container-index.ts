/**
 * A runtime factory's container cache: containers by id, plus two indexes derived from them that are always changed
 * together with the cache, so a lookup by any of the three keys agrees with the others:
 * - pod UID → pod name and namespace, from the `io.kubernetes.pod.*` labels of every cached container of that pod;
 * - cgroup path → container id, from the `cgroupsPath` a runtime reported (containerd's spec `linux.cgroupsPath`).
 */
import type { RuntimeContainer } from '../model/runtime.js';
import { cgroupFromCgroupsPath } from './cgroup-ids.js';

const POD_UID = 'io.kubernetes.pod.uid';
const POD_NAME = 'io.kubernetes.pod.name';
const POD_NAMESPACE = 'io.kubernetes.pod.namespace';

interface PodEntry {
  pod: string;
  namespace: string;
  /** The cached containers carrying this pod's labels; the entry goes when the last one does. */
  ids: Set<string>;
}

export class ContainerIndex {
  readonly #byId = new Map<string, RuntimeContainer>();
  readonly #pods = new Map<string, PodEntry>();
  /** The cgroup path a runtime said it used → container id. */
  readonly #byCgroup = new Map<string, string>();

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): RuntimeContainer | undefined {
    return this.#byId.get(id);
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  /** The cached ids, in insertion order. */
  ids(): IterableIterator<string> {
    return this.#byId.keys();
  }

  /** The container the runtime placed in exactly this cgroup path, if it said so. */
  byCgroupPath(path: string): RuntimeContainer | undefined {
    const id = this.#byCgroup.get(path);
    return id === undefined ? undefined : this.#byId.get(id);
  }

  /** Pod UID (with dashes) → name and namespace, from cached containers' `io.kubernetes.pod.*` labels. */
  pod(uid: string): { pod: string; namespace: string } | undefined {
    const e = this.#pods.get(uid);
    return e === undefined ? undefined : { pod: e.pod, namespace: e.namespace };
  }

  /** Adds `c`, or replaces the cached container with its id (and its index entries). */
  set(c: RuntimeContainer): void {
    const old = this.#byId.get(c.id);
    if (old !== undefined) this.#unindex(old);
    this.#byId.set(c.id, c);
    this.#index(c);
  }

  delete(id: string): void {
    const old = this.#byId.get(id);
    if (old === undefined) return;
    this.#unindex(old);
    this.#byId.delete(id);
  }

  /** Drops everything and caches exactly `list`. */
  replaceAll(list: readonly RuntimeContainer[]): void {
    this.#byId.clear();
    this.#pods.clear();
    this.#byCgroup.clear();
    for (const c of list) this.set(c);
  }

  #index(c: RuntimeContainer): void {
    const cg = c.cgroupsPath === undefined ? undefined : cgroupFromCgroupsPath(c.cgroupsPath);
    if (cg !== undefined) this.#byCgroup.set(cg, c.id);
    const uid = c.labels[POD_UID];
    const pod = c.labels[POD_NAME];
    const namespace = c.labels[POD_NAMESPACE];
    if (!uid || !pod || !namespace) return;
    const e = this.#pods.get(uid);
    if (e === undefined) this.#pods.set(uid, { pod, namespace, ids: new Set([c.id]) });
    else {
      e.pod = pod;
      e.namespace = namespace;
      e.ids.add(c.id);
    }
  }

  #unindex(c: RuntimeContainer): void {
    const cg = c.cgroupsPath === undefined ? undefined : cgroupFromCgroupsPath(c.cgroupsPath);
    // A path another container claimed since is that container's now.
    if (cg !== undefined && this.#byCgroup.get(cg) === c.id) this.#byCgroup.delete(cg);
    const uid = c.labels[POD_UID];
    if (!uid) return;
    const e = this.#pods.get(uid);
    if (e === undefined) return;
    e.ids.delete(c.id);
    if (e.ids.size === 0) this.#pods.delete(uid);
  }
}
