import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { SarAuthorizer, type AccessReviewOutcome } from '../../../src/http/auth/authorizer.js';
import { KubeApiClient } from '../../../src/kube/api-client.js';
import type { UserInfo } from '../../../src/kube/reviews.js';
import { startFakeApiServer, type FakeApiServer, type FakeDecision } from '../../support/fake-apiserver.js';

const MIN = 60_000;
const PROM: UserInfo = {
  username: 'system:serviceaccount:monitoring:prometheus-k8s',
  uid: 'uid-p',
  groups: ['system:serviceaccounts', 'system:authenticated'],
  extra: { 'authentication.kubernetes.io/pod-name': ['prometheus-k8s-0'], 'authentication.kubernetes.io/pod-uid': ['u0'] },
};
const METRICS = { namespace: '', verb: 'get', group: '', version: 'v1', resource: 'nodes', subresource: 'metrics', name: 'node-a' };

interface Setup {
  fake: FakeApiServer;
  clock: { now: number };
  reviews: AccessReviewOutcome[];
  decision: { value: FakeDecision };
  authz: (opts?: { allowedTtlMs?: number; deniedTtlMs?: number; timeoutMs?: number; maxEntries?: number }) => SarAuthorizer;
}

async function setup(t: Test): Promise<Setup> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-authz-'));
  const decision = { value: 'allow' as FakeDecision };
  const fake = await startFakeApiServer({ dir, callerToken: 'sa', rule: () => decision.value });
  const client = new KubeApiClient({ server: new URL(fake.url), caFile: fake.caFile, insecure: false, token: { value: 'sa' }, source: 'test' });
  t.teardown(async () => {
    client.close();
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const clock = { now: 5_000_000 };
  const reviews: AccessReviewOutcome[] = [];
  return {
    fake,
    clock,
    reviews,
    decision,
    authz: (o = {}) =>
      new SarAuthorizer({
        client,
        nodeName: 'node-a',
        allowedTtlMs: o.allowedTtlMs,
        deniedTtlMs: o.deniedTtlMs,
        timeoutMs: o.timeoutMs ?? 5_000,
        now: () => clock.now,
        onReview: (r) => reviews.push(r),
        maxEntries: o.maxEntries,
      }),
  };
}

t.test('allowed: the kubelet attributes, the user copied verbatim', async (t) => {
  const s = await setup(t);
  const r = await s.authz().authorize(PROM, 'GET', '/metrics/cadvisor?x=1');
  t.same(r, { decision: 'allow', attrs: METRICS, reason: 'allowed by the fake rule' });
  t.same(s.fake.received, [
    { kind: 'SubjectAccessReview', spec: { user: PROM.username, uid: PROM.uid, groups: PROM.groups, extra: PROM.extra, resourceAttributes: METRICS } },
  ]);
  t.same(s.reviews, ['allowed']);
});

t.test('denied, no opinion, and both are all deny', async (t) => {
  const s = await setup(t);
  s.decision.value = 'deny';
  t.same(await s.authz().authorize(PROM, 'GET', '/metrics'), { decision: 'deny', attrs: METRICS, reason: 'denied: denied by the fake rule' });
  s.decision.value = 'noopinion';
  t.same(await s.authz().authorize(PROM, 'GET', '/metrics'), { decision: 'deny', attrs: METRICS, reason: 'no opinion' });
  s.decision.value = 'both';
  t.same(await s.authz().authorize(PROM, 'GET', '/metrics'), { decision: 'deny', attrs: METRICS, reason: 'the review answered both allowed and denied' });
  t.same(s.reviews, ['denied', 'denied', 'denied']);
});

t.test('allowed is cached 5m', async (t) => {
  const s = await setup(t);
  const a = s.authz();
  await a.authorize(PROM, 'GET', '/metrics');
  s.decision.value = 'deny';
  s.clock.now += 5 * MIN - 1;
  t.match(await a.authorize(PROM, 'GET', '/metrics/resource'), { decision: 'allow' }, 'same attributes: /metrics/resource is nodes/metrics too');
  t.equal(s.fake.counts.subjectAccessReviews, 1);
  s.clock.now += 1;
  t.match(await a.authorize(PROM, 'GET', '/metrics'), { decision: 'deny' }, 'asked again at 5m');
  t.equal(s.fake.counts.subjectAccessReviews, 2);
});

t.test('denied is cached 30s', async (t) => {
  const s = await setup(t);
  const a = s.authz();
  s.decision.value = 'noopinion';
  await a.authorize(PROM, 'GET', '/metrics');
  s.decision.value = 'allow';
  s.clock.now += 30_000 - 1;
  t.match(await a.authorize(PROM, 'GET', '/metrics'), { decision: 'deny' });
  t.equal(s.fake.counts.subjectAccessReviews, 1);
  s.clock.now += 1;
  t.match(await a.authorize(PROM, 'GET', '/metrics'), { decision: 'allow' });
  t.equal(s.fake.counts.subjectAccessReviews, 2);
});

t.test('custom TTLs', async (t) => {
  const s = await setup(t);
  const a = s.authz({ allowedTtlMs: 1000, deniedTtlMs: 0 });
  await a.authorize(PROM, 'GET', '/metrics');
  s.clock.now += 1000;
  await a.authorize(PROM, 'GET', '/metrics');
  t.equal(s.fake.counts.subjectAccessReviews, 2);
  s.decision.value = 'deny';
  s.clock.now += 1000;
  await a.authorize(PROM, 'GET', '/metrics');
  await a.authorize(PROM, 'GET', '/metrics');
  t.equal(s.fake.counts.subjectAccessReviews, 4, 'a denied TTL of 0 caches nothing');
});

t.test('the key is the whole spec: user, uid, groups, extra, attributes', async (t) => {
  const s = await setup(t);
  const a = s.authz();
  await a.authorize(PROM, 'GET', '/metrics');
  const variants: [UserInfo, string, string][] = [
    [{ ...PROM, username: 'other' }, 'GET', '/metrics'],
    [{ ...PROM, uid: 'uid-q' }, 'GET', '/metrics'],
    [{ ...PROM, groups: ['system:authenticated'] }, 'GET', '/metrics'],
    [{ ...PROM, extra: {} }, 'GET', '/metrics'],
    [PROM, 'POST', '/metrics'],
    [PROM, 'GET', '/stats/summary'],
  ];
  for (const [u, m, p] of variants) await a.authorize(u, m, p);
  t.equal(s.fake.counts.subjectAccessReviews, 7, 'each a review of its own');
  const reordered: UserInfo = {
    ...PROM,
    extra: { 'authentication.kubernetes.io/pod-uid': ['u0'], 'authentication.kubernetes.io/pod-name': ['prometheus-k8s-0'] },
  };
  await a.authorize(reordered, 'GET', '/metrics');
  t.equal(s.fake.counts.subjectAccessReviews, 7, 'the order of extra keys does not matter');
});

t.test('errors are not cached: 500, garbage, hang, restart', async (t) => {
  const s = await setup(t);
  const a = s.authz({ timeoutMs: 300 });
  s.fake.fault = 'status500';
  t.match(await a.authorize(PROM, 'GET', '/metrics'), { decision: 'error', attrs: METRICS, reason: /^SubjectAccessReview failed: .*HTTP 500/ });
  s.fake.fault = 'garbage';
  t.match(await a.authorize(PROM, 'GET', '/metrics'), { decision: 'error', reason: /invalid JSON/ });
  s.fake.fault = 'hang';
  t.match(await a.authorize(PROM, 'GET', '/metrics'), { decision: 'error', reason: /timeout after 300ms/ });
  s.fake.fault = 'close';
  t.match(await a.authorize(PROM, 'GET', '/metrics'), { decision: 'error' });
  t.equal(a.cacheSize, 0);
  s.fake.fault = undefined;
  await s.fake.restart();
  t.match(await a.authorize(PROM, 'GET', '/metrics'), { decision: 'allow' }, 'after a restart the next review succeeds');
  t.same(s.reviews, ['error', 'error', 'error', 'error', 'allowed']);
});

t.test('concurrent identical lookups share one review', async (t) => {
  const s = await setup(t);
  const a = s.authz();
  const rs = await Promise.all(Array.from({ length: 500 }, () => a.authorize(PROM, 'GET', '/metrics/cadvisor')));
  t.equal(s.fake.counts.subjectAccessReviews, 1);
  t.equal(rs.filter((r) => r.decision === 'allow').length, 500);
  s.fake.fault = 'status500';
  const errs = await Promise.all(Array.from({ length: 100 }, () => a.authorize(PROM, 'GET', '/stats')));
  t.equal(errs.filter((r) => r.decision === 'error').length, 100);
  t.equal(s.fake.counts.requests, 2, 'one failed request for all of them');
});

t.test('the cache is bounded', async (t) => {
  const s = await setup(t);
  const a = s.authz({ maxEntries: 2 });
  for (const p of ['/metrics', '/stats', '/logs']) await a.authorize(PROM, 'GET', p);
  t.equal(a.cacheSize, 2);
  await a.authorize(PROM, 'GET', '/logs');
  t.equal(s.fake.counts.subjectAccessReviews, 3);
  await a.authorize(PROM, 'GET', '/metrics');
  t.equal(s.fake.counts.subjectAccessReviews, 4, 'the oldest went');
});
