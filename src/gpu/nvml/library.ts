/**
 * NVML through koffi: finds and loads libnvidia-ml.so.1, declares the calls podvisor makes (probing the versioned
 * symbols an older driver may lack), runs each one off the event loop through the serialising queue (calls.ts), and
 * decodes and validates every value the driver writes. koffi types and raw buffers never leave this file: callers get
 * numbers, strings, bigint handles, NvmlError, NvmlTimeoutError and NvmlHungError.
 *
 * Symbols (nvml.h of NVML_API_VERSION 13; layouts for x86-64 and arm64 Linux, both LP64):
 * - required (loadNvml throws without them): nvmlInit_v2, nvmlShutdown, nvmlErrorString, nvmlDeviceGetCount_v2,
 *   nvmlDeviceGetHandleByIndex_v2, nvmlDeviceGetUUID, nvmlDeviceGetName;
 * - probed newest first: running processes `_v3` → `_v2` (both the 24-byte nvmlProcessInfo_t) → the plain name (the
 *   16-byte v1 struct); nvmlDeviceGetMemoryInfo_v2 (versioned struct, `reserved` apart from `used`) → the v1 call;
 *   nvmlDeviceGetTemperature → nvmlDeviceGetTemperatureV (drivers that dropped the deprecated call);
 * - everything else optional: a method whose symbol is missing rejects with NvmlError NVML_ERROR_FUNCTION_NOT_FOUND.
 *
 * Validation: 64-bit values arrive as numbers up to 2^53 and as BigInt above (NVML_VALUE_NOT_AVAILABLE is all ones);
 * anything above 2^53 is left out (`undefined`), never NaN. Percentages over 100 (0xFFFFFFFF markers) are left
 * out. A scalar the caller cannot do without (a count, a power reading) that is out of range rejects with NvmlError
 * NVML_ERROR_UNKNOWN and a detail. List entries with an impossible pid are dropped. Strings are the bytes up to the
 * first NUL, decoded as UTF-8 with U+FFFD for invalid sequences.
 */
import koffi from 'koffi';
import type { LibraryHandle, TypeObject } from 'koffi';
import { errorMessage } from '../../errors.js';
import { NvmlCallQueue } from './calls.js';
import {
  NVML_ERROR_FUNCTION_NOT_FOUND,
  NVML_ERROR_INSUFFICIENT_SIZE,
  NVML_ERROR_INVALID_ARGUMENT,
  NVML_ERROR_NOT_FOUND,
  NVML_ERROR_UNKNOWN,
  NVML_SUCCESS,
  NvmlError,
  NvmlTimeoutError,
} from './codes.js';

// Where the library is: find.ts (no koffi, so a node without a GPU never loads it).
export { NVML_SONAME, findNvmlLibrary, nvmlCandidates } from './find.js';

/** Default timeout of one NVML call. */
export const DEFAULT_NVML_TIMEOUT_MS = 5_000;

/** Opaque device handle (an `nvmlDevice_t` pointer) as koffi 3 returns pointers: pass it back as it is. */
export type NvmlHandle = bigint;

/** Bytes; a field is absent when the driver says NVML_VALUE_NOT_AVAILABLE or gives more than 2^53. */
export interface NvmlMemory {
  total?: number;
  /** With nvmlDeviceGetMemoryInfo_v2 this excludes `reserved`; with the v1 call it includes it. */
  used?: number;
  free?: number;
  /** Memory the driver reserves (nvmlDeviceGetMemoryInfo_v2 only). */
  reserved?: number;
}

/** A process with a context on the device. usedGpuMemory absent for NVML_VALUE_NOT_AVAILABLE or > 2^53. */
export interface NvmlProcess {
  pid: number;
  usedGpuMemory?: number;
  /** MIG instance ids, present when the process runs in a MIG device (not with the v1 struct). */
  gpuInstanceId?: number;
  computeInstanceId?: number;
}

/** One process's utilization over the last sample period; a percentage over 100 (0xFFFFFFFF marker) is absent. */
export interface NvmlProcessUtil {
  pid: number;
  /** CPU timestamp of the sample, µs since the epoch. */
  timeStampUs: number;
  smUtil?: number;
  memUtil?: number;
}

