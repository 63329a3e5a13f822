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

/** Runs the exporter to completion (for flags and startup errors). */
export function runExporter(args: readonly string[], opts: SpawnOptions & { bareEnv?: boolean } = {}, timeoutMs = 20_000): Promise<Exited> {
  assertBuilt();
  // bareEnv: run through `env -u NODE_OPTIONS`, so tap's coverage hook (which writes under .tap/) stays out of the child.
  const [cmd, argv] = opts.bareEnv === true ? ['/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, MAIN, ...args]] : [process.execPath, [MAIN, ...args]];
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
  const proc = spawn(process.execPath, [MAIN, `--listen-address=127.0.0.1:${port}`, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
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
