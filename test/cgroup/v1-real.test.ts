import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { cgroupExists, listCgroups, procsFile } from '../../src/cgroup/discover.js';
import { detectLayout } from '../../src/cgroup/layout.js';
import { readCgroupStats } from '../../src/cgroup/read.js';
import { recordingContext } from './fixtures/context.js';

// The v1 readers against real cgroups of this kernel. The test creates its own cgroups
// (`<mount>/podvisor-test-<pid>/child` in the cpu, cpuacct, memory, pids and blkio hierarchies), moves only its own
// child process into them, and removes them again in teardown. It writes to no cgroup it did not create.

const CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'pids', 'blkio'] as const;
const TOP = `/podvisor-test-${process.pid}`;
const CGROUP = `${TOP}/child`;
const QUOTA_US = 50000;
const PIDS_MAX = 50;
const MEMORY_LIMIT = 256 * 1024 * 1024;

/**
 * The child: waits for "go" (sent once it is in the cgroups), writes 4 MiB with O_DIRECT (so blkio counts it; tmpfs
 * refuses O_DIRECT, which the test notices), reads the file back through the page cache (memory charged to the cgroup),
 * says "ready", then spins.
 */
const CHILD_SCRIPT = `read go
dd if=/dev/zero of="$1" bs=1M count=4 oflag=direct 2>/dev/null && echo direct > "$2"
[ -s "$1" ] || head -c 4194304 /dev/zero > "$1"
cat "$1" > /dev/null
echo ready
while :; do :; done`;

const layout = detectLayout(fs.readFileSync('/proc/self/mountinfo', 'utf8'), '/');
const missing = CONTROLLERS.filter((c) => !layout.v1.has(c));
const isRoot = process.getuid?.() === 0;

