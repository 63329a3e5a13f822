import fs from 'node:fs';
import net from 'node:net';
import t from 'tap';
import { countFileDescriptors, netnsId } from '../../src/host/process-files.js';

function errnoError(code: string, syscall: string, file: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: ${syscall} '${file}'`);
  err.code = code;
  err.syscall = syscall;
  err.path = file;
  return err;
}

t.test('this test process: counts its fds and the socket it listens on', async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const got = countFileDescriptors('/proc', process.pid);
  if (got === undefined) throw new Error('own process reported gone');
  const expected = fs.readdirSync('/proc/self/fd').length;
  // Reading the directory opens one descriptor of its own, so the two counts may differ by that one.
  t.ok(Math.abs(got.fds - expected) <= 1, `fds ${got.fds} ≈ ${expected}`);
  t.ok(got.sockets >= 1, `sockets ${got.sockets} includes the listening socket`);
  t.ok(got.sockets <= got.fds);
});

t.test('this test process: its network namespace', async (t) => {
  const id = netnsId('/proc', process.pid);
  t.match(id, /^net:\[\d+\]$/);
  t.equal(id, fs.readlinkSync('/proc/self/ns/net'));
});

t.test('a fixture /proc: sockets, files, pipes, and a process that is gone', async (t) => {
  const root = t.testdir({
    '4242': {
      fd: {
        '0': t.fixture('symlink', '/dev/null'),
        '1': t.fixture('symlink', 'pipe:[12261]'),
        '2': t.fixture('symlink', 'socket:[3377]'),
        '3': t.fixture('symlink', 'socket:[3378]'),
        '4': t.fixture('symlink', 'anon_inode:[eventpoll]'),
        '5': t.fixture('symlink', '/var/log/app/socket:not-a-socket.log'),
      },
      ns: { net: t.fixture('symlink', 'net:[4026532461]') },
    },
    '77': { fd: {}, ns: {} },
  });
  t.same(countFileDescriptors(root, 4242), { fds: 6, sockets: 2 });
  t.equal(netnsId(root, 4242), 'net:[4026532461]');
  t.same(countFileDescriptors(root, 77), { fds: 0, sockets: 0 }, 'a process with no open fds');
  t.equal(netnsId(root, 77), undefined, 'no ns/net link');
  t.equal(countFileDescriptors(root, 999999), undefined, 'gone');
  t.equal(netnsId(root, 999999), undefined, 'gone');
});

t.test('a non-link in fd/ is not "gone": readlink fails with EINVAL and that throws', async (t) => {
  const root = t.testdir({ '5': { fd: { '0': 'regular file' } } });
  t.throws(() => countFileDescriptors(root, 5), { code: 'EINVAL' });
});

t.test('races and permissions, with readdir/readlink failing on cue', async (t) => {
  const root = t.testdir({
    '10': {
      fd: {
        '0': t.fixture('symlink', '/dev/null'),
        '1': t.fixture('symlink', 'socket:[1]'),
        '2': t.fixture('symlink', 'socket:[2]'),
      },
    },
  });
  const failures = new Map<string, string>();
  const mockedFs = {
    ...fs,
    readdirSync: (dir: string): string[] => {
      const code = failures.get(dir);
      if (code !== undefined) throw errnoError(code, 'scandir', dir);
      return fs.readdirSync(dir);
    },
    readlinkSync: (file: string): string => {
      const code = failures.get(file);
      if (code !== undefined) throw errnoError(code, 'readlink', file);
      return fs.readlinkSync(file);
    },
  };
  const mod = await t.mockImport<typeof import('../../src/host/process-files.js')>('../../src/host/process-files.js', {
    'node:fs': { ...mockedFs, default: mockedFs },
  });

  failures.set(`${root}/10/fd/2`, 'ENOENT');
  t.same(mod.countFileDescriptors(root, 10), { fds: 2, sockets: 1 }, 'an fd closed after readdir is skipped');
  failures.set(`${root}/10/fd/2`, 'ESRCH');
  t.same(mod.countFileDescriptors(root, 10), { fds: 2, sockets: 1 }, 'the process exiting mid-walk is skipped too');
  failures.set(`${root}/10/fd/2`, 'EACCES');
  t.throws(() => mod.countFileDescriptors(root, 10), { code: 'EACCES' }, 'EACCES on readlink throws');
  failures.clear();

  failures.set(`${root}/10/fd`, 'ESRCH');
  t.equal(mod.countFileDescriptors(root, 10), undefined, 'ESRCH on readdir: gone');
  failures.set(`${root}/10/fd`, 'EACCES');
  t.throws(() => mod.countFileDescriptors(root, 10), { code: 'EACCES' }, 'EACCES on readdir throws');
  failures.clear();

  failures.set(`${root}/10/ns/net`, 'ESRCH');
  t.equal(mod.netnsId(root, 10), undefined, 'ESRCH on ns/net: gone');
  failures.set(`${root}/10/ns/net`, 'EACCES');
  t.throws(() => mod.netnsId(root, 10), { code: 'EACCES' }, 'EACCES on ns/net throws');
});
