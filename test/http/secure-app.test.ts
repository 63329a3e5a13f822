/**
 * The HTTP layer with Kubernetes authentication and authorization on, in-process: buildApp + setupSecurity as main.ts
 * wires them, over real HTTPS (a generated self-signed certificate), against a fake API server over HTTPS that speaks
 * TokenReview and SubjectAccessReview as documented (test/support/fake-apiserver.ts). The gather is a stand-in: what
 * is under test is who gets an answer, with which status, and what the API server was asked.
 * Also here: what slow, silent, oversized and numerous connections get, on the same server.
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { buildApp, type ConnectionLimits } from '../../src/http/app.js';
import { setupSecurity, type SecurityOptions } from '../../src/http/security.js';
import { createLogger } from '../../src/log.js';
import { encodeFamilies, FamilyWriter } from '../../src/metrics/exposition.js';
import { newSecurityStats } from '../../src/model/scrape.js';
import type { GatherEngine, GatherResult } from '../../src/scrape/engine.js';
import { ScrapeService } from '../../src/scrape/service.js';
import { startFakeApiServer, type FakeApiServer } from '../support/fake-apiserver.js';
import { get, type Got } from '../support/https-client.js';
import { poll, until } from '../support/poll.js';

const NODE = 'node-7';
const PROM = { username: 'system:serviceaccount:monitoring:prometheus-k8s', groups: ['system:serviceaccounts'] };

class Engine implements GatherEngine {
  async gather(): Promise<GatherResult> {
    const w = new FamilyWriter('container_cpu_usage_seconds_total', 'Cumulative cpu time consumed in seconds.', 'counter');
    w.sample('id="/",name="",image="",container="",pod="",namespace="",cpu="total"', 1);
    const r = new FamilyWriter('node_cpu_usage_seconds_total', '[STABLE] Cumulative cpu time consumed by the node in core-seconds', 'counter');
    r.sample('', 2);
    return { timestampMs: Date.now(), durationMs: 1, containers: 1, body: encodeFamilies([w.finish()]), resource: encodeFamilies([r.finish()]), runtimes: [] };
  }
  async close(): Promise<void> {}
}

interface Served {
  url: string;
  port: number;
  fake: FakeApiServer;
  /** Requests the exporter's server has received. */
  received: () => number;
  log: () => string;
  as: (token: string | undefined, p: string, extra?: { method?: string }) => Promise<Got>;
}

const OPTIONS: SecurityOptions = {
  webConfigFile: '',
  tls: 'on',
  authentication: 'kubernetes',
  authorization: 'kubernetes',
  tokenAudiences: [],
  nodeName: NODE,
  kubeconfig: '',
  kubeApiTimeoutMs: 500,
  authnCacheTtlMs: 120_000,
  authzAllowedTtlMs: 300_000,
  authzDeniedTtlMs: 30_000,
};

