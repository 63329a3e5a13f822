/**
 * Copies a fixture host tree (test/fixtures/hosts/<name>) into a temp dir with every directory's mtime pinned, so
 * container_start_time_seconds is the same on every checkout, and builds a LocalEngine over it with a pinned clock
 * and pinned machine facts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalEngine } from '../../src/scrape/engine.js';
import { loadLayout } from '../../src/cgroup/layout.js';
import type { MachineSnapshot } from '../../src/model/machine.js';
import { silentLogger } from '../../src/log.js';

export const FIXTURE_HOSTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/hosts');
/** 2026-11-01T00:00:00Z: the pinned mtime of every fixture directory. */
export const PINNED_MTIME_S = 1793491200;
export const PINNED_NOW_MS = 1793577600_000;

export const PINNED_MACHINE: MachineSnapshot = {
  cpuCores: 8,
  cpuPhysicalCores: 4,
  cpuSockets: 1,
  memoryBytes: 33_554_432_000,
  swapBytes: 0,
  machineId: '5b9c3f1e2a4d4c8f9e0a1b2c3d4e5f60',
  systemUuid: 'ec2a7f3e-1c4b-4a9d-8e2f-3b5c6d7e8f90',
  bootId: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0',
};

function pinMtimes(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) pinMtimes(path.join(dir, e.name));
  }
  fs.utimesSync(dir, PINNED_MTIME_S, PINNED_MTIME_S);
}

/** A private copy of a fixture host; removed by the caller (`fs.rmSync(root, { recursive: true })`). */
export function copyFixtureHost(name: string): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `podvisor-${name}-`));
  fs.cpSync(path.join(FIXTURE_HOSTS, name), root, { recursive: true, verbatimSymlinks: true });
  pinMtimes(root);
  return root;
}

export function fixtureEngine(rootfs: string, allowPrefixes: readonly string[] = []): LocalEngine {
  return new LocalEngine({ layout: loadLayout(rootfs), rootfs, allowPrefixes, machineInfoIntervalMs: 300_000 }, silentLogger, {
    now: () => PINNED_NOW_MS,
    machineInfo: async () => PINNED_MACHINE,
  });
}
