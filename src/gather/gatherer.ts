/**
 * One gather: discover every cgroup (each one is a container, as in cAdvisor), read its stats and its processes'
 * /proc files, and produce an immutable Snapshot. Synchronous file reads into one reused buffer, in time slices when
 * it runs on the HTTP thread (the default) or whole on the gather worker (`--gather-in-worker`). No per-container
 * timers: everything happens in this one pass, as the named steps of #gather below. The first gather waits for the
 * runtimes' first lists, and a cgroup whose container is still being looked up is held back (label-hold.ts), so no
 * container of a runtime that answers is ever reported without its labels.
 */
import { existsSync } from 'node:fs';
import { cgroupExists, parentCgroup, sortCgroups, walkCgroups } from '../cgroup/discover.js';
import { parseDevicesList } from '../cgroup/parse.js';
import { parsePidCgroup } from '../proc/pid-cgroup.js';
import { readCgroupStats } from '../cgroup/read.js';
import type { BlkioGroup, CgroupLayout, CgroupReadContext } from '../cgroup/types.js';
import type { CollectorName } from '../model/cgroup.js';
import { probeBlkioGroups } from '../cgroup/v1.js';
import { GatherError } from '../errors.js';
import { FileReader } from '../host/file-reader.js';
import { hostPath } from '../host/paths.js';
import type { Logger } from '../log.js';
import { readMachineInfo } from '../machine/machine-info.js';
import type { MachineSnapshot } from '../model/machine.js';
import { METRIC_KINDS, type MetricKind } from '../model/kinds.js';
import { EMPTY_LABELS, type RuntimeContainer } from '../model/runtime.js';
import type { ContainerSnapshot, SchedStats, Snapshot } from '../model/snapshot.js';
import type { RuntimeFactory } from '../runtime/factory.js';
import { extraLabels, extraLabelsEnabled, resolveCgroup, type ExtraLabelOptions, type Resolved } from '../runtime/resolve.js';
import { attributeAccelerators, gpuMinorsOf, type Accelerators } from './accelerators.js';
import { CollectorErrors, type Pending } from './collector-errors.js';
import { readDeviceNames } from './devices.js';
import { attachDiskUsage, type DiskUsage } from './disk-usage.js';
import { MachineFacts } from './machine-facts.js';
import { LabelHold } from './label-hold.js';
import { readDiskstats } from './diskstats.js';
import { claimHostNetns, netnsOwner, readNetDev } from './network.js';
import { isPodCgroup } from './pod-cgroups.js';
import { SchedTracker, subtreeSums } from './sched.js';
import { readSockets } from './sockets.js';
import { readUlimits } from './ulimits.js';
import { processStats, readPids } from './processes.js';
import type { ReadAhead } from './read-ahead.js';
import { ReadPlan, type GatherReads } from './read-plan.js';
import { Slices, yieldToEventLoop } from './slices.js';
import { StartTimes } from './start-times.js';

