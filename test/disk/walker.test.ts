import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, linkSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { MessageChannel, Worker } from 'node:worker_threads';
import { walk, type WalkResult } from '../../src/disk/walker.js';
import { isCallerMessage, isWorkerInit, isWorkerMessage } from '../../src/disk/walk-threads.js';
import { repoUrl, runAsNobody } from './nobody.js';
import { until } from '../support/poll.js';

// Builds trees of 100k–200k entries and walks them as root and as nobody: ~130 s on a loaded 2-core machine, so
// more than .taprc's 240 s per file is allowed here.
t.setTimeout(600_000);

const isRoot = process.getuid?.() === 0;

/** `du -s -B1 -x` and `find -xdev` (one '.' per entry, so names with newlines count once). */
function reference(dir: string | Buffer, asNobody = false): { bytes: number; inodes: number } {
  // The path goes through bash as $'\xNN...' so that invalid UTF-8 reaches du and find unchanged.
  const q = `$'${[...Buffer.from(dir)].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}'`;
  const pre = asNobody ? 'setpriv --reuid=65534 --regid=65534 --clear-groups ' : '';
  // du and find exit 1 on unreadable entries but still print their totals
  const run = (cmd: string): string => spawnSync('bash', ['-c', pre + cmd], { encoding: 'latin1' }).stdout;
  const du = run(`du -s -B1 -x ${q}`);
  const find = run(`find ${q} -xdev -printf .`);
  return { bytes: Number(du.split('\t')[0]), inodes: find.length };
}

/** A temp dir removed at teardown, after unmounting whatever `mount()` mounted inside it. */
function scratch(t: Test): { root: string; mount: (args: string[], target: string) => void } {
  const root = mkdtempSync(join(tmpdir(), 'podvisor-walker-'));
  const mounted: string[] = [];
  t.teardown(() => {
    for (const target of mounted.reverse()) execFileSync('umount', [target]);
    rmSync(root, { recursive: true, force: true });
  });
  return {
    root,
    mount: (args, target) => {
      execFileSync('mount', [...args, target]);
      mounted.push(target);
    },
  };
}

function bigTree(root: string, dirs: number, files: number): void {
  for (let d = 0; d < dirs; d++) {
    mkdirSync(join(root, `d${d}`));
    for (let f = 0; f < files; f++) closeSync(openSync(join(root, `d${d}`, `f${f}`), 'w'));
  }
}

t.test('plain files, hard links, a sparse file and a symlink loop match du and find', async (t) => {
  const { root } = scratch(t);
  mkdirSync(join(root, 'a/b/c'), { recursive: true });
  for (const [i, size] of [0, 1, 4095, 4096, 4097, 100_000, 3 << 20].entries()) {
    writeFileSync(join(root, 'a', `f${i}`), Buffer.alloc(size, 7));
  }
  writeFileSync(join(root, 'a/b/c/deep'), 'x');
  linkSync(join(root, 'a/f6'), join(root, 'a/b/link-to-f6'));
  linkSync(join(root, 'a/f6'), join(root, 'a/b/c/another-link-to-f6'));
  execFileSync('truncate', ['-s', '100M', join(root, 'sparse')]);
  const fd = openSync(join(root, 'sparse'), 'r+');
  writeSync(fd, Buffer.alloc(8192, 1), 0, 8192, 50 << 20);
  closeSync(fd);
  symlinkSync('loop2', join(root, 'a/loop1'));
  symlinkSync('loop1', join(root, 'a/loop2'));
  symlinkSync('..', join(root, 'a/b/up'));
  symlinkSync('/', join(root, 'slash'));

  const got = await walk(root);
  t.same({ bytes: got.bytes, inodes: got.inodes }, reference(root));
  t.equal(got.errors, 0);
  t.equal(got.files, 15, '7 + deep + 2 links + sparse + 4 symlinks');
  t.ok(got.bytes < 10 << 20, 'the sparse file counts its blocks, not its 100M size');
  t.same(await walk(`${root}///`), got, 'trailing slashes');
  t.same(await walk(Buffer.from(root)), got, 'a Buffer root');
  const file = await walk(join(root, 'a/f6'));
  t.same(file, { bytes: reference(join(root, 'a/f6')).bytes, inodes: 1, files: 1, errors: 0, denied: 0 }, 'a file root');
  const link = await walk(join(root, 'slash'));
  t.same(link, { bytes: reference(join(root, 'slash')).bytes, inodes: 1, files: 1, errors: 0, denied: 0 }, 'a symlink root is not followed');
});

