import t from 'tap';
import type { Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KmsgOomCounter, type KmsgHandle } from '../../src/gather/kmsg.js';
import type { Fields, Logger } from '../../src/log.js';
import { until } from '../support/poll.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let seq = 0;
/** One /dev/kmsg record: `<prio>,<seq>,<usec>,<flags>;<message>\n`, with optional continuation lines. */
function record(message: string, ...continuation: string[]): string {
  seq++;
  return `6,${seq},${seq * 1000},-;${message}\n${continuation.map((c) => ` ${c}\n`).join('')}`;
}

/** A kernel >= 4.19 OOM kill in `cgroup` (the summary, then the Killed line that must not count again). */
function newKill(cgroup: string): string {
  return (
    record('stress invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0') +
    record('memory: usage 65536kB, limit 65536kB, failcnt 12') +
    record(`oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=${cgroup},task_memcg=${cgroup},task=stress,pid=4242,uid=0`) +
    record('Memory cgroup out of memory: Killed process 4242 (stress) total-vm:70000kB, anon-rss:65000kB, file-rss:0kB, shmem-rss:0kB, UID:0')
  );
}

/** An older kernel's OOM kill: `Task in` (omitted for a global OOM), then Kill process and Killed process. */
function oldKill(cgroup: string | undefined): string {
  return (
    record('java invoked oom-killer: gfp_mask=0x24000c0(GFP_KERNEL), order=0, oom_score_adj=0') +
    record('Call Trace:') +
    record(' [<ffffffff8137ad47>] dump_stack+0x4d/0x63') +
    (cgroup === undefined ? '' : record(`Task in ${cgroup} killed as a result of limit of ${cgroup}`)) +
    record('Memory cgroup out of memory: Kill process 2210 (java) score 1001 or sacrifice child', 'SUBSYSTEM=memory') +
    record('Killed process 2210 (java) total-vm:3649324kB, anon-rss:523004kB, file-rss:1284kB')
  );
}

interface Entry {
  level: string;
  msg: string;
  fields: Fields | undefined;
}

function recordingLogger(): { log: Logger; entries: Entry[] } {
  const entries: Entry[] = [];
  const at =
    (level: string) =>
    (msg: string, fields?: Fields): void => {
      entries.push({ level, msg, fields });
    };
  return { log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, entries };
}

function shortTempDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-kmsg-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const A = '/kubepods/burstable/pod1/aaaa';
const B = '/docker/bbbb';
const SENTINEL = '/sentinel';