export interface NvmlOptions {
  /** Timeout of each NVML call (default DEFAULT_NVML_TIMEOUT_MS). */
  timeoutMs: number;
  /** The clock of `hung().sinceMs` (default Date.now). */
  now?: () => number;
}

export interface NvmlLibrary {
  readonly path: string;
  /**
   * The symbol each method resolved to, e.g. `{ computeProcesses: 'nvmlDeviceGetComputeRunningProcesses_v2', memory:
   * 'nvmlDeviceGetMemoryInfo' }`; a method whose symbols are all missing has no entry.
   */
  readonly resolved: Readonly<Record<string, string>>;
  // Every method below runs its C call(s) via koffi `.async` (off the event loop) through the serialising queue
  // (calls.ts); a non-success code rejects with NvmlError.
  init(): Promise<void>;
  shutdown(): Promise<void>;
  driverVersion(): Promise<string>;
  deviceCount(): Promise<number>;
  handleByIndex(index: number): Promise<NvmlHandle>;
  /** A GPU (`GPU-…`) or MIG device (`MIG-…`) UUID. */
  handleByUuid(uuid: string): Promise<NvmlHandle>;
  uuid(h: NvmlHandle): Promise<string>;
  name(h: NvmlHandle): Promise<string>;
  minorNumber(h: NvmlHandle): Promise<number>;
  memory(h: NvmlHandle): Promise<NvmlMemory>;
  /** Percent over the last sample period; a value over 100 is absent. */
  utilization(h: NvmlHandle): Promise<{ gpu?: number; memory?: number }>;
  powerMilliwatts(h: NvmlHandle): Promise<number>;
  /** NVML_TEMPERATURE_GPU. */
  temperatureCelsius(h: NvmlHandle): Promise<number>;
  /** Sized with a first call, then fetched; retried while the list grows in between (at most 5 fetches). */
  computeProcesses(h: NvmlHandle): Promise<NvmlProcess[]>;
  graphicsProcesses(h: NvmlHandle): Promise<NvmlProcess[]>;
  /** Samples newer than lastSeenUs (NVML's CPU timestamp, µs; 0 = all it has). NOT_FOUND (none newer) → []. */
  processUtilization(h: NvmlHandle, lastSeenUs: number): Promise<NvmlProcessUtil[]>;
  /** NVML_DEVICE_MIG_DISABLE = 0, ENABLE = 1. */
  migMode(h: NvmlHandle): Promise<{ current: number; pending: number }>;
  maxMigDeviceCount(h: NvmlHandle): Promise<number>;
  /** The MIG device in slot `index` of a GPU; an empty slot (NOT_FOUND) → undefined. */
  migDeviceHandleByIndex(h: NvmlHandle, index: number): Promise<NvmlHandle | undefined>;
  gpuInstanceId(h: NvmlHandle): Promise<number>;
  computeInstanceId(h: NvmlHandle): Promise<number>;
  /** The call now outstanding for longer than the timeout, if any (the library is "hung" until it returns). */
  hung(): { call: string; sinceMs: number } | undefined;
  /** Method calls made / rejected / timed out so far, for self-metrics. */
  readonly stats: { calls: number; errors: number; timeouts: number };
}

// ---- C types (nvml.h), anonymous so that loading twice never clashes in koffi's type registry ----

const U32 = 'unsigned int';
const U64 = 'unsigned long long';
const PTR = 'void *';

const T = {
  memory: koffi.struct({ total: U64, free: U64, used: U64 }),
  memoryV2: koffi.struct({ version: U32, total: U64, reserved: U64, free: U64, used: U64 }),
  utilization: koffi.struct({ gpu: U32, memory: U32 }),
  processV1: koffi.struct({ pid: U32, usedGpuMemory: U64 }),
  process: koffi.struct({ pid: U32, usedGpuMemory: U64, gpuInstanceId: U32, computeInstanceId: U32 }),
  processUtil: koffi.struct({ pid: U32, timeStamp: U64, smUtil: U32, memUtil: U32, encUtil: U32, decUtil: U32 }),
  temperature: koffi.struct({ version: U32, sensorType: 'int', temperature: 'int' }),
};