t.test('the root missing rejects with the path in the message', async (t) => {
  const { root } = scratch(t);
  await t.rejects(walk(join(root, 'nope')), { code: 'ENOENT', message: /cannot lstat the root .*nope/ });
});

t.test('names with newlines and invalid UTF-8 are walked, not mangled', async (t) => {
  const { root } = scratch(t);
  const r = Buffer.from(root);
  const p = (...parts: (string | Buffer)[]): Buffer => Buffer.concat([r, ...parts.flatMap((x) => [Buffer.from('/'), Buffer.from(x)])]);
  const bad = Buffer.from([0x62, 0xff, 0xfe, 0x0a, 0x61]); // "b\xff\xfe\na"
  const bad2 = Buffer.from([0xc3, 0x28]); // an invalid 2-byte sequence
  writeFileSync(p('new\nline'), Buffer.alloc(5000));
  mkdirSync(p(bad));
  writeFileSync(p(bad, 'inside'), Buffer.alloc(9000));
  writeFileSync(p(bad, bad2), Buffer.alloc(20000));
  writeFileSync(p(bad2), Buffer.alloc(13000));
  writeFileSync(p('literal \uFFFD replacement'), Buffer.alloc(17000));
  mkdirSync(p('dir\n'));
  writeFileSync(p('dir\n', bad2), Buffer.alloc(30000));

  const got = await walk(root);
  t.same({ bytes: got.bytes, inodes: got.inodes }, reference(root));
  t.equal(got.errors, 0, 'every name lstat-ed as it is');
  t.equal(got.files, 6);
  const under = await walk(p(bad));
  t.same({ bytes: under.bytes, inodes: under.inodes }, reference(p(bad)), 'a Buffer root with invalid UTF-8');
});

t.test(
  'another device mounted inside is listed (as find) but neither entered nor summed (as du -x)',
  { skip: isRoot ? false : 'mounting tmpfs needs root' },
  async (t) => {
    const { root, mount } = scratch(t);
    mkdirSync(join(root, 'mnt'));
    writeFileSync(join(root, 'outside'), Buffer.alloc(10000));
    mount(['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs'], join(root, 'mnt'));
    writeFileSync(join(root, 'mnt/inside'), Buffer.alloc(1 << 20));
    mkdirSync(join(root, 'mnt/sub'));

    const got = await walk(root);
    t.same({ bytes: got.bytes, inodes: got.inodes }, reference(root));
    t.equal(got.inodes, 3, 'root, outside and the mount point');
    t.ok(got.bytes < 1 << 20, "the tmpfs file's MiB is not counted");
    const inside = await walk(join(root, 'mnt'));
    t.same({ bytes: inside.bytes, inodes: inside.inodes }, reference(join(root, 'mnt')), 'walking the mount itself');
  },
);

t.test(
  'permission denied is counted in errors and in denied, as nobody, and matches du/find run as nobody',
  { skip: isRoot ? false : 'needs root to switch to uid 65534' },
  async (t) => {
    const { root } = scratch(t);
    chmodSync(root, 0o755);
    mkdirSync(join(root, 'open'));
    mkdirSync(join(root, 'secret'), { mode: 0o700 });
    mkdirSync(join(root, 'noexec'), { mode: 0o744 }); // readable, not searchable: names but no lstat
    chmodSync(join(root, 'secret'), 0o700);
    chmodSync(join(root, 'noexec'), 0o744);
    for (const d of ['open', 'secret', 'noexec']) {
      for (let i = 0; i < 3; i++) writeFileSync(join(root, d, `f${i}`), Buffer.alloc(6000));
    }
    const got = runAsNobody(
      `import { walk } from ${repoUrl('src/disk/walker.ts')};\n` + `console.log(JSON.stringify(await walk(${JSON.stringify(root)})));\n`,
    ) as WalkResult;
    t.same({ bytes: got.bytes, inodes: got.inodes }, reference(root, true));
    t.equal(got.errors, 4, 'secret cannot be opened; noexec lists 3 names that cannot be lstat-ed');
    t.equal(got.denied, 4, 'all four are EACCES: denied');
    t.equal(got.inodes, 10, 'the 3 names are entries all the same (as find lists them)');
    t.match(got.deniedPath, /\/(secret|noexec\/f\d)$/, 'the first denied path');
    const asRoot = await walk(root);
    t.equal(asRoot.errors, 0);
    t.equal(asRoot.denied, 0);
    t.notOk('deniedPath' in asRoot);
    t.ok(asRoot.bytes > got.bytes);
  },
);

