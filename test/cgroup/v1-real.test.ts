import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { poll, until } from '../support/poll.js';
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
/** 10 ms per 100 ms period: a spinning child uses it up in a period even on a busy machine, and is throttled. */
const QUOTA_US = 10_000;
/** The v1 files blkio bytes come from, in the order they are tried (opencontainers/cgroups fs/blkio.go). */
const BLKIO_FILES = ['blkio.io_service_bytes_recursive', 'blkio.bfq.io_service_bytes_recursive', 'blkio.throttle.io_service_bytes_recursive'];

/** `key value` lines (cpu.stat, cpuacct.stat, memory.stat), read by the test itself. */
function flatKeyed(text: string): Map<string, number> {
  return new Map(
    text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        const [k = '', v = ''] = l.trim().split(/\s+/);
        return [k, Number(v)];
      }),
  );
}

/**
 * What the kernel says about blkio bytes, parsed by the test itself: the device rows (`<major>:<minor> <Op> <bytes>`,
 * the closing `Total <bytes>` dropped) of the first file in BLKIO_FILES that has any; `[]` when the files exist without
 * rows; undefined when none exists.
 */
function blkioRows(readFile: (name: string) => string | undefined): { major: number; minor: number; bytes: Record<string, number> }[] | undefined {
  let seen: { major: number; minor: number; bytes: Record<string, number> }[] | undefined;
  for (const name of BLKIO_FILES) {
    const text = readFile(name);
    if (text === undefined) continue;
    const devices = new Map<string, { major: number; minor: number; bytes: Record<string, number> }>();
    for (const line of text.split('\n')) {
      const m = /^(\d+):(\d+) (\S+) (\d+)$/.exec(line.trim());
      if (m === null) continue;
      const key = `${m[1]}:${m[2]}`;
      const entry = devices.get(key) ?? { major: Number(m[1]), minor: Number(m[2]), bytes: {} };
      entry.bytes[m[3] ?? ''] = Number(m[4]);
      devices.set(key, entry);
    }
    if (devices.size > 0) return [...devices.values()];
    seen ??= [];
  }
  return seen;
}
const PIDS_MAX = 50;
const MEMORY_LIMIT = 256 * 1024 * 1024;

