/**
 * The fake NVML (fake-nvml/fake-nvml.c): builds it with gcc into a cache directory, writes the scenario it answers
 * from, and gives the environment a process that loads it needs.
 *
 *   const { path } = buildFakeNvml();                       // <tmp>/podvisor-fake-nvml/<hash>-default/libnvidia-ml.so.1
 *   writeScenario(file, { gpus: [{ uuid: 'GPU-1', name: 'NVIDIA A100', memTotal: 80e9, compute: [{ pid: 42, mem: 1e9 }] }] });
 *   Object.assign(process.env, fakeNvmlEnv(file, log));    // or pass it to a child
 *   const nvml = loadNvml(path, { timeoutMs: 2_000 }); await nvml.init();
 *
 * The library re-reads the scenario whenever the file changes (writeScenario renames a new file into place), so a
 * test changes the "driver" mid-run: a GPU lost, a hang added or removed. A call named in `hang` never returns until a
 * later scenario drops it; a native call that never returns also blocks process exit, so a test that hangs a call must
 * remove the hang and see the call return before it ends.
 *
 * Scenario file (lines, strings as hex): see the comment at the top of fake-nvml.c.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = fileURLToPath(new URL('./fake-nvml/fake-nvml.c', import.meta.url));
const GCC_ARGS = ['-shared', '-fPIC', '-O1', '-pthread', '-fvisibility=hidden', '-Wall', '-Wextra'];

export interface FakeNvmlVariant {
  /** No `_v3` running-process symbols (the library falls back to `_v2`). */
  noV3?: boolean;
  /** No `_v3` nor `_v2`: only the plain symbols with the 16-byte v1 struct. */
  noV2Procs?: boolean;
  /** No nvmlDeviceGetMemoryInfo_v2 (the library falls back to the v1 call). */
  noMemInfoV2?: boolean;
  /** No nvmlDeviceGetTemperature (only nvmlDeviceGetTemperatureV). */
  noOldTemperature?: boolean;
}

export interface FakeNvmlBuild {
  dir: string;
  /** `<dir>/libnvidia-ml.so.1` */
  path: string;
}

const DEFINES: ReadonlyArray<[keyof FakeNvmlVariant, string]> = [
  ['noV3', 'FAKE_NVML_NO_V3'],
  ['noV2Procs', 'FAKE_NVML_NO_V2_PROCS'],
  ['noMemInfoV2', 'FAKE_NVML_NO_MEMINFO_V2'],
  ['noOldTemperature', 'FAKE_NVML_NO_OLD_TEMPERATURE'],
];

/**
 * Builds the fake (once per source and variant: `<os.tmpdir()>/podvisor-fake-nvml/<source hash>-<variant>/`) and
 * returns where it is. Safe when several test processes build at once: each compiles to a temporary name and renames
 * it into place.
 */
