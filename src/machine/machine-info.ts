import si from 'systeminformation';
import type { MachineSnapshot } from '../model/machine.js';
import { FileReader } from '../host/file-reader.js';
import { hostPath } from '../host/paths.js';

/** Where the hardware counts come from. Results are `unknown`: readMachineInfo validates every field it uses. */
export interface HardwareSource {
  /** Must resolve to an object with `cores`, `physicalCores` and `processors` (systeminformation `cpu()`). */
  cpu(): Promise<unknown>;
  /** Must resolve to an object with `total` and `swaptotal` in bytes (systeminformation `mem()`). */
  mem(): Promise<unknown>;
}

export interface MachineInfoOptions {
  /** Defaults to systeminformation, which reads the live host (not `rootfs`) and spawns `lscpu`. */
  source?: HardwareSource;
  /** How long each source call may take before its counts are given up as unknown. */
  timeoutMs?: number;
}

export const DEFAULT_MACHINE_INFO_TIMEOUT_MS = 10_000;

const systeminformation: HardwareSource = {
  cpu: () => si.cpu(),
  mem: () => si.mem(),
};

/** Files cAdvisor reads for the machine_id label, first non-empty one wins (its --machine_id_file default). */
const MACHINE_ID_FILES: readonly string[] = ['etc/machine-id', 'var/lib/dbus/machine-id'];
/**
 * cAdvisor's system UUID chain (utils/sysfs GetSystemUUID): DMI, then the PowerPC device tree, then — its s390x
 * fallback, applied on every architecture — /etc/machine-id. That is why system_uuid equals machine_id on
 * VMs without a readable DMI product_uuid (this machine's cAdvisor sample shows exactly that).
 */
const SYSTEM_UUID_FILES: readonly string[] = ['sys/class/dmi/id/product_uuid', 'proc/device-tree/system-id', 'proc/device-tree/vm,uuid', 'etc/machine-id'];
const BOOT_ID_FILES: readonly string[] = ['proc/sys/kernel/random/boot_id'];

/**
 * The machine facts cAdvisor exports as machine_* series and their labels.
 * - Counts (logical and physical cores, sockets, memory and swap bytes) come from `options.source`
 *   (systeminformation by default). A failing, hanging or nonsensical source leaves them `undefined`;
 *   this never throws.
 * - The labels `machine_id`, `system_uuid` and `boot_id` are read from files under `rootfs`, trimmed,
 *   and are '' when no file is readable.
 */
export async function readMachineInfo(rootfs: string, options: MachineInfoOptions = {}): Promise<MachineSnapshot> {
  const source = options.source ?? systeminformation;
  const timeoutMs = options.timeoutMs ?? DEFAULT_MACHINE_INFO_TIMEOUT_MS;
  const [cpu, mem] = await Promise.all([settleWithin(() => source.cpu(), timeoutMs), settleWithin(() => source.mem(), timeoutMs)]);

  const reader = new FileReader(4096, 64 * 1024);
  const machine: MachineSnapshot = {
    machineId: firstId(reader, rootfs, MACHINE_ID_FILES),
    systemUuid: firstId(reader, rootfs, SYSTEM_UUID_FILES),
    bootId: firstId(reader, rootfs, BOOT_ID_FILES),
  };
  const cpuCores = positiveInteger(property(cpu, 'cores'));
  const cpuPhysicalCores = positiveInteger(property(cpu, 'physicalCores'));
  const cpuSockets = positiveInteger(property(cpu, 'processors'));
  const memoryBytes = positiveInteger(property(mem, 'total'));
  // 0 is a real answer for swap: no swap configured.
  const swapBytes = nonNegativeInteger(property(mem, 'swaptotal'));
  if (cpuCores !== undefined) machine.cpuCores = cpuCores;
  if (cpuPhysicalCores !== undefined) machine.cpuPhysicalCores = cpuPhysicalCores;
  if (cpuSockets !== undefined) machine.cpuSockets = cpuSockets;
  if (memoryBytes !== undefined) machine.memoryBytes = memoryBytes;
  if (swapBytes !== undefined) machine.swapBytes = swapBytes;
  return machine;
}

/** The call's result, or `undefined` if it throws, rejects or has not settled after `timeoutMs`. */
async function settleWithin(call: () => Promise<unknown>, timeoutMs: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, timeoutMs, undefined);
  });
  try {
    return await Promise.race([call(), timeout]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

function property(value: unknown, key: string): unknown {
  if (typeof value !== 'object' || value === null) return undefined;
  return Object.getOwnPropertyDescriptor(value, key)?.value;
}

function positiveInteger(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

function nonNegativeInteger(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** The first of `files` (relative to rootfs) that reads as a non-empty id; '' if none does. */
function firstId(reader: FileReader, rootfs: string, files: readonly string[]): string {
  for (const file of files) {
    const id = readId(reader, hostPath(rootfs, file));
    if (id !== '') return id;
  }
  return '';
}

/** A whole small file, trimmed of whitespace and the NUL terminators device-tree properties carry; '' if unreadable. */
function readId(reader: FileReader, file: string): string {
  let text: string | undefined;
  try {
    text = reader.read(file);
  } catch {
    // EACCES is normal here (product_uuid is 0400 root); unreadable means unknown, as in cAdvisor.
    return '';
  }
  return (text ?? '').replace(/\0/g, '').trim();
}