t.test(
  "a 0700 directory of another user: denied, on one thread and on two (the worker's count is merged)",
  { skip: isRoot ? false : 'needs root to chown and to switch to uid 65534' },
  async (t) => {
    const { root } = scratch(t);
    chmodSync(root, 0o755);
    // the capability-less container image: a writable layer whose data dir is uid 1000's, 0700
    mkdirSync(join(root, 'home/app/data'), { recursive: true });
    writeFileSync(join(root, 'home/app/data/db'), Buffer.alloc(20 << 20, 1));
    writeFileSync(join(root, 'home/app/readme'), Buffer.alloc(4000, 1));
    chownSync(join(root, 'home/app/data'), 1000, 1000);
    chownSync(join(root, 'home/app/data/db'), 1000, 1000);
    chmodSync(join(root, 'home/app/data'), 0o700);
    // many subtrees, each with one: whichever thread walks a subtree, its denial must reach the result
    for (let d = 0; d < 30; d++) {
      mkdirSync(join(root, `s${d}/private`), { recursive: true });
      for (let f = 0; f < 20; f++) writeFileSync(join(root, `s${d}`, `f${f}`), Buffer.alloc(100));
      writeFileSync(join(root, `s${d}/private/secret`), Buffer.alloc(9000));
      chownSync(join(root, `s${d}/private`), 1000, 1000);
      chmodSync(join(root, `s${d}/private`), 0o700);
    }
    const workerUrl = new URL('../support/ts-walker-worker.mjs', import.meta.url).href;
    const got = runAsNobody(
      `import { walk } from ${repoUrl('src/disk/walker.ts')};\n` +
        `const root = ${JSON.stringify(root)};\n` +
        `const one = await walk(root, { threads: 1 });\n` +
        `const two = await walk(root, { threads: 2, threadAfter: 0, workerUrl: new URL(${JSON.stringify(workerUrl)}) });\n` +
        `const data = await walk(root + '/home/app', { threads: 1 });\n` +
        `console.log(JSON.stringify({ one, two, data }));\n`,
    ) as { one: WalkResult; two: WalkResult; data: WalkResult };
    const asRoot = await walk(root, { threads: 1 });
    t.equal(asRoot.denied, 0, 'root here has CAP_DAC_READ_SEARCH');
    for (const [name, r] of [
      ['one thread', got.one],
      ['two threads', got.two],
    ] as const) {
      t.equal(r.denied, 31, `${name}: home/app/data and the 30 private dirs`);
      t.equal(r.errors, 31, `${name}: nothing else failed`);
      t.same({ bytes: r.bytes, inodes: r.inodes }, reference(root, true), `${name}: what du/find as nobody see`);
      t.ok(r.bytes < asRoot.bytes - (20 << 20), `${name}: the 20 MiB are missing (${r.bytes} < ${asRoot.bytes})`);
    }
    t.same({ ...got.two, deniedPath: undefined }, { ...got.one, deniedPath: undefined }, 'two threads count as one');
    t.equal(got.data.denied, 1);
    t.equal(got.data.deniedPath, join(root, 'home/app/data'));
  },
);

t.test('100k entries in one directory', async (t) => {
  const { root } = scratch(t);
  mkdirSync(join(root, 'huge'));
  for (let i = 0; i < 100_000; i++) closeSync(openSync(join(root, 'huge', `entry-${i}`), 'w'));
  const got = await walk(root);
  t.same({ bytes: got.bytes, inodes: got.inodes }, reference(root));
  t.equal(got.inodes, 100_002);
  t.equal(got.errors, 0);
});

t.test('a subtree removed mid-walk: no throw, at most the full result', async (t) => {
  const { root } = scratch(t);
  bigTree(root, 40, 500);
  const full = await walk(root);
  let removed = false;
  setImmediate(() => {
    rmSync(join(root, 'd0'), { recursive: true });
    rmSync(join(root, 'd39'), { recursive: true });
    removed = true;
  });
  const got = await walk(root, { sliceMs: 0 });
  t.ok(removed, 'the removal ran during the walk');
  t.ok(got.bytes <= full.bytes);
  t.ok(got.inodes < full.inodes, `${got.inodes} < ${full.inodes}`);
  t.equal(got.denied, 0, 'vanished entries are errors at most, never denied');
  const after = await walk(root);
  t.same({ bytes: after.bytes, inodes: after.inodes }, reference(root));
});