/** Sizes from nvml.h on LP64 (accelerators.md §3.4); a mismatch means an ABI podvisor does not know. */
const SIZES: ReadonlyArray<[keyof typeof T, number]> = [
  ['memory', 24],
  ['memoryV2', 40],
  ['utilization', 8],
  ['processV1', 16],
  ['process', 24],
  ['processUtil', 32],
  ['temperature', 12],
];

/** `nvmlMemory_v2` = sizeof | 2 << 24. */
const MEMORY_V2_VERSION = 0x02000028;
/** `nvmlTemperature_v1` = sizeof | 1 << 24. */
const TEMPERATURE_V1_VERSION = 0x0100000c;
const NVML_TEMPERATURE_GPU = 0;
const DRIVER_VERSION_BYTES = 80;
/** NVML_DEVICE_UUID_V2_BUFFER_SIZE and NVML_DEVICE_NAME_V2_BUFFER_SIZE. */
const DEVICE_STRING_BYTES = 96;
const U32_MAX = 0xffffffff;
/** PID_MAX_LIMIT on 64-bit Linux. */
const PID_MAX = 4_194_304;
/** Linux minor numbers have 20 bits. */
const MINOR_MAX = 0xfffff;
const MAX_DEVICES = 4_096;
const MAX_MIG_DEVICES = 64;
/** No driver reports more list entries than this; a larger count is garbage. */
const MAX_LIST_ENTRIES = 65_536;
/** Fetches of a list that keeps growing between the sizing call and the fetch before giving up. */
const MAX_LIST_ROUNDS = 5;

type NativeFn = ReturnType<LibraryHandle['func']>;

interface Candidate {
  name: string;
  result?: string;
  args: readonly string[];
}

/** Every NVML call podvisor makes, by method; candidates newest first. */
const FUNCTIONS = {
  init: { required: true, candidates: [{ name: 'nvmlInit_v2', args: [] }] },
  shutdown: { required: true, candidates: [{ name: 'nvmlShutdown', args: [] }] },
  errorString: { required: true, candidates: [{ name: 'nvmlErrorString', result: 'const char *', args: ['int'] }] },
  driverVersion: { candidates: [{ name: 'nvmlSystemGetDriverVersion', args: [PTR, U32] }] },
  deviceCount: { required: true, candidates: [{ name: 'nvmlDeviceGetCount_v2', args: [PTR] }] },
  handleByIndex: { required: true, candidates: [{ name: 'nvmlDeviceGetHandleByIndex_v2', args: [U32, PTR] }] },
  handleByUuid: { candidates: [{ name: 'nvmlDeviceGetHandleByUUID', args: ['const char *', PTR] }] },
  uuid: { required: true, candidates: [{ name: 'nvmlDeviceGetUUID', args: [PTR, PTR, U32] }] },
  name: { required: true, candidates: [{ name: 'nvmlDeviceGetName', args: [PTR, PTR, U32] }] },
  minorNumber: { candidates: [{ name: 'nvmlDeviceGetMinorNumber', args: [PTR, PTR] }] },
  memory: {
    candidates: [
      { name: 'nvmlDeviceGetMemoryInfo_v2', args: [PTR, PTR] },
      { name: 'nvmlDeviceGetMemoryInfo', args: [PTR, PTR] },
    ],
  },
  utilization: { candidates: [{ name: 'nvmlDeviceGetUtilizationRates', args: [PTR, PTR] }] },
  powerMilliwatts: { candidates: [{ name: 'nvmlDeviceGetPowerUsage', args: [PTR, PTR] }] },
  temperatureCelsius: {
    candidates: [
      { name: 'nvmlDeviceGetTemperature', args: [PTR, 'int', PTR] },
      { name: 'nvmlDeviceGetTemperatureV', args: [PTR, PTR] },
    ],
  },
  computeProcesses: { candidates: processCandidates('Compute') },
  graphicsProcesses: { candidates: processCandidates('Graphics') },
  processUtilization: { candidates: [{ name: 'nvmlDeviceGetProcessUtilization', args: [PTR, PTR, PTR, U64] }] },
  migMode: { candidates: [{ name: 'nvmlDeviceGetMigMode', args: [PTR, PTR, PTR] }] },
  maxMigDeviceCount: { candidates: [{ name: 'nvmlDeviceGetMaxMigDeviceCount', args: [PTR, PTR] }] },
  migDeviceHandleByIndex: { candidates: [{ name: 'nvmlDeviceGetMigDeviceHandleByIndex', args: [PTR, U32, PTR] }] },
  gpuInstanceId: { candidates: [{ name: 'nvmlDeviceGetGpuInstanceId', args: [PTR, PTR] }] },
  computeInstanceId: { candidates: [{ name: 'nvmlDeviceGetComputeInstanceId', args: [PTR, PTR] }] },
} satisfies Record<string, { required?: boolean; candidates: readonly Candidate[] }>;

