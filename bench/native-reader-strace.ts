/**
 * Checks that bench/native-reader.c reads what one podvisor gather reads: both under `strace -ff -y`, on the current
 * node state, and the file-level syscalls compared.
 *
 *   npm run build && node --import=tsx bench/native-reader-strace.ts [out.md]
 *
 * podvisor (dist/main.js, `--no-disk-usage` so no walk runs in the background) is started, scraped 3 times (caches
 * warm: start times, runtime metadata), then traced during one more scrape; the native reader is traced for one pass.
 * Syscalls compared: openat (file vs directory), read, getdents64, readlink, stat family (statx / newfstatat are one
 * "stat"). Kept: paths under /sys/fs/cgroup and /proc. Left out and listed separately: podvisor's own process metrics
 * (/proc/self/...), the reader's one-time mount table read. Prints, as markdown: calls per syscall, per category (cgroup
 * file name and result, /proc/<pid>/... kinds), and the exact (syscall, path, result) entries found on one side only.
 * Needs root and strace (apt-get install strace); the harness itself does not.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { installSignalHandlers, runCleanup } from './lib/cleanup.js';
import { errorMessage, sleep, succeeds } from './lib/exec.js';
import { scrape, startPodvisor, stopExporter } from './lib/exporter.js';
import { buildNativeReader, NATIVE_BIN } from './lib/native.js';

const SYSCALLS = 'openat,open,read,getdents64,readlink,readlinkat,statx,newfstatat,stat,lstat';

interface Call {
  op: string;
  path: string;
  ok: boolean;
  err: string;
}

/** Parses the per-thread files of `strace -ff -y -o prefix`. */
function parseTraces(prefix: string): Call[] {
  const dir = path.dirname(prefix);
  const calls: Call[] = [];
  for (const f of fs.readdirSync(dir).filter((n) => n.startsWith(`${path.basename(prefix)}.`))) {
    for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      const m = /^(\w+)\((.*)\)\s+=\s+(-?\d+|\?)(?:\s+(E[A-Z]+))?/.exec(line);
      if (m === null) continue;
      const [, name = '', args = '', ret = '', err = ''] = m;
      let op: string;
      let p: string | undefined;
      if (name === 'read' || name === 'getdents64') {
        op = name === 'read' ? 'read' : 'getdents';
        p = /^\d+<([^>]*)>/.exec(args)?.[1];
      } else if (name === 'openat' || name === 'open') {
        p = /"([^"]*)"/.exec(args)?.[1];
        op = args.includes('O_DIRECTORY') ? 'opendir' : 'open';
      } else if (name === 'readlink' || name === 'readlinkat') {
        op = 'readlink';
        p = /"([^"]*)"/.exec(args)?.[1];
      } else {
        op = 'stat';
        p = /"([^"]*)"/.exec(args)?.[1];
        if (p === '') continue; // fstat of an open fd
      }
      if (p === undefined) continue;
      calls.push({ op, path: p, ok: ret !== '-1', err });
    }
  }
  return calls;
}

const CONTROLLERS = /^\/sys\/fs\/cgroup\/([^/]+)(\/.*)?$/;

