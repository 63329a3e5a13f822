/**
 * The native floor: bench/native-reader.c, compiled with the system C compiler (`cc -O2`), reads the files one
 * podvisor gather reads (see the comment at its top), `passes` times in a row.
 */
import fs from 'node:fs';
import path from 'node:path';
import { run } from './exec.js';
import { REPO } from './exporter.js';

export const NATIVE_SRC = path.join(REPO, 'bench/native-reader.c');
export const NATIVE_BIN = path.join(REPO, 'bench/.work/native-reader');

/** Compiles the reader when the binary is missing or older than the source; the compiler's version line. */
export async function buildNativeReader(): Promise<string> {
  fs.mkdirSync(path.dirname(NATIVE_BIN), { recursive: true });
  const fresh = fs.existsSync(NATIVE_BIN) && fs.statSync(NATIVE_BIN).mtimeMs >= fs.statSync(NATIVE_SRC).mtimeMs;
  if (!fresh) await run('cc', ['-O2', '-Wall', '-Wextra', '-o', NATIVE_BIN, NATIVE_SRC], { timeoutMs: 120_000 });
  return (await run('cc', ['--version'])).stdout.split('\n')[0] ?? 'cc';
}

export interface NativeResult {
  mode: string;
  cgroups: number;
  filesRead: number;
  filesMissing: number;
  bytes: number;
  dirsListed: number;
  fdDirs: number;
  readlinks: number;
  stats: number;
  /** ms per pass, in order */
  ms: number[];
}

export async function runNativeReader(passes: number): Promise<NativeResult> {
  const { stdout } = await run(NATIVE_BIN, [String(passes)], { timeoutMs: 600_000 });
  const kv = new Map(stdout.split('\n').map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)] as const));
  const num = (k: string): number => Number(kv.get(k));
  return {
    mode: kv.get('mode') ?? '?',
    cgroups: num('cgroups'),
    filesRead: num('files_read'),
    filesMissing: num('files_missing'),
    bytes: num('bytes'),
    dirsListed: num('dirs_listed'),
    fdDirs: num('fd_dirs'),
    readlinks: num('readlinks'),
    stats: num('stats'),
    ms: (kv.get('ms_all') ?? '').split(',').map(Number).filter(Number.isFinite),
  };
}