type FnKey = keyof typeof FUNCTIONS;

function processCandidates(kind: 'Compute' | 'Graphics'): Candidate[] {
  const base = `nvmlDeviceGet${kind}RunningProcesses`;
  return [`${base}_v3`, `${base}_v2`, base].map((name) => ({ name, args: [PTR, PTR, PTR] }));
}

interface Declared {
  name: string;
  fn: NativeFn;
}

// ---- decoding ----

const UTF8 = new TextDecoder('utf-8', { fatal: false });

/** The bytes up to the first NUL (or all of them), as UTF-8 with U+FFFD for what is not. */
function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return UTF8.decode(end < 0 ? buf : buf.subarray(0, end));
}

/** koffi decodes a 64-bit integer up to this to a number (exact), and above it to a BigInt. */
const MAX_EXACT = 2 ** 53;

/** A 64-bit field: a non-negative integer up to 2^53, else absent (BigInt above, NVML_VALUE_NOT_AVAILABLE). */
function u64(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_EXACT ? v : undefined;
}

/** A 32-bit field no larger than `max`, else absent. */
function u32(v: unknown, max = U32_MAX): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max ? v : undefined;
}

/** A percentage: 0..100, else absent (0xFFFFFFFF markers). */
function percent(v: unknown): number | undefined {
  return u32(v, 100);
}

/** A MIG instance id: absent for 0xFFFFFFFF (not a MIG process). */
function instanceId(v: unknown): number | undefined {
  return u32(v, U32_MAX - 1);
}

function pid(v: unknown): number | undefined {
  const n = u32(v, PID_MAX);
  return n === undefined || n === 0 ? undefined : n;
}

/** A value the caller needs, or NvmlError(UNKNOWN) naming it. */
function required(call: string, what: string, v: number | undefined, raw: unknown): number {
  if (v === undefined) throw new NvmlError(call, NVML_ERROR_UNKNOWN, `${what} out of range: ${String(raw)}`);
  return v;
}

/** The fields of one decoded struct, for the guards above. */
function fields(call: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new NvmlError(call, NVML_ERROR_UNKNOWN, 'struct did not decode to an object');
  return Object.fromEntries(Object.entries(v));
}

function decodeStruct(call: string, buf: Buffer, type: TypeObject): Record<string, unknown> {
  const v: unknown = koffi.decode(buf, type);
  return fields(call, v);
}

function decodeArray(call: string, buf: Buffer, type: TypeObject, count: number): Record<string, unknown>[] {
  if (count === 0) return [];
  const v: unknown = koffi.decode(buf, type, count);
  if (!Array.isArray(v)) throw new NvmlError(call, NVML_ERROR_UNKNOWN, 'array did not decode to an array');
  return v.map((e: unknown) => fields(call, e));
}

function toProcess(f: Record<string, unknown>): NvmlProcess | undefined {
  const p = pid(f.pid);
  if (p === undefined) return undefined;
  const out: NvmlProcess = { pid: p };
  const mem = u64(f.usedGpuMemory);
  if (mem !== undefined) out.usedGpuMemory = mem;
  const gi = instanceId(f.gpuInstanceId);
  if (gi !== undefined) out.gpuInstanceId = gi;
  const ci = instanceId(f.computeInstanceId);
  if (ci !== undefined) out.computeInstanceId = ci;
  return out;
}

