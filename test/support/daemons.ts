// Helpers for tests that need a real daemon or tool: Docker, containerd,
// promtool, prometheus. `npm test` (test/run.sh) provisions them when it runs
// as root on Debian; see DEVELOPERS.md.
//
//   import { requireDaemon, run } from '../support/daemons.js'
//   t.test('reads docker containers', async t => {
//     if (!(await requireDaemon(t, 'docker'))) return
//     const { stdout } = await run('docker', ['ps', '-q'])
//     ...
//   })
//
// When the daemon is unavailable: in CI (CI=true) the test fails, so a missing
// daemon can never pass silently; elsewhere the test records a skip with the reason.
import { execFile } from 'node:child_process';
import type { Test } from 'tap';

export type Daemon = 'docker' | 'containerd' | 'promtool' | 'prometheus';

export interface RunOptions {
  /** Kill the command after this many ms (default 30 000). */
  timeoutMs?: number;
  /** Extra environment, merged over process.env. */
  env?: Record<string, string>;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Run a command without a shell; rejects with a readable message on failure. */
export function run(cmd: string, args: readonly string[] = [], opts: RunOptions = {}): Promise<RunResult> {
  const timeout = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      [...args],
      {
        timeout,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
        env: opts.env ? { ...process.env, ...opts.env } : process.env,
      },
      (err, stdout, stderr) => {
        if (!err) {
          resolve({ stdout, stderr });
          return;
        }
        const what = [cmd, ...args].join(' ');
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
        let why: string;
        if (e.code === 'ENOENT') why = `${cmd}: command not found`;
        else if (e.killed) why = `timed out after ${timeout} ms`;
        else why = `exit ${String(e.code)}: ${firstLine(stderr) || firstLine(stdout) || e.message}`;
        reject(new Error(`${what}: ${why}`));
      },
    );
  });
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0]?.trim() ?? '';
}

/** How each daemon is probed; resolves to a short version/description. */
const probes: Record<Daemon, () => Promise<string>> = {
  docker: async () => {
    const { stdout } = await run('docker', ['version', '--format', '{{.Server.Version}}'], { timeoutMs: 15_000 });
    return `docker ${stdout.trim()}`;
  },
  containerd: async () => {
    const { stdout } = await run('ctr', ['--connect-timeout', '2s', 'version'], { timeoutMs: 10_000 });
    const server = stdout.split('Server:')[1] ?? '';
    const m = /Version:\s*(\S+)/.exec(server);
    if (!m) throw new Error('ctr version: no server answered');
    return `containerd ${m[1] ?? ''}`;
  },
  promtool: async () => {
    const { stdout, stderr } = await run('promtool', ['--version'], { timeoutMs: 10_000 });
    return firstLine(stdout || stderr);
  },
  prometheus: async () => {
    const { stdout, stderr } = await run('prometheus', ['--version'], { timeoutMs: 10_000 });
    return firstLine(stdout || stderr);
  },
};

export interface Availability {
  ok: boolean;
  /** Version line when ok, the reason when not. */
  detail: string;
}

const cache = new Map<Daemon, Promise<Availability>>();

/** Probe a daemon once per process (cached). Never rejects. */
export function checkDaemon(what: Daemon): Promise<Availability> {
  let p = cache.get(what);
  if (!p) {
    p = probes[what]().then(
      (detail) => ({ ok: true, detail }),
      (err: unknown) => ({ ok: false, detail: err instanceof Error ? err.message : String(err) }),
    );
    cache.set(what, p);
  }
  return p;
}

/** Forget cached probe results (for tests of this module). */
export function forgetProbes(): void {
  cache.clear();
}

export function isCI(): boolean {
  return process.env.CI === 'true';
}

/**
 * Resolve true when `what` is usable. Otherwise: in CI, fail the test with the
 * reason; elsewhere, record a skip with the reason. Resolve false in both cases:
 * the caller then returns without running its checks.
 */
export async function requireDaemon(t: Test, what: Daemon): Promise<boolean> {
  const a = await checkDaemon(what);
  if (a.ok) return true;
  const hint = process.env.PODVISOR_DAEMONS_READY === '1' ? '' : ' (run `npm test` as root to provision it)';
  if (isCI()) {
    t.fail(`${what} could not be started: ${a.detail}`);
  } else {
    t.comment(`${what} unavailable: ${a.detail}${hint}`);
    t.pass(`requires ${what}`, { skip: `${what} unavailable: ${a.detail}` });
  }
  return false;
}

/** Removes a containerd container (k8s.io) and its task, ignoring what is already gone: for test teardowns. */
export async function removeCtrContainer(id: string): Promise<void> {
  await run('ctr', ['-n', 'k8s.io', 'task', 'kill', '-s', 'SIGKILL', id]).catch(() => undefined);
  await run('ctr', ['-n', 'k8s.io', 'task', 'rm', '-f', id]).catch(() => undefined);
  await run('ctr', ['-n', 'k8s.io', 'container', 'rm', id]).catch(() => undefined);
}
