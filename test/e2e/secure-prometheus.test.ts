/**
 * A real Prometheus scraping a secured podvisor the way kube-prometheus scrapes the kubelet: `scheme: https`, a CA to
 * verify the serving certificate against with `server_name` (the target is an IP), and the credentials from a file
 * (`authorization.credentials_file`, read again at every scrape) or a client certificate. podvisor checks the tokens
 * and client certificates with a fake API server (TokenReview, SubjectAccessReview over HTTPS, test/support/
 * fake-apiserver.ts) that grants get nodes/metrics on this node to Prometheus only.
 */
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { requireDaemon } from '../support/daemons.js';
import { startExporter } from '../support/exporter.js';
import { startFakeApiServer } from '../support/fake-apiserver.js';
import { issue, makeCa } from '../support/pki.js';
import { activeTargets, query, startPrometheus, type ActiveTarget } from '../support/prometheus.js';
import { poll } from '../support/poll.js';

const NODE = 'node-secure-1';
const SERVER_NAME = 'podvisor.podvisor.svc';
const PROM_USER = 'system:serviceaccount:monitoring:prometheus-k8s';
const MTLS_USER = 'prometheus-mtls';

t.test('Prometheus scrapes podvisor over HTTPS with a bearer token file and with a client certificate; a scraper without the RBAC is refused', async (t) => {
  for (const d of ['promtool', 'prometheus'] as const) if (!(await requireDaemon(t, d))) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-secure-prom-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

  const fake = await startFakeApiServer({
    dir: path.join(dir, 'api'),
    tokens: {
      'prom-token-1': { user: { username: PROM_USER, groups: ['system:serviceaccounts'] } },
      'prom-token-2': { user: { username: PROM_USER, groups: ['system:serviceaccounts'] } },
      'other-token': { user: { username: 'system:serviceaccount:default:someone', groups: ['system:serviceaccounts'] } },
    },
    rule: (user, attrs) =>
      (user.user === PROM_USER || user.user === MTLS_USER) && attrs.resource === 'nodes' && attrs.subresource === 'metrics' && attrs.name === NODE
        ? 'allow'
        : 'noopinion',
  });
  t.teardown(() => fake.close());
  const kubeconfig = path.join(dir, 'kubeconfig');
  fs.writeFileSync(kubeconfig, fake.kubeconfig());

  // The serving certificate is for a DNS name only: Prometheus dials the IP and verifies against server_name.
  const ca = makeCa(path.join(dir, 'pki'), 'cluster-ca');
  const serving = issue(ca, 'podvisor', { cn: SERVER_NAME, sans: [`DNS:${SERVER_NAME}`] });
  const client = issue(ca, 'prometheus-client', { cn: MTLS_USER, o: ['monitoring'], client: true });
  const webConfig = path.join(dir, 'web.yml');
  fs.writeFileSync(
    webConfig,
    YAML.stringify({
      tls_server_config: { cert_file: serving.cert, key_file: serving.key, client_auth_type: 'VerifyClientCertIfGiven', client_ca_file: ca.cert },
    }),
  );
  const exporter = await startExporter([
    `--web.config.file=${webConfig}`,
    '--authentication=kubernetes',
    '--authorization=kubernetes',
    `--kubeconfig=${kubeconfig}`,
    `--node-name=${NODE}`,
    '--no-disk-usage',
    // Only the root cgroup: what is under test is the way in, and a gather of a busy node's hundreds of cgroups can
    // miss these 1 s scrape timeouts (a 503 is not what this test is about).
    '--raw-cgroup-prefix-allowlist=/podvisor-none',
  ]);
  t.teardown(() => exporter.stop());
  const target = exporter.url.replace('http://', '');

  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, 'prom-token-1');
  const otherFile = path.join(dir, 'other-token');
  fs.writeFileSync(otherFile, 'other-token');
  const tlsConfig = { ca_file: ca.cert, server_name: SERVER_NAME };
  const job = (name: string, extra: Record<string, unknown>): Record<string, unknown> => ({
    job_name: name,
    scrape_interval: '1s',
    scrape_timeout: '1s',
    scheme: 'https',
    metrics_path: '/metrics/cadvisor',
    static_configs: [{ targets: [target] }],
    ...extra,
  });
  const prom = await startPrometheus({
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    scrape_configs: [
      job('token', { tls_config: tlsConfig, authorization: { type: 'Bearer', credentials_file: tokenFile } }),
      job('mtls', { tls_config: { ...tlsConfig, cert_file: client.cert, key_file: client.key } }),
      job('resource', { metrics_path: '/metrics/resource', tls_config: tlsConfig, authorization: { credentials_file: tokenFile } }),
      job('unauthorized', { tls_config: tlsConfig, authorization: { credentials_file: otherFile } }),
      job('anonymous', { tls_config: tlsConfig }),
    ],
  });
  t.teardown(() => prom.stop());

  const byJob = (targets: ActiveTarget[], name: string): ActiveTarget | undefined => targets.find((x) => x.labels['job'] === name);
  // Each target until it is in the state it should settle in (a first scrape can still be slow on a busy node).
  const want: Record<string, { health: string; error?: RegExp }> = {
    token: { health: 'up' },
    mtls: { health: 'up' },
    resource: { health: 'up' },
    unauthorized: { health: 'down', error: /403/ },
    anonymous: { health: 'down', error: /401/ },
  };
  let last: ActiveTarget[] = [];
  const targets = await poll(
    'every target to settle',
    async () => {
      last = await activeTargets(prom.url);
      const settled = Object.entries(want).every(([name, w]) => {
        const x = byJob(last, name);
        return x !== undefined && x.health === w.health && (w.error === undefined || w.error.test(x.lastError));
      });
      return settled ? last : undefined;
    },
    { timeoutMs: 90_000, everyMs: 500, describe: () => last.map((x) => `${x.labels['job'] ?? '?'}=${x.health} ${x.lastError}`).join('; ') },
  );
  t.equal(byJob(targets, 'token')?.health, 'up', `token: up (${byJob(targets, 'token')?.lastError ?? ''})`);
  t.equal(byJob(targets, 'mtls')?.health, 'up', `client certificate: up (${byJob(targets, 'mtls')?.lastError ?? ''})`);
  t.equal(byJob(targets, 'resource')?.health, 'up', `/metrics/resource: up (${byJob(targets, 'resource')?.lastError ?? ''})`);
  t.equal(byJob(targets, 'unauthorized')?.health, 'down', 'a token without nodes/metrics: down');
  t.match(byJob(targets, 'unauthorized')?.lastError, /403/, 'with a 403');
  t.equal(byJob(targets, 'anonymous')?.health, 'down', 'no credentials: down');
  t.match(byJob(targets, 'anonymous')?.lastError, /401/, 'with a 401');

  const rows = await poll('container series from the token job', async () => {
    const r = await query(prom.url, 'count(container_cpu_usage_seconds_total{job="token"})');
    return r.length > 0 && (r[0]?.value ?? 0) > 0 ? r : undefined;
  });
  t.ok((rows[0]?.value ?? 0) > 0, 'the cAdvisor series arrived through HTTPS and the token');
  const node = await poll('node_cpu_usage_seconds_total from /metrics/resource', async () => {
    const r = await query(prom.url, 'node_cpu_usage_seconds_total{job="resource"}');
    return r.length === 1 ? r : undefined;
  });
  t.ok((node[0]?.value ?? 0) > 0, 'the resource metrics too, with their own timestamps accepted by Prometheus');

  const sarUsers = new Set(fake.received.filter((r) => r.kind === 'SubjectAccessReview').map((r) => String(r.spec['user'])));
  t.ok(sarUsers.has(MTLS_USER), 'the client certificate user (CN) was reviewed');
  const mtlsSar = fake.received.find((r) => r.kind === 'SubjectAccessReview' && r.spec['user'] === MTLS_USER);
  t.match(mtlsSar?.spec, { groups: ['monitoring', 'system:authenticated'] }, 'its groups are the certificate O, plus system:authenticated');

  // The token rotates on disk: Prometheus reads the file again at every scrape, podvisor reviews the new token.
  const before = fake.counts.tokenReviews;
  fs.writeFileSync(tokenFile, 'prom-token-2');
  await poll(
    'a TokenReview of the rotated token',
    () => (fake.received.some((r) => r.kind === 'TokenReview' && r.spec['token'] === 'prom-token-2') ? true : undefined),
    { timeoutMs: 30_000, everyMs: 200 },
  );
  t.ok(fake.counts.tokenReviews > before, 'the new token was reviewed');
  const after = await poll(
    'the token job to be scraped with the new token',
    async () => {
      const ts = await activeTargets(prom.url);
      const x = byJob(ts, 'token');
      return x !== undefined && x.health === 'up' ? x : undefined;
    },
    { timeoutMs: 30_000, everyMs: 500 },
  );
  t.equal(after.health, 'up', 'still up after the rotation');
  t.equal(exporter.proc.exitCode, null, 'the exporter kept running');
});