function toProcessUtil(f: Record<string, unknown>, lastSeenUs: number): NvmlProcessUtil | undefined {
  const p = pid(f.pid);
  const ts = u64(f.timeStamp);
  if (p === undefined || ts === undefined || ts <= lastSeenUs) return undefined;
  const out: NvmlProcessUtil = { pid: p, timeStampUs: ts };
  const sm = percent(f.smUtil);
  if (sm !== undefined) out.smUtil = sm;
  const mem = percent(f.memUtil);
  if (mem !== undefined) out.memUtil = mem;
  return out;
}

function isDefined<T>(v: T | undefined): v is T {
  return v !== undefined;
}

// ---- loading ----

function declare(lib: LibraryHandle, c: Candidate): NativeFn {
  return lib.func(c.name, c.result ?? 'int', [...c.args]);
}

/** Declares every function, probing candidates in order; throws a plain Error for a missing required one. */
function declareAll(lib: LibraryHandle, file: string): Map<FnKey, Declared> {
  const out = new Map<FnKey, Declared>();
  for (const [key, spec] of Object.entries(FUNCTIONS) as [FnKey, (typeof FUNCTIONS)[FnKey]][]) {
    const errors: string[] = [];
    for (const c of spec.candidates) {
      try {
        out.set(key, { name: c.name, fn: declare(lib, c) });
        break;
      } catch (err) {
        errors.push(errorMessage(err));
      }
    }
    if (!out.has(key) && 'required' in spec && spec.required) {
      throw new Error(`NVML library ${file}: required function ${spec.candidates.map((c) => c.name).join(' / ')} not found (${errors.join('; ')})`);
    }
  }
  return out;
}

function checkAbi(): void {
  for (const [key, size] of SIZES) {
    const got = koffi.sizeof(T[key]);
    if (got !== size) throw new Error(`NVML struct ${key} is ${got} bytes here, nvml.h says ${size}: unsupported ABI`);
  }
}

/**
 * Loads the library (koffi.load) and declares every function, probing versioned names. Throws a plain Error with a
 * clear message (path + reason) if the file cannot be loaded or a required symbol is missing. Loading runs dlopen on
 * the calling thread; nothing is called in the library until init().
 */
