import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import t, { type Test } from 'tap';
import { bearerToken, TokenAuthenticator, userFromCertificate, withAuthenticatedGroup, type TokenReviewOutcome } from '../../../src/http/auth/authenticator.js';
import { KubeApiClient } from '../../../src/kube/api-client.js';
import { issue, makeCa, serverCert } from '../../support/pki.js';
import { startFakeApiServer, type FakeApiServer } from '../../support/fake-apiserver.js';

const MIN = 60_000;
const PROM = { username: 'system:serviceaccount:monitoring:prometheus-k8s', uid: 'uid-p', groups: ['system:serviceaccounts'] };

interface Setup {
  fake: FakeApiServer;
  client: KubeApiClient;
  dir: string;
  clock: { now: number };
  reviews: TokenReviewOutcome[];
  authn: (opts?: { audiences?: string[]; ttlMs?: number; timeoutMs?: number; maxEntries?: number }) => TokenAuthenticator;
}

async function setup(t: Test): Promise<Setup> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-authn-'));
  const fake = await startFakeApiServer({
    dir,
    callerToken: 'sa',
    tokens: {
      prom: { user: PROM, audiences: ['podvisor'] },
      prom2: { user: { ...PROM, username: 'p2' }, audiences: ['podvisor'] },
      prom3: { user: { ...PROM, username: 'p3' }, audiences: ['podvisor'] },
      prom4: { user: { ...PROM, username: 'p4' }, audiences: ['podvisor'] },
      grouped: { user: { username: 'g', groups: ['system:authenticated', 'x'] }, audiences: ['podvisor'] },
      apiOnly: { user: PROM, audiences: ['https://kubernetes.default.svc.cluster.local'] },
      expired: { user: PROM, audiences: ['podvisor'], expired: true },
      broken: { user: PROM, audiences: ['podvisor'], reviewError: 'invalid bearer token' },
    },
  });
  const client = new KubeApiClient({ server: new URL(fake.url), caFile: fake.caFile, insecure: false, token: { value: 'sa' }, source: 'test' });
  t.teardown(async () => {
    client.close();
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const clock = { now: 1_000_000 };
  const reviews: TokenReviewOutcome[] = [];
  return {
    fake,
    client,
    dir,
    clock,
    reviews,
    authn: (o = {}) =>
      new TokenAuthenticator({
        client,
        audiences: o.audiences ?? ['podvisor'],
        ttlMs: o.ttlMs ?? 2 * MIN,
        timeoutMs: o.timeoutMs ?? 5_000,
        now: () => clock.now,
        onReview: (r) => reviews.push(r),
        maxEntries: o.maxEntries,
      }),
  };
}

t.test('a valid token: the user, with system:authenticated', async (t) => {
  const s = await setup(t);
  const r = await s.authn().authenticate('prom');
  t.same(r, { ok: true, user: { ...PROM, groups: ['system:serviceaccounts', 'system:authenticated'], extra: {} } });
  t.same(s.reviews, ['authenticated']);
  t.same(s.fake.received, [{ kind: 'TokenReview', spec: { token: 'prom', audiences: ['podvisor'] } }]);
  const g = await s.authn().authenticate('grouped');
  t.same(g.ok && g.user.groups, ['system:authenticated', 'x'], 'not added twice');
});

t.test('authenticated verdicts are cached for the TTL (2m)', async (t) => {
  const s = await setup(t);
  const a = s.authn();
  await a.authenticate('prom');
  s.clock.now += 2 * MIN - 1;
  t.match(await a.authenticate('prom'), { ok: true });
  t.equal(s.fake.counts.tokenReviews, 1, 'from the cache');
  s.clock.now += 1;
  t.match(await a.authenticate('prom'), { ok: true });
  t.equal(s.fake.counts.tokenReviews, 2, 'reviewed again at 2m');
  t.same(s.reviews, ['authenticated', 'authenticated']);
  t.equal(a.cacheSize, 1);
});

t.test('unauthenticated verdicts are cached for the TTL too: unknown, expired, wrong audience', async (t) => {
  const s = await setup(t);
  const a = s.authn();
  for (const token of ['nope', 'expired', 'apiOnly']) {
    const r = await a.authenticate(token);
    t.match(r, { ok: false, error: false }, token);
  }
  t.match(await a.authenticate('apiOnly'), { ok: false, error: false, reason: 'token audiences (none) do not include podvisor' });
  t.match(
    await a.authenticate('nope'),
    { ok: false, error: false, reason: 'token audiences (none) do not include podvisor' },
    'the audience check comes first',
  );
  t.match(await s.authn({ audiences: [] }).authenticate('nope'), { ok: false, error: false, reason: 'token not authenticated' });
  t.equal(s.fake.counts.tokenReviews, 4, 'the repeats came from the cache');
  s.reviews.length = 0;
  s.clock.now += 2 * MIN - 1;
  await a.authenticate('nope');
  t.equal(s.fake.counts.tokenReviews, 4);
  s.clock.now += 1;
  await a.authenticate('nope');
  t.equal(s.fake.counts.tokenReviews, 5, 'reviewed again at 2m');
  t.same(s.reviews, ['unauthenticated']);
});

t.test('a custom TTL', async (t) => {
  const s = await setup(t);
  const a = s.authn({ ttlMs: 10_000 });
  await a.authenticate('prom');
  s.clock.now += 10_000;
  await a.authenticate('prom');
  t.equal(s.fake.counts.tokenReviews, 2);
});

t.test('errors are not cached: 500, garbage, hang, status.error', async (t) => {
  const s = await setup(t);
  const a = s.authn({ timeoutMs: 300 });
  s.fake.fault = 'status500';
  const r1 = await a.authenticate('prom');
  t.match(r1, { ok: false, error: true, reason: /^TokenReview failed: TokenReview: the API server answered HTTP 500/ });
  await a.authenticate('prom');
  t.equal(s.fake.counts.requests, 2, 'asked again');
  s.fake.fault = 'garbage';
  t.match(await a.authenticate('prom'), { ok: false, error: true, reason: /invalid JSON/ });
  s.fake.fault = 'hang';
  t.match(await a.authenticate('prom'), { ok: false, error: true, reason: /timeout after 300ms/ });
  s.fake.fault = undefined;
  t.match(await a.authenticate('prom'), { ok: true }, 'the next review succeeds');
  t.same(s.reviews, ['error', 'error', 'error', 'error', 'authenticated']);
  t.equal(a.cacheSize, 1, 'only the success is cached');
});

t.test('status.error (authenticated false) is a refusal, not cached (as the apiserver webhook client), when no audiences are checked', async (t) => {
  const s = await setup(t);
  const a = s.authn({ audiences: [] });
  t.same(await a.authenticate('broken'), { ok: false, error: false, reason: 'token review error: invalid bearer token' });
  await a.authenticate('broken');
  t.equal(s.fake.counts.tokenReviews, 2, 'asked again');
  t.same(s.reviews, ['unauthenticated', 'unauthenticated'], 'counted as refusals, not as failures of the API server');
  t.equal(a.cacheSize, 0);
  // With audiences, the webhook client checks them first: no status.audiences is a plain "not authenticated", cached.
  const withAud = s.authn();
  t.same(await withAud.authenticate('broken'), { ok: false, error: false, reason: 'token audiences (none) do not include podvisor' });
  await withAud.authenticate('broken');
  t.equal(s.fake.counts.tokenReviews, 3);
});

t.test('the API server restarts: the next authentication succeeds', async (t) => {
  const s = await setup(t);
  const a = s.authn();
  t.match(await a.authenticate('prom'), { ok: true });
  await s.fake.restart();
  t.match(await a.authenticate('prom2'), { ok: true });
});

t.test('1,000 concurrent authentications of one new token make one TokenReview', async (t) => {
  const s = await setup(t);
  const a = s.authn();
  const results = await Promise.all(Array.from({ length: 1000 }, () => a.authenticate('prom')));
  t.equal(s.fake.counts.tokenReviews, 1);
  t.equal(results.filter((r) => r.ok && r.user.username === PROM.username).length, 1000);
  t.same(s.reviews, ['authenticated']);

  s.fake.fault = 'status500';
  const failed = await Promise.all(Array.from({ length: 1000 }, () => a.authenticate('prom2')));
  t.equal(s.fake.counts.requests, 2, 'an error is shared by the waiters too');
  t.equal(failed.filter((r) => !r.ok && r.error).length, 1000);
  s.fake.fault = undefined;
  t.match(await a.authenticate('prom2'), { ok: true }, 'and not kept');
});

t.test('the cache is bounded (LRU)', async (t) => {
  const s = await setup(t);
  const a = s.authn({ maxEntries: 3 });
  for (const tok of ['prom', 'prom2', 'prom3']) await a.authenticate(tok);
  await a.authenticate('prom');
  await a.authenticate('prom4');
  t.equal(a.cacheSize, 3);
  t.equal(s.fake.counts.tokenReviews, 4);
  await a.authenticate('prom');
  t.equal(s.fake.counts.tokenReviews, 4, 'prom was used recently: kept');
  await a.authenticate('prom2');
  t.equal(s.fake.counts.tokenReviews, 5, 'prom2 was the least recently used: evicted');
});

t.test('audiences are part of the key: no audiences means the API server audience', async (t) => {
  const s = await setup(t);
  t.match(await s.authn({ audiences: [] }).authenticate('apiOnly'), { ok: true });
  t.same(s.fake.received.at(-1)?.spec, { token: 'apiOnly' });
});

t.test('an empty token is refused without a review', async (t) => {
  const s = await setup(t);
  t.same(await s.authn().authenticate(''), { ok: false, error: false, reason: 'empty bearer token' });
  t.equal(s.fake.counts.requests, 0);
});

t.test('cached users cannot be changed by a caller', async (t) => {
  const s = await setup(t);
  const a = s.authn();
  const r = await a.authenticate('prom');
  if (!r.ok) throw new Error('expected ok');
  t.throws(() => r.user.groups.push('system:masters'));
  const again = await a.authenticate('prom');
  t.same(again.ok && again.user.groups, ['system:serviceaccounts', 'system:authenticated']);
});

t.test('withAuthenticatedGroup, as the apiserver adds it', async (t) => {
  const u = { username: 'u', uid: '', groups: ['a'], extra: {} };
  t.same(withAuthenticatedGroup(u).groups, ['a', 'system:authenticated']);
  t.same(u.groups, ['a'], 'the input is not changed');
  t.same(withAuthenticatedGroup({ ...u, username: 'system:anonymous' }).groups, ['a'], 'not for system:anonymous');
  t.same(withAuthenticatedGroup({ ...u, groups: ['system:unauthenticated'] }).groups, ['system:unauthenticated']);
  t.same(withAuthenticatedGroup({ ...u, groups: ['system:authenticated', 'b'] }).groups, ['system:authenticated', 'b']);
});

t.test('userFromCertificate: subject fields as Node gives them', async (t) => {
  t.same(userFromCertificate({ subject: { CN: 'alice', O: 'team-a' } }), { username: 'alice', uid: '', groups: ['team-a', 'system:authenticated'], extra: {} });
  t.same(userFromCertificate({ subject: { CN: ['alice'], O: ['a', 'b'] } })?.groups, ['a', 'b', 'system:authenticated']);
  t.same(userFromCertificate({ subject: { CN: 'alice' } })?.groups, ['system:authenticated']);
  t.same(userFromCertificate({ subject: { CN: 'system:anonymous' } })?.groups, [], 'no group for anonymous');
  t.equal(userFromCertificate({ subject: { CN: ['a', 'b'] } }), undefined, 'an ambiguous CN');
  t.equal(userFromCertificate({ subject: { CN: '' } }), undefined, 'an empty CN');
  t.equal(userFromCertificate({ subject: { O: 'x' } }), undefined, 'no CN');
  t.equal(userFromCertificate({}), undefined, 'no certificate: getPeerCertificate() answers {}');
});

t.test('userFromCertificate on a real client certificate', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-cert-user-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const ca = makeCa(dir, 'client-ca');
  const srv = serverCert(ca, 'srv');
  const cli = issue(ca, 'alice', { cn: 'alice', o: ['team-a', 'team-b'], client: true });
  const one = issue(ca, 'bob', { cn: 'bob', o: ['solo'], client: true });
  const server = https.createServer({ cert: srv.certPem, key: srv.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const user = userFromCertificate((req.socket as TLSSocket).getPeerCertificate());
    res.end(JSON.stringify(user));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  const get = (pair: { certPem: string; keyPem: string }): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const req = https.get(
        { host: '127.0.0.1', port, path: '/', ca: ca.certPem, cert: pair.certPem, key: pair.keyPem, agent: false, timeout: 10_000 },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(JSON.parse(body)));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
  t.same(await get(cli), { username: 'alice', uid: '', groups: ['team-a', 'team-b', 'system:authenticated'], extra: {} });
  t.same(await get(one), { username: 'bob', uid: '', groups: ['solo', 'system:authenticated'], extra: {} });
});

t.test('bearerToken, as the apiserver reads the header', async (t) => {
  t.equal(bearerToken('Bearer abc.def'), 'abc.def');
  t.equal(bearerToken('bearer abc'), 'abc', 'the scheme is case-insensitive');
  t.equal(bearerToken('  Bearer abc  '), 'abc', 'trimmed');
  t.equal(bearerToken('Bearer abc extra'), 'abc', 'up to the next space');
  t.equal(bearerToken('Bearer  abc'), undefined, 'two spaces: an empty token');
  t.equal(bearerToken('Bearer'), undefined);
  t.equal(bearerToken('Basic dXNlcjpwYXNz'), undefined);
  t.equal(bearerToken(''), undefined);
  t.equal(bearerToken(undefined), undefined);
  t.equal(bearerToken(['Bearer a', 'Bearer b']), undefined, 'a repeated header is refused');
});
