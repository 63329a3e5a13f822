/**
 * Files in a container's writable layer, written from inside the container (so they land in its overlay upper dir,
 * as an application's would) with busybox sh: `echo`, `:`, `[` and arithmetic are builtins, so the loop forks only
 * for `mkdir` (one per 1,000 files). Layout: /data/d<k>/f<i>, at most 1,000 entries per directory; every 10th file
 * holds 20 bytes, the others are empty (like bench/.work/tree-1m). A marker file makes it idempotent.
 */
import { run } from './exec.js';
import type { BenchContainer } from './scenario.js';

/** The busybox sh script writing `n` files; prints the number written (0 if the marker says it was done before). */
export function fillScript(n: number): string {
  const marker = `/data/.podvisor-bench-filled-${n}`;
  return [
    `[ -f ${marker} ] && { echo 0; exit 0; }`,
    `n=${n}; i=0; d=-1`,
    'while [ $i -lt $n ]; do',
    '  if [ $((i % 1000)) -eq 0 ]; then d=$((d + 1)); mkdir -p /data/d$d || exit 1; fi',
    '  if [ $((i % 10)) -eq 0 ]; then echo 0123456789abcdefghi > /data/d$d/f$i || exit 1; else : > /data/d$d/f$i || exit 1; fi',
    '  i=$((i + 1))',
    'done',
    `: > ${marker}`,
    'echo $i',
  ].join('\n');
}

let execSeq = 0;

/** Writes the files into `c` (docker exec / ctr task exec); how many were written now. */
export async function fillContainer(c: BenchContainer, n: number, containerdNamespace: string): Promise<{ written: number }> {
  const script = fillScript(n);
  const args =
    c.runtime === 'docker'
      ? ['exec', c.name, 'sh', '-c', script]
      : ['-n', containerdNamespace, 'tasks', 'exec', '--exec-id', `bench-fill-${process.pid}-${execSeq++}`, c.name, 'sh', '-c', script];
  const { stdout } = await run(c.runtime === 'docker' ? 'docker' : 'ctr', args, { timeoutMs: 600_000 });
  const written = Number(stdout.trim().split('\n').pop());
  if (!Number.isInteger(written) || (written !== 0 && written !== n)) throw new Error(`${c.name}: writing ${n} files printed "${stdout.trim()}"`);
  return { written };
}