export interface GathererOptions {
  rootfs: string;
  allowPrefixes: readonly string[];
  machineInfoIntervalMs: number;
  log: Logger;
  /** Clock (ms since the epoch); tests pin it. */
  now?: () => number;
  /** Where machine facts come from; tests pin it. Default: readMachineInfo(rootfs). */
  machineInfo?: () => Promise<MachineSnapshot>;
  /**
   * Give the event loop a turn after this many ms of synchronous reading (default: never). Set when gathering on the
   * HTTP thread (the default; not with `--gather-in-worker`), so a gather never holds /healthz up for longer than one
   * slice.
   */
  sliceMs?: number;
  /** Runtime factories, asked in order for each cgroup (raw is what is left). */
  runtimes?: readonly RuntimeFactory[];
  /** Opt-in container_label_* / container_env_* labels. */
  extraLabels?: ExtraLabelOptions;
  /**
   * The first gather waits for each runtime's first container list, or until it gave no answer for this long
   * (--runtime-startup-grace; a runtime with no socket is not waited for). Default 10 s.
   */
  startupGraceMs?: number;
  /** A cgroup whose container a runtime is looking up is left out of gathers for at most this long (--label-hold). Default 10 s. */
  labelHoldMs?: number;
  /** Disk usage: measured in the background by the scheduler; a gather only reads its last complete results. */
  disk?: DiskUsage;
  /** Reads every cgroup and /proc file of a gather; tests count its reads. Default: a new FileReader. */
  reader?: FileReader;
  /** The metric kinds on (--enable-metrics / --disable-metrics); absent: every kind. Files of the others are not read. */
  kinds?: readonly MetricKind[];
  /**
   * --runtime-containers-only: report `/`, the runtimes' containers, their pod-level cgroups and the cgroups under
   * allowPrefixes; nothing else.
   */
  runtimeContainersOnly?: boolean;
  /** Huge page sizes as cgroup files name them (`2MB`), for the hugetlb kind. */
  hugepageSizes?: readonly string[];
  /** OOM kills from /dev/kmsg by cgroup path, where the kernel keeps no count of its own (kernels before 4.13). */
  kmsgOomKills?: () => ReadonlyMap<string, number> | undefined;
  /**
   * A second thread (`--gather-threads=2`): while this one discovers the cgroups and reads the first ones, it reads the
   * files the last ones read in the previous gather. Absent, or failing: this thread reads everything.
   */
  readAhead?: ReadAhead;
  /** The `accelerator` kind: the last NVML poll and PodResources answer (both taken in the background). */
  accelerators?: Accelerators;
}

const DEFAULT_STARTUP_GRACE_MS = 10_000;
const DEFAULT_LABEL_HOLD_MS = 10_000;
/** How long a container's devices.list (GPU minors) is taken as read: its rules are set when it starts. */
const DEVICES_LIST_TTL_MS = 60_000;

/** The files a gather reads once for all cgroups, or decides once for them. */
interface CgroupFiles {
  meminfo: (pending: Pending) => string | undefined;
  vmstat: ((pending: Pending) => string | undefined) | undefined;
  blkioGroups: readonly BlkioGroup[] | undefined;
}

/** One cgroup as read: its snapshot, and the runtime container it is, if any. */
interface Read {
  container: ContainerSnapshot;
  owner: RuntimeContainer | undefined;
}

export class Gatherer {
  readonly layout: CgroupLayout;
  readonly #opts: GathererOptions;
  readonly #reader: FileReader;
  readonly #procRoot: string;
  readonly #errors: CollectorErrors;
  readonly #machine: MachineFacts;
  readonly #startTimes: StartTimes;
  readonly #reads: ReadPlan;
  readonly #hold: LabelHold;
  readonly #kinds: ReadonlySet<MetricKind>;
  readonly #sched = new SchedTracker();
  /** Each container's GPU minors from its devices.list, and when they were read. */
  readonly #devicesLists = new Map<string, { minors: readonly number[] | undefined; readAtMs: number }>();
  /** PodResources device ids NVML does not know, already logged (once each). */
  readonly #unknownDeviceIds = new Set<string>();
  /** Settles once every runtime finished its first list or was given up on (awaited by every gather; once). */
  #runtimesSettled: Promise<void> | undefined;
  /** Settles when the running gather ends; disk walks on this thread wait for it between their slices. */
  #running: Promise<void> | undefined;
  readonly #holdWalks = (): Promise<void> | undefined => this.#running;

