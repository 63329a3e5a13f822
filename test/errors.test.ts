import t from 'tap';
import {
  ConfigError,
  ContainerdError,
  CrioError,
  DeadlineError,
  DiskPermissionError,
  DockerError,
  GatherError,
  ParseError,
  PodResourcesError,
  PodvisorError,
  ResponseShapeError,
  StaleSocketError,
  StartupError,
  errorMessage,
} from '../src/errors.js';

t.test('every error class has its own stable code, name and HTTP status', async (t) => {
  const cases: [PodvisorError, string, string, number][] = [
    [new ConfigError('x'), 'ConfigError', 'PODVISOR_CONFIG', 500],
    [new StartupError('x'), 'StartupError', 'PODVISOR_STARTUP', 500],
    [new ParseError('/f', 'x'), 'ParseError', 'PODVISOR_PARSE', 500],
    [new GatherError('x'), 'GatherError', 'PODVISOR_GATHER', 500],
    [new DeadlineError('x'), 'DeadlineError', 'PODVISOR_DEADLINE', 503],
    [new DiskPermissionError('/d', 1), 'DiskPermissionError', 'PODVISOR_DISK_PERMISSION', 500],
    [new ResponseShapeError('x'), 'ResponseShapeError', 'PODVISOR_RESPONSE_SHAPE', 502],
    [new DockerError('x'), 'DockerError', 'PODVISOR_RUNTIME_DOCKER', 502],
    [new ContainerdError('x', undefined, undefined), 'ContainerdError', 'PODVISOR_RUNTIME_CONTAINERD', 502],
    [new CrioError('x'), 'CrioError', 'PODVISOR_RUNTIME_CRIO', 502],
    [new StaleSocketError(undefined), 'StaleSocketError', 'PODVISOR_RUNTIME_STALE_SOCKET', 502],
    [new PodResourcesError('x', 14), 'PodResourcesError', 'PODVISOR_POD_RESOURCES', 502],
  ];
  const codes = new Set<string>();
  for (const [err, name, code, status] of cases) {
    t.type(err, PodvisorError, name);
    t.equal(err.name, name);
    t.equal(err.code, code, name);
    t.equal(err.statusCode, status, name);
    codes.add(err.code);
  }
  t.equal(codes.size, cases.length, 'no two classes share a code');
});

t.test('messages carry what the caller needs', async (t) => {
  t.equal(new ParseError('/sys/fs/cgroup/x', 'bad').message, '/sys/fs/cgroup/x: bad');
  t.equal(new ParseError('/f', 'bad').file, '/f');
  const denied = new DiskPermissionError('/var/lib/docker/overlay2/a/diff', 2, '/var/lib/docker/overlay2/a/diff/secret');
  t.equal(
    denied.message,
    'permission denied reading 2 entries under /var/lib/docker/overlay2/a/diff: podvisor needs CAP_DAC_READ_SEARCH (see deploy/README.md)',
  );
  t.equal(new DiskPermissionError('/d', 1).message, 'permission denied reading 1 entry under /d: podvisor needs CAP_DAC_READ_SEARCH (see deploy/README.md)');
  t.equal(denied.deniedPath, '/var/lib/docker/overlay2/a/diff/secret');
  t.equal(new DockerError('x', { httpStatus: 404 }).httpStatus, 404);
  t.equal(new CrioError('x', { httpStatus: 500 }).httpStatus, 500);
  t.equal(new ContainerdError('x', 14, undefined).grpcCode, 14);
  const cause = new Error('root');
  t.equal(new StartupError('x', { cause }).cause, cause);
});

t.test('errorMessage', async (t) => {
  t.equal(errorMessage(new Error('boom')), 'boom');
  t.equal(errorMessage('plain'), 'plain');
  t.equal(errorMessage(42), '42');
});
