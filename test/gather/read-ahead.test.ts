import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { Gatherer } from '../../src/gather/gatherer.js';
import { loadLayout } from '../../src/cgroup/layout.js';
import { ThreadReadAhead, type ReadAhead, type ReadAheadResult } from '../../src/gather/read-ahead.js';
import { silentLogger, type Logger } from '../../src/log.js';
import type { Snapshot } from '../../src/model/snapshot.js';
import { copyFixtureHost, PINNED_MACHINE } from '../support/fixture-host.js';
import { THREAD_TIMEOUT_MS } from '../support/threads.js';

// --gather-threads=2: a second thread reads ahead the files (and counts the fds) of the cgroups at the end of the
// list. Whatever it reads, the snapshot must be the one a single thread makes; whatever fails, nothing is lost.

const SHIM = new URL('../support/ts-read-ahead-worker.mjs', import.meta.url);
const APP =
  '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8b6e3e5c_1f0a_4c57_9a1e_2d4f6b7c8d90.slice/cri-containerd-3230f737b03de3d001a61e82d2dcd0845794301a4779370e04fadee8a0e9e5e4.scope';

/** Counts what the gather hands to the read-ahead and what comes back; `rewrite` may change the reply. */
class Recording implements ReadAhead {
  batches: { files: string[]; fds: number }[] = [];
  constructor(
    readonly inner: ReadAhead,
    readonly rewrite: (files: readonly string[], r: ReadAheadResult) => ReadAheadResult = (_, r) => r,
  ) {}
  async read(files: readonly string[], procRoot: string): Promise<ReadAheadResult> {
    const r = this.rewrite(files, await this.inner.read(files, procRoot));
    this.batches.push({ files: [...files], fds: r.fds.size });
    return r;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function gatherer(root: string, readAhead?: ReadAhead, log: Logger = silentLogger): Gatherer {
  return new Gatherer(loadLayout(root), {
    rootfs: root,
    allowPrefixes: [],
    machineInfoIntervalMs: 300_000,
    log,
    now: () => 1_700_000_000_000,
    machineInfo: async () => PINNED_MACHINE,
    ...(readAhead === undefined ? {} : { readAhead }),
  });
}

function fixture(t: Test, name: string): string {
  const root = copyFixtureHost(name);
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  return root;
}

const view = (s: Snapshot): unknown => ({ containers: s.containers, errors: s.collectorErrors, machine: s.machine });

for (const host of ['v2-systemd', 'v1-cgroupfs']) {
  t.test(`${host}: the read-ahead thread's gathers equal a single thread's`, async (t) => {
    const root = fixture(t, host);
    const ra = new Recording(new ThreadReadAhead({ workerUrl: SHIM, timeoutMs: THREAD_TIMEOUT_MS }));
    t.teardown(() => ra.close());
    const two = gatherer(root, ra);
    const one = gatherer(root);
    const first = await two.gather();
    t.equal(ra.batches.length, 0, 'the first gather has no reads to go by: one thread');
    t.same(view(first), view(await one.gather()));
    const second = await two.gather();
    t.equal(ra.batches.length, 1, 'the second one reads ahead');
    const batch = ra.batches[0] ?? { files: [], fds: 0 };
    t.ok(batch.files.length > 0, `${batch.files.length} files read ahead`);
    t.ok(
      batch.files.some((f) => f.endsWith('/cgroup.procs')),
      'cgroup.procs among them',
    );
    t.ok(batch.fds > 0, `${batch.fds} processes' fds counted ahead`);
    t.ok(batch.files.length < second.containers.length * 40, 'a share of the files, not all of them');
    t.same(view(second), view(await one.gather()), 'same snapshot, same (zero) errors');
  });
}

t.test('outcomes from the thread stand for the reads: an error there is the error a read would have thrown', async (t) => {
  const root = fixture(t, 'v2-systemd');
  const target = path.join(root, 'sys/fs/cgroup', APP, 'memory.stat');
  const ra = new Recording(new ThreadReadAhead({ workerUrl: SHIM, timeoutMs: THREAD_TIMEOUT_MS }), (files, r) => ({
    fds: r.fds,
    outcomes: r.outcomes.map((o, i) => (files[i] === target ? { code: 'EIO', message: `EIO: i/o error, read '${target}'` } : o)),
  }));
  t.teardown(() => ra.close());
  const g = gatherer(root, ra);
  await g.gather();
  const snap = await g.gather();
  t.ok(ra.batches[0]?.files.includes(target), "the app container is in the thread's share");
  const app = snap.containers.find((c) => c.id === APP);
  t.equal(app?.cgroup.memory?.rssBytes, undefined, 'memory.stat series dropped');
  t.ok(app?.cgroup.cpu?.usageSeconds !== undefined, 'other collectors untouched');
  t.same(snap.collectorErrors, { memory: 1 }, 'counted as a memory collector error');
});

t.test('a read-ahead thread that fails: one warning, and this thread reads everything itself', async (t) => {
  const root = fixture(t, 'v1-cgroupfs');
  const warnings: string[] = [];
  const log: Logger = { ...silentLogger, warn: (msg: string) => warnings.push(msg) };
  const failing: ReadAhead = { read: () => Promise.reject(new Error('read-ahead thread exited (code 1)')), close: async () => {} };
  const g = gatherer(root, failing, log);
  const one = gatherer(root);
  await g.gather();
  t.same(view(await g.gather()), view(await one.gather()), 'nothing lost');
  t.same(view(await g.gather()), view(await one.gather()));
  t.equal(warnings.length, 1, 'warned once, not per gather');
  t.match(warnings[0], /read-ahead thread failed/);
});