t.test('abort rejects and never resolves a partial number; the event loop keeps ticking', async (t) => {
  const { root } = scratch(t);
  bigTree(root, 100, 1000);

  // A walk of 100k entries takes many 10 ms slices on any machine, and between slices the event loop turns: a 1 ms
  // interval fires during it. A walk that blocked the loop would let it fire at most once (around a first await). A
  // loaded machine only makes the walk, and so the count, longer: no stopwatch needed.
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const full = await walk(root);
  clearInterval(timer);
  t.same({ bytes: full.bytes, inodes: full.inodes }, reference(root));
  t.ok(ticks >= 2, `a 1 ms interval fired ${ticks} times during the walk`);

  await t.rejects(walk(root, { signal: AbortSignal.abort() }), { name: 'AbortError' }, 'already aborted');
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error('scrape gone')), 20);
  let settled: unknown;
  await walk(root, { signal: ac.signal, sliceMs: 2 }).then(
    (r) => (settled = r),
    (e: unknown) => (settled = e),
  );
  t.match(settled, { name: 'AbortError', code: 'ABORT_ERR', cause: { message: 'scrape gone' } });
  t.notOk(typeof settled === 'object' && settled !== null && 'bytes' in settled, 'no partial result');
});

t.test('a bind mount of an ancestor is not a loop', { skip: isRoot ? false : 'bind mounts need root' }, async (t) => {
  const { root, mount } = scratch(t);
  mkdirSync(join(root, 'a/b'), { recursive: true });
  writeFileSync(join(root, 'a/f'), Buffer.alloc(5000));
  mount(['--bind', root], join(root, 'a/b'));
  const got = await walk(root);
  t.equal(got.errors, 1, 'the cycle is reported');
  t.equal(got.inodes, 4, 'root, a, a/f, a/b (not entered)');
});

/** Two threads from the first entry on; the worker loads through the tsx shim. */
const shared = {
  threads: 2,
  threadAfter: 0,
  workerUrl: new URL('../support/ts-walker-worker.mjs', import.meta.url),
};

t.test('two threads: hard links across subtrees are counted once, as du; results equal one thread', async (t) => {
  const { root } = scratch(t);
  for (let d = 0; d < 20; d++) {
    mkdirSync(join(root, `d${d}`));
    for (let f = 0; f < 100; f++) writeFileSync(join(root, `d${d}`, `f${f}`), Buffer.alloc(f % 10 === 0 ? 9000 : 100, 1));
  }
  for (let d = 0; d < 20; d++) {
    linkSync(join(root, `d${(d + 7) % 20}`, 'f0'), join(root, `d${d}`, 'link'));
    linkSync(join(root, `d${d}`, 'f10'), join(root, `top-link-${d}`));
  }
  const one = await walk(root, { threads: 1 });
  const two = await walk(root, shared);
  t.same(two, one);
  t.same({ bytes: two.bytes, inodes: two.inodes }, reference(root));
  t.equal(two.errors, 0);
});

t.test('two threads: names with invalid UTF-8 cross to the worker as bytes', async (t) => {
  const { root } = scratch(t);
  const bad = Buffer.from([0x62, 0xff, 0xfe, 0x0a, 0x61]);
  const bad2 = Buffer.from([0xc3, 0x28]);
  const p = (...parts: (string | Buffer)[]): Buffer => Buffer.concat([Buffer.from(root), ...parts.flatMap((x) => [Buffer.from('/'), Buffer.from(x)])]);
  mkdirSync(p(bad));
  for (let i = 0; i < 100; i++) {
    mkdirSync(p(bad, `sub${i}`));
    writeFileSync(p(bad, `sub${i}`, bad2), Buffer.alloc(5000));
    writeFileSync(p(bad, `sub${i}`, 'plain'), Buffer.alloc(100));
  }
  for (let i = 0; i < 100; i++) {
    mkdirSync(p(`ok${i}`));
    writeFileSync(p(`ok${i}`, bad2), Buffer.alloc(13000));
    writeFileSync(p(`ok${i}`, 'literal \uFFFD'), Buffer.alloc(100));
  }
  const two = await walk(root, shared);
  t.same({ bytes: two.bytes, inodes: two.inodes }, reference(root));
  t.same(two, await walk(root, { threads: 1 }));
  t.equal(two.errors, 0);
  t.equal(two.files, 400);
});

