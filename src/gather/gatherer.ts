/**
 * One gather: discover every cgroup (each one is a container, as in cAdvisor), read its stats and its processes'
 * /proc files, and produce an immutable Snapshot. Synchronous file reads into one reused buffer: this runs on the
 * gather worker thread, never on the HTTP thread. No per-container timers: everything happens in this one pass.
 */
import fs from 'node:fs';
import { FileReader } from '../host/file-reader.js';
import { settle, settleFds, type FdOutcome, type ReadAhead, type ReadOutcome } from './read-ahead.js';
import { hostPath } from '../host/paths.js';
import { StartupError, errorMessage } from '../errors.js';
import { cgroupDirs, cgroupExists, procsFile, sortCgroups, walkCgroups } from '../cgroup/discover.js';
import { readCgroupStats } from '../cgroup/read.js';
import { probeBlkioFiles } from '../cgroup/v1.js';
import type { CgroupLayout, CgroupReadContext } from '../cgroup/types.js';
import type { CollectorName } from '../model/cgroup.js';
import { parseCgroupProcs } from '../proc/cgroup-procs.js';
import { parseNetDev } from '../proc/net-dev.js';
import { countFileDescriptors, netnsId } from '../host/process-files.js';
import { parsePartitions } from '../proc/partitions.js';
import { readMachineInfo } from '../machine/machine-info.js';
import type { Logger } from '../log.js';
import type { RuntimeFactory } from '../runtime/factory.js';
import { extraLabels, extraLabelsEnabled, resolveCgroup, type ExtraLabelOptions, type Resolved } from '../runtime/resolve.js';
import type { RuntimeContainer } from '../model/runtime.js';
import type { DiskScheduler, Measure } from '../disk/scheduler.js';
import type { Filesystems } from '../disk/filesystems.js';
import { planUsage } from '../disk/usage.js';
import { type ContainerSnapshot, type ProcessStats, type Snapshot } from '../model/snapshot.js';
import { type MachineSnapshot } from '../model/machine.js';
import { type NetworkInterfaceStats } from '../model/network.js';
import { EMPTY_LABELS } from '../model/runtime.js';

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
   * Give the event loop a turn after this many ms of synchronous reading (default: never). Set when gathering on
   * the HTTP thread (`--no-gather-in-worker`), so a gather never holds /healthz up for longer than one slice.
   */
  sliceMs?: number;
  /** Runtime factories, asked in order for each cgroup (raw is what is left). */
  runtimes?: readonly RuntimeFactory[];
  /** Opt-in container_label_* / container_env_* labels. */
  extraLabels?: ExtraLabelOptions;
  /** Disk usage: measured in the background by the scheduler; a gather only reads its last complete results. */
  disk?: { scheduler: DiskScheduler; filesystems: Filesystems };
  /**
   * A second thread (`--gather-threads=2`): while this one discovers the cgroups and reads the first ones, it reads the
   * files the last ones read in the previous gather. Absent, or failing: this thread reads everything.
   */
  readAhead?: ReadAhead;
}

/**
 * The read-ahead thread's share of the last gather's reads (files plus descriptors): it takes the cgroups at the end
 * of the list, this thread the others, and this thread also parses every cgroup.
 */
const READ_AHEAD_SHARE = 0.7;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const EMPTY_MACHINE: MachineSnapshot = { machineId: '', systemUuid: '', bootId: '' };

export class Gatherer {
  readonly layout: CgroupLayout;
  readonly #opts: GathererOptions;
  readonly #reader = new FileReader();
  readonly #procRoot: string;
  readonly #startTimes = new Map<string, number>();
  readonly #errors: Partial<Record<CollectorName, number>> = {};
  #machine: MachineSnapshot = EMPTY_MACHINE;
  #machineAt = -Infinity;
  #machineRefresh: Promise<void> | undefined;
  /** The files each cgroup read in the last gather: what the read-ahead thread reads for it in the next one. */
  #filesOf = new Map<string, string[]>();
  /** Reads per cgroup in the last gather (files plus descriptors counted): how the work is split between threads. */
  #readsOf = new Map<string, number>();
  /** The cgroups the read-ahead thread takes in the next gather: chosen at the end of this one, so it starts at once. */
  #aheadIds: readonly string[] = [];
  #readAheadFailures = 0;