export function loadNvml(file: string, opts: NvmlOptions = { timeoutMs: DEFAULT_NVML_TIMEOUT_MS }): NvmlLibrary {
  checkAbi();
  let lib: LibraryHandle;
  try {
    lib = koffi.load(file);
  } catch (err) {
    throw new Error(`cannot load NVML library ${file}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    return new Library(file, declareAll(lib, file), new NvmlCallQueue(opts));
  } catch (err) {
    lib.unload();
    throw err;
  }
}

class Library implements NvmlLibrary {
  readonly path: string;
  readonly resolved: Readonly<Record<string, string>>;
  readonly stats = { calls: 0, errors: 0, timeouts: 0 };
  readonly #fns: Map<FnKey, Declared>;
  readonly #queue: NvmlCallQueue;
  /** The arguments of native calls that have not returned (see #native). */
  readonly #inFlight = new Set<unknown[]>();

  constructor(file: string, fns: Map<FnKey, Declared>, queue: NvmlCallQueue) {
    this.path = file;
    this.#fns = fns;
    this.#queue = queue;
    this.resolved = Object.freeze(Object.fromEntries([...fns].map(([key, d]) => [key, d.name])));
  }

  hung(): { call: string; sinceMs: number } | undefined {
    return this.#queue.hung();
  }

  // ---- plumbing ----

  /** Counts the method call and its failure. */
  async #method<R>(body: () => Promise<R>): Promise<R> {
    this.stats.calls++;
    try {
      return await body();
    } catch (err) {
      this.stats.errors++;
      if (err instanceof NvmlTimeoutError) this.stats.timeouts++;
      throw err;
    }
  }

  #fn(key: FnKey): Declared {
    const d = this.#fns.get(key);
    if (d === undefined) throw new NvmlError(FUNCTIONS[key].candidates[0]?.name ?? key, NVML_ERROR_FUNCTION_NOT_FOUND);
    return d;
  }

  /**
   * One native call through the queue; resolves to its nvmlReturn_t. koffi hands a Buffer to C by address and keeps no
   * reference to it, so the arguments stay in #inFlight until the call returns: a call its caller gave up on (timeout)
   * must not write into a Buffer the GC has freed.
   */
  #native(d: Declared, args: unknown[]): Promise<number> {
    return this.#queue.run(
      d.name,
      () =>
        new Promise<number>((resolve, reject) => {
          this.#inFlight.add(args);
          try {
            d.fn.async(...args, (err: unknown, code: unknown) => {
              this.#inFlight.delete(args);
              if (err instanceof Error) reject(err);
              else if (err !== null && err !== undefined) reject(new Error(errorMessage(err)));
              else if (typeof code === 'number' && Number.isInteger(code)) resolve(code);
              else reject(new NvmlError(d.name, NVML_ERROR_UNKNOWN, `returned ${String(code)}`));
            });
          } catch (err) {
            // not started (koffi refused the arguments, or its queue of async calls is full)
            this.#inFlight.delete(args);
            throw err;
          }
        }),
    );
  }

  /** One native call that must succeed. */
  async #ok(d: Declared, args: unknown[]): Promise<void> {
    const code = await this.#native(d, args);
    if (code !== NVML_SUCCESS) throw new NvmlError(d.name, code);
  }

  /** A call whose only output is one `unsigned int *`. */
  async #u32Out(key: FnKey, h: NvmlHandle, what: string, max: number): Promise<number> {
    const d = this.#fn(key);
    const out = Buffer.alloc(4);
    await this.#ok(d, [handle(d.name, h), out]);
    const raw = out.readUInt32LE(0);
    return required(d.name, what, u32(raw, max), raw);
  }

  /** A call that writes a NUL-terminated string into a buffer of `size` bytes. */
  async #stringOut(key: FnKey, before: unknown[], size: number): Promise<string> {
    const d = this.#fn(key);
    const buf = Buffer.alloc(size);
    await this.#ok(d, [...before, buf, size]);
    return cString(buf);
  }

  /**
   * NVML's two-call protocol for lists: `call(array, countBuffer)` first with no array to learn the count
   * (INSUFFICIENT_SIZE and the count, or SUCCESS for none), then with an array of that many entries, again while
   * the list grew in between. `empty` codes (NOT_FOUND for samples) mean no entries.
   */
  async #list(
    d: Declared,
    type: TypeObject,
    call: (array: Buffer | null, count: Buffer) => unknown[],
    empty: readonly number[] = [],
  ): Promise<Record<string, unknown>[]> {
    const size = koffi.sizeof(type);
    const count = Buffer.alloc(4);
    let code = await this.#native(d, call(null, count));
    if (code === NVML_SUCCESS || empty.includes(code)) return [];
    if (code !== NVML_ERROR_INSUFFICIENT_SIZE) throw new NvmlError(d.name, code);
    let want = count.readUInt32LE(0);
    for (let round = 0; round < MAX_LIST_ROUNDS; round++) {
      const cap = Math.max(want, 1);
      if (cap > MAX_LIST_ENTRIES) throw new NvmlError(d.name, NVML_ERROR_UNKNOWN, `asked for ${cap} entries`);
      const array = Buffer.alloc(cap * size);
      count.writeUInt32LE(cap, 0);
      code = await this.#native(d, call(array, count));
      const got = count.readUInt32LE(0);
      if (code === NVML_SUCCESS) return decodeArray(d.name, array, type, Math.min(got, cap));
      if (empty.includes(code)) return [];
      if (code !== NVML_ERROR_INSUFFICIENT_SIZE) throw new NvmlError(d.name, code);
      want = got > cap ? got : cap * 2;
    }
    throw new NvmlError(d.name, NVML_ERROR_INSUFFICIENT_SIZE, `the list kept growing over ${MAX_LIST_ROUNDS} attempts`);
  }

  // ---- system ----

  init(): Promise<void> {
    return this.#method(() => this.#ok(this.#fn('init'), []));
  }

  shutdown(): Promise<void> {
    return this.#method(() => this.#ok(this.#fn('shutdown'), []));
  }

  driverVersion(): Promise<string> {
    return this.#method(() => this.#stringOut('driverVersion', [], DRIVER_VERSION_BYTES));
  }

  deviceCount(): Promise<number> {
    return this.#method(async () => {
      const d = this.#fn('deviceCount');
      const out = Buffer.alloc(4);
      await this.#ok(d, [out]);
      const raw = out.readUInt32LE(0);
      return required(d.name, 'device count', u32(raw, MAX_DEVICES), raw);
    });
  }

  handleByIndex(index: number): Promise<NvmlHandle> {
    return this.#method(async () => {
      const d = this.#fn('handleByIndex');
      const out = Buffer.alloc(8);
      await this.#ok(d, [index32(d.name, index), out]);
      return handleOut(d.name, out);
    });
  }

  handleByUuid(uuid: string): Promise<NvmlHandle> {
    return this.#method(async () => {
      const d = this.#fn('handleByUuid');
      if (uuid.length === 0 || uuid.includes('\0')) throw new NvmlError(d.name, NVML_ERROR_INVALID_ARGUMENT, `bad UUID ${JSON.stringify(uuid)}`);
      const out = Buffer.alloc(8);
      await this.#ok(d, [uuid, out]);
      return handleOut(d.name, out);
    });
  }

  // ---- per device ----

  uuid(h: NvmlHandle): Promise<string> {
    return this.#method(() => this.#stringOut('uuid', [handle('nvmlDeviceGetUUID', h)], DEVICE_STRING_BYTES));
  }

  name(h: NvmlHandle): Promise<string> {
    return this.#method(() => this.#stringOut('name', [handle('nvmlDeviceGetName', h)], DEVICE_STRING_BYTES));
  }

  minorNumber(h: NvmlHandle): Promise<number> {
    return this.#method(() => this.#u32Out('minorNumber', h, 'minor number', MINOR_MAX));
  }

  memory(h: NvmlHandle): Promise<NvmlMemory> {
    return this.#method(async () => {
      const d = this.#fn('memory');
      const v2 = d.name.endsWith('_v2');
      const type = v2 ? T.memoryV2 : T.memory;
      const buf = Buffer.alloc(koffi.sizeof(type));
      if (v2) buf.writeUInt32LE(MEMORY_V2_VERSION, 0);
      await this.#ok(d, [handle(d.name, h), buf]);
      const f = decodeStruct(d.name, buf, type);
      const out: NvmlMemory = {};
      for (const k of ['total', 'used', 'free', 'reserved'] as const) {
        const v = u64(f[k]);
        if (v !== undefined) out[k] = v;
      }
      return out;
    });
  }

  utilization(h: NvmlHandle): Promise<{ gpu?: number; memory?: number }> {
    return this.#method(async () => {
      const d = this.#fn('utilization');
      const buf = Buffer.alloc(koffi.sizeof(T.utilization));
      await this.#ok(d, [handle(d.name, h), buf]);
      const f = decodeStruct(d.name, buf, T.utilization);
      const out: { gpu?: number; memory?: number } = {};
      const gpu = percent(f.gpu);
      if (gpu !== undefined) out.gpu = gpu;
      const memory = percent(f.memory);
      if (memory !== undefined) out.memory = memory;
      return out;
    });
  }

  powerMilliwatts(h: NvmlHandle): Promise<number> {
    return this.#method(() => this.#u32Out('powerMilliwatts', h, 'power', U32_MAX - 1));
  }

  temperatureCelsius(h: NvmlHandle): Promise<number> {
    return this.#method(async () => {
      const d = this.#fn('temperatureCelsius');
      if (d.name === 'nvmlDeviceGetTemperature') {
        const out = Buffer.alloc(4);
        await this.#ok(d, [handle(d.name, h), NVML_TEMPERATURE_GPU, out]);
        const raw = out.readUInt32LE(0);
        return required(d.name, 'temperature', u32(raw, 1_000), raw);
      }
      const buf = Buffer.alloc(koffi.sizeof(T.temperature));
      buf.writeUInt32LE(TEMPERATURE_V1_VERSION, 0);
      buf.writeInt32LE(NVML_TEMPERATURE_GPU, 4);
      await this.#ok(d, [handle(d.name, h), buf]);
      const raw = decodeStruct(d.name, buf, T.temperature).temperature;
      const ok = typeof raw === 'number' && Number.isInteger(raw) && raw >= -273 && raw <= 1_000 ? raw : undefined;
      return required(d.name, 'temperature', ok, raw);
    });
  }

  computeProcesses(h: NvmlHandle): Promise<NvmlProcess[]> {
    return this.#method(() => this.#processes('computeProcesses', h));
  }

  graphicsProcesses(h: NvmlHandle): Promise<NvmlProcess[]> {
    return this.#method(() => this.#processes('graphicsProcesses', h));
  }

  async #processes(key: 'computeProcesses' | 'graphicsProcesses', h: NvmlHandle): Promise<NvmlProcess[]> {
    const d = this.#fn(key);
    const dev = handle(d.name, h);
    // The plain (unversioned) symbol fills the 16-byte v1 struct; _v2 and _v3 the 24-byte one.
    const type = d.name.endsWith('_v2') || d.name.endsWith('_v3') ? T.process : T.processV1;
    const rows = await this.#list(d, type, (array, count) => [dev, count, array]);
    return rows.map(toProcess).filter(isDefined);
  }

  processUtilization(h: NvmlHandle, lastSeenUs: number): Promise<NvmlProcessUtil[]> {
    return this.#method(async () => {
      const d = this.#fn('processUtilization');
      const dev = handle(d.name, h);
      if (!Number.isSafeInteger(lastSeenUs) || lastSeenUs < 0) throw new NvmlError(d.name, NVML_ERROR_INVALID_ARGUMENT, `lastSeenUs ${lastSeenUs}`);
      const since = BigInt(lastSeenUs);
      const rows = await this.#list(d, T.processUtil, (array, count) => [dev, array, count, since], [NVML_ERROR_NOT_FOUND]);
      return rows.map((f) => toProcessUtil(f, lastSeenUs)).filter(isDefined);
    });
  }

  // ---- MIG ----

  migMode(h: NvmlHandle): Promise<{ current: number; pending: number }> {
    return this.#method(async () => {
      const d = this.#fn('migMode');
      const current = Buffer.alloc(4);
      const pending = Buffer.alloc(4);
      await this.#ok(d, [handle(d.name, h), current, pending]);
      const c = current.readUInt32LE(0);
      const p = pending.readUInt32LE(0);
      return { current: required(d.name, 'current mode', u32(c, 1), c), pending: required(d.name, 'pending mode', u32(p, 1), p) };
    });
  }

  maxMigDeviceCount(h: NvmlHandle): Promise<number> {
    return this.#method(() => this.#u32Out('maxMigDeviceCount', h, 'MIG device count', MAX_MIG_DEVICES));
  }

  migDeviceHandleByIndex(h: NvmlHandle, index: number): Promise<NvmlHandle | undefined> {
    return this.#method(async () => {
      const d = this.#fn('migDeviceHandleByIndex');
      const out = Buffer.alloc(8);
      const code = await this.#native(d, [handle(d.name, h), index32(d.name, index), out]);
      if (code === NVML_ERROR_NOT_FOUND) return undefined;
      if (code !== NVML_SUCCESS) throw new NvmlError(d.name, code);
      return handleOut(d.name, out);
    });
  }

  gpuInstanceId(h: NvmlHandle): Promise<number> {
    return this.#method(() => this.#u32Out('gpuInstanceId', h, 'GPU instance id', U32_MAX - 1));
  }

  computeInstanceId(h: NvmlHandle): Promise<number> {
    return this.#method(() => this.#u32Out('computeInstanceId', h, 'compute instance id', U32_MAX - 1));
  }
}

/** A handle argument: a non-null pointer as a bigint (what handleByIndex and friends return). */
function handle(call: string, h: NvmlHandle): bigint {
  if (typeof h !== 'bigint' || h <= 0n || h > 0xffffffffffffffffn) throw new NvmlError(call, NVML_ERROR_INVALID_ARGUMENT, `bad device handle ${String(h)}`);
  return h;
}

function index32(call: string, index: number): number {
  if (u32(index) === undefined) throw new NvmlError(call, NVML_ERROR_INVALID_ARGUMENT, `bad index ${index}`);
  return index;
}

/** The nvmlDevice_t a call wrote into an 8-byte buffer. */
function handleOut(call: string, out: Buffer): NvmlHandle {
  const h = out.readBigUInt64LE(0);
  if (h === 0n) throw new NvmlError(call, NVML_ERROR_UNKNOWN, 'returned a NULL device handle');
  return h;
}
