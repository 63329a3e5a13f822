/**
 * Running commands for the benchmark: execFile as a promise with a timeout, rejecting with one readable line
 * (`docker run ...: exit 125: <first stderr line>`), so a failure can be shown as the harness's one-line error.
 */
import { execFile } from 'node:child_process';

export interface RunResult {
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  constructor(
    message: string,
    readonly code: number | string | null,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

const firstLine = (s: string): string =>
  s
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l !== '') ?? '';

/** `cmd args...` to completion; rejects with a one-line CommandError on a non-zero exit, a timeout or ENOENT. */
export function run(cmd: string, args: readonly string[], opts: { timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 256 * 1024 * 1024, encoding: 'utf8', cwd: opts.cwd }, (err, stdout, stderr) => {
      if (err === null) {
        resolve({ stdout, stderr });
        return;
      }
      const shown = `${cmd} ${args.slice(0, 4).join(' ')}${args.length > 4 ? ' ...' : ''}`;
      const code = (err as NodeJS.ErrnoException & { code?: number | string }).code ?? null;
      let why: string;
      if (code === 'ENOENT') why = 'command not found';
      else if (err.killed) why = `timed out after ${Math.round(timeoutMs / 1000)} s`;
      else why = `exit ${String(code)}${firstLine(stderr) === '' ? '' : `: ${firstLine(stderr)}`}`;
      reject(new CommandError(`${shown}: ${why}`, code, stderr));
    });
  });
}

/** True if `cmd args` exits 0 within the timeout. */
export async function succeeds(cmd: string, args: readonly string[], timeoutMs = 10_000): Promise<boolean> {
  try {
    await run(cmd, args, { timeoutMs });
    return true;
  } catch {
    return false;
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; resolves when all are done, rejects on the first failure. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const i = next++;
      try {
        await fn(items[i] as T, i);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed.err;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