  constructor(layout: CgroupLayout, opts: GathererOptions) {
    this.layout = layout;
    this.#opts = opts;
    this.#reader = opts.reader ?? new FileReader();
    this.#procRoot = hostPath(opts.rootfs, 'proc');
    this.#errors = new CollectorErrors(opts.log);
    const readFacts = opts.machineInfo ?? (() => readMachineInfo(opts.rootfs));
    this.#machine = new MachineFacts(
      readFacts,
      opts.machineInfoIntervalMs,
      () => this.#now(),
      (err) => this.#errors.count('machine', 'systeminformation', err),
    );
    this.#startTimes = new StartTimes(layout);
    this.#reads = new ReadPlan(this.#reader, opts.readAhead, this.#procRoot, opts.log);
    this.#hold = new LabelHold(opts.labelHoldMs ?? DEFAULT_LABEL_HOLD_MS, () => this.#now());
    this.#kinds = new Set(opts.kinds ?? METRIC_KINDS);
  }

  #on(kind: MetricKind): boolean {
    return this.#kinds.has(kind);
  }

  #now(): number {
    return (this.#opts.now ?? Date.now)();
  }

  async gather(): Promise<Snapshot> {
    let done = (): void => {};
    const running = new Promise<void>((resolve) => (done = resolve));
    this.#running = running;
    try {
      return await this.#gather();
    } finally {
      if (this.#running === running) this.#running = undefined;
      done();
    }
  }

  async #gather(): Promise<Snapshot> {
    // On the HTTP thread, give the event loop one turn first: requests that arrived together are parsed and join this
    // gather (single-flight) instead of each starting their own after a gather short enough to finish in one slice.
    if (this.#opts.sliceMs !== undefined) await yieldToEventLoop();
    await this.#waitForRuntimes();
    const timestampMs = this.#now();
    const machine = await this.#machine.current();
    const reads = this.#reads.begin();
    const diskIO = this.#on('diskIO');
    const deviceNames = diskIO ? readDeviceNames(this.#reader, this.#procRoot, this.#errors) : new Map<string, string>();
    const diskstats = diskIO && this.#opts.disk !== undefined ? readDiskstats(this.#reader, this.#procRoot, this.#errors) : undefined;
    // The host's namespace is reported on `/` only, so it is claimed before any other cgroup is looked at.
    const claimedNetns = claimHostNetns(this.#procRoot);
    const slices = new Slices(this.#opts.sliceMs);
    const paths = await this.#discover(slices);
    const cgroupFiles: CgroupFiles = {
      meminfo: this.#procFileOnce(reads, 'meminfo', 'memory'),
      vmstat: this.#on('oom_event') ? this.#procFileOnce(reads, 'vmstat', 'oom') : undefined,
      blkioGroups:
        this.layout.mode === 'v2' || !diskIO
          ? undefined
          : probeBlkioGroups({ layout: this.layout, read: (f) => reads.read(f), onError() {}, readMeminfo: () => undefined }),
    };

    const containers: ContainerSnapshot[] = [];
    const owners: (RuntimeContainer | undefined)[] = [];
    this.#hold.begin();
    for (const [id, resolved] of this.#reported(paths)) {
      await reads.enter(id);
      await slices.maybeYield();
      const read = this.#readCgroup(id, resolved, reads, claimedNetns, cgroupFiles);
      if (read === undefined) continue;
      containers.push(read.container);
      owners.push(read.owner);
    }
    reads.finish(paths);
    if (this.#on('sched')) this.#sumSched(containers);
    const ids = new Set(containers.map((c) => c.id));
    this.#startTimes.keepOnly(ids);
    this.#sched.keepOnly(ids);
    this.#hold.keepOnly(new Set(paths));
    const snapshot = this.#snapshot(timestampMs, machine, deviceNames, containers, owners);
    if (diskstats !== undefined) snapshot.diskstats = diskstats;
    return snapshot;
  }

  /**
   * The cgroups this gather reports, with their labels: every one not held back for its labels; with
   * --runtime-containers-only, just `/`, the runtimes' containers, their pod cgroups and the allowlisted prefixes.
   */
  #reported(paths: readonly string[]): [string, Resolved | undefined][] {
    const all: [string, Resolved | undefined][] = [];
    for (const id of paths) {
      const resolved = this.#resolve(id);
      if (resolved !== 'held') all.push([id, resolved]);
    }
    if (this.#opts.runtimeContainersOnly !== true) return all;
    const prefixes = this.#opts.allowPrefixes;
    const pods = new Set<string>();
    for (const [id, resolved] of all) {
      if (resolved?.container === undefined) continue;
      for (let dir = parentCgroup(id); dir !== '/'; dir = parentCgroup(dir)) {
        if (!isPodCgroup(dir)) continue;
        pods.add(dir);
        break;
      }
    }
    return all.filter(([id, resolved]) => id === '/' || resolved?.container !== undefined || pods.has(id) || prefixes.some((p) => id.startsWith(p)));
  }

  /** Each cgroup's schedstat sums over its own processes become sums over its subtree's, as cAdvisor's. */
  #sumSched(containers: ContainerSnapshot[]): void {
    const own = new Map<string, SchedStats>();
    for (const c of containers) if (c.sched !== undefined) own.set(c.id, c.sched);
    const total = subtreeSums(
      own,
      containers.map((c) => c.id),
    );
    for (const c of containers) {
      const t = total.get(c.id);
      if (t !== undefined) c.sched = t;
    }
  }

  /** Once, before the first gather reads anything: each runtime's first list, within the startup grace. */
  #waitForRuntimes(): Promise<void> {
    const runtimes = this.#opts.runtimes ?? [];
    const grace = this.#opts.startupGraceMs ?? DEFAULT_STARTUP_GRACE_MS;
    this.#runtimesSettled ??= Promise.all(runtimes.map((f) => f.settled(grace))).then(() => undefined);
    return this.#runtimesSettled;
  }

  /** The cgroup's labels from the runtimes' caches, or 'held' while a runtime looks its container up. */
  #resolve(id: string): Resolved | undefined | 'held' {
    const runtimes = this.#opts.runtimes ?? [];
    if (runtimes.length === 0) return undefined;
    const resolved = resolveCgroup(id, runtimes);
    if (resolved.pending === true && this.#hold.hold(id)) return 'held';
    if (resolved.pending !== true) this.#hold.release(id);
    return resolved;
  }

  /** Discovery: one readdir per step; an unreadable subtree is counted and skipped, not the whole gather. */
  async #discover(slices: Slices): Promise<string[]> {
    const walked: string[] = [];
    const onWalkError = (dir: string, err: unknown): void => this.#errors.count('discovery', dir, err);
    // With --runtime-containers-only the allowlist adds to the runtimes' containers: everything is walked, then filtered.
    const prefixes = this.#opts.runtimeContainersOnly === true ? [] : this.#opts.allowPrefixes;
    for (const path of walkCgroups(this.layout, prefixes, onWalkError)) {
      walked.push(path);
      await slices.maybeYield();
    }
    const paths = sortCgroups(walked);
    if (paths[0] !== '/') throw new GatherError('no cgroup hierarchy could be listed (see podvisor_collector_errors_total{collector="discovery"})');
    return paths;
  }

  /**
   * A /proc file read at most once per gather, when a cgroup first asks for it (meminfo: the root cgroup's swap on v2;
   * vmstat: the root's OOM kills), its error counted where it is asked for.
   */
  #procFileOnce(reads: GatherReads, name: string, collector: CollectorName): (pending: Pending) => string | undefined {
    let memo: { text: string | undefined } | undefined;
    const file = hostPath(this.#procRoot, name);
    return (pending) => {
      if (memo === undefined) {
        try {
          memo = { text: reads.read(file) };
        } catch (err) {
          memo = { text: undefined };
          pending.push([collector, `/proc/${name}`, err]);
        }
      }
      return memo.text;
    };
  }

  /** One cgroup: labels, stats, processes, network, start time. Undefined when it was removed while we read it. */
  #readCgroup(id: string, resolved: Resolved | undefined, reads: GatherReads, claimedNetns: Set<string>, files: CgroupFiles): Read | undefined {
    const pending: Pending = [];
    const read = (file: string): string | undefined => reads.read(file);
    const readProc = (file: string): string | undefined => this.#reader.read(file);
    const ctx: CgroupReadContext = {
      layout: this.layout,
      read,
      onError: (collector, file, err) => pending.push([collector, file, err]),
      readMeminfo: () => files.meminfo(pending),
      kinds: this.#kinds,
    };
    const vmstat = files.vmstat;
    if (vmstat !== undefined) ctx.readVmstat = () => vmstat(pending);
    if (files.blkioGroups !== undefined) ctx.blkioGroups = files.blkioGroups;
    if (this.#opts.hugepageSizes !== undefined) ctx.hugepageSizes = this.#opts.hugepageSizes;
    const owner = resolved?.container;
    let cgroup = readCgroupStats(ctx, id);
    const kmsg = this.#on('oom_event') && cgroup.oomKills === undefined ? this.#opts.kmsgOomKills?.() : undefined;
    if (kmsg !== undefined) cgroup = { ...cgroup, oomKills: kmsg.get(id) ?? 0 };
    const netKinds = { network: this.#on('network'), tcp: this.#on('tcp'), udp: this.#on('udp') };
    const wantsNetns = netKinds.network || netKinds.tcp || netKinds.udp;
    const pids = this.#on('process') || this.#on('sched') || wantsNetns ? readPids(this.layout, id, pending, read) : undefined;
    const processes = pids === undefined || !this.#on('process') ? undefined : processStats(this.#procRoot, pids, pending, reads.fdsAhead);
    reads.leave(id, processes?.fileDescriptors ?? 0);
    // The root process: a runtime container's init, pid 1 for `/` (as cAdvisor); other cgroups have none.
    const rootPid = id === '/' ? 1 : owner?.pid;
    if (processes !== undefined && rootPid !== undefined) {
      const ulimits = readUlimits(readProc, this.#procRoot, rootPid, pending);
      if (ulimits !== undefined) processes.ulimitsSoft = ulimits;
    }
    // A runtime's container reports network only if it owns its namespace (the pod sandbox), as cAdvisor.
    const netPid = !wantsNetns || (owner !== undefined && !owner.networkOwner) ? undefined : netnsOwner(this.#procRoot, id, pids, claimedNetns, pending);
    const network = netPid === undefined || !netKinds.network ? undefined : readNetDev(readProc, this.#procRoot, netPid, pending);
    const sockets = netPid === undefined ? undefined : readSockets(readProc, this.#procRoot, netPid, netKinds, pending);
    const sched = pids === undefined || !this.#on('sched') ? undefined : this.#sched.read(id, pids, this.#procRoot, readProc, pending);
    const startTimeSeconds = owner?.createdAt ?? owner?.startedAt ?? this.#startTimes.of(id);
    // A cgroup removed while we read it is simply not reported, and its half-read files are not errors.
    if (id !== '/' && !cgroupExists(this.layout, id)) return undefined;
    this.#errors.countAll(pending);
    const container: ContainerSnapshot = { id, labels: resolved?.labels ?? EMPTY_LABELS, cgroup };
    if (processes !== undefined) container.processes = processes;
    if (network !== undefined) container.network = network;
    if (sockets !== undefined) container.sockets = sockets;
    if (sched !== undefined) container.sched = sched;
    if (startTimeSeconds !== undefined) container.startTimeSeconds = startTimeSeconds;
    return { container, owner };
  }

  /** The snapshot of this gather, with what comes from outside the cgroup files: extra labels, runtimes, disk usage. */
  #snapshot(
    timestampMs: number,
    machine: MachineSnapshot,
    deviceNames: Map<string, string>,
    containers: ContainerSnapshot[],
    owners: (RuntimeContainer | undefined)[],
  ): Snapshot {
    const snapshot: Snapshot = {
      timestampMs,
      containers,
      machine,
      deviceNames,
      collectorErrors: this.#errors.current(),
      kinds: METRIC_KINDS.filter((k) => this.#kinds.has(k)),
    };
    if ((this.#opts.runtimes ?? []).length > 0) snapshot.labelHold = this.#hold.counts();
    const extra = this.#opts.extraLabels;
    if (extra !== undefined && extraLabelsEnabled(extra)) {
      const { names, values } = extraLabels(owners, extra);
      snapshot.extraLabelNames = names;
      containers.forEach((c, i) => (c.extraLabelValues = values[i] ?? []));
    }
    const runtimes = this.#opts.runtimes ?? [];
    if (runtimes.length > 0) snapshot.runtimes = runtimes.map((f) => f.status());
    if (this.#opts.disk !== undefined) attachDiskUsage(snapshot, containers, owners, runtimes, this.#opts.disk, this.#opts.rootfs, this.#holdWalks);
    if (this.#on('accelerator') && this.#opts.accelerators !== undefined) this.#attachAccelerators(snapshot, containers, owners, this.#opts.accelerators);
    return snapshot;
  }

  /** The node's accelerators and each runtime container's share of them (gather/accelerators.ts). */
  #attachAccelerators(snapshot: Snapshot, containers: ContainerSnapshot[], owners: (RuntimeContainer | undefined)[], acc: Accelerators): void {
    const status = { ...acc.status(), attributions: { pod_resources: 0, process: 0, devices_list: 0 } };
    snapshot.acceleratorStatus = status;
    const sample = acc.sample();
    if (sample === undefined) return;
    snapshot.accelerators = sample.devices;
    const { perContainer, attributions, unknownDeviceIds } = attributeAccelerators(sample, acc.assignments(), containers, owners, {
      pidCgroups: (pid) => this.#pidCgroups(pid),
      gpuMinors: (id) => this.#gpuMinors(id),
    });
    status.attributions = attributions;
    // Attribution reads files too (/proc/<pid>/cgroup, devices.list): its errors belong to this gather's counts.
    snapshot.collectorErrors = this.#errors.current();
    const unlogged = unknownDeviceIds.filter((id) => !this.#unknownDeviceIds.has(id));
    if (unlogged.length > 0) {
      for (const id of unlogged) this.#unknownDeviceIds.add(id);
      this.#opts.log.warn('the kubelet allocated GPUs NVML does not report: their containers get no accelerator series from PodResources', {
        deviceIds: unlogged.join(','),
      });
    }
    const present = new Set(containers.map((c) => c.id));
    for (const id of this.#devicesLists.keys()) if (!present.has(id)) this.#devicesLists.delete(id);
    for (const [i, list] of perContainer) {
      const c = containers[i];
      if (c !== undefined && list.length > 0) c.accelerators = list;
    }
  }

  /** /proc/<pid>/cgroup of a host pid (NVML's pids are the host's: read under --rootfs, never our own namespace). */
  #pidCgroups(pid: number): readonly string[] | undefined {
    const file = hostPath(this.#procRoot, String(pid), 'cgroup');
    try {
      const text = this.#reader.read(file);
      return text === undefined ? undefined : parsePidCgroup(text, file);
    } catch (err) {
      // The process ended between NVML's list and this read: not an error.
      if (!existsSync(hostPath(this.#procRoot, String(pid)))) return undefined;
      this.#errors.count('accelerator', file, err);
      return undefined;
    }
  }

  /**
   * GPU minors a cgroup v1 devices.list allows; undefined on v2 or without the devices hierarchy. A container's device
   * rules are set when it starts and hardly ever change after: each is read at most once per DEVICES_LIST_TTL_MS
   * (cAdvisor read it once, at the container's start), not on every gather for every container.
   */
  #gpuMinors(id: string): readonly number[] | undefined {
    const mount = this.layout.v1.get('devices');
    if (mount === undefined) return undefined;
    const now = this.#now();
    const cached = this.#devicesLists.get(id);
    if (cached !== undefined && now - cached.readAtMs < DEVICES_LIST_TTL_MS) return cached.minors;
    const file = `${mount}${id === '/' ? '' : id}/devices.list`;
    let minors: readonly number[] | undefined;
    try {
      const text = this.#reader.read(file);
      minors = text === undefined ? undefined : gpuMinorsOf(parseDevicesList(text, file));
    } catch (err) {
      this.#errors.count('accelerator', file, err);
      return undefined;
    }
    this.#devicesLists.set(id, { minors, readAtMs: now });
    return minors;
  }
}