/**
 * The child: waits for "go" (sent once it is in the cgroups), writes 4 MiB with O_DIRECT (block I/O of its own, which
 * v1 blkio counts where the kernel accounts it at all; a filesystem that refuses O_DIRECT is noticed), reads the file
 * back through the page cache (memory charged to the cgroup), says "ready", then spins.
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
    // Set once the child is spawned; cleanup (a teardown) may run before that.
    const started: { child?: ChildProcess } = {};

    const cleanup = async (): Promise<void> => {
      const child = started.child;
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
      for (const dir of dirs) {
        for (const p of [CGROUP, TOP]) {
          const cg = path.join(dir, p);
          // A cgroup whose last task just exited can be EBUSY for a moment (longer on a busy machine).
          await until(`${cg} removed`, () => {
            if (fs.existsSync(cg)) fs.rmdirSync(cg);
            return true;
          });
        }
      }
    };
    t.teardown(cleanup);

    for (const dir of dirs) fs.mkdirSync(path.join(dir, CGROUP), { recursive: true });
    const at = (controller: (typeof CONTROLLERS)[number], file: string): string => path.join(layout.v1.get(controller) ?? '', CGROUP, file);
    // The kernel's own numbers for our cgroup, read by the test, to check podvisor's against.
    const kernelCpu = () => {
      const stat = flatKeyed(fs.readFileSync(at('cpu', 'cpu.stat'), 'utf8'));
      const acct = flatKeyed(fs.readFileSync(at('cpuacct', 'cpuacct.stat'), 'utf8'));
      return {
        usageNs: Number(fs.readFileSync(at('cpuacct', 'cpuacct.usage'), 'utf8')),
        nrPeriods: stat.get('nr_periods') ?? NaN,
        nrThrottled: stat.get('nr_throttled') ?? NaN,
        throttledNs: stat.get('throttled_time') ?? NaN,
        userTicks: acct.get('user') ?? NaN,
        systemTicks: acct.get('system') ?? NaN,
      };
    };
    const kernelMemoryStat = (): Map<string, number> => flatKeyed(fs.readFileSync(at('memory', 'memory.stat'), 'utf8'));
    const kernelBlkio = () =>
      blkioRows((name) => {
        try {
          return fs.readFileSync(at('blkio', name), 'utf8');
        } catch {
          return undefined;
        }
      });
    fs.writeFileSync(at('cpu', 'cpu.cfs_quota_us'), `${QUOTA_US}\n`);
    fs.writeFileSync(at('pids', 'pids.max'), `${PIDS_MAX}\n`);
    fs.writeFileSync(at('memory', 'memory.limit_in_bytes'), `${MEMORY_LIMIT}\n`);

    const spawned = spawn('sh', ['-c', CHILD_SCRIPT, 'sh', dataFile, directMarker], { stdio: ['pipe', 'pipe', 'ignore'] });
    started.child = spawned;
    const pid = spawned.pid;
    if (pid === undefined) throw new Error('could not start the child process');
    for (const dir of dirs) fs.writeFileSync(path.join(dir, CGROUP, 'cgroup.procs'), `${pid}\n`);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('child not ready after 60 s')), 60_000);
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
    const first = readCgroupStats(ctx, CGROUP);
    const u1 = first.cpu?.usageSeconds ?? NaN;
    const p1 = first.cpu?.periods ?? NaN;
    // However busy the machine, a spinning child gets CPU sooner or later: wait (generously) for 50 ms of it, read
    // through podvisor, instead of sleeping a fixed time and hoping.
    await poll('the child to use 50 ms of CPU', () => ((readCgroupStats(ctx, CGROUP).cpu?.usageSeconds ?? 0) >= u1 + 0.05 ? true : undefined), {
      timeoutMs: 60_000,
      everyMs: 100,
    });
    // Whether the kernel throttles it depends on the machine (a starved child may never use its quota in a period), so
    // it is read from the kernel first; podvisor is then checked against what the kernel says, in either case.
    const kernelThrottled = await poll(
      'the kernel to throttle the spinning child (cpu.stat)',
      () => {
        const k = kernelCpu();
        return k.nrThrottled > 0 && k.throttledNs > 0 ? k : undefined;
      },
      { timeoutMs: 60_000, everyMs: 100 },
    ).then(
      () => true,
      () => false,
    );
    // Counters only grow: podvisor's reading must lie between the kernel's just before and just after it.
    const k1 = kernelCpu();
    const second = readCgroupStats(ctx, CGROUP);
    const k2 = kernelCpu();
    t.strictSame(errors, [], 'no read or parse errors');
    const within = (ours: number | undefined, lo: number, hi: number, what: string): void => {
      t.ok(ours !== undefined && ours >= lo && ours <= hi, `${what}: podvisor ${ours} within the kernel's ${lo} … ${hi}`);
    };

    const u2 = second.cpu?.usageSeconds ?? NaN;
    within(u2, k1.usageNs / 1e9, k2.usageNs / 1e9, 'cpu usage in seconds (cpuacct.usage / 1e9)');
    t.ok(u2 >= u1 + 0.05, `cpu usage grows (${u1} → ${u2})`);
    const p2 = second.cpu?.periods ?? NaN;
    within(p2, k1.nrPeriods, k2.nrPeriods, 'CFS periods (cpu.stat nr_periods)');
    t.ok(p2 > p1, `CFS periods counted (${p1} → ${p2})`);
    // The quota holds, counted in CFS periods rather than with a stopwatch: at most QUOTA_US of CPU per period the child
    // was runnable in, plus two periods of slack (the two counters are read a moment apart; a tick of overrun).
    const allowed = ((p2 - p1 + 2) * QUOTA_US) / 1e6;
    t.ok(u2 - u1 <= allowed, `the ${QUOTA_US / 1000} ms per 100 ms quota holds: ${(u2 - u1).toFixed(3)} s over ${p2 - p1} periods (≤ ${allowed.toFixed(3)} s)`);
    const perCpu = second.cpu?.perCpuSeconds ?? [];
    t.ok(perCpu.length >= 1, 'one value per possible CPU');
    t.ok(Math.abs(perCpu.reduce((a, b) => a + b, 0) - u2) < 0.05, 'per-CPU usage sums to the total');
    within(
      Math.round(((second.cpu?.userSeconds ?? NaN) + (second.cpu?.systemSeconds ?? NaN)) * 100),
      k1.userTicks + k1.systemTicks,
      k2.userTicks + k2.systemTicks,
      'user + system, in USER_HZ ticks (cpuacct.stat)',
    );
    if (k2.userTicks + k2.systemTicks > 0) t.ok((second.cpu?.userSeconds ?? 0) + (second.cpu?.systemSeconds ?? 0) > 0, 'user + system ticks counted');
    else t.comment('the kernel has not counted a user or system tick for the child yet');
    within(second.cpu?.throttledPeriods, k1.nrThrottled, k2.nrThrottled, 'throttled periods (cpu.stat nr_throttled)');
    within(second.cpu?.throttledSeconds, k1.throttledNs / 1e9, k2.throttledNs / 1e9, 'throttled time in seconds (cpu.stat throttled_time / 1e9)');
    if (kernelThrottled) {
      t.ok((second.cpu?.throttledPeriods ?? 0) > 0, `a spinning child is throttled (${second.cpu?.throttledPeriods})`);
      t.ok((second.cpu?.throttledSeconds ?? 0) > 0, 'throttled time in seconds');
    } else {
      t.comment("this machine never let the child use its whole quota in a period within 60 s: podvisor reports the kernel's 0 throttled periods");
    }

    const mem = second.memory;
    t.ok((mem?.usageBytes ?? 0) > 0, `memory usage ${mem?.usageBytes}`);
    t.ok(
      mem?.workingSetBytes !== undefined && mem.usageBytes !== undefined && mem.workingSetBytes === Math.max(0, mem.usageBytes - (mem.inactiveFileBytes ?? 0)),
      'working set = usage − total_inactive_file',
    );
    t.ok((mem?.pgfault?.container ?? 0) > 0, 'page faults counted');
    t.equal(mem?.pgfault?.hierarchy, mem?.pgfault?.container, 'both scopes carry pgfault');
    // The 4 MiB read back are page cache unless the kernel already reclaimed some of it (memory pressure): what the
    // kernel says is read around podvisor's read, until it did not change meanwhile.
    const cache = await poll('a memory.stat total_cache that holds still around a podvisor read', () => {
      const before = kernelMemoryStat().get('total_cache');
      const ours = readCgroupStats(ctx, CGROUP).memory?.cacheBytes;
      return before !== undefined && before === kernelMemoryStat().get('total_cache') ? { kernel: before, ours } : undefined;
    });
    t.equal(cache.ours, cache.kernel, 'cache bytes: memory.stat total_cache');
    if (cache.kernel >= 3 * 1024 * 1024) t.ok((cache.ours ?? 0) >= 3 * 1024 * 1024, `the file read back is page cache (${cache.ours})`);
    else t.comment(`the kernel reclaimed the file's page cache already (total_cache ${cache.kernel}): podvisor reports that`);

    t.ok((second.pids?.current ?? 0) >= 1, `pids.current ${second.pids?.current}`);
    t.equal(second.pids?.max, PIDS_MAX);
    t.equal(second.spec.cpuQuota, QUOTA_US);
    t.equal(second.spec.cpuPeriod, 100000);
    t.equal(second.spec.cpuShares, 1024);
    t.equal(second.spec.memoryLimitBytes, MEMORY_LIMIT);
    t.equal(second.spec.memoryReservationBytes, 0, 'unlimited soft limit is 0');

    // Block I/O. Whether the kernel counts it depends on the kernel and the device (some kernels count v1 blkio only for
    // cgroups with a throttle rule, only under a given scheduler, or not at all; tmpfs refuses O_DIRECT): read what the
    // kernel says for our cgroup first, with nothing changing around podvisor's read, then check podvisor against it.
    const blk = await poll('blkio files that hold still around a podvisor read', () => {
      const before = kernelBlkio();
      const ours = readCgroupStats(ctx, CGROUP).blkio;
      return JSON.stringify(before) === JSON.stringify(kernelBlkio()) ? { kernel: before, ours } : undefined;
    });
    t.strictSame(blk.ours, blk.kernel, `blkio: the rows of the first of ${BLKIO_FILES.join(', ')} that has any, as the kernel wrote them`);
    const written = (rows: readonly { bytes: Record<string, number> }[] | undefined): number =>
      (rows ?? []).reduce((sum, d) => sum + (d.bytes['Write'] ?? 0), 0);
    const direct = fs.existsSync(directMarker);
    if (direct && written(blk.kernel) >= 4 * 1024 * 1024) {
      t.ok(written(blk.ours) >= 4 * 1024 * 1024, `4 MiB of direct writes counted (${written(blk.ours)})`);
    } else {
      t.comment(
        direct
          ? `this kernel counts no v1 block I/O for our cgroup (${JSON.stringify(blk.kernel)}): podvisor reports exactly that, nothing invented`
          : 'O_DIRECT is not supported where the test dir lives: no block I/O to count',
      );
      t.equal(written(blk.ours), written(blk.kernel), `no invented write bytes (${written(blk.ours)})`);
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