export function buildFakeNvml(variant: FakeNvmlVariant = {}): FakeNvmlBuild {
  const defines = DEFINES.filter(([k]) => variant[k] === true).map(([, d]) => d);
  const args = [...GCC_ARGS, ...defines.map((d) => `-D${d}`)];
  const hash = createHash('sha256').update(fs.readFileSync(SOURCE)).update(args.join(' ')).digest('hex').slice(0, 16);
  const tag = defines.length === 0 ? 'default' : defines.map((d) => d.replace(/^FAKE_NVML_/, '').toLowerCase()).join('+');
  const dir = path.join(os.tmpdir(), 'podvisor-fake-nvml', `${hash}-${tag}`);
  const lib = path.join(dir, 'libnvidia-ml.so.1');
  if (!fs.existsSync(lib)) {
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${lib}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    try {
      execFileSync('gcc', [...args, '-o', tmp, SOURCE], { stdio: ['ignore', 'ignore', 'pipe'] });
      fs.renameSync(tmp, lib);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  return { dir, path: lib };
}

/**
 * Compiles a small C source into a shared object at `file` (for libraries that are not NVML, or NVML missing a
 * symbol).
 */
export function buildSharedObject(file: string, source: string): void {
  const src = `${file}.c`;
  fs.writeFileSync(src, source);
  execFileSync('gcc', ['-shared', '-fPIC', '-O1', '-o', file, src], { stdio: ['ignore', 'ignore', 'pipe'] });
}

export interface FakeProc {
  pid: number;
  /** usedGpuMemory in bytes; 'na' (or absent) = NVML_VALUE_NOT_AVAILABLE. */
  mem?: number | bigint | 'na';
}

export interface FakeSample {
  pid: number;
  sm: number;
  mem: number;
  /** µs since the epoch; default: the time of the call (so always newer than any lastSeen in the past). */
  tsUs?: number;
}

export interface FakeMig {
  uuid: string;
  /** MIG slot of the parent (0..6, what nvmlDeviceGetMigDeviceHandleByIndex takes); default: the array index. */
  slot?: number;
  name?: string;
  gi: number;
  ci: number;
  memTotal?: number | bigint;
  /** free = total - used unless both are absent. */
  memUsed?: number | bigint;
  compute?: FakeProc[];
  fail?: Record<string, number>;
  hang?: string[];
}

/** A field left out makes its call answer NVML_ERROR_NOT_SUPPORTED (`compute: []` is an empty list). */
export interface FakeGpu {
  uuid: string;
  name?: string;
  /** Raw name bytes (wins over `name`): for names that are not UTF-8. */
  nameBytes?: Buffer;
  minor?: number;
  /** NVML_VALUE_NOT_AVAILABLE is 2n ** 64n - 1n. */
  memTotal?: number | bigint;
  /** Without reserved memory (the _v2 call's `used`; the v1 call answers used + reserved). */
  memUsed?: number | bigint;
  memFree?: number | bigint;
  memReserved?: number | bigint;
  utilGpu?: number;
  utilMem?: number;
  powerMw?: number;
  tempC?: number;
  /** Undefined: MIG not supported (pre-Ampere). 1: utilization calls answer NOT_SUPPORTED, 7 MIG slots. */
  migMode?: 0 | 1;
  mig?: FakeMig[];
  /** Every call on this device, its MIG devices, and nvmlDeviceGetHandleByIndex_v2 for it answer GPU_IS_LOST. */
  lost?: boolean;
  /** Running processes of the GPU itself; the GPU's lists also include its MIG devices' processes (with GI/CI ids). */
  compute?: FakeProc[];
  graphics?: FakeProc[];
  /** nvmlDeviceGetProcessUtilization; `[]` answers NOT_FOUND, absent NOT_SUPPORTED. */
  samples?: FakeSample[];
  /** A sizing call (NULL array) reports this many fewer entries than exist; 'always': every fetch asks for more. */
  growing?: number | 'always';
  /** NVML function name → the code it returns for this device. */
  fail?: Record<string, number>;
  /** NVML function names (or '*') that never return for this device while listed. */
  hang?: string[];
}

export interface FakeScenario {
  driverVersion?: string;
  /** What nvmlInit_v2 returns (default 0). */
  initCode?: number;
  gpus: FakeGpu[];
  /** Every call sleeps this long first (makes overlapping calls observable in the log). */
  delayMs?: number;
  /** Calls (any device, or none) that fail with a code. */
  fail?: Record<string, number>;
  /** Calls (any device, or '*' for all) that never return while listed. */
  hang?: string[];
}

function hex(s: string | Buffer): string {
  return (typeof s === 'string' ? Buffer.from(s, 'utf8') : s).toString('hex');
}

function token(what: string, v: string): string {
  if (!/^[A-Za-z0-9_*]+$/.test(v)) throw new Error(`fake NVML scenario: bad ${what} ${JSON.stringify(v)}`);
  return v;
}

function uint(what: string, v: number | bigint, max: bigint): string {
  const b = typeof v === 'bigint' ? v : Number.isInteger(v) ? BigInt(v) : -1n;
  if (b < 0n || b > max) throw new Error(`fake NVML scenario: ${what} ${String(v)} is not an integer in 0..${max}`);
  return b.toString();
}

const U32 = 0xffffffffn;
const U64 = 0xffffffffffffffffn;

function rules(fail: Record<string, number> | undefined, hang: string[] | undefined): string[] {
  return [
    ...Object.entries(fail ?? {}).map(([fn, code]) => `fail ${token('function', fn)} ${uint('code', code, U32)}`),
    ...(hang ?? []).map((fn) => `hang ${token('function', fn)}`),
  ];
}

function mem(key: string, v: number | bigint | undefined): string[] {
  return v === undefined ? [] : [`${key} ${uint(key, v, U64)}`];
}

function u32Line(key: string, v: number | undefined): string[] {
  return v === undefined ? [] : [`${key} ${uint(key, v, U32)}`];
}

function procs(kind: 'compute' | 'graphics', list: FakeProc[] | undefined): string[] {
  if (list === undefined) return [];
  return [`${kind}-list`, ...list.map((p) => `${kind} ${uint('pid', p.pid, U32)} ${p.mem === undefined || p.mem === 'na' ? 'na' : uint('mem', p.mem, U64)}`)];
}

function migLines(m: FakeMig, index: number): string[] {
  return [
    `mig ${hex(m.uuid)} ${uint('slot', m.slot ?? index, 6n)}`,
    ...(m.name === undefined ? [] : [`name ${hex(m.name)}`]),
    `gi ${uint('gi', m.gi, U32)}`,
    `ci ${uint('ci', m.ci, U32)}`,
    ...mem('memTotal', m.memTotal),
    ...mem('memUsed', m.memUsed),
    ...procs('compute', m.compute),
    ...rules(m.fail, m.hang),
  ];
}

function gpuLines(g: FakeGpu): string[] {
  const name = g.nameBytes ?? g.name;
  return [
    `gpu ${hex(g.uuid)}`,
    ...(name === undefined ? [] : [`name ${hex(name)}`]),
    ...u32Line('minor', g.minor),
    ...mem('memTotal', g.memTotal),
    ...mem('memUsed', g.memUsed),
    ...mem('memFree', g.memFree),
    ...mem('memReserved', g.memReserved),
    ...u32Line('utilGpu', g.utilGpu),
    ...u32Line('utilMem', g.utilMem),
    ...u32Line('powerMw', g.powerMw),
    ...(g.tempC === undefined ? [] : [`tempC ${Math.trunc(g.tempC)}`]),
    ...u32Line('migMode', g.migMode),
    ...(g.lost === true ? ['lost'] : []),
    ...(g.growing === undefined ? [] : [`growing ${g.growing === 'always' ? 'always' : uint('growing', g.growing, U32)}`]),
    ...procs('compute', g.compute),
    ...procs('graphics', g.graphics),
    ...(g.samples === undefined
      ? []
      : [
          'samples-list',
          ...g.samples.map(
            (s) =>
              `sample ${uint('pid', s.pid, U32)} ${uint('sm', s.sm, U32)} ${uint('mem', s.mem, U32)} ${s.tsUs === undefined ? 'now' : uint('tsUs', s.tsUs, U64)}`,
          ),
        ]),
    ...rules(g.fail, g.hang),
    // MIG devices last: their lines apply to them until the next gpu or mig line
    ...(g.mig ?? []).flatMap(migLines),
  ];
}

/** The scenario as the C side reads it. */
export function scenarioText(s: FakeScenario): string {
  const lines = [
    'fake-nvml 1',
    ...(s.driverVersion === undefined ? [] : [`driver ${hex(s.driverVersion)}`]),
    `init ${uint('initCode', s.initCode ?? 0, U32)}`,
    ...(s.delayMs === undefined ? [] : [`delay ${uint('delayMs', s.delayMs, U32)}`]),
    ...rules(s.fail, s.hang),
    ...s.gpus.flatMap(gpuLines),
  ];
  return `${lines.join('\n')}\n`;
}

/** Writes the scenario file atomically (tmp + rename); the library re-reads it when its mtime/size/inode change. */
export function writeScenario(file: string, s: FakeScenario): void {
  const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, scenarioText(s));
  fs.renameSync(tmp, file);
}

/** Env for a process that loads the fake: FAKE_NVML_SCENARIO=<file>, FAKE_NVML_LOG=<log> (one line per call: function name [uuid]). */
export function fakeNvmlEnv(scenarioFile: string, logFile?: string): Record<string, string> {
  return { FAKE_NVML_SCENARIO: scenarioFile, ...(logFile === undefined ? {} : { FAKE_NVML_LOG: logFile }) };
}

/** The calls logged so far: `[function, uuid?]` per line; `!concurrent` lines come back as `['!concurrent', n]`. */
export function readNvmlLog(logFile: string): string[][] {
  let text: string;
  try {
    text = fs.readFileSync(logFile, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split(' ').slice(0, 2));
}
