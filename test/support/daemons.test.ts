import t from 'tap';
import type { Test } from 'tap';
import { checkDaemon, forgetProbes, requireDaemon, run } from './daemons.js';

t.test('run resolves with stdout and stderr', async (t) => {
  const r = await run('sh', ['-c', 'echo out; echo err >&2']);
  t.equal(r.stdout, 'out\n');
  t.equal(r.stderr, 'err\n');
});

t.test('run rejects with a readable one-line reason', async (t) => {
  await t.rejects(run('podvisor-no-such-command-xyz', []), /command not found/);
  await t.rejects(run('sh', ['-c', 'echo boom >&2; exit 3']), /exit 3: boom/);
  await t.rejects(run('sleep', ['5'], { timeoutMs: 100 }), /timed out after 100 ms/);
});

t.test('promtool is detected (provisioned by npm test)', async (t) => {
  if (!(await requireDaemon(t, 'promtool'))) return;
  const a = await checkDaemon('promtool');
  t.match(a.detail, /promtool, version \d+\.\d+/);
});

t.test('an unavailable daemon fails in CI and skips elsewhere', async (t) => {
  const saved = { PATH: process.env.PATH, CI: process.env.CI };
  t.teardown(() => {
    process.env.PATH = saved.PATH;
    if (saved.CI === undefined) delete process.env.CI;
    else process.env.CI = saved.CI;
    forgetProbes();
  });
  process.env.PATH = '/nonexistent';
  const calls: string[] = [];
  const fake = {
    fail: (msg: string) => calls.push(`fail: ${msg}`),
    comment: (msg: string) => calls.push(`comment: ${msg}`),
    pass: (msg: string, extra?: { skip?: string }) => calls.push(`pass: ${msg} skip=${extra?.skip ?? ''}`),
  } as unknown as Test;

  forgetProbes();
  process.env.CI = 'true';
  t.equal(await requireDaemon(fake, 'prometheus'), false);
  t.match(calls, [/^fail: prometheus could not be started: prometheus --version: prometheus: command not found$/]);

  calls.length = 0;
  forgetProbes();
  delete process.env.CI;
  t.equal(await requireDaemon(fake, 'promtool'), false);
  t.equal(
    calls.some((c) => c.startsWith('fail')),
    false,
  );
  t.match(calls, [/^comment: promtool unavailable/, /^pass: requires promtool skip=promtool unavailable: .*not found/]);
});
