/**
 * Runs the built exporter (dist/main.js) as a real process, the way `npm start` does.
 * `npm test` builds dist/ before tap runs; for a single file run `npm run build` first.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { poll, until } from './poll.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MAIN = path.join(REPO, 'dist/main.js');

export function assertBuilt(): void {
  if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` (npm test does it)`);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface Exited {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * How a dist/main.js child (or `npm start`) is spawned: through `env -u NODE_OPTIONS`, so tap's processinfo hook,
 * which tap injects into every child's NODE_OPTIONS (also when a test passes its own env), is not loaded there and the
 * child is neither tracked nor measured. Tracked, it spoils the suite's coverage of src/: dist/ carries tsc's source
 * maps, the files a child loads are attributed to src/, and tap's report then gives those files the child's counts
 * in place of the in-process ones. Checked on a CI run's .tap/coverage: one startup-error child turned
 * src/proc/pid-cgroup.ts from 100% to 40.9% of statements (kmsg.ts and worker-engine.ts had sat at 26-28% for the same
 * reason), and with only the children's coverage switched off the suite fell to 55%. What the children do is checked
 * by the e2e assertions; coverage is measured in-process. It also keeps the hook from writing under .tap/ as another
 * user (the as-nobody tests).
 */
export function untracked(cmd: string, args: readonly string[]): [string, string[]] {
  return ['/usr/bin/env', ['-u', 'NODE_OPTIONS', cmd, ...args]];
}

/** Runs the exporter to completion (for flags and startup errors). */
export function runExporter(args: readonly string[], opts: SpawnOptions = {}, timeoutMs = 20_000): Promise<Exited> {
  assertBuilt();
  const [cmd, argv] = untracked(process.execPath, [MAIN, ...args]);
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, argv, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`exporter did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface Running {
  proc: ChildProcess;
  url: string;
  stderr(): string;
  /** SIGTERM, then wait for the exit. */
  stop(): Promise<Exited>;
}

/** Starts the exporter on a free loopback port and waits until it listens. */
export async function startExporter(args: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<Running> {
  assertBuilt();
  const port = await freePort();
  const [cmd, argv] = untracked(process.execPath, [MAIN, `--listen-address=127.0.0.1:${port}`, ...args]);
  const proc = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<Exited>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
  try {
    await until('the exporter to log "podvisor listening"', () => stderr.includes('podvisor listening'), {
      timeoutMs: 60_000,
      describe: () => `stderr: ${stderr}`,
      giveUp: () => (proc.exitCode !== null || proc.signalCode !== null ? `exporter exited early: ${stderr}` : undefined),
    });
  } catch (err) {
    proc.kill('SIGKILL');
    throw err;
  }
  return {
    proc,
    url: `http://127.0.0.1:${port}`,
    stderr: () => stderr,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

/** Polls `url` until it answers `status` (a refused connection counts as not yet), or throws after `timeoutMs`. */
export async function waitForStatus(url: string, status: number, timeoutMs = 60_000): Promise<Response> {
  let last = 'no answer';
  return poll(
    `${url} to answer ${status}`,
    async () => {
      const r = await fetch(url);
      last = `HTTP ${r.status}`;
      return r.status === status ? r : undefined;
    },
    { timeoutMs, everyMs: 100, describe: () => last },
  );
}
