/**
 * `du -s -B1 -x` vs walk() on a 1,000,000-file tree (1000 dirs × 1000 files, every 10th with 100 bytes),
 * both warm-cache, 3 runs each. Usage: node --import tsx bench/walker-bench.ts
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
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  duBytes = Number(execFileSync('du', ['-s', '-B1', '-x', root], { encoding: 'utf8' }).split('\t')[0]);
  duMs.push(performance.now() - t0);
}
const walkMs: number[] = [];
let result = await walk(root);
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  result = await walk(root);
  walkMs.push(performance.now() - t0);
}
const du = stats(duMs);
const w = stats(walkMs);
const rate = (ms: number): string => `${Math.round(result.inodes / (ms / 1000)).toLocaleString('en')}/s`;
console.log(`| tool | min | median | entries/s (median) |`);
console.log(`|---|---|---|---|`);
console.log(`| du -s -B1 -x | ${du.min.toFixed(0)} ms | ${du.median.toFixed(0)} ms | ${rate(du.median)} |`);
console.log(`| walk() | ${w.min.toFixed(0)} ms | ${w.median.toFixed(0)} ms | ${rate(w.median)} |`);
console.log(`speed vs du (median): ${(du.median / w.median).toFixed(2)}×; bytes du=${duBytes} walk=${result.bytes}; walk ${JSON.stringify(result)}`);
