/**
 * `du -s -B1 -x` vs walk() on a 1,000,000-file tree (1000 dirs × 1000 files, every 10th with 100 bytes),
 * both warm-cache; du 5 runs, walk() 3 runs each with 1 and 2 threads (interleaved). Usage: node --import tsx bench/walker-bench.ts
 * The tree is built once under bench/.work/tree-1m (gitignored) and left there.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { walk } from '../src/disk/walker.js';

const root = fileURLToPath(new URL('.work/tree-1m', import.meta.url));

function build(): void {
  if (existsSync(root)) return;
  const tmp = `${root}.building`;
  const data = Buffer.alloc(100, 120);
  const t0 = performance.now();
  for (let d = 0; d < 1000; d++) {
    const dir = `${tmp}/d${String(d).padStart(4, '0')}`;
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 1000; f++) {
      const fd = openSync(`${dir}/f${f}`, 'w');
      if (f % 10 === 0) writeSync(fd, data);
      closeSync(fd);
    }
  }
  renameSync(tmp, root);
  console.log(`built ${root} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

const stats = (ms: number[]): { min: number; median: number } => {
  const s = [...ms].sort((a, b) => a - b);
  return { min: s[0] ?? NaN, median: s[Math.floor(s.length / 2)] ?? NaN };
};

build();
execFileSync('du', ['-s', '-B1', '-x', root]); // warm the dentry/inode caches
const duMs: number[] = [];
let duBytes = 0;
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  duBytes = Number(execFileSync('du', ['-s', '-B1', '-x', root], { encoding: 'utf8' }).split('\t')[0]);
  duMs.push(performance.now() - t0);
}
// From source (tsx) the worker needs the tsx shim; from dist/ walk() finds the compiled worker itself.
const workerUrl = new URL('../test/support/ts-walker-worker.mjs', import.meta.url);
let result = await walk(root, { threads: 1 });
const variants = [1, 2].map((threads) => ({ threads, ms: [] as number[] }));
for (let i = 0; i < 3; i++) {
  for (const v of variants) {
    const t0 = performance.now();
    result = await walk(root, { threads: v.threads, workerUrl });
    v.ms.push(performance.now() - t0);
  }
}
const du = stats(duMs);
const rate = (ms: number): string => `${Math.round(result.inodes / (ms / 1000)).toLocaleString('en')}/s`;
console.log(`| tool | min | median | entries/s (median) | speed vs du (median) |`);
console.log(`|---|---|---|---|---|`);
console.log(`| du -s -B1 -x | ${du.min.toFixed(0)} ms | ${du.median.toFixed(0)} ms | ${rate(du.median)} | 1.00× |`);
for (const v of variants) {
  const w = stats(v.ms);
  const name = `walk() threads: ${v.threads}`;
  console.log(`| ${name} | ${w.min.toFixed(0)} ms | ${w.median.toFixed(0)} ms | ${rate(w.median)} | ${(du.median / w.median).toFixed(2)}× |`);
}
console.log(`bytes du=${duBytes} walk=${result.bytes}; walk ${JSON.stringify(result)}`);