t.test('two threads: a large tree matches du and find; a subtree removed mid-walk is tolerated', async (t) => {
  const { root } = scratch(t);
  bigTree(root, 40, 500);
  const full = await walk(root, shared);
  t.same({ bytes: full.bytes, inodes: full.inodes }, reference(root));
  t.same(full, await walk(root, { threads: 1 }));
  let removed = false;
  setImmediate(() => {
    rmSync(join(root, 'd0'), { recursive: true });
    rmSync(join(root, 'd39'), { recursive: true });
    removed = true;
  });
  const got = await walk(root, { ...shared, sliceMs: 0 });
  t.ok(removed, 'the removal ran during the walk');
  t.ok(got.bytes <= full.bytes);
  t.ok(got.inodes < full.inodes, `${got.inodes} < ${full.inodes}`);
  t.equal(got.denied, 0, 'vanished entries are errors at most, never denied');
  const after = await walk(root, shared);
  t.same({ bytes: after.bytes, inodes: after.inodes }, reference(root));
});

t.test('two threads: abort mid-walk rejects, no partial number; the event loop keeps ticking', async (t) => {
  const { root } = scratch(t);
  bigTree(root, 100, 1000);

  // As with one thread: the loop turns during the walk (here it mostly waits for the worker).
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const full = await walk(root, shared);
  clearInterval(timer);
  t.same({ bytes: full.bytes, inodes: full.inodes }, reference(root));
  t.ok(ticks >= 2, `a 1 ms interval fired ${ticks} times during the walk`);

  for (const ms of [0, 20, 150]) {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('scrape gone')), ms);
    let settled: unknown;
    await walk(root, { ...shared, signal: ac.signal, sliceMs: 2 }).then(
      (r) => (settled = r),
      (e: unknown) => (settled = e),
    );
    t.match(settled, { name: 'AbortError', code: 'ABORT_ERR', cause: { message: 'scrape gone' } }, `abort after ${ms} ms`);
    t.notOk(typeof settled === 'object' && settled !== null && 'bytes' in settled, 'no partial result');
  }
  // the walker still works afterwards (no thread or directory handle left behind in a bad state)
  t.same(await walk(root, shared), full);
});

t.test('a worker that cannot load rejects the walk instead of hanging', async (t) => {
  const { root } = scratch(t);
  bigTree(root, 4, 100);
  await t.rejects(walk(root, { ...shared, workerUrl: new URL('./no-such-worker.mjs', import.meta.url) }));
});

t.test('holdWhile: the walk waits between slices while it returns a promise (a gather on the same thread)', async (t) => {
  const { root } = scratch(t);
  bigTree(root, 20, 500);
  let release = (): void => {};
  let held: Promise<void> | undefined = new Promise<void>((resolve) => (release = resolve));
  let asked = 0;
  const result = walk(root, { sliceMs: 1, threads: 1, holdWhile: () => (asked++, held) });
  let finished = false;
  void result.then(() => (finished = true));
  await until('the walk to ask holdWhile between slices', () => asked >= 1);
  // A wait for something that must NOT happen (the held walk finishing): a slow machine cannot make it happen.
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.notOk(finished, 'held: not finished 200 ms after it asked');
  t.equal(asked, 1, 'asked once, then it waits on the promise');
  held = undefined;
  release();
  const r = await result;
  t.same({ bytes: r.bytes, inodes: r.inodes }, reference(root), 'then finishes with the full result');
});