async function serve(t: Test, opts: Partial<SecurityOptions> = {}, limits: Partial<ConnectionLimits> = {}): Promise<Served> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-secure-app-'));
  const fake = await startFakeApiServer({
    dir,
    tokens: {
      prom: { user: PROM },
      'metrics-server': { user: { username: 'system:serviceaccount:kube-system:metrics-server', groups: ['system:serviceaccounts'] } },
      intruder: { user: { username: 'system:serviceaccount:default:intruder', groups: [] } },
      old: { user: PROM, expired: true },
      scoped: { user: PROM, audiences: ['podvisor'] },
    },
    // nodes/metrics for Prometheus and metrics-server, on this node only; nothing for anyone else.
    rule: (user, attrs) =>
      user.user !== 'system:serviceaccount:default:intruder' &&
      attrs.resource === 'nodes' &&
      attrs.subresource === 'metrics' &&
      attrs.name === NODE &&
      attrs.verb === 'get'
        ? 'allow'
        : 'noopinion',
  });
  const kubeconfig = path.join(dir, 'kubeconfig');
  fs.writeFileSync(kubeconfig, fake.kubeconfig());
  let logged = '';
  const log = createLogger('debug', (l) => (logged += l));
  const stats = newSecurityStats();
  const security = setupSecurity({ ...OPTIONS, kubeconfig, ...opts }, log, stats, {});
  const service = new ScrapeService(new Engine(), log, { minGatherIntervalMs: 0, maxResultAgeMs: 90_000, gatherAhead: false, securityStats: stats });
  t.ok(security.app, 'security is on');
  const app = buildApp({
    service,
    log,
    defaultScrapeTimeoutMs: 10_000,
    scrapeTimeoutOffsetMs: 500,
    limits,
    ...(security.app === undefined ? {} : { security: security.app }),
  });
  security.attach(app.server);
  let received = 0;
  app.server.on('request', () => received++);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  t.teardown(async () => {
    await app.close();
    security.close();
    await service.close();
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const url = `https://127.0.0.1:${port}`;
  return {
    url,
    port,
    fake,
    received: () => received,
    log: () => logged,
    as: (token, p, extra = {}) =>
      get(`${url}${p}`, {
        insecure: true,
        ...(extra.method === undefined ? {} : { method: extra.method }),
        headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      }),
  };
}

t.test('the kubelet scheme: 401 without or with a bad token, 403 when denied, 200 with nodes/metrics on this node', async (t) => {
  const s = await serve(t);
  const none = await s.as(undefined, '/metrics');
  t.equal(none.status, 401, 'no token: 401');
  t.equal(none.body, 'Unauthorized\n', 'one line, nothing that helps an attacker');
  t.notOk(none.headers['www-authenticate'], 'no Basic challenge without basic-auth users');
  t.equal((await s.as('nonsense', '/metrics')).status, 401, 'unknown token: 401');
  t.equal((await s.as('old', '/metrics')).status, 401, 'expired token: 401');
  const denied = await s.as('intruder', '/metrics');
  t.equal(denied.status, 403, 'a valid token without the RBAC: 403');
  t.equal(denied.body, 'Forbidden\n');
  for (const p of ['/metrics', '/metrics/cadvisor', '/metrics/resource']) {
    const ok = await s.as('prom', p);
    t.equal(ok.status, 200, `${p}: 200 for Prometheus`);
  }
  t.match((await s.as('prom', '/metrics/resource')).body, /node_cpu_usage_seconds_total 2/, '/metrics/resource serves the resource families');
  t.equal((await s.as('metrics-server', '/metrics/resource')).status, 200, 'metrics-server too');
  t.equal((await s.as('prom', '/metrics', { method: 'HEAD' })).status, 200, 'HEAD is a get');
  t.equal((await s.as('prom', '/stats/summary')).status, 403, '/stats needs nodes/stats, which Prometheus lacks here');
  t.equal((await s.as('prom', '/')).status, 403, 'the landing page is nodes/proxy');
  t.equal((await s.as(undefined, '/healthz')).status, 200, '/healthz needs no credentials');
  t.not((await s.as(undefined, '/readyz')).status, 401, '/readyz needs no credentials');

  const sars = s.fake.received.filter((r) => r.kind === 'SubjectAccessReview').map((r) => r.spec);
  t.match(sars[0], {
    user: 'system:serviceaccount:default:intruder',
    resourceAttributes: { verb: 'get', group: '', version: 'v1', resource: 'nodes', subresource: 'metrics', name: NODE },
  });
  t.ok(
    sars.some((x) => JSON.stringify(x).includes('"subresource":"stats"')),
    '/stats/summary was reviewed as nodes/stats',
  );
  t.ok(
    sars.some((x) => JSON.stringify(x).includes('"subresource":"proxy"')),
    '/ was reviewed as nodes/proxy',
  );
  const promSar = sars.find((x) => x['user'] === PROM.username);
  t.match(promSar, { groups: ['system:serviceaccounts', 'system:authenticated'] }, 'the groups the TokenReview gave, plus system:authenticated');
  t.equal(s.fake.counts.tokenReviews, 5, 'one TokenReview per distinct token (nonsense, old, intruder, prom, metrics-server): the rest came from the cache');
  t.notMatch(s.log(), /Bearer|nonsense|intruder"/, 'no token in the log');

  const body = (await s.as('prom', '/metrics')).body;
  t.match(body, /podvisor_http_auth_requests_total\{result="unauthenticated"\} 3/);
  t.match(body, /podvisor_http_auth_requests_total\{result="forbidden"\} 3/);
  t.match(body, /podvisor_kube_reviews_total\{review="tokenreview",result="authenticated"\} 3/, 'intruder, prom, metrics-server');
  t.match(body, /podvisor_kube_reviews_total\{review="subjectaccessreview",result="denied"\} 3/);
});

t.test('audiences: a token not issued for podvisor is refused', async (t) => {
  const s = await serve(t, { tokenAudiences: ['podvisor'] });
  t.equal((await s.as('scoped', '/metrics')).status, 200, 'a token for audience podvisor');
  t.equal((await s.as('prom', '/metrics')).status, 401, 'a token for the API server only');
  t.match(s.fake.received[0]?.spec, { audiences: ['podvisor'] }, 'the audiences were asked for');
});

t.test('the API server hangs, fails or talks garbage: refused within the timeout, /healthz unaffected, cached decisions keep serving', async (t) => {
  const s = await serve(t);
  t.equal((await s.as('prom', '/metrics')).status, 200, 'reviewed and cached while the API server is up');
  s.fake.fault = 'hang';
  const pending = s.as('metrics-server', '/metrics/resource');
  // While that review hangs, the probes answer.
  t.equal((await s.as(undefined, '/healthz')).status, 200, '/healthz answers during a hanging review');
  const hung = await pending;
  t.equal(hung.status, 401, 'a new token whose TokenReview hangs: 401 after --kube-api-timeout');
  t.equal((await s.as('prom', '/metrics')).status, 200, 'a cached decision keeps serving while the API server hangs');
  for (const fault of ['status500', 'garbage', 'close'] as const) {
    s.fake.fault = fault;
    t.equal((await s.as('metrics-server', '/metrics')).status, 401, `${fault}: 401`);
  }
  // Authenticated, but the SubjectAccessReview fails: 403 (fail closed).
  s.fake.fault = undefined;
  s.fake.respond = (kind) => (kind === 'SubjectAccessReview' ? { status: 500, body: 'boom' } : undefined);
  t.equal((await s.as('metrics-server', '/metrics')).status, 403, 'authorization error: 403');
  s.fake.respond = undefined;
  await s.fake.restart();
  t.equal((await s.as('metrics-server', '/metrics')).status, 200, 'after a restart of the API server the next review succeeds');
  const body = (await s.as('prom', '/metrics')).body;
  t.match(body, /podvisor_kube_reviews_total\{review="tokenreview",result="error"\} 4/, 'hang, 500, garbage, close');
  t.match(body, /podvisor_kube_reviews_total\{review="subjectaccessreview",result="error"\} 1/);
  t.match(s.log(), /did not answer a review/, 'logged');
  const warnings = s
    .log()
    .split('\n')
    .filter((l) => l.includes('did not answer a review')).length;
  t.ok(warnings <= 2, `rate-limited: ${warnings} warning lines for 5 failed reviews`);
});

t.test('1,000 concurrent requests with one new token make one TokenReview and one SubjectAccessReview', async (t) => {
  const s = await serve(t, { kubeApiTimeoutMs: 60_000 });
  const N = 1000;
  // One connection per request: all 1,000 are in flight at once.
  const agent = new https.Agent({ keepAlive: true, maxSockets: N, rejectUnauthorized: false });
  t.teardown(() => agent.destroy());
  const burst = (): Promise<number[]> =>
    Promise.all(
      Array.from(
        { length: N },
        () =>
          new Promise<number>((resolve, reject) => {
            const req = https.get(`${s.url}/metrics/resource`, { agent, headers: { authorization: 'Bearer metrics-server' } }, (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            });
            req.on('error', reject);
          }),
      ),
    );
  // The API server holds the first review unanswered until all 1,000 requests are in: each finds it in flight.
  s.fake.fault = 'hang';
  const before = s.received();
  const first = burst();
  await until('all 1,000 requests to reach the exporter', () => s.received() - before >= N, { timeoutMs: 120_000 });
  t.equal(s.fake.counts.requests, 1, 'one review request reached the API server for 1,000 requests');
  // Then it drops the connection: the one review fails, and every request that shared it is refused.
  s.fake.fault = undefined;
  await s.fake.restart();
  const statuses = await first;
  t.ok(
    statuses.every((c) => c === 401),
    'all 1,000 shared its failure: 401 (an error is not cached)',
  );
  t.equal(s.fake.counts.requests, 1, 'and none asked again');
  const again = await burst();
  t.ok(
    again.every((c) => c === 200),
    'with the API server answering, the next 1,000 are served',
  );
  t.equal(s.fake.counts.tokenReviews, 1, 'after one TokenReview');
  t.equal(s.fake.counts.subjectAccessReviews, 1, 'and one SubjectAccessReview');
});

t.test('connections that cannot hold the exporter: oversized heads, slow heads and bodies, silent sockets, thousands of idle connections', async (t) => {
  // The production limits (10 s head, 30 s request, 15 s silent), shortened so the test does not wait for them.
  const s = await serve(t, {}, { headersTimeoutMs: 1500, requestTimeoutMs: 3000, checkIntervalMs: 250, silentTimeoutMs: 2500 });
  const big = await get(`${s.url}/metrics`, { insecure: true, headers: { authorization: 'Bearer prom', 'x-filler': 'x'.repeat(20_000) } });
  t.equal(big.status, 431, 'a head over 16 KiB: 431');
  t.equal((await s.as('prom', '/metrics')).status, 200, 'and the next request is served');

  // A head sent slowly and never finished: answered 408 and closed after the head timeout.
  const slow = tls.connect({ host: '127.0.0.1', port: s.port, rejectUnauthorized: false });
  let slowAnswer = '';
  let slowClosed = false;
  slow.on('data', (d: Buffer) => (slowAnswer += d.toString()));
  slow.on('close', () => (slowClosed = true));
  slow.on('error', () => undefined);
  await new Promise<void>((r) => slow.once('secureConnect', () => r()));
  slow.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
  // A body announced and never finished.
  const body = tls.connect({ host: '127.0.0.1', port: s.port, rejectUnauthorized: false });
  let bodyClosed = false;
  body.on('close', () => (bodyClosed = true));
  body.on('error', () => undefined);
  body.resume();
  await new Promise<void>((r) => body.once('secureConnect', () => r()));
  body.write('POST /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer prom\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\nonly a little');
  // A TCP connection that never sends a byte (no TLS hello), and one that completes the handshake and then says nothing.
  const silent = net.connect(s.port, '127.0.0.1');
  let silentClosed = false;
  silent.on('close', () => (silentClosed = true));
  silent.on('error', () => undefined);
  const mute = tls.connect({ host: '127.0.0.1', port: s.port, rejectUnauthorized: false });
  let muteClosed = false;
  mute.on('close', () => (muteClosed = true));
  mute.on('error', () => undefined);
  mute.resume(); // read, or the server's close would never be seen

  // Thousands of idle connections, opened in batches (so the listen backlog does not drop their SYNs).
  const N = 3000;
  const idle: net.Socket[] = [];
  let idleClosed = 0;
  t.teardown(() => {
    for (const c of idle) c.destroy();
    slow.destroy();
    body.destroy();
    silent.destroy();
    mute.destroy();
  });
  for (let i = 0; i < N; i += 250) {
    await Promise.all(
      Array.from(
        { length: Math.min(250, N - i) },
        () =>
          new Promise<void>((resolve) => {
            const c = net.connect(s.port, '127.0.0.1', () => resolve());
            c.on('error', () => resolve());
            c.on('close', () => idleClosed++);
            c.resume();
            idle.push(c);
          }),
      ),
    );
  }
  t.equal(idle.length, N, `${N} connections opened`);
  t.equal((await s.as('prom', '/metrics')).status, 200, `served while ${N} idle connections are open`);
  t.equal((await s.as(undefined, '/healthz')).status, 200, '/healthz too');

  await until('the slow head to be closed', () => slowClosed, { timeoutMs: 60_000 });
  t.match(slowAnswer, /^HTTP\/1\.1 408/, 'the slow head got a 408');
  await until('the unfinished body to be closed', () => bodyClosed, { timeoutMs: 60_000 });
  t.pass('a request whose body never finishes is closed');
  await until('the silent connection to be closed', () => silentClosed, { timeoutMs: 60_000 });
  t.pass('a connection that sends nothing is closed');
  await until('the mute TLS connection to be closed', () => muteClosed, { timeoutMs: 60_000 });
  t.pass('a TLS connection that sends nothing after its handshake is closed');
  await poll('the idle connections to be closed', () => (idleClosed === N ? true : undefined), {
    timeoutMs: 120_000,
    describe: () => `${idleClosed}/${N} closed`,
  });
  t.pass(`all ${N} idle connections closed by the exporter`);
  t.equal((await s.as('prom', '/metrics')).status, 200, 'still serving');
});

t.test('a web config that starts empty: basic-auth users and headers added later apply without a restart', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-web-live-'));
  const file = path.join(dir, 'web.yml');
  fs.writeFileSync(file, '{}\n');
  const stats = newSecurityStats();
  const security = setupSecurity(
    { ...OPTIONS, tls: 'auto', authentication: 'none', authorization: 'none', webConfigFile: file },
    createLogger('error'),
    stats,
    {},
  );
  t.ok(security.app, 'the guard is in place though the file asks for nothing yet');
  t.equal(security.app?.https, undefined, 'plain HTTP: no tls_server_config');
  const service = new ScrapeService(new Engine(), createLogger('error'), { minGatherIntervalMs: 0, maxResultAgeMs: 90_000, gatherAhead: false });
  const app = buildApp({
    service,
    log: createLogger('error'),
    defaultScrapeTimeoutMs: 10_000,
    scrapeTimeoutOffsetMs: 500,
    ...(security.app === undefined ? {} : { security: security.app }),
  });
  security.attach(app.server);
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(async () => {
    await app.close();
    security.close();
    await service.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const addr = app.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`;
  t.equal((await get(`${url}/metrics`)).status, 200, 'open while the file is empty');
  // A bcrypt hash of "pw" (cost 4), written as an operator would add a user.
  const bcrypt = (await import('bcryptjs')).default;
  fs.writeFileSync(
    file,
    `basic_auth_users:\n  prometheus: ${JSON.stringify(bcrypt.hashSync('pw', 4))}\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n`,
  );
  const refused = await poll('the new user to be required', async () => {
    const r = await get(`${url}/metrics`);
    return r.status === 401 ? r : undefined;
  });
  t.equal(refused.headers['x-content-type-options'], 'nosniff', 'the new header too');
  const ok = await get(`${url}/metrics`, { headers: { authorization: `Basic ${Buffer.from('prometheus:pw').toString('base64')}` } });
  t.equal(ok.status, 200, 'the new user gets in');
  t.equal(stats.reloads.success, 1, 'one reload counted');
});
