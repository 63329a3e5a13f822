/** Runs a snippet of TypeScript module code as nobody (uid/gid 65534, no groups, no capabilities): a root without CAP_DAC_READ_SEARCH. */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const repo = fileURLToPath(new URL('../..', import.meta.url));

/** A file URL of a module in the repo, for an `import` inside the snippet. */
export function repoUrl(path: string): string {
  return JSON.stringify(pathToFileURL(join(repo, path)).href);
}

/** `body` is the module's code; whatever it prints to stdout (one JSON value) is parsed and returned. */
export function runAsNobody(body: string): unknown {
  const dir = mkdtempSync(join(tmpdir(), 'podvisor-nobody-'));
  try {
    chmodSync(dir, 0o755); // mkdtemp makes it 0700, root's
    const script = join(dir, 'run.mts');
    writeFileSync(script, body, { mode: 0o644 });
    const child = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import=tsx', script], {
      encoding: 'utf8',
      cwd: repo,
      timeout: 60_000,
    });
    if (child.status !== 0) throw new Error(`child as nobody failed (${child.status}): ${child.stderr}`);
    return JSON.parse(child.stdout) as unknown;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