/** A category: cgroup files by controller and name, /proc paths with the pid and fd number generalised. */
function category(c: Call): string {
  const res = c.ok ? '' : ` → ${c.err || 'error'}`;
  const m = CONTROLLERS.exec(c.path);
  if (m !== null) {
    const ctrl = m[1] ?? '';
    const rest = m[2] ?? '';
    const base = path.basename(rest);
    if (c.op === 'opendir' || c.op === 'getdents' || c.op === 'stat') return `${c.op} ${ctrl}/<cgroup dir>${res}`;
    return `${c.op} ${ctrl}/<cgroup>/${base}${res}`;
  }
  const p = c.path.replace(/^\/proc\/\d+\//, '/proc/<pid>/').replace(/\/fd\/\d+$/, '/fd/<n>');
  return `${c.op} ${p}${res}`;
}

function count(keys: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

/** Attaches strace to `pid` (all threads); resolves once attached, with the strace process. */
async function traceAttach(prefix: string, pid: number): Promise<ChildProcess> {
  const st = spawn('strace', [...straceArgs(prefix), '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  st.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const deadline = Date.now() + 10_000;
  while (!err.includes('attached')) {
    if (Date.now() > deadline || st.exitCode !== null) throw new Error(`strace -p ${pid} did not attach: ${err.trim()}`);
    await sleep(50);
  }
  return st;
}

/** Runs `cmd` under strace; the pids of strace and of the command. */
async function traceRun(prefix: string, cmd: string[]): Promise<{ strace: number; traced: number }> {
  const st = spawn('strace', [...straceArgs(prefix), ...cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  st.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise((r) => st.once('exit', r));
  if (code !== 0) throw new Error(`strace ${cmd.join(' ')}: exit ${String(code)}: ${err.trim().split('\n')[0] ?? ''}`);
  const tids = fs
    .readdirSync(path.dirname(prefix))
    .filter((n) => n.startsWith(`${path.basename(prefix)}.`))
    .map((n) => Number(n.slice(n.lastIndexOf('.') + 1)));
  return { strace: st.pid ?? 0, traced: Math.min(...tids) };
}

const straceArgs = (prefix: string): string[] => ['-ff', '-y', '-s', '4096', '-e', `trace=${SYSCALLS}`, '-o', prefix];

let traced: ChildProcess | undefined;

async function main(): Promise<void> {
  installSignalHandlers((s) => process.stderr.write(`native-reader-strace: ${s}\n`));
  if (process.getuid?.() !== 0) throw new Error('needs root');
  if (!(await succeeds('strace', ['-V']))) throw new Error('strace not found: apt-get install strace (only this check needs it)');
  await buildNativeReader();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-strace-'));
  try {
    const e = await startPodvisor(['--no-disk-usage']);
    const pvPid = e.pid;
    let pvStrace = 0;
    try {
      for (let i = 0; i < 3; i++) await scrape(e.url);
      traced = await traceAttach(path.join(work, 'podvisor'), e.pid);
      pvStrace = traced.pid ?? 0;
      const s = await scrape(e.url);
      await sleep(500);
      traced.kill('SIGINT');
      await new Promise((r) => traced?.once('exit', r));
      if (s.status !== 200) throw new Error(`the traced scrape answered ${s.status}`);
    } finally {
      await stopExporter(e);
    }
    const nat = await traceRun(path.join(work, 'native'), [NATIVE_BIN, '1']);

    // Compared: /sys/fs/cgroup and /proc, minus each side's own process and its tracer (both sides list them when
    // they sit in a listed cgroup) and podvisor's own process metrics (/proc/self).
    const keep = (c: Call): boolean => c.path.startsWith('/sys/fs/cgroup') || c.path.startsWith('/proc/');
    const ownOf =
      (pids: number[]) =>
      (c: Call): boolean =>
        pids.some((p) => c.path === `/proc/${p}` || c.path.startsWith(`/proc/${p}/`)) || (c.path.startsWith('/proc/self') && c.path !== '/proc/self/ns/net');
    const pvOwn = ownOf([pvPid, pvStrace]);
    const natOwn = ownOf([nat.traced, nat.strace]);
    const pvAll = parseTraces(path.join(work, 'podvisor')).filter(keep);
    const pv = pvAll.filter((c) => !pvOwn(c));
    const setup = (c: Call): boolean => c.path.endsWith('/mountinfo');
    const nativeAll = parseTraces(path.join(work, 'native')).filter(keep);
    const native = nativeAll.filter((c) => !natOwn(c) && !setup(c));
    const out: string[] = [];
    out.push(`# native-reader vs one podvisor gather under strace (${new Date().toISOString().slice(0, 16)}Z, ${os.release()})`, '');
    out.push('| syscall | podvisor | native-reader |', '|---|---|---|');
    const ops = ['open', 'opendir', 'read', 'getdents', 'readlink', 'stat'];
    const byOp = (cs: Call[]): Map<string, number> => count(cs.map((c) => `${c.op}${c.ok ? '' : ' (failed)'}`));
    const a = byOp(pv);
    const b = byOp(native);
    for (const op of ops)
      for (const k of [op, `${op} (failed)`]) if ((a.get(k) ?? 0) + (b.get(k) ?? 0) > 0) out.push(`| ${k} | ${a.get(k) ?? 0} | ${b.get(k) ?? 0} |`);
    out.push('');
    const ca = count(pv.map((c) => category(c)));
    const cb = count(native.map((c) => category(c)));
    const keys = [...new Set([...ca.keys(), ...cb.keys()])].sort();
    const differ = keys.filter((k) => (ca.get(k) ?? 0) !== (cb.get(k) ?? 0));
    out.push(`Categories: ${keys.length}, of which ${differ.length} with different counts.`, '');
    out.push('| category | podvisor | native-reader |', '|---|---|---|');
    for (const k of keys) out.push(`| ${(ca.get(k) ?? 0) !== (cb.get(k) ?? 0) ? '**≠** ' : ''}\`${k}\` | ${ca.get(k) ?? 0} | ${cb.get(k) ?? 0} |`);
    out.push('');
    const exact = (c: Call): string => `${c.op} ${c.path}${c.ok ? '' : ` → ${c.err}`}`;
    const ea = count(pv.map(exact));
    const eb = count(native.map(exact));
    const onlyA = [...ea].filter(([k, n]) => n > (eb.get(k) ?? 0)).map(([k, n]) => `${k}${n - (eb.get(k) ?? 0) > 1 ? ` (×${n - (eb.get(k) ?? 0)})` : ''}`);
    const onlyB = [...eb].filter(([k, n]) => n > (ea.get(k) ?? 0)).map(([k, n]) => `${k}${n - (ea.get(k) ?? 0) > 1 ? ` (×${n - (ea.get(k) ?? 0)})` : ''}`);
    out.push(
      `Exact (syscall, path, result) entries on one side only: podvisor ${onlyA.length}, native-reader ${onlyB.length} (the two traces are seconds apart on a shared node: processes come and go).`,
      '',
    );
    for (const [who, list] of [
      ['podvisor only', onlyA],
      ['native-reader only', onlyB],
    ] as const) {
      out.push(
        `<details><summary>${who} (${list.length})</summary>`,
        '',
        '```',
        ...list.slice(0, 60),
        ...(list.length > 60 ? [`... ${list.length - 60} more`] : []),
        '```',
        '</details>',
        '',
      );
    }
    const shown = (cs: Call[]): string =>
      [...new Set(cs.map((c) => `${c.op} ${c.path.replace(/^\/proc\/\d+/, '/proc/<pid>').replace(/\/fd\/\d+$/, '/fd/<n>')}`))].join(', ');
    out.push(
      `Left out of the comparison: calls on each side's own process and its tracer (podvisor ${pvAll.filter(pvOwn).length}: ${shown(pvAll.filter(pvOwn))}; native-reader ${nativeAll.filter(natOwn).length}), and the reader's one-time mount table read (${nativeAll.filter(setup).length}).`,
    );
    const report = out.join('\n') + '\n';
    process.stdout.write(report);
    const file = process.argv[2];
    if (file !== undefined) fs.writeFileSync(file, report);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main()
  .then(() => runCleanup(() => undefined))
  .catch(async (err: unknown) => {
    process.stderr.write(`native-reader-strace: FAILED: ${errorMessage(err)}\n`);
    traced?.kill('SIGKILL');
    await runCleanup(() => undefined);
    process.exit(1);
  });
