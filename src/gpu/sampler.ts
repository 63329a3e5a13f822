/**
 * The NVML poll: in the background every --accelerator-interval, never on the scrape path. Each poll enumerates the
 * GPUs (and the MIG devices of MIG-enabled ones) and reads what cAdvisor's and podvisor's GPU families need. A gather
 * only reads the last complete poll (`current()`).
 *
 * - NOT_SUPPORTED, NO_PERMISSION and the not-available markers are absence, never zero.
 * - A GPU that fell off the bus (GPU_IS_LOST) is left out of the poll (its series drop) and asked for again next poll.
 * - A call past --accelerator-timeout marks the collector down (no GPU series) until it returns; NVML calls run one at a
 *   time off the event loop, so a hung driver never holds up a scrape or /healthz.
 * - The driver gone or swapped under us (DRIVER_NOT_LOADED, UNINITIALIZED, LIB_RM_VERSION_MISMATCH) shuts NVML down and
 *   initialises it again with backoff.
 */
import type { Logger } from '../log.js';
import type { AcceleratorDevice, AcceleratorProcess, AcceleratorProcessUtilization, AcceleratorSample } from '../model/accelerator.js';
import { errorMessage } from '../errors.js';
import {
  NVML_ERROR_DRIVER_NOT_LOADED,
  NVML_ERROR_GPU_IS_LOST,
  NVML_ERROR_LIB_RM_VERSION_MISMATCH,
  NVML_ERROR_NOT_SUPPORTED,
  NVML_ERROR_NO_PERMISSION,
  NVML_ERROR_UNINITIALIZED,
  NvmlError,
  NvmlHungError,
  NvmlTimeoutError,
} from './nvml/codes.js';
import type { NvmlHandle, NvmlLibrary, NvmlProcess } from './nvml/library.js';

export interface NvmlSamplerOptions {
  library: NvmlLibrary;
  /** --accelerator-interval */
  intervalMs: number;
  log: Logger;
  /** Clock (ms since the epoch); tests pin it. */
  now?: () => number;
  /** Longest wait between two initialisation attempts; default 5 min. */
  maxBackoffMs?: number;
}

/** A device is left out of this poll: it is lost, or its identity could not be read. */
class DeviceGone extends Error {}

/** The down reasons that need NVML initialised again. */
const REINIT_CODES: ReadonlySet<number> = new Set([NVML_ERROR_UNINITIALIZED, NVML_ERROR_DRIVER_NOT_LOADED, NVML_ERROR_LIB_RM_VERSION_MISMATCH]);

/** Codes that mean "this value does not exist here", not a failure. */
const ABSENT_CODES: ReadonlySet<number> = new Set([NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_NO_PERMISSION]);

const DEFAULT_MAX_BACKOFF_MS = 5 * 60_000;
const MIG_ENABLED = 1;

/** What a handle stays while NVML is initialised: read once per handle. */
interface Identity {
  uuid: string;
  model: string;
  minor?: number;
}

export class NvmlSampler {
  readonly #lib: NvmlLibrary;
  readonly #opts: NvmlSamplerOptions;
  #initialised = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #polling: Promise<void> | undefined;
  #current: AcceleratorSample | undefined;
  #down = true;
  #failedInits = 0;
  #nextInitAtMs = 0;
  #errors = 0;
  #driverVersion: string | undefined;
  readonly #identities = new Map<NvmlHandle, Identity>();
  /** Per device uuid: the newest process-utilization sample seen, in µs (NVML's lastSeenTimeStamp). */
  readonly #lastSeenUs = new Map<string, number>();
  /** Problems already logged, so a persistent one is one line, not one per poll. */
  readonly #logged = new Set<string>();

  constructor(opts: NvmlSamplerOptions) {
    this.#lib = opts.library;
    this.#opts = opts;
  }

  #now(): number {
    return (this.#opts.now ?? Date.now)();
  }