if (missing.length > 0) {
  t.plan(0, `skipped: no cgroup v1 hierarchy for ${missing.join(', ')} on this host (layout ${layout.mode})`);
} else if (!isRoot && process.env.CI === 'true') {
  t.fail('v1-real needs root in CI to create cgroups; run the suite as root');
} else if (!isRoot) {
  t.plan(0, 'skipped: needs root to create cgroups (CI=true makes this a failure)');
} else {
  t.test('v1 readers on real cgroups', async (t) => {
    const dirs = [...new Set(CONTROLLERS.map((c) => layout.v1.get(c) ?? ''))];
    // Our own temp dir (not t.testdir(), which concurrent runs of this file would share and wipe).
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-v1-real-'));
    t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));
    const dataFile = path.join(work, 'io.dat');
    const directMarker = path.join(work, 'direct');
    let child: ChildProcess | undefined;

    const cleanup = async (): Promise<void> => {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child?.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
      for (const dir of dirs) {
        for (const p of [CGROUP, TOP]) {
          const cg = path.join(dir, p);
          // A cgroup whose last task just exited can be EBUSY for a moment.
          for (let attempt = 0; fs.existsSync(cg); attempt++) {
            try {
              fs.rmdirSync(cg);
            } catch (err) {
              if (attempt >= 50) throw err;
              await sleep(20);
            }
          }
        }
      }
    };
    t.teardown(cleanup);

    for (const dir of dirs) fs.mkdirSync(path.join(dir, CGROUP), { recursive: true });
    const at = (controller: (typeof CONTROLLERS)[number], file: string): string => path.join(layout.v1.get(controller) ?? '', CGROUP, file);
    fs.writeFileSync(at('cpu', 'cpu.cfs_quota_us'), `${QUOTA_US}\n`);
    fs.writeFileSync(at('pids', 'pids.max'), `${PIDS_MAX}\n`);
    fs.writeFileSync(at('memory', 'memory.limit_in_bytes'), `${MEMORY_LIMIT}\n`);

    const spawned = spawn('sh', ['-c', CHILD_SCRIPT, 'sh', dataFile, directMarker], { stdio: ['pipe', 'pipe', 'ignore'] });
    child = spawned;
    const pid = spawned.pid;
    if (pid === undefined) throw new Error('could not start the child process');
    for (const dir of dirs) fs.writeFileSync(path.join(dir, CGROUP, 'cgroup.procs'), `${pid}\n`);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('child not ready after 20 s')), 20000);
      spawned.stdout?.on('data', (chunk: Buffer) => {
        if (!chunk.toString().includes('ready')) return;
        clearTimeout(timer);
        resolve();
      });
      spawned.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`child exited early (${code})`));
      });
      spawned.stdin?.write('go\n');
    });

    t.strictSame(listCgroups(layout, [TOP]), ['/', TOP, CGROUP], 'discovery finds our cgroups via the allowlist');
    t.ok(cgroupExists(layout, CGROUP));
    const procs = procsFile(layout, CGROUP);
    t.equal(procs, at('pids', 'cgroup.procs'), 'cgroup.procs from the pids hierarchy');
    t.match(fs.readFileSync(procs ?? '', 'utf8'), new RegExp(`^${pid}$`, 'm'), 'our child is in it');

    const { ctx, errors } = recordingContext(layout, '/');
    const t0 = performance.now();
    const first = readCgroupStats(ctx, CGROUP);
    // On a busy machine the child may get too little CPU to hit its quota at once, and the kernel adds to
    // throttled_time only when a throttled period ends: read until throttled time shows.
    let second = first;
    do {
      await sleep(300);
      second = readCgroupStats(ctx, CGROUP);
    } while ((second.cpu?.throttledSeconds ?? 0) === 0 && performance.now() - t0 < 15000);
    const elapsed = (performance.now() - t0) / 1000;
    t.strictSame(errors, [], 'no read or parse errors');

    const u1 = first.cpu?.usageSeconds ?? NaN;
    const u2 = second.cpu?.usageSeconds ?? NaN;
    t.ok(u2 > u1, `cpu usage grows (${u1} → ${u2})`);
    t.ok(u2 - u1 <= elapsed * (QUOTA_US / 100000) + 0.1, `the 50% quota holds (${(u2 - u1).toFixed(3)} s in ${elapsed.toFixed(3)} s)`);
    const perCpu = second.cpu?.perCpuSeconds ?? [];
    t.ok(perCpu.length >= 1, 'one value per possible CPU');
    t.ok(Math.abs(perCpu.reduce((a, b) => a + b, 0) - u2) < 0.05, 'per-CPU usage sums to the total');
    t.ok((second.cpu?.userSeconds ?? 0) + (second.cpu?.systemSeconds ?? 0) > 0, 'user + system ticks counted');
    t.ok((second.cpu?.periods ?? 0) > 0, `CFS periods counted (${second.cpu?.periods})`);
    t.ok((second.cpu?.throttledPeriods ?? 0) > 0, `a spinning child is throttled (${second.cpu?.throttledPeriods})`);
    t.ok((second.cpu?.throttledSeconds ?? 0) > 0, 'throttled time in seconds');

    const mem = second.memory;
    t.ok((mem?.usageBytes ?? 0) > 0, `memory usage ${mem?.usageBytes}`);
    // Most of the 4 MiB read back stays charged as page cache (a few pages may already be reclaimed or uncharged).
    t.ok((mem?.cacheBytes ?? 0) >= 3 * 1024 * 1024, `the file read back is page cache (${mem?.cacheBytes})`);
    t.ok(
      mem?.workingSetBytes !== undefined && mem.usageBytes !== undefined && mem.workingSetBytes === Math.max(0, mem.usageBytes - (mem.inactiveFileBytes ?? 0)),
      'working set = usage − total_inactive_file',
    );
    t.ok((mem?.pgfault?.container ?? 0) > 0, 'page faults counted');
    t.equal(mem?.pgfault?.hierarchy, mem?.pgfault?.container, 'both scopes carry pgfault');

    t.ok((second.pids?.current ?? 0) >= 1, `pids.current ${second.pids?.current}`);
    t.equal(second.pids?.max, PIDS_MAX);
    t.equal(second.spec.cpuQuota, QUOTA_US);
    t.equal(second.spec.cpuPeriod, 100000);
    t.equal(second.spec.cpuShares, 1024);
    t.equal(second.spec.memoryLimitBytes, MEMORY_LIMIT);
    t.equal(second.spec.memoryReservationBytes, 0, 'unlimited soft limit is 0');

    t.ok(Array.isArray(second.blkio), 'blkio read');
    if (fs.existsSync(directMarker)) {
      const written = (second.blkio ?? []).reduce((sum, d) => sum + (d.bytes['Write'] ?? 0), 0);
      t.ok(written >= 4 * 1024 * 1024, `4 MiB of direct writes counted (${written})`);
    } else {
      t.comment('O_DIRECT is not supported where the test dir lives: blkio bytes not checked');
    }

    if (layout.mode === 'hybrid') {
      t.equal(second.pressure, undefined, 'our cgroup is not in the unified tree: no PSI');
      const root = readCgroupStats(ctx, '/');
      if (layout.v2 !== undefined && fs.existsSync(path.join(layout.v2, 'cpu.pressure'))) {
        t.ok((root.pressure?.cpu?.someSeconds ?? -1) >= 0, 'hybrid root: PSI from the unified mount');
      }
      t.strictSame(errors, []);
    }

    await cleanup();
    t.notOk(cgroupExists(layout, CGROUP), 'gone after cleanup');
    const { ctx: after, errors: afterErrors } = recordingContext(layout, '/');
    t.strictSame(readCgroupStats(after, CGROUP), { spec: {} }, 'a removed cgroup reads as nothing');
    t.strictSame(afterErrors, [], 'and counts no error');
  });
}
