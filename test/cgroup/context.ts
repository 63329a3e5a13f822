import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { detectLayout } from '../../src/cgroup/mountinfo.js';
import type { CgroupLayout, CgroupReadContext, CollectorName } from '../../src/cgroup/types.js';
import { FileReader } from '../../src/host/file-reader.js';
import { hostPath } from '../../src/host/paths.js';

/** Test helpers (not a test file): a read context over a real tree that records what it reports. */

export interface ReportedError {
  collector: CollectorName;
  file: string;
  err: unknown;
}

/** Absolute path of a host tree under test/fixtures/hosts/. */
export function fixtureHost(name: string): string {
  return fileURLToPath(new URL(`../fixtures/hosts/${name}`, import.meta.url));
}

/** The layout of a host tree, from its proc/1/mountinfo. */
export function fixtureLayout(rootfs: string): CgroupLayout {
  return detectLayout(fs.readFileSync(hostPath(rootfs, 'proc/1/mountinfo'), 'utf8'), rootfs);
}

/** A context reading real files with FileReader; `reads` counts reads per file, `errors` collects onError calls. */
export function recordingContext(
  layout: CgroupLayout,
  rootfs: string,
): { ctx: CgroupReadContext; errors: ReportedError[]; reads: Map<string, number> } {
  const reader = new FileReader();
  const errors: ReportedError[] = [];
  const reads = new Map<string, number>();
  const ctx: CgroupReadContext = {
    layout,
    read(file) {
      reads.set(file, (reads.get(file) ?? 0) + 1);
      return reader.read(file);
    },
    onError(collector, file, err) {
      errors.push({ collector, file, err });
    },
    readMeminfo() {
      return reader.read(hostPath(rootfs, 'proc/meminfo'));
    },
  };
  return { ctx, errors, reads };
}
