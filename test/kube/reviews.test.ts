import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { KubeApiClient, KubeApiError } from '../../src/kube/api-client.js';
import { subjectAccessReview, tokenReview, type ResourceAttributes, type UserInfo } from '../../src/kube/reviews.js';
import { startFakeApiServer, type FakeApiServer, type FakeDecision } from '../support/fake-apiserver.js';

const TIMEOUT = 5_000;
const PROM = {
  username: 'system:serviceaccount:monitoring:prometheus-k8s',
  uid: 'u-1',
  groups: ['system:serviceaccounts', 'system:serviceaccounts:monitoring'],
};
const ATTRS: ResourceAttributes = { namespace: '', verb: 'get', group: '', version: 'v1', resource: 'nodes', subresource: 'metrics', name: 'node-a' };
const USER: UserInfo = {
  username: PROM.username,
  uid: 'u-1',
  groups: [...PROM.groups, 'system:authenticated'],
  extra: { 'authentication.kubernetes.io/pod-name': ['prometheus-0'] },
};

async function setup(t: Test): Promise<{ fake: FakeApiServer; client: KubeApiClient }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-reviews-'));
  const fake = await startFakeApiServer({
    dir,
    callerToken: 'sa',
    tokens: {
      good: { user: { ...PROM, extra: { 'authentication.kubernetes.io/pod-name': ['prometheus-0'] } }, audiences: ['podvisor', 'other'] },
      apiOnly: { user: { username: 'alice' }, audiences: ['https://kubernetes.default.svc.cluster.local'] },
      expired: { user: PROM, audiences: ['podvisor'], expired: true },
      broken: { user: PROM, audiences: ['podvisor'], reviewError: 'square/go-jose: error in cryptographic primitive' },
      unaware: { user: PROM, audiences: ['podvisor', 'https://kubernetes.default.svc.cluster.local'], omitAudiences: true },
    },
  });
  const client = new KubeApiClient({ server: new URL(fake.url), caFile: fake.caFile, insecure: false, token: { value: 'sa' }, source: 'test' });
  t.teardown(async () => {
    client.close();
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { fake, client };
}

async function rejection(p: Promise<unknown>): Promise<KubeApiError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof KubeApiError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

t.test('TokenReview: a valid token with a wanted audience', async (t) => {
  const { fake, client } = await setup(t);
  const r = await tokenReview(client, 'good', ['podvisor'], TIMEOUT);
  t.same(r, {
    authenticated: true,
    user: { ...PROM, extra: { 'authentication.kubernetes.io/pod-name': ['prometheus-0'] } },
    audiences: ['podvisor'],
  });
  t.same(fake.received, [{ kind: 'TokenReview', spec: { token: 'good', audiences: ['podvisor'] } }], 'spec as documented');
});

t.test('TokenReview: no audiences wanted → the API server audience; no spec.audiences sent', async (t) => {
  const { fake, client } = await setup(t);
  const r = await tokenReview(client, 'apiOnly', [], TIMEOUT);
  t.same(r, { authenticated: true, user: { username: 'alice', uid: '', groups: [], extra: {} }, audiences: ['https://kubernetes.default.svc.cluster.local'] });
  t.same(fake.received[0]?.spec, { token: 'apiOnly' });
  t.same(
    await tokenReview(client, 'good', [], TIMEOUT),
    { authenticated: false, reason: 'token not authenticated' },
    'a podvisor-only token is not an API token',
  );
});

t.test('TokenReview: invalid, expired, wrong audience', async (t) => {
  const { client } = await setup(t);
  t.same(await tokenReview(client, 'nope', [], TIMEOUT), { authenticated: false, reason: 'token not authenticated' }, 'unknown token');
  t.same(await tokenReview(client, 'expired', [], TIMEOUT), { authenticated: false, reason: 'token not authenticated' }, 'expired');
  t.same(
    await tokenReview(client, 'apiOnly', ['podvisor'], TIMEOUT),
    { authenticated: false, reason: 'token audiences (none) do not include podvisor' },
    'another audience',
  );
});

t.test('TokenReview: authenticated without status.audiences while audiences were wanted → not authenticated', async (t) => {
  const { client } = await setup(t);
  t.same(await tokenReview(client, 'unaware', ['podvisor'], TIMEOUT), { authenticated: false, reason: 'token audiences (none) do not include podvisor' });
  t.match(await tokenReview(client, 'unaware', [], TIMEOUT), { authenticated: true }, 'fine when none were wanted');
});

t.test('TokenReview: status.audiences must intersect the wanted ones', async (t) => {
  const { fake, client } = await setup(t);
  fake.respond = () => ({ status: 201, body: JSON.stringify({ status: { authenticated: true, user: { username: 'x' }, audiences: ['elsewhere'] } }) });
  t.same(await tokenReview(client, 'good', ['podvisor', 'p2'], TIMEOUT), {
    authenticated: false,
    reason: 'token audiences (elsewhere) do not include podvisor,p2',
  });
});

t.test('TokenReview: status.error with authenticated false is an error', async (t) => {
  const { client } = await setup(t);
  t.same(await tokenReview(client, 'broken', [], TIMEOUT), {
    authenticated: false,
    reason: 'token review error: square/go-jose: error in cryptographic primitive',
    error: 'square/go-jose: error in cryptographic primitive',
  });
});

t.test('TokenReview: 200 is accepted as 201', async (t) => {
  const { fake, client } = await setup(t);
  fake.respond = () => ({
    status: 200,
    body: JSON.stringify({ status: { authenticated: true, user: { username: 'bob', groups: null, extra: { k: null } } } }),
  });
  t.same(await tokenReview(client, 'x', [], TIMEOUT), { authenticated: true, user: { username: 'bob', uid: '', groups: [], extra: { k: [] } }, audiences: [] });
});

t.test('TokenReview: faults', async (t) => {
  const { fake, client } = await setup(t);
  fake.fault = 'status500';
  const e500 = await rejection(tokenReview(client, 'good', [], TIMEOUT));
  t.equal(e500.kind, 'status');
  t.equal(e500.httpStatus, 500);
  t.match(e500.message, /^TokenReview: the API server answered HTTP 500: Internal error occurred: the fake is failing on purpose$/);
  fake.fault = 'garbage';
  t.equal((await rejection(tokenReview(client, 'good', [], TIMEOUT))).kind, 'invalid');
  fake.fault = 'hang';
  t.equal((await rejection(tokenReview(client, 'good', [], 300))).kind, 'timeout');
  fake.fault = undefined;
  fake.callerToken = 'rotated-away';
  const e401 = await rejection(tokenReview(client, 'good', [], TIMEOUT));
  t.equal(e401.kind, 'status');
  t.match(e401.message, /HTTP 401: Unauthorized/);
  fake.callerToken = 'sa';
  fake.respond = () => ({ status: 403, body: 'forbidden\nby policy' });
  t.match((await rejection(tokenReview(client, 'good', [], TIMEOUT))).message, /HTTP 403: forbidden by policy$/, 'a text body, on one line');
});

t.test('TokenReview: bodies out of contract are invalid', async (t) => {
  const { fake, client } = await setup(t);
  const cases: [unknown, RegExp][] = [
    [[1, 2], /not a JSON object/],
    [{ kind: 'TokenReview' }, /the answer has no status/],
    [{ status: { authenticated: 'yes' } }, /status\.authenticated is not a boolean/],
    [{ status: { authenticated: true, user: 'bob' } }, /status\.user is not an object/],
    [{ status: { authenticated: true, user: { username: 7 } } }, /status\.user\.username is not a string/],
    [{ status: { authenticated: true, user: { username: 'b', groups: [1] } } }, /status\.user\.groups is not a list of strings/],
    [{ status: { authenticated: true, user: { username: 'b', extra: [] } } }, /status\.user\.extra is not a map/],
    [{ status: { authenticated: true, user: { username: 'b', extra: { k: 'v' } } } }, /status\.user\.extra\["k"\] is not a list of strings/],
    [{ status: { authenticated: true, audiences: 'podvisor' } }, /status\.audiences is not a list of strings/],
    [{ status: { authenticated: false, error: 42 } }, /status\.error is not a string/],
    [{ status: { authenticated: true } }, /authenticated, but status\.user\.username is empty/],
  ];
  for (const [body, pattern] of cases) {
    fake.respond = () => ({ status: 201, body: JSON.stringify(body) });
    const err = await rejection(tokenReview(client, 'good', [], TIMEOUT));
    t.equal(err.kind, 'invalid', JSON.stringify(body));
    t.match(err.message, pattern);
  }
});

t.test('SubjectAccessReview: allowed, denied, no opinion, both', async (t) => {
  const { fake, client } = await setup(t);
  let decision: FakeDecision = 'allow';
  fake.rule = () => decision;
  t.same(await subjectAccessReview(client, USER, ATTRS, TIMEOUT), { allowed: true, denied: false, reason: 'allowed by the fake rule' });
  t.same(fake.received[0], {
    kind: 'SubjectAccessReview',
    spec: { user: USER.username, uid: 'u-1', groups: USER.groups, extra: USER.extra, resourceAttributes: ATTRS },
  });
  decision = 'deny';
  t.same(await subjectAccessReview(client, USER, ATTRS, TIMEOUT), { allowed: false, denied: true, reason: 'denied by the fake rule' });
  decision = 'noopinion';
  t.same(await subjectAccessReview(client, USER, ATTRS, TIMEOUT), { allowed: false, denied: false });
  decision = 'both';
  t.same(await subjectAccessReview(client, USER, ATTRS, TIMEOUT), { allowed: true, denied: true });
});

t.test('SubjectAccessReview: the rule sees the user and attributes', async (t) => {
  const { fake, client } = await setup(t);
  fake.rule = (u, a) =>
    u.groups.includes('system:serviceaccounts:monitoring') && a.resource === 'nodes' && a.subresource === 'metrics' && a.verb === 'get' ? 'allow' : 'deny';
  t.match(await subjectAccessReview(client, USER, ATTRS, TIMEOUT), { allowed: true });
  t.match(await subjectAccessReview(client, USER, { ...ATTRS, subresource: 'proxy' }, TIMEOUT), { allowed: false, denied: true });
  t.match(await subjectAccessReview(client, { ...USER, groups: [] }, ATTRS, TIMEOUT), { allowed: false, denied: true });
});

t.test('SubjectAccessReview: evaluationError, faults and bodies out of contract', async (t) => {
  const { fake, client } = await setup(t);
  fake.respond = () => ({ status: 201, body: JSON.stringify({ status: { allowed: true, evaluationError: 'a role binding could not be read' } }) });
  t.same(await subjectAccessReview(client, USER, ATTRS, TIMEOUT), { allowed: true, denied: false, evaluationError: 'a role binding could not be read' });
  fake.respond = () => ({ status: 201, body: JSON.stringify({ status: { denied: true } }) });
  t.match((await rejection(subjectAccessReview(client, USER, ATTRS, TIMEOUT))).message, /status\.allowed is not a boolean/);
  fake.respond = () => ({ status: 201, body: JSON.stringify({ status: { allowed: false, reason: ['x'] } }) });
  t.match((await rejection(subjectAccessReview(client, USER, ATTRS, TIMEOUT))).message, /status\.reason is not a string/);
  fake.respond = () => ({ status: 201, body: JSON.stringify({}) });
  t.match((await rejection(subjectAccessReview(client, USER, ATTRS, TIMEOUT))).message, /^SubjectAccessReview: the answer has no status$/);
  fake.respond = undefined;
  fake.fault = 'status500';
  t.equal((await rejection(subjectAccessReview(client, USER, ATTRS, TIMEOUT))).kind, 'status');
  fake.fault = 'hang';
  t.equal((await rejection(subjectAccessReview(client, USER, ATTRS, 300))).kind, 'timeout');
});
