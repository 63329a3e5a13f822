import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { parseReply, settle, settleFds, ThreadReadAhead } from '../../src/gather/read-ahead.js';
import { countFileDescriptors } from '../../src/host/process-files.js';
import { FileReader } from '../../src/host/file-reader.js';
import { THREAD_TIMEOUT_MS } from '../support/threads.js';

const SHIM = new URL('../support/ts-read-ahead-worker.mjs', import.meta.url);

t.test('reads on its thread exactly what FileReader reads, and counts the fds of the pids in cgroup.procs', async (t) => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  const pid = child.pid ?? 0;
  const dir = t.testdir({ 'memory.stat': 'anon 4096\nfile 0\n', big: 'x'.repeat(100_000), procs: { 'cgroup.procs': `${pid}\n4194303\n` } });
  const files = [path.join(dir, 'memory.stat'), path.join(dir, 'missing'), dir, path.join(dir, 'big'), path.join(dir, 'procs', 'cgroup.procs')];
  const ra = new ThreadReadAhead({ workerUrl: SHIM, timeoutMs: THREAD_TIMEOUT_MS });
  t.teardown(() => ra.close());
  const { outcomes, fds } = await ra.read(files, '/proc');

  const reader = new FileReader();
  t.equal(outcomes[0], reader.read(files[0] ?? ''));
  t.equal(outcomes[1], null, 'a missing file');
  t.match(outcomes[2], { code: 'EISDIR', message: /EISDIR/ }, 'any other failure: its code and message');
  t.throws(() => settle(outcomes[2] ?? null), { code: 'EISDIR' }, 'settled, it throws as FileReader.read would');
  t.equal(outcomes[3], 'x'.repeat(100_000));
  t.equal(settle(null), undefined, 'missing, settled: undefined');

  t.same(fds.get(pid), countFileDescriptors('/proc', pid), `fds of pid ${pid} as countFileDescriptors counts them`);
  t.match(fds.get(pid), { fds: Number, sockets: 0 }, 'sleep: no sockets');
  t.ok((settleFds(fds.get(pid) ?? null)?.fds ?? 0) >= 3, 'at least stdin, stdout, stderr');
  t.equal(fds.get(4194303), null, 'a pid that does not exist: gone');
  t.equal(settleFds(null), undefined);
  t.throws(() => settleFds({ code: 'EACCES', message: 'EACCES: permission denied' }), { code: 'EACCES' });

  const again = await ra.read([path.join(dir, 'memory.stat')], '/proc');
  t.same(again.outcomes, ['anon 4096\nfile 0\n'], 'the thread serves one batch after another');
});

t.test('replies are checked: one outcome per file, fd counts by pid', async (t) => {
  t.same(
    parseReply(
      {
        id: 1,
        outcomes: ['a', null, { code: 'EIO', message: 'x' }],
        fds: [
          [7, { fds: 2, sockets: 1 }],
          [8, null],
        ],
      },
      3,
    ),
    {
      id: 1,
      outcomes: ['a', null, { code: 'EIO', message: 'x' }],
      fds: [
        [7, { fds: 2, sockets: 1 }],
        [8, null],
      ],
    },
  );
  t.equal(parseReply({ id: 1, outcomes: ['a'], fds: [] }, 2), undefined, 'too few outcomes');
  t.equal(parseReply({ id: 1, outcomes: [42], fds: [] }, 1), undefined, 'not an outcome');
  t.equal(parseReply({ id: 1, outcomes: ['a'], fds: [['7', null]] }, 1), undefined, 'pid not a number');
  t.equal(parseReply({ id: 1, outcomes: ['a'], fds: [[7, { fds: '2', sockets: 0 }]] }, 1), undefined, 'counts not numbers');
  t.equal(parseReply({ outcomes: ['a'], fds: [] }, 1), undefined, 'no id');
  t.equal(parseReply(null, 0), undefined);
});

t.test('a thread that does not answer in time: the batch rejects, the thread is replaced', async (t) => {
  const ra = new ThreadReadAhead({ workerUrl: new URL('../support/silent-worker.mjs', import.meta.url), timeoutMs: 200 });
  t.teardown(() => ra.close());
  // The worker never answers: the rejection naming the 200 ms is the timeout at work (no stopwatch needed).
  await t.rejects(ra.read(['/proc/self/stat'], '/proc'), /did not answer within 200 ms/);
  await t.rejects(ra.read(['/proc/self/stat'], '/proc'), /did not answer/, 'a new thread, same outcome');
});

t.test('a thread that dies: the batch rejects with the cause', async (t) => {
  const ra = new ThreadReadAhead({ workerUrl: new URL('../support/crashing-worker.mjs', import.meta.url), timeoutMs: THREAD_TIMEOUT_MS });
  t.teardown(() => ra.close());
  await t.rejects(ra.read(['/proc/self/stat'], '/proc'), /read-ahead thread (failed: boom|exited)/);
  const fine = new ThreadReadAhead({ workerUrl: SHIM, timeoutMs: THREAD_TIMEOUT_MS });
  t.teardown(() => fine.close());
  t.match((await fine.read(['/proc/self/stat'], '/proc')).outcomes[0], /^\d+ \(/);
});

t.test('an idle thread does not keep the process alive', async (t) => {
  const script = `import { ThreadReadAhead } from ${JSON.stringify(new URL('../../src/gather/read-ahead.ts', import.meta.url).href)};
const ra = new ThreadReadAhead({ workerUrl: new URL(${JSON.stringify(SHIM.href)}), timeoutMs: ${THREAD_TIMEOUT_MS} });
const r = await ra.read(['/proc/self/stat'], '/proc');
console.log(typeof r.outcomes[0]);`;
  const file = path.join(t.testdir({}), 'idle.mts');
  fs.writeFileSync(file, script);
  const out = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const p = spawn(process.execPath, ['--import=tsx', file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    // Only bounds a process that would never exit (the failure this test is about); generous for a loaded machine.
    const timer = setTimeout(() => p.kill('SIGKILL'), 2 * THREAD_TIMEOUT_MS);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout });
    });
  });
  t.same(out, { code: 0, stdout: 'string\n' }, 'the batch was served and the process exited on its own');
});
