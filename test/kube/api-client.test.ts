import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { ConfigError } from '../../src/errors.js';
import { KubeApiClient, KubeApiError, MAX_RESPONSE_BYTES, type KubeApiClientOptions } from '../../src/kube/api-client.js';
import type { KubeEndpoint } from '../../src/kube/kubeconfig.js';
import { makeCa, serverCert } from '../support/pki.js';
import { startFakeApiServer, type FakeApiServer } from '../support/fake-apiserver.js';

const PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
const REVIEW = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: 'x' } };
const TIMEOUT = 5_000;

interface Setup {
  fake: FakeApiServer;
  dir: string;
  tokenFile: string;
  endpoint: KubeEndpoint;
  client: (ep?: Partial<KubeEndpoint>, opts?: KubeApiClientOptions) => KubeApiClient;
}

async function setup(t: Test): Promise<Setup> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-kube-client-'));
  const fake = await startFakeApiServer({ dir, callerToken: 'sa-1' });
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, 'sa-1\n');
  const endpoint: KubeEndpoint = { server: new URL(fake.url), caFile: fake.caFile, insecure: false, token: { file: tokenFile }, source: 'test' };
  const clients: KubeApiClient[] = [];
  t.teardown(async () => {
    for (const c of clients) c.close();
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    fake,
    dir,
    tokenFile,
    endpoint,
    client: (ep = {}, opts = {}) => {
      const c = new KubeApiClient({ ...endpoint, ...ep }, opts);
      clients.push(c);
      return c;
    },
  };
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

t.test('posts JSON with the token from the file and answers the parsed body', async (t) => {
  const s = await setup(t);
  const c = s.client();
  const r = await c.post(PATH, REVIEW, TIMEOUT);
  t.equal(r.status, 201);
  t.match(r.body, { kind: 'TokenReview', spec: { token: 'x' }, status: {} });
  t.same(s.fake.authorizations, ['Bearer sa-1']);
  t.equal(s.fake.counts.tokenReviews, 1);
  t.equal(c.describe(), `${s.fake.url} (test)`);
});

t.test('a fixed token, and a server URL with a path prefix', async (t) => {
  const s = await setup(t);
  const c = s.client({ token: { value: 'sa-1' }, server: new URL(`${s.fake.url}/prefix/`) });
  const r = await c.post(PATH, REVIEW, TIMEOUT);
  t.equal(r.status, 404, 'the fake serves no prefix');
  t.match(r.body, { kind: 'Status', message: /\(\/prefix\/apis\/authentication\.k8s\.io\/v1\/tokenreviews\)/ });
  t.same(s.fake.authorizations, ['Bearer sa-1']);
  t.equal(c.describe(), `${s.fake.url}/prefix (test)`);
});

t.test('the token file rotated: a 401, a re-read and one retry', async (t) => {
  const s = await setup(t);
  const c = s.client({}, { tokenMaxAgeMs: 3_600_000 });
  t.equal((await c.post(PATH, REVIEW, TIMEOUT)).status, 201);
  fs.writeFileSync(s.tokenFile, 'sa-2\n');
  s.fake.callerToken = 'sa-2';
  t.equal((await c.post(PATH, REVIEW, TIMEOUT)).status, 201, 'succeeds after the retry');
  t.same(s.fake.authorizations, ['Bearer sa-1', 'Bearer sa-1', 'Bearer sa-2']);
  t.equal(s.fake.counts.unauthorized, 1);
  t.equal((await c.post(PATH, REVIEW, TIMEOUT)).status, 201);
  t.equal(s.fake.authorizations.at(-1), 'Bearer sa-2', 'the new token is kept');
});

t.test('a 401 with an unchanged token is answered, not retried', async (t) => {
  const s = await setup(t);
  s.fake.callerToken = 'something-else';
  const r = await s.client().post(PATH, REVIEW, TIMEOUT);
  t.equal(r.status, 401);
  t.match(r.body, { kind: 'Status', reason: 'Unauthorized' });
  t.equal(s.fake.counts.requests, 1);
});

t.test('the token file is re-read once older than tokenMaxAgeMs, not before', async (t) => {
  const s = await setup(t);
  let now = 1_000_000;
  const c = s.client({}, { now: () => now, tokenMaxAgeMs: 60_000 });
  await c.post(PATH, REVIEW, TIMEOUT);
  fs.writeFileSync(s.tokenFile, 'sa-2');
  now += 59_999;
  await c.post(PATH, REVIEW, TIMEOUT);
  t.equal(s.fake.authorizations.at(-1), 'Bearer sa-1', 'still the token read before');
  s.fake.callerToken = 'sa-2';
  now += 1;
  t.equal((await c.post(PATH, REVIEW, TIMEOUT)).status, 201);
  t.same(s.fake.authorizations, ['Bearer sa-1', 'Bearer sa-1', 'Bearer sa-2'], 'the new token, without a 401 first');
  t.equal(s.fake.counts.unauthorized, 0);
});

t.test('a failed re-read keeps the last good token', async (t) => {
  const s = await setup(t);
  let now = 0;
  const c = s.client({}, { now: () => now });
  await c.post(PATH, REVIEW, TIMEOUT);
  fs.rmSync(s.tokenFile);
  now += 120_000;
  t.equal((await c.post(PATH, REVIEW, TIMEOUT)).status, 201);
  fs.writeFileSync(s.tokenFile, '   \n');
  now += 120_000;
  t.equal((await c.post(PATH, REVIEW, TIMEOUT)).status, 201, 'an empty file is a failed read too');
  t.same(s.fake.authorizations, ['Bearer sa-1', 'Bearer sa-1', 'Bearer sa-1']);
});

t.test('no token file to start with: a transport error naming the file', async (t) => {
  const s = await setup(t);
  const missing = path.join(s.dir, 'missing');
  const err = await rejection(s.client({ token: { file: missing } }).post(PATH, REVIEW, TIMEOUT));
  t.equal(err.kind, 'transport');
  t.equal(err.message, `cannot read the API token file ${missing}: ENOENT`);
  t.equal(s.fake.counts.requests, 0);
});

t.test('an API server that hangs: a timeout error', async (t) => {
  const s = await setup(t);
  s.fake.fault = 'hang';
  const err = await rejection(s.client().post(PATH, REVIEW, 300));
  t.equal(err.kind, 'timeout');
  t.match(err.message, /^timeout after 300ms: POST \/apis\/authentication\.k8s\.io\/v1\/tokenreviews on https:\/\/127\.0\.0\.1:\d+ \(test\)$/);
  s.fake.fault = undefined;
  t.equal((await s.client().post(PATH, REVIEW, TIMEOUT)).status, 201, 'answers again once the server does');
});

t.test('HTTP 500 is answered with its Status body', async (t) => {
  const s = await setup(t);
  s.fake.fault = 'status500';
  const r = await s.client().post(PATH, REVIEW, TIMEOUT);
  t.equal(r.status, 500);
  t.match(r.body, { kind: 'Status', code: 500, message: /failing on purpose/ });
});

t.test('a 2xx body that is not JSON: invalid', async (t) => {
  const s = await setup(t);
  s.fake.fault = 'garbage';
  const err = await rejection(s.client().post(PATH, REVIEW, TIMEOUT));
  t.equal(err.kind, 'invalid');
  t.match(err.message, /^invalid JSON from the API server/);
  t.equal(err.httpStatus, 200);
});

t.test('a non-2xx body that is not JSON comes back as text', async (t) => {
  const s = await setup(t);
  s.fake.respond = () => ({ status: 503, body: 'upstream connect error' });
  const r = await s.client().post(PATH, REVIEW, TIMEOUT);
  t.same(r, { status: 503, body: 'upstream connect error' });
});

t.test(`a body over ${MAX_RESPONSE_BYTES} bytes: invalid`, async (t) => {
  const s = await setup(t);
  s.fake.respond = () => ({ status: 201, body: JSON.stringify({ pad: 'x'.repeat(MAX_RESPONSE_BYTES) }) });
  const err = await rejection(s.client().post(PATH, REVIEW, TIMEOUT));
  t.equal(err.kind, 'invalid');
  t.match(err.message, /response over 1048576 bytes/);
});

t.test('the server closes the connection: a transport error', async (t) => {
  const s = await setup(t);
  s.fake.fault = 'close';
  const c = s.client();
  const err = await rejection(c.post(PATH, REVIEW, TIMEOUT));
  t.equal(err.kind, 'transport');
  s.fake.fault = undefined;
  t.equal((await c.post(PATH, REVIEW, TIMEOUT)).status, 201, 'the next request succeeds');
});

t.test('the API server restarts between requests: the next request succeeds', async (t) => {
  const s = await setup(t);
  const c = s.client();
  for (let i = 0; i < 5; i++) {
    t.equal((await c.post(PATH, REVIEW, TIMEOUT)).status, 201, `request ${i + 1}`);
    await s.fake.restart();
  }
  t.equal((await c.post(PATH, REVIEW, TIMEOUT)).status, 201, 'after the last restart');
  t.equal(s.fake.counts.tokenReviews, 6);
});

t.test('an API server down: a transport error', async (t) => {
  const s = await setup(t);
  await s.fake.close();
  const err = await rejection(s.client().post(PATH, REVIEW, TIMEOUT));
  t.equal(err.kind, 'transport');
  t.match(err.message, /ECONNREFUSED/);
});

t.test('TLS: the CA is checked; insecure skips it; tls-server-name is verified', async (t) => {
  const s = await setup(t);
  const other = makeCa(path.join(s.dir, 'other'), 'other-ca');
  serverCert(other, 'unused');
  const bad = await rejection(s.client({ caFile: other.cert }).post(PATH, REVIEW, TIMEOUT));
  t.equal(bad.kind, 'transport', 'a certificate from another CA');
  t.match(bad.message, /certificate/);

  const insecure = s.client({ caFile: undefined, insecure: true });
  t.equal((await insecure.post(PATH, REVIEW, TIMEOUT)).status, 201, 'insecure-skip-tls-verify');

  const pem = fs.readFileSync(s.fake.caFile, 'utf8');
  t.equal((await s.client({ caFile: undefined, caPem: pem, serverName: 'localhost' }).post(PATH, REVIEW, TIMEOUT)).status, 201, 'CA data; a SAN');
  const wrongName = await rejection(s.client({ serverName: 'api.example' }).post(PATH, REVIEW, TIMEOUT));
  t.equal(wrongName.kind, 'transport', 'a name the certificate does not carry');
  t.match(wrongName.message, /api\.example/);
});

t.test('unreadable CA or client certificate files: ConfigError at construction', async (t) => {
  const s = await setup(t);
  const missing = path.join(s.dir, 'nope.crt');
  t.throws(() => s.client({ caFile: missing }), new ConfigError(`test: cannot read the CA file ${missing}: ENOENT`));
  t.throws(() => s.client({ clientCertFile: missing, clientKeyFile: missing }), ConfigError);
  t.throws(() => s.client({ server: new URL('http://127.0.0.1:1') }), /must be https/);
});

t.test('a closed client refuses requests', async (t) => {
  const s = await setup(t);
  const c = s.client();
  c.close();
  const err = await rejection(c.post(PATH, REVIEW, TIMEOUT));
  t.equal(err.kind, 'transport');
  t.match(err.message, /is closed/);
});

t.test('no token: no Authorization header', async (t) => {
  const s = await setup(t);
  const r = await s.client({ token: undefined }).post(PATH, REVIEW, TIMEOUT);
  t.equal(r.status, 401);
  t.same(s.fake.authorizations, [undefined]);
});
