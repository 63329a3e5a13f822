/**
 * From a cgroup path to the kubelet's labels, using the runtime factories' caches (never a daemon call on the
 * gather path: a miss schedules a background lookup and says so, `pending`, and the gather holds the cgroup back until
 * the lookup answers; a cgroup no runtime is looking up is reported raw, with empty labels).
 */
import { EMPTY_LABELS, type ContainerLabels, type RuntimeContainer } from '../model/runtime.js';
import { parseCgroupPath } from './cgroup-ids.js';
import type { RuntimeFactory } from './factory.js';

/** What resolution needs of a factory: its cache, never a daemon call. */
export type LabelSource = Pick<RuntimeFactory, 'runtime' | 'get' | 'lookup' | 'pending' | 'pod' | 'byCgroupPath'>;

export interface Resolved {
  labels: ContainerLabels;
  /** The runtime's container, when the cgroup is one. */
  container?: RuntimeContainer;
  /** A runtime is looking the cgroup's container id up: its labels are not known yet (the gather holds it back). */
  pending?: boolean;
}

const RAW: Resolved = { labels: EMPTY_LABELS };

export function kubeletLabels(c: RuntimeContainer): ContainerLabels {
  return {
    name: c.name,
    image: c.image,
    container: c.labels['io.kubernetes.container.name'] ?? '',
    pod: c.labels['io.kubernetes.pod.name'] ?? '',
    namespace: c.labels['io.kubernetes.pod.namespace'] ?? '',
  };
}

/**
 * Factories are asked in order (raw is what is left). A cgroup a runtime named as its container's cgroup (containerd's
 * `linux.cgroupsPath`) is that container. Otherwise a cgroup whose name says which runtime made it
 * (`cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope`) is only looked up there; a bare `<id>`
 * (cgroupfs) in each. Pod-level cgroups (`…/pod<uid>`) get `pod` and `namespace` from their containers. containerd's
 * copy of a Docker container (namespace `moby`) defers to Docker (deferToDocker).
 */
export function resolveCgroup(path: string, factories: readonly LabelSource[]): Resolved {
  const parsed = parseCgroupPath(path);
  if (parsed.conmon === true) return RAW;
  // In factory order: the container the runtime said it put in this cgroup (containerd's spec cgroupsPath), or the
  // one whose id the cgroup is named after (only in the runtime the name points to, when it points to one).
  const id = parsed.id;
  const byId = (f: LabelSource): boolean => id !== undefined && (parsed.hint === undefined || f.runtime === parsed.hint);
  for (const f of factories) {
    const c = f.byCgroupPath(path) ?? (byId(f) && id !== undefined ? f.get(id) : undefined);
    if (c === undefined) continue;
    if (isDockersOwn(c)) return deferToDocker(c, factories);
    return { labels: kubeletLabels(c), container: c };
  }
  if (id !== undefined) {
    let pending = false;
    for (const f of factories) {
      if (!byId(f)) continue;
      f.lookup(id);
      pending ||= f.pending(id);
    }
    return pending ? { labels: EMPTY_LABELS, pending } : RAW;
  }
  if (parsed.podUid !== undefined) {
    for (const f of factories) {
      const p = f.pod(parsed.podUid);
      if (p !== undefined) return { labels: { name: '', image: '', container: '', pod: p.pod, namespace: p.namespace } };
    }
  }
  return RAW;
}

/**
 * Docker runs each of its containers through containerd, in containerd's `moby` namespace, under the same id and
 * cgroup: that copy has neither Docker's name nor the kubelet's labels (cri-dockerd puts them on the Docker container).
 */
function isDockersOwn(c: RuntimeContainer): boolean {
  return c.runtime === 'containerd' && c.namespace === 'moby';
}

/**
 * A cgroup claimed by containerd's copy of a Docker container is Docker's: its labels come from Docker, and while
 * Docker is still looking the container up the cgroup is pending (held back). Only when Docker is off, down or does
 * not know the id does containerd's copy label it.
 */
function deferToDocker(copy: RuntimeContainer, factories: readonly LabelSource[]): Resolved {
  const docker = factories.find((f) => f.runtime === 'docker');
  if (docker !== undefined) {
    const own = docker.get(copy.id);
    if (own !== undefined) return { labels: kubeletLabels(own), container: own };
    docker.lookup(copy.id);
    if (docker.pending(copy.id)) return { labels: EMPTY_LABELS, pending: true };
  }
  return { labels: kubeletLabels(copy), container: copy };
}

/** `[^a-zA-Z0-9_]` → `_`, as cAdvisor sanitizes label keys. */
export function sanitizeLabelName(key: string): string {
  return key.replace(/[^a-zA-Z0-9_]/g, '_');
}

export interface ExtraLabelOptions {
  /** --store-container-labels: every runtime label as container_label_<key>. */
  storeContainerLabels: boolean;
  /** --whitelisted-container-labels: these keys only (when storeContainerLabels is off). */
  whitelistedContainerLabels: readonly string[];
  /** --env-metadata-whitelist: env keys with these prefixes as container_env_<key>. */
  envMetadataWhitelist: readonly string[];
}

export function extraLabelsEnabled(o: ExtraLabelOptions): boolean {
  return o.storeContainerLabels || o.whitelistedContainerLabels.length > 0 || o.envMetadataWhitelist.length > 0;
}

/**
 * The opt-in `container_label_*` / `container_env_*` labels of one gather: one name list for every family (empty
 * values where a container lacks a key), and each container's values lined up with it. Keys that collide after
 * sanitizing keep the first in sorted order, so the choice is stable (cAdvisor's depends on map order).
 */
export function extraLabels(containers: readonly (RuntimeContainer | undefined)[], o: ExtraLabelOptions): { names: string[]; values: string[][] } {
  const wanted = new Map<string, { source: 'label' | 'env'; key: string }>();
  const addKey = (source: 'label' | 'env', key: string): void => {
    const name = `container_${source}_${sanitizeLabelName(key)}`;
    const prev = wanted.get(name);
    if (prev === undefined || (prev.source === source && key < prev.key)) wanted.set(name, { source, key });
  };
  for (const k of o.whitelistedContainerLabels) if (!o.storeContainerLabels) addKey('label', k);
  for (const c of containers) {
    if (c === undefined) continue;
    if (o.storeContainerLabels) for (const k of Object.keys(c.labels)) addKey('label', k);
    for (const k of Object.keys(c.env ?? {})) if (o.envMetadataWhitelist.some((p) => k.startsWith(p.toLowerCase()) || k.startsWith(p))) addKey('env', k);
  }
  const names = [...wanted.keys()].sort();
  const values = containers.map((c) =>
    names.map((n) => {
      const w = wanted.get(n);
      if (c === undefined || w === undefined) return '';
      return (w.source === 'label' ? c.labels[w.key] : c.env?.[w.key]) ?? '';
    }),
  );
  return { names, values };
}