t.test('the thread messages are checked: the guards take what the threads send and refuse anything else', async (t) => {
  const dir = { path: '/a', ino: 12, ancestors: [2, 1] };
  const bytesDir = { path: new Uint8Array([0x2f, 0x62, 0xff]), ino: 13, ancestors: [] };
  const result = { bytes: 4096, inodes: 3, files: 2, errors: 0, denied: 0 };
  for (const m of [
    { t: 'idle', got: 0 },
    { t: 'dirs', dirs: [dir, bytesDir] },
    {
      t: 'done',
      result,
      linked: new Map<number | string, number>([
        [5, 4096],
        ['18446744073709551615', 512],
      ]),
    },
    { t: 'done', result: { ...result, denied: 1, errors: 1, deniedPath: '/a/secret' }, linked: new Map() },
  ]) {
    t.ok(isWorkerMessage(m), `from the worker: ${m.t}`);
  }
  for (const m of [
    null,
    'idle',
    [],
    { t: 'nope' },
    { t: 'idle' },
    { t: 'idle', got: '1' },
    { t: 'idle', got: -1 },
    { t: 'dirs', dirs: 'not a list' },
    { t: 'dirs', dirs: [{ ...dir, path: 5 }] },
    { t: 'dirs', dirs: [{ ...dir, ancestors: ['2'] }] },
    { t: 'dirs', dirs: [{ path: '/a', ino: 12 }] },
    { t: 'done', result: { bytes: 1 }, linked: new Map() },
    { t: 'done', result: { ...result, deniedPath: 7 }, linked: new Map() },
    { t: 'done', result, linked: {} },
    { t: 'done', result, linked: new Map([[{}, 1]]) },
    { t: 'done', result, linked: new Map([[1, 'x']]) },
    { t: 'finish' },
  ]) {
    t.notOk(isWorkerMessage(m), `not from the worker: ${inspect(m, { breakLength: Infinity })}`);
  }
  t.ok(isCallerMessage({ t: 'finish' }), 'from the caller: finish');
  t.ok(isCallerMessage({ t: 'dirs', dirs: [dir, bytesDir] }), 'from the caller: dirs');
  for (const m of [undefined, { t: 'idle', got: 0 }, { t: 'dirs' }, { t: 'dirs', dirs: [{ ...dir, ino: 1.5 }] }]) {
    t.notOk(isCallerMessage(m), `not from the caller: ${inspect(m, { breakLength: Infinity })}`);
  }
  const { port1, port2 } = new MessageChannel();
  t.ok(isWorkerInit({ dev: 2049, shared: new SharedArrayBuffer(16), port: port2 }), 'a WorkerInit');
  t.notOk(isWorkerInit({ dev: 2049, shared: new SharedArrayBuffer(8), port: port2 }), 'too few slots');
  t.notOk(isWorkerInit({ dev: 2049, shared: new ArrayBuffer(16), port: port2 }), 'not shared');
  t.notOk(isWorkerInit({ dev: 2049, shared: new SharedArrayBuffer(16) }), 'no port');
  t.notOk(isWorkerInit({ dev: '2049', shared: new SharedArrayBuffer(16), port: port2 }), 'dev not a number');
  port1.close();
});

t.test('a worker that posts a malformed message fails the walk with an error that says so', async (t) => {
  const { root } = scratch(t);
  bigTree(root, 4, 100);
  // Posts one bad message, then waits for the caller's ABORT (slot 0) as the real worker would.
  const code = `import { workerData } from 'node:worker_threads';
const slots = new Int32Array(workerData.shared);
workerData.port.postMessage({ t: 'dirs', dirs: 'not a list' });
Atomics.add(slots, 3, 1);
Atomics.notify(slots, 3);
while (Atomics.load(slots, 0) === 0) Atomics.wait(slots, 2, Atomics.load(slots, 2), 50);
workerData.port.close();
`;
  const workerUrl = new URL(`data:text/javascript,${encodeURIComponent(code)}`);
  await t.rejects(walk(root, { ...shared, workerUrl }), { message: /^disk walk: malformed message from the worker thread: .*not a list/ });
  t.same(await walk(root, shared), await walk(root, { threads: 1 }), 'the next walk is not affected');
});

t.test('the worker refuses a bad workerData and a malformed message from the caller, with an error that says so', async (t) => {
  const { root } = scratch(t);
  const url = new URL('../support/ts-walker-worker.mjs', import.meta.url);
  /** The worker's error; rejects if it exits without one. */
  const workerError = (start: () => Worker): Promise<Error> =>
    new Promise((resolve, reject) => {
      const w = start();
      w.once('error', resolve);
      w.once('exit', () => reject(new Error('the worker exited without an error')));
    });

  const noPort = await workerError(() => new Worker(url, { workerData: { dev: 1, shared: new SharedArrayBuffer(16) } }));
  t.match(noPort.message, /^disk walk worker: workerData is not a valid WorkerInit: /);

  const shared = new SharedArrayBuffer(16);
  const slots = new Int32Array(shared);
  const { port1, port2 } = new MessageChannel();
  const bad = workerError(() => new Worker(url, { workerData: { dev: 1, shared, port: port2 }, transferList: [port2] }));
  port1.postMessage({ t: 'dirs', dirs: [{ path: root, ino: 'twelve', ancestors: [] }] });
  Atomics.add(slots, 2, 1); // WAKE
  Atomics.notify(slots, 2);
  t.match((await bad).message, /^disk walk worker: malformed message from the caller: .*twelve/);
  port1.close();
});