  /** Polls at once, then every interval (an unref'd timer: it never keeps the process up). */
  start(): void {
    if (this.#timer !== undefined || this.#closed) return;
    void this.poll();
    this.#timer = setInterval(() => void this.poll(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  /** The last complete poll; undefined while NVML is down or hung, or before the first poll. */
  current(): AcceleratorSample | undefined {
    return this.#down ? undefined : this.#current;
  }

  up(): boolean {
    return !this.#down;
  }

  /** NVML calls that failed (absence excluded) or timed out, since start. */
  errors(): number {
    return this.#errors;
  }

  /** One poll; a poll still running is joined, not doubled. */
  poll(): Promise<void> {
    this.#polling ??= this.#poll().finally(() => (this.#polling = undefined));
    return this.#polling;
  }

  async #poll(): Promise<void> {
    if (this.#closed) return;
    const hung = this.#lib.hung();
    if (hung !== undefined) {
      this.#markDown(`NVML call ${hung.call} has not returned within --accelerator-timeout: accelerator series are left out until it does`, 'error');
      return;
    }
    try {
      if (!this.#initialised && !(await this.#init())) return;
      const devices = await this.#devices();
      const sample: AcceleratorSample = { takenAtMs: this.#now(), devices };
      if (this.#driverVersion !== undefined) sample.driverVersion = this.#driverVersion;
      this.#current = sample;
      if (this.#down) this.#opts.log.info('accelerator collector up', { devices: devices.length });
      this.#down = false;
      this.#logged.delete('down');
    } catch (err) {
      await this.#failed(err);
    }
  }

  async #init(): Promise<boolean> {
    if (this.#now() < this.#nextInitAtMs) return false;
    try {
      await this.#lib.init();
    } catch (err) {
      this.#failedInits++;
      const backoff = Math.min(this.#opts.intervalMs * 2 ** (this.#failedInits - 1), this.#opts.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS);
      this.#nextInitAtMs = this.#now() + backoff;
      this.#errors++;
      this.#markDown(`NVML did not initialise: ${errorMessage(err)} (retrying in ${Math.round(backoff / 1000)}s)`, 'warn');
      return false;
    }
    this.#initialised = true;
    this.#failedInits = 0;
    this.#identities.clear();
    this.#driverVersion = await this.#lib.driverVersion().catch(() => undefined);
    this.#opts.log.info('NVML initialised', { library: this.#lib.path, driver: this.#driverVersion });
    return true;
  }

  async #failed(err: unknown): Promise<void> {
    if (err instanceof NvmlTimeoutError || err instanceof NvmlHungError) {
      this.#errors += err instanceof NvmlTimeoutError ? 1 : 0;
      this.#markDown(`${errorMessage(err)}: accelerator series are left out until it returns`, 'error');
      return;
    }
    this.#errors++;
    if (err instanceof NvmlError && REINIT_CODES.has(err.code)) {
      this.#markDown(`${errorMessage(err)}: initialising NVML again`, 'warn');
      this.#initialised = false;
      await this.#lib.shutdown().catch(() => undefined);
      return;
    }
    this.#markDown(`accelerator poll failed: ${errorMessage(err)}`, 'warn');
  }

  #markDown(message: string, level: 'warn' | 'error'): void {
    this.#down = true;
    if (this.#logged.has('down') && this.#logged.has(message)) return;
    this.#logged.add('down');
    this.#logged.add(message);
    this.#opts.log[level](message);
  }

  /** Logs a per-device problem once per distinct message. */
  #note(message: string, fields: Record<string, string>): void {
    const key = `${message} ${JSON.stringify(fields)}`;
    if (this.#logged.has(key)) return;
    this.#logged.add(key);
    this.#opts.log.warn(message, fields);
  }

  async #devices(): Promise<AcceleratorDevice[]> {
    const count = await this.#lib.deviceCount();
    const out: AcceleratorDevice[] = [];
    for (let index = 0; index < count; index++) {
      try {
        const handle = await this.#lib.handleByIndex(index);
        out.push(...(await this.#gpu(index, handle)));
      } catch (err) {
        if (!(err instanceof DeviceGone) && !isLost(err) && !(err instanceof NvmlError && ABSENT_CODES.has(err.code))) throw err;
        this.#errors += err instanceof DeviceGone ? 0 : 1;
        this.#note('GPU left out of this poll (its series drop until it answers again)', { gpu: String(index), error: errorMessage(err) });
      }
    }
    this.#forgetLastSeen(out);
    return out;
  }

  /** A whole GPU, and its MIG devices when MIG is on. */
  async #gpu(index: number, handle: NvmlHandle): Promise<AcceleratorDevice[]> {
    const id = await this.#identity(handle, true);
    const migMode = await this.#optional(this.#lib.migMode(handle));
    const mig = migMode?.current === MIG_ENABLED;
    const gpu = await this.#device(handle, index, id, { utilization: !mig, processes: !mig });
    if (!mig) return [gpu];
    const devices = [gpu];
    const slots = (await this.#optional(this.#lib.maxMigDeviceCount(handle))) ?? 0;
    for (let slot = 0; slot < slots; slot++) {
      const migHandle = await this.#optional(this.#lib.migDeviceHandleByIndex(handle, slot));
      if (migHandle === undefined) continue;
      try {
        devices.push(await this.#migDevice(migHandle, index, id.uuid));
      } catch (err) {
        if (!(err instanceof DeviceGone) && !isLost(err)) throw err;
        this.#note('MIG device left out of this poll', { gpu: String(index), slot: String(slot), error: errorMessage(err) });
      }
    }
    return devices;
  }

  async #migDevice(handle: NvmlHandle, index: number, parentUuid: string): Promise<AcceleratorDevice> {
    const id = await this.#identity(handle, false);
    const gpuInstanceId = await this.#lib.gpuInstanceId(handle);
    const computeInstanceId = await this.#lib.computeInstanceId(handle);
    const device = await this.#device(handle, index, id, { utilization: false, processes: true });
    device.mig = { parentUuid, gpuInstanceId, computeInstanceId };
    return device;
  }

  /**
   * The values of one device. Utilization is read for whole GPUs without MIG only: NVML supports neither device nor per-process
   * utilization on MIG devices or on a MIG-enabled GPU, so they are not asked for (absent). Processes of a MIG-enabled
   * GPU are read per MIG device, where they belong.
   */
  async #device(handle: NvmlHandle, index: number, id: Identity, read: { utilization: boolean; processes: boolean }): Promise<AcceleratorDevice> {
    const device: AcceleratorDevice = { uuid: id.uuid, index, model: id.model };
    if (id.minor !== undefined) device.minor = id.minor;
    const memory = await this.#optional(this.#lib.memory(handle));
    if (memory?.total !== undefined) device.memoryTotalBytes = memory.total;
    if (memory?.used !== undefined) device.memoryUsedBytes = memory.used;
    const power = await this.#optional(this.#lib.powerMilliwatts(handle));
    if (power !== undefined) device.powerWatts = power / 1000;
    const temperature = await this.#optional(this.#lib.temperatureCelsius(handle));
    if (temperature !== undefined) device.temperatureCelsius = temperature;
    if (read.utilization) {
      const rates = await this.#optional(this.#lib.utilization(handle));
      if (rates?.gpu !== undefined) device.utilizationPercent = rates.gpu;
    }
    if (read.processes) {
      const processes = await this.#processes(handle);
      if (processes !== undefined) device.processes = processes;
    }
    if (read.utilization) {
      const shares = await this.#processUtilization(handle, id.uuid);
      if (shares !== undefined) device.processUtilization = shares;
    }
    return device;
  }

  /** UUID, name and minor number: fixed while NVML is initialised, read once per handle. */
  async #identity(handle: NvmlHandle, wholeGpu: boolean): Promise<Identity> {
    const known = this.#identities.get(handle);
    if (known !== undefined) return known;
    const uuid = await this.#lib.uuid(handle);
    if (uuid === '') throw new DeviceGone('NVML gave an empty UUID');
    const model = await this.#lib.name(handle);
    const id: Identity = { uuid, model };
    if (wholeGpu) {
      const minor = await this.#optional(this.#lib.minorNumber(handle));
      if (minor !== undefined) id.minor = minor;
    }
    this.#identities.set(handle, id);
    return id;
  }

  /** Compute and graphics processes, one entry per pid; undefined when NVML cannot list them. */
  async #processes(handle: NvmlHandle): Promise<AcceleratorProcess[] | undefined> {
    const compute = await this.#optional(this.#lib.computeProcesses(handle));
    const graphics = await this.#optional(this.#lib.graphicsProcesses(handle));
    if (compute === undefined && graphics === undefined) return undefined;
    return mergeProcesses([...(compute ?? []), ...(graphics ?? [])]);
  }

  /** Each process's SM share in its newest sample since the last poll; undefined when not supported. */
  async #processUtilization(handle: NvmlHandle, uuid: string): Promise<AcceleratorProcessUtilization[] | undefined> {
    const samples = await this.#optional(this.#lib.processUtilization(handle, this.#lastSeenUs.get(uuid) ?? 0));
    if (samples === undefined) return undefined;
    const newest = new Map<number, { ts: number; sm: number }>();
    let lastSeen = this.#lastSeenUs.get(uuid) ?? 0;
    for (const s of samples) {
      lastSeen = Math.max(lastSeen, s.timeStampUs);
      if (s.smUtil === undefined) continue;
      const prev = newest.get(s.pid);
      if (prev === undefined || s.timeStampUs >= prev.ts) newest.set(s.pid, { ts: s.timeStampUs, sm: s.smUtil });
    }
    this.#lastSeenUs.set(uuid, lastSeen);
    return [...newest].map(([pid, v]) => ({ pid, smPercent: v.sm }));
  }

  #forgetLastSeen(devices: readonly AcceleratorDevice[]): void {
    const present = new Set(devices.map((d) => d.uuid));
    for (const uuid of this.#lastSeenUs.keys()) if (!present.has(uuid)) this.#lastSeenUs.delete(uuid);
  }

  /** A value that may not exist on this device or driver: NOT_SUPPORTED, NO_PERMISSION, a missing symbol → undefined. */
  async #optional<T>(call: Promise<T>): Promise<T | undefined> {
    try {
      return await call;
    } catch (err) {
      if (isLost(err)) throw new DeviceGone(errorMessage(err));
      if (err instanceof NvmlError && !REINIT_CODES.has(err.code)) {
        if (!ABSENT_CODES.has(err.code)) this.#errors++;
        return undefined;
      }
      throw err;
    }
  }

  /**
   * Stops polling and shuts NVML down. When an NVML call is still outstanding, shutting down would wait on the same
   * driver: nothing more is called, and `{ hung: true }` tells the caller that the process cannot exit normally (a
   * thread is stuck in the driver; see host/exit.ts).
   */
  async close(): Promise<{ hung: boolean }> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    const hung = this.#lib.hung();
    if (hung !== undefined) return { hung: true };
    await this.#polling?.catch(() => undefined);
    if (this.#lib.hung() !== undefined) return { hung: true };
    if (this.#initialised) {
      try {
        await this.#lib.shutdown();
      } catch (err) {
        if (err instanceof NvmlTimeoutError || err instanceof NvmlHungError) return { hung: true };
      }
      this.#initialised = false;
    }
    return { hung: false };
  }
}

function isLost(err: unknown): boolean {
  return err instanceof NvmlError && err.code === NVML_ERROR_GPU_IS_LOST;
}

/** One entry per pid: a process in both lists (compute and graphics) holds one allocation, not two. */
export function mergeProcesses(list: readonly NvmlProcess[]): AcceleratorProcess[] {
  const byPid = new Map<number, AcceleratorProcess>();
  for (const p of list) {
    const prev = byPid.get(p.pid);
    const memoryBytes = p.usedGpuMemory === undefined ? prev?.memoryBytes : Math.max(p.usedGpuMemory, prev?.memoryBytes ?? 0);
    byPid.set(p.pid, memoryBytes === undefined ? { pid: p.pid } : { pid: p.pid, memoryBytes });
  }
  return [...byPid.values()];
}