  constructor(layout: CgroupLayout, opts: GathererOptions) {
    this.layout = layout;
    this.#opts = opts;
    this.#procRoot = hostPath(opts.rootfs, 'proc');
  }

  #now(): number {
    return (this.#opts.now ?? Date.now)();
  }

  #countError(collector: CollectorName, file: string, err: unknown): void {
    this.#errors[collector] = (this.#errors[collector] ?? 0) + 1;
    this.#opts.log.debug('collector error', { collector, file, error: errorMessage(err) });
  }

  /** Machine facts are read at start and refreshed rarely, in the background; a gather never waits for a refresh. */
  async #machineInfo(): Promise<MachineSnapshot> {
    const stale = this.#now() - this.#machineAt >= this.#opts.machineInfoIntervalMs;
    if (stale && this.#machineRefresh === undefined) {
      const read = this.#opts.machineInfo ?? (() => readMachineInfo(this.#opts.rootfs));
      this.#machineRefresh = read()
        .then((m) => {
          this.#machine = m;
        })
        .catch((err: unknown) => this.#countError('machine', 'systeminformation', err))
        .finally(() => {
          this.#machineAt = this.#now();
          this.#machineRefresh = undefined;
        });
    }
    if (this.#machine === EMPTY_MACHINE && this.#machineRefresh !== undefined) await this.#machineRefresh;
    return this.#machine;
  }

  /** Settles when the running gather ends; disk walks on this thread wait for it between their slices. */
  #running: Promise<void> | undefined;
  readonly #holdWalks = (): Promise<void> | undefined => this.#running;

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
    const timestampMs = this.#now();
    const machine = await this.#machineInfo();
    // Files read for the current cgroup (recorded for the next gather's read-ahead), and what the read-ahead thread
    // has already read: each outcome is used once, exactly as the read it replaces would have returned or thrown.
    // Recorded only with a read-ahead thread: without one nothing needs them.
    const recording = this.#opts.readAhead !== undefined;
    let current: string[] = [];
    let ahead: Map<string, ReadOutcome> | undefined;
    let fdsAhead: Map<number, FdOutcome> | undefined;
    const read = (file: string): string | undefined => {
      if (recording) current.push(file);
      if (ahead !== undefined) {
        const outcome = ahead.get(file);
        if (outcome !== undefined && ahead.delete(file)) return settle(outcome);
      }
      return this.#reader.read(file);
    };
    const deviceNames = this.#readPartitions();
    const hostNetns = this.#hostNetns();
    let meminfo: string | undefined | null = null;
    // The host's namespace is reported on `/` only, so it is claimed before any other cgroup is looked at.
    const claimedNetns = new Set<string>(hostNetns === undefined ? [] : [hostNetns]);
    const seen = new Set<string>();
    const containers: ContainerSnapshot[] = [];
    const owners: (RuntimeContainer | undefined)[] = [];
    const runtimes = this.#opts.runtimes ?? [];

    const sliceMs = this.#opts.sliceMs ?? Infinity;
    let sliceStart = performance.now();
    const maybeYield = async (): Promise<void> => {
      if (performance.now() - sliceStart < sliceMs) return;
      await yieldToEventLoop();
      sliceStart = performance.now();
    };

    // The read-ahead thread starts now, on the cgroups it got at the end of the last gather, and reads while this thread
    // discovers the cgroups and reads the others. A cgroup gone since is read ahead for nothing; a new one is read here.
    const aheadIds = new Set(this.#aheadIds);
    const readingAhead = this.#readAhead(this.#aheadIds);
    let awaited = false;

    // Discovery: one readdir per step; an unreadable subtree is counted and skipped, not the whole gather.
    const walked: string[] = [];
    const onWalkError = (dir: string, err: unknown): void => this.#countError('discovery', dir, err);
    for (const path of walkCgroups(this.layout, this.#opts.allowPrefixes, onWalkError)) {
      walked.push(path);
      await maybeYield();
    }
    const paths = sortCgroups(walked);
    if (paths[0] !== '/') throw new Error('no cgroup hierarchy could be listed (see podvisor_collector_errors_total{collector="discovery"})');

    const blkioFiles = this.layout.mode === 'v2' ? undefined : probeBlkioFiles({ layout: this.layout, read, onError() {}, readMeminfo: () => undefined });
    const filesOf = new Map<string, string[]>();
    const readsOf = new Map<string, number>();
    for (const id of paths) {
      if (!awaited && readingAhead !== undefined && aheadIds.has(id)) {
        awaited = true;
        const r = await readingAhead;
        ahead = r?.files;
        fdsAhead = r?.fds;
      }
      await maybeYield();
      if (recording) {
        current = [];
        filesOf.set(id, current);
      }
      const pending: [CollectorName, string, unknown][] = [];
      const ctx: CgroupReadContext = {
        layout: this.layout,
        read,
        onError: (collector: CollectorName, file: string, err: unknown) => pending.push([collector, file, err]),
        readMeminfo: (): string | undefined => {
          if (meminfo === null) {
            try {
              meminfo = read(hostPath(this.#procRoot, 'meminfo'));
            } catch (err) {
              meminfo = undefined;
              pending.push(['memory', '/proc/meminfo', err]);
            }
          }
          return meminfo;
        },
      };
      if (blkioFiles !== undefined) ctx.blkioFiles = blkioFiles;
      const resolved: Resolved | undefined = runtimes.length === 0 ? undefined : resolveCgroup(id, runtimes);
      const owner = resolved?.container;
      const cgroup = readCgroupStats(ctx, id);
      const pids = this.#pids(id, pending, read);
      const processes = pids === undefined ? undefined : this.#processStats(pids, pending, fdsAhead);
      if (recording) readsOf.set(id, current.length + (processes?.fileDescriptors ?? 0));
      // A runtime's container reports network only if it owns its namespace (the pod sandbox), as cAdvisor.
      const network = owner !== undefined && !owner.networkOwner ? undefined : this.#network(id, pids, claimedNetns, pending);
      const startTimeSeconds = owner?.createdAt ?? owner?.startedAt ?? this.#startTime(id);
      // A cgroup removed while we read it is simply not reported, and its half-read files are not errors.
      if (id !== '/' && !cgroupExists(this.layout, id)) continue;
      for (const [collector, file, err] of pending) this.#countError(collector, file, err);
      seen.add(id);
      const c: ContainerSnapshot = { id, labels: resolved?.labels ?? EMPTY_LABELS, cgroup };
      owners.push(owner);
      if (processes !== undefined) c.processes = processes;
      if (network !== undefined) c.network = network;
      if (startTimeSeconds !== undefined) c.startTimeSeconds = startTimeSeconds;
      containers.push(c);
    }
    this.#filesOf = filesOf;
    this.#readsOf = readsOf;
    this.#aheadIds = this.#opts.readAhead === undefined ? [] : paths.slice(this.#splitAt(paths));
    for (const id of this.#startTimes.keys()) if (!seen.has(id)) this.#startTimes.delete(id);
    const snapshot: Snapshot = { timestampMs, containers, machine, deviceNames, collectorErrors: { ...this.#errors } };
    const extra = this.#opts.extraLabels;
    if (extra !== undefined && extraLabelsEnabled(extra)) {
      const { names, values } = extraLabels(owners, extra);
      snapshot.extraLabelNames = names;
      containers.forEach((c, i) => (c.extraLabelValues = values[i] ?? []));
    }
    if (runtimes.length > 0) snapshot.runtimes = runtimes.map((f) => f.status());
    if (this.#opts.disk !== undefined) this.#diskUsage(snapshot, containers, owners, this.#opts.disk);
    return snapshot;
  }

  /**
   * Tells the disk scheduler which containers exist now (it measures them in the background, never here) and attaches
   * the last complete result of each; the root cgroup gets the filesystem totals.
   */
  #diskUsage(
    snapshot: Snapshot,
    containers: ContainerSnapshot[],
    owners: readonly (RuntimeContainer | undefined)[],
    disk: { scheduler: DiskScheduler; filesystems: Filesystems },
  ): void {
    const measures = new Map<string, Measure>();
    const runtimes = this.#opts.runtimes ?? [];
    containers.forEach((c, i) => {
      const owner = owners[i];
      const factory = owner === undefined ? undefined : runtimes.find((f) => f.runtime === owner.runtime);
      if (owner === undefined || factory === undefined || measures.has(owner.id)) return;
      let plan = planUsage(owner, factory, this.#opts.rootfs, this.#holdWalks);
      if (plan === undefined && owner.runtime === 'docker') {
        // Docker with the containerd image store has no upper dir: its snapshot lives in containerd's `moby` namespace.
        const containerd = runtimes.find((f) => f.runtime === 'containerd');
        const moby = containerd?.get(owner.id);
        if (containerd !== undefined && moby !== undefined) plan = planUsage(moby, containerd, this.#opts.rootfs, this.#holdWalks);
      }
      if (plan === undefined) return;
      measures.set(owner.id, plan.measure);
      const usage = disk.scheduler.get(owner.id);
      const filesystem = disk.filesystems.of(plan.dir);
      if (usage === undefined || filesystem === undefined) return; // absent until the first walk finishes
      c.fs = {
        device: filesystem.device,
        usageBytes: usage.bytes,
        inodes: usage.inodes,
        limitBytes: filesystem.capacityBytes,
        inodesFree: filesystem.inodesFree,
      };
    });
    disk.scheduler.sync(measures);
    snapshot.filesystems = disk.filesystems.all();
  }

  /**
   * The host's network namespace: init's, else kthreadd's (pid 2: kernel threads always live in the initial
   * namespace; some sandboxes' init cannot be inspected), else, as a last resort, our own — right only with
   * hostNetwork, which the DaemonSet does not use, so it is tried last.
   */
  #hostNetns(): string | undefined {
    for (const link of ['1/ns/net', '2/ns/net', 'self/ns/net']) {
      try {
        return fs.readlinkSync(hostPath(this.#procRoot, link));
      } catch {
        // try the next one
      }
    }
    return undefined;
  }

  #readPartitions(): Map<string, string> {
    const file = hostPath(this.#procRoot, 'partitions');
    try {
      const text = this.#reader.read(file);
      return text === undefined ? new Map<string, string>() : parsePartitions(text, file);
    } catch (err) {
      this.#countError('blkio', file, err);
      return new Map<string, string>();
    }
  }

  /** The first cgroup of the read-ahead thread's share: from the end, READ_AHEAD_SHARE of the last gather's reads. */
  #splitAt(paths: readonly string[]): number {
    let total = 0;
    for (const id of paths) total += this.#readsOf.get(id) ?? 0;
    let share = 0;
    let i = paths.length;
    while (i > 0 && share < total * READ_AHEAD_SHARE) share += this.#readsOf.get(paths[--i] ?? '') ?? 0;
    return i;
  }

  /**
   * Starts the read-ahead thread on what these cgroups read last time; resolves to the outcomes by file, or to
   * undefined when there is nothing to read or the thread failed (this thread then reads those files itself).
   */
  #readAhead(cgroups: readonly string[]): Promise<{ files: Map<string, ReadOutcome>; fds: Map<number, FdOutcome> } | undefined> | undefined {
    const readAhead = this.#opts.readAhead;
    if (readAhead === undefined) return undefined;
    const files = cgroups.flatMap((id) => this.#filesOf.get(id) ?? []);
    if (files.length === 0) return undefined;
    return readAhead.read(files, this.#procRoot).then(
      ({ outcomes, fds }) => ({ files: new Map(files.map((f, i) => [f, outcomes[i] ?? null])), fds }),
      (err: unknown) => {
        // Rate-limited: the first failure and then every 100th are warnings.
        const level = this.#readAheadFailures++ % 100 === 0 ? 'warn' : 'debug';
        this.#opts.log[level]('read-ahead thread failed; this gather reads its files itself', { error: errorMessage(err) });
        return undefined;
      },
    );
  }

  #pids(id: string, pending: [CollectorName, string, unknown][], read: (file: string) => string | undefined): number[] | undefined {
    const file = procsFile(this.layout, id);
    if (file === undefined) return undefined;
    try {
      const text = read(file);
      return text === undefined ? undefined : parseCgroupProcs(text, file);
    } catch (err) {
      pending.push(['process', file, err]);
      return undefined;
    }
  }

  /** `ahead`: counts the read-ahead thread made for some pids (each used once); the others are counted here. */
  #processStats(pids: readonly number[], pending: [CollectorName, string, unknown][], ahead?: Map<number, FdOutcome>): ProcessStats {
    let fds = 0;
    let sockets = 0;
    let ok = true;
    for (const pid of pids) {
      try {
        const counted = ahead?.get(pid);
        const n = counted !== undefined && ahead?.delete(pid) === true ? settleFds(counted) : countFileDescriptors(this.#procRoot, pid);
        if (n === undefined) continue; // the process exited meanwhile
        fds += n.fds;
        sockets += n.sockets;
      } catch (err) {
        ok = false;
        pending.push(['process', hostPath(this.#procRoot, String(pid), 'fd'), err]);
        break;
      }
    }
    return ok ? { processes: pids.length, fileDescriptors: fds, sockets } : { processes: pids.length };
  }

  /**
   * Network belongs to the owner of a network namespace: the root cgroup gets the host's (from /proc/1), and any
   * other cgroup only if its first live process sits in a namespace that is not the host's and that no cgroup earlier
   * in this gather already reported. That keeps host traffic from repeating on every system service, and a shared
   * namespace from being counted twice.
   */
  #network(
    id: string,
    pids: readonly number[] | undefined,
    claimed: Set<string>,
    pending: [CollectorName, string, unknown][],
  ): NetworkInterfaceStats[] | undefined {
    let pid: number | undefined;
    if (id === '/') pid = 1;
    else {
      for (const p of pids ?? []) {
        let ns: string | undefined;
        try {
          ns = netnsId(this.#procRoot, p);
        } catch (err) {
          pending.push(['network', hostPath(this.#procRoot, String(p), 'ns/net'), err]);
          return undefined;
        }
        if (ns === undefined) continue; // exited
        if (claimed.has(ns)) return undefined;
        claimed.add(ns);
        pid = p;
        break;
      }
    }
    if (pid === undefined) return undefined;
    const file = hostPath(this.#procRoot, String(pid), 'net/dev');
    try {
      const text = this.#reader.read(file);
      return text === undefined ? undefined : parseNetDev(text, file);
    } catch (err) {
      pending.push(['network', file, err]);
      return undefined;
    }
  }

  /** cAdvisor's raw semantics: the earliest mtime of the cgroup's directories, taken when first seen. */
  #startTime(id: string): number | undefined {
    const known = this.#startTimes.get(id);
    if (known !== undefined) return known;
    let min = Infinity;
    for (const dir of cgroupDirs(this.layout, id)) {
      try {
        const st = fs.statSync(dir, { throwIfNoEntry: false });
        if (st !== undefined) min = Math.min(min, st.mtimeMs);
      } catch {
        // unreadable: leave it out, the start time falls back to the other hierarchies
      }
    }
    if (!Number.isFinite(min)) return undefined;
    const s = Math.floor(min / 1000);
    this.#startTimes.set(id, s);
    return s;
  }
}