t.test('a FIFO: records in any chunking, both kernel formats, counted once each; the fd is closed by close()', async (t) => {
  const dir = shortTempDir(t);
  const fifo = path.join(dir, 'kmsg');
  execFileSync('mkfifo', [fifo]);
  const handles: fs.promises.FileHandle[] = [];
  let seen = ''; // what the counter's reads returned, in order
  const { log, entries } = recordingLogger();
  const counter = new KmsgOomCounter({
    path: fifo,
    log,
    pollMs: 10,
    open: async (p) => {
      const h = await fs.promises.open(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      handles.push(h);
      return {
        read: async (buffer, offset, length, position) => {
          const r = await h.read(buffer, offset, length, position);
          seen += buffer.toString('utf8', offset, offset + r.bytesRead);
          return r;
        },
        stat: () => h.stat(),
        close: () => h.close(),
      };
    },
  });
  t.teardown(() => counter.close());
  await counter.start();
  t.equal(handles.length, 1, 'opened once');
  const describe = () => JSON.stringify([...counter.counts()]);

  let writer = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  const first = newKill(A);
  const cut = first.indexOf('oom-kill:') + 20; // inside the summary record
  fs.writeSync(writer, first.slice(0, cut));
  await until('the first part read', () => seen === first.slice(0, cut), { describe: () => JSON.stringify(seen) });
  t.same(Object.fromEntries(counter.counts()), {}, 'half a summary is no kill yet');
  fs.writeSync(writer, first.slice(cut) + oldKill(B) + record('docker0: port 2(veth1) entered disabled state') + 'garbage line\n');
  fs.writeSync(writer, oldKill(undefined));
  await until('A, B and / counted', () => counter.counts().size === 3, { describe });
  fs.closeSync(writer); // the reader now sees end-of-file: not the end of a FIFO's reading

  writer = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  fs.writeSync(writer, newKill(A) + newKill(SENTINEL));
  fs.closeSync(writer);
  await until('the sentinel counted', () => counter.counts().has(SENTINEL), { describe });
  t.same(
    Object.fromEntries(counter.counts()),
    { [A]: 2, [B]: 1, '/': 1, [SENTINEL]: 1 },
    'every kill once: the Killed line after a summary and Kill process before Killed process are not second kills',
  );
  t.same(entries, [], 'nothing logged');

  await counter.close();
  t.equal(handles[0]?.fd, -1, 'the file handle is closed');
  await counter.close();
  t.pass('close() twice is fine');
});

t.test('a regular file is read to its end, then reading stops and the file is closed', async (t) => {
  const dir = t.testdir({ kmsg: newKill(A) + oldKill(B) + oldKill(B) + newKill('/x/') });
  const { log, entries } = recordingLogger();
  let handle: fs.promises.FileHandle | undefined;
  const counter = new KmsgOomCounter({
    path: path.join(dir, 'kmsg'),
    log,
    open: async (p) => (handle = await fs.promises.open(p, 'r')),
  });
  await counter.start();
  await until('the end of the file', () => handle?.fd === -1, { describe: () => JSON.stringify(entries) });
  t.same(Object.fromEntries(counter.counts()), { [A]: 1, [B]: 2, '/x': 1 });
  t.match(entries, [{ level: 'debug', msg: /to its end; stopped/, fields: { path: path.join(dir, 'kmsg') } }]);
  t.equal(entries.length, 1);
  await counter.close();
});

t.test('start() rejects naming the path and the reason', async (t) => {
  const missing = path.join(shortTempDir(t), 'dev', 'kmsg');
  const counter = new KmsgOomCounter({ path: missing, log: recordingLogger().log });
  const err = await counter.start().then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(err, Error);
  t.ok(err instanceof Error && err.message.includes(missing), 'names the path');
  t.match(err, { message: /ENOENT: no such file/, cause: { code: 'ENOENT' } });
  await t.rejects(counter.start(), { message: /already started/ }, 'a counter starts once');
  await counter.close();

  for (const code of ['EACCES', 'EPERM']) {
    const denied = new KmsgOomCounter({
      path: '/host/dev/kmsg',
      log: recordingLogger().log,
      open: () => Promise.reject(Object.assign(new Error(`${code}: operation not permitted, open '/host/dev/kmsg'`), { code })),
    });
    await t.rejects(denied.start(), { message: new RegExp(`^cannot read OOM kills from /host/dev/kmsg: ${code}: permission denied .*CAP_SYSLOG`) }, code);
  }

  let closed = 0;
  const statFails = new KmsgOomCounter({
    path: '/k',
    log: recordingLogger().log,
    open: async () => ({
      read: () => Promise.resolve({ bytesRead: 0 }),
      stat: () => Promise.reject(new Error('EIO: i/o error, fstat')),
      close: async () => void closed++,
    }),
  });
  await t.rejects(statFails.start(), { message: 'cannot read OOM kills from /k: EIO: i/o error, fstat' });
  t.equal(closed, 1, 'the handle opened is closed again');
});

/** A handle that answers reads from a script: a chunk of text, or an errno code to fail with; then EAGAIN forever. */
function scriptedHandle(script: string[]): KmsgHandle & { reads: number; closed: boolean } {
  const h = {
    reads: 0,
    closed: false,
    read(buffer: Buffer, offset: number) {
      const step = script[h.reads++];
      if (step === undefined || /^E[A-Z]+$/.test(step)) {
        const code = step ?? 'EAGAIN';
        return Promise.reject(Object.assign(new Error(`${code}: scripted`), { code }));
      }
      return Promise.resolve({ bytesRead: buffer.write(step, offset) });
    },
    stat: () => Promise.resolve({ isFile: () => false }),
    close: async () => void (h.closed = true),
  };
  return h;
}

t.test('EPIPE is logged once at debug and reading goes on; another error is logged once at warn and stops it', async (t) => {
  const h = scriptedHandle(['EPIPE', newKill(A), 'EAGAIN', 'EPIPE', oldKill(B), 'EIO', newKill(A)]);
  const { log, entries } = recordingLogger();
  const counter = new KmsgOomCounter({ path: '/dev/kmsg', log, pollMs: 1, open: async () => h });
  await counter.start();
  await until('the handle closed', () => h.closed, { describe: () => JSON.stringify(entries) });
  t.equal(h.reads, 6, 'no read after EIO');
  t.same(Object.fromEntries(counter.counts()), { [A]: 1, [B]: 1 });
  t.match(entries, [
    { level: 'debug', msg: /overwritten/, fields: { path: '/dev/kmsg' } },
    { level: 'warn', msg: /failed; stopped/, fields: { path: '/dev/kmsg', error: 'EIO: scripted' } },
  ]);
  t.equal(entries.length, 2, 'one line each');
  await counter.close();
});

t.test('close() while waiting for records ends the wait and closes the file', async (t) => {
  const h = scriptedHandle([]);
  const counter = new KmsgOomCounter({ path: '/dev/kmsg', log: recordingLogger().log, pollMs: 3_600_000, open: async () => h });
  await counter.start();
  await until('the first read', () => h.reads === 1);
  await counter.close();
  t.equal(h.closed, true);
  t.equal(h.reads, 1, 'no read after close');
});

t.test('close() leaves nothing behind: a process that reads a FIFO and closes the counter exits on its own', async (t) => {
  const fifo = path.join(shortTempDir(t), 'kmsg');
  execFileSync('mkfifo', [fifo]);
  const script = `
    import fs from 'node:fs';
    import { KmsgOomCounter } from ${JSON.stringify(path.join(REPO, 'src/gather/kmsg.ts'))};
    const counter = new KmsgOomCounter({ path: ${JSON.stringify(fifo)}, log: { debug() {}, info() {}, warn() {}, error() {} }, pollMs: 10 });
    await counter.start();
    const w = fs.openSync(${JSON.stringify(fifo)}, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    fs.writeSync(w, ${JSON.stringify(newKill(A))});
    for (let i = 0; i < 3000 && !counter.counts().has(${JSON.stringify(A)}); i++) await new Promise((r) => setTimeout(r, 10));
    fs.closeSync(w);
    await counter.close();
    console.log(JSON.stringify(Object.fromEntries(counter.counts())));
  `;
  // The generous spawn timeout only bounds a process that would never exit; whether it exited on its own is r.error.
  const r = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
  t.equal(r.error, undefined, 'the process exited on its own (not killed by the spawn timeout)');
  t.equal(r.status, 0, r.stderr);
  t.same(JSON.parse(r.stdout.trim()), { [A]: 1 }, 'it counted the kill before closing');
});
