import t, { type Test } from 'tap';
import { ConfigError, errorMessage } from '../../src/errors.js';
import { inClusterEndpoint, parseKubeconfig, SERVICE_ACCOUNT_DIR } from '../../src/kube/kubeconfig.js';

const CERT_PEM = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';
const KEY_PEM = '-----BEGIN EC PRIVATE KEY-----\nMHcfake\n-----END EC PRIVATE KEY-----\n';
const b64 = (s: string): string => Buffer.from(s).toString('base64');

interface Parts {
  cluster?: string;
  user?: string;
  context?: string;
  current?: string;
}

/** A kubeconfig with one cluster `c`, one user `u`, one context `ctx`; the parts are YAML lines under each map. */
function kubeconfig(p: Parts): string {
  const indent = (s: string): string =>
    s
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => `    ${l}`)
      .join('\n');
  return [
    'apiVersion: v1',
    'kind: Config',
    p.current ?? 'current-context: ctx',
    'clusters:',
    '- name: c',
    '  cluster:',
    indent(p.cluster ?? 'server: https://10.0.0.1:6443'),
    'contexts:',
    '- name: ctx',
    '  context:',
    indent(p.context ?? 'cluster: c\nuser: u'),
    'users:',
    '- name: u',
    '  user:',
    indent(p.user ?? 'token: abc'),
    '',
  ].join('\n');
}

function rejects(t: Test, text: string, pattern: RegExp, msg: string): void {
  let thrown: unknown;
  try {
    parseKubeconfig(text, '/etc/podvisor', '/etc/podvisor/kubeconfig');
  } catch (err) {
    thrown = err;
  }
  t.ok(thrown instanceof ConfigError, `${msg}: a ConfigError`);
  t.match(errorMessage(thrown), pattern, msg);
  t.notMatch(errorMessage(thrown), /\n/, `${msg}: one line`);
}

t.test('server, CA path relative to the kubeconfig, token', async (t) => {
  const ep = parseKubeconfig(kubeconfig({ cluster: 'server: https://api.example:6443\ncertificate-authority: pki/ca.crt' }), '/etc/podvisor', 'kc');
  t.equal(ep.server.href, 'https://api.example:6443/');
  t.equal(ep.caFile, '/etc/podvisor/pki/ca.crt');
  t.equal(ep.caPem, undefined);
  t.same(ep.token, { value: 'abc' });
  t.equal(ep.insecure, false);
  t.equal(ep.source, 'kc');
});

t.test('absolute CA path kept; data fields decoded; tls-server-name', async (t) => {
  const abs = parseKubeconfig(kubeconfig({ cluster: 'server: https://a:1\ncertificate-authority: /abs/ca.crt' }), '/etc/podvisor', 'kc');
  t.equal(abs.caFile, '/abs/ca.crt');
  const ep = parseKubeconfig(
    kubeconfig({
      cluster: `server: https://a:1\ncertificate-authority-data: ${b64(CERT_PEM)}\ntls-server-name: kubernetes.default.svc`,
      user: `client-certificate-data: ${b64(CERT_PEM)}\nclient-key-data: ${b64(KEY_PEM)}`,
    }),
    '/x',
    'kc',
  );
  t.equal(ep.caPem, CERT_PEM);
  t.equal(ep.caFile, undefined);
  t.equal(ep.serverName, 'kubernetes.default.svc');
  t.equal(ep.clientCertPem, CERT_PEM);
  t.equal(ep.clientKeyPem, KEY_PEM);
  t.equal(ep.token, undefined);
});

t.test('client certificate and key files, tokenFile, resolved against the base directory', async (t) => {
  const ep = parseKubeconfig(
    kubeconfig({ user: 'client-certificate: certs/me.crt\nclient-key: /keys/me.key\ntokenFile: tok\ntoken: ignored' }),
    '/home/me/.kube',
    'kc',
  );
  t.equal(ep.clientCertFile, '/home/me/.kube/certs/me.crt');
  t.equal(ep.clientKeyFile, '/keys/me.key');
  t.same(ep.token, { file: '/home/me/.kube/tok' }, 'the file wins over a fixed token, as in client-go');
});

t.test('insecure-skip-tls-verify', async (t) => {
  const ep = parseKubeconfig(kubeconfig({ cluster: 'server: https://a:1\ninsecure-skip-tls-verify: true' }), '/x', 'kc');
  t.equal(ep.insecure, true);
  rejects(t, kubeconfig({ cluster: 'server: https://a:1\ninsecure-skip-tls-verify: "yes"' }), /insecure-skip-tls-verify.*true or false/, 'not a bool');
  rejects(
    t,
    kubeconfig({ cluster: 'server: https://a:1\ninsecure-skip-tls-verify: true\ncertificate-authority: ca.crt' }),
    /cannot be combined/,
    'insecure + CA',
  );
});

t.test('a context without a user: no credentials', async (t) => {
  const ep = parseKubeconfig(kubeconfig({ context: 'cluster: c' }), '/x', 'kc');
  t.equal(ep.token, undefined);
  t.equal(ep.clientCertFile, undefined);
});

t.test('IPv6 server and a path prefix', async (t) => {
  const ep = parseKubeconfig(kubeconfig({ cluster: 'server: "https://[fd00::1]:6443/k8s/clusters/x"' }), '/x', 'kc');
  t.equal(ep.server.hostname, '[fd00::1]');
  t.equal(ep.server.pathname, '/k8s/clusters/x');
});

t.test('errors', async (t) => {
  rejects(t, kubeconfig({ current: '' }), /kubeconfig \/etc\/podvisor\/kubeconfig: no current-context/, 'missing current-context');
  rejects(t, kubeconfig({ current: 'current-context: other' }), /no context named "other"/, 'unknown context');
  rejects(t, kubeconfig({ context: 'cluster: nope\nuser: u' }), /no cluster named "nope"/, 'unknown cluster');
  rejects(t, kubeconfig({ context: 'cluster: c\nuser: nobody' }), /no user named "nobody"/, 'unknown user');
  rejects(t, kubeconfig({ context: 'user: u' }), /names no cluster/, 'context without a cluster');
  rejects(t, kubeconfig({ cluster: 'certificate-authority: ca.crt' }), /has no server/, 'no server');
  rejects(t, kubeconfig({ cluster: 'server: http://10.0.0.1:8080' }), /is not an https URL/, 'http server');
  rejects(t, kubeconfig({ cluster: 'server: "::not a url"' }), /is not a URL/, 'not a URL');
  rejects(t, kubeconfig({ cluster: 'server: https://a:1\nproxy-url: http://proxy:3128' }), /proxy-url is not supported/, 'proxy');
  rejects(
    t,
    kubeconfig({ user: 'exec:\n  apiVersion: client.authentication.k8s.io/v1\n  command: aws' }),
    /user "u": exec credential plugins are not supported \(exec\)/,
    'exec user',
  );
  rejects(t, kubeconfig({ user: 'auth-provider:\n  name: gcp' }), /auth providers are not supported/, 'auth provider');
  rejects(t, kubeconfig({ user: 'username: admin\npassword: secret' }), /basic authentication is not supported/, 'basic auth');
  rejects(t, kubeconfig({ user: 'client-certificate: me.crt' }), /needs both the certificate and its key/, 'cert without key');
  rejects(t, kubeconfig({ user: `client-key-data: ${b64(KEY_PEM)}` }), /needs both/, 'key without cert');
  rejects(
    t,
    kubeconfig({ user: 'client-certificate: a.crt\nclient-certificate-data: ' + b64(CERT_PEM) + '\nclient-key: a.key' }),
    /both client-certificate and client-certificate-data/,
    'cert twice',
  );
  rejects(
    t,
    kubeconfig({ cluster: `server: https://a:1\ncertificate-authority: ca.crt\ncertificate-authority-data: ${b64(CERT_PEM)}` }),
    /both certificate-authority and certificate-authority-data/,
    'CA twice',
  );
  rejects(t, kubeconfig({ cluster: 'server: https://a:1\ncertificate-authority-data: "!!!"' }), /is not base64/, 'bad base64');
  rejects(t, kubeconfig({ cluster: `server: https://a:1\ncertificate-authority-data: ${b64('hello')}` }), /does not hold a PEM CERTIFICATE/, 'not PEM');
  rejects(t, kubeconfig({ cluster: 'server: 42' }), /"server" is not a string/, 'server not a string');
  rejects(t, 'clusters: [unclosed', /invalid YAML/, 'bad YAML');
  rejects(t, '- a\n- b\n', /not a YAML map/, 'a list');
  rejects(t, 'current-context: ctx\ncontexts: {ctx: {}}\n', /"contexts" is not a list/, 'contexts not a list');
});

t.test('inClusterEndpoint', async (t) => {
  const ep = inClusterEndpoint({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' });
  t.equal(ep.server.href, 'https://10.96.0.1/', 'port 443 is the default');
  t.same(ep.token, { file: `${SERVICE_ACCOUNT_DIR}/token` });
  t.equal(ep.caFile, `${SERVICE_ACCOUNT_DIR}/ca.crt`);
  t.equal(ep.insecure, false);
  t.equal(ep.source, 'in-cluster');

  const v6 = inClusterEndpoint({ KUBERNETES_SERVICE_HOST: 'fd00:10:96::1', KUBERNETES_SERVICE_PORT: '6443' }, '/tmp/sa');
  t.equal(v6.server.host, '[fd00:10:96::1]:6443', 'IPv6 bracketed');
  t.same(v6.token, { file: '/tmp/sa/token' });
  t.equal(v6.caFile, '/tmp/sa/ca.crt');

  const msg = 'not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (set --kubeconfig)';
  t.throws(() => inClusterEndpoint({}), new ConfigError(msg), 'neither');
  t.throws(() => inClusterEndpoint({ KUBERNETES_SERVICE_HOST: '10.96.0.1' }), { message: msg }, 'no port');
  t.throws(() => inClusterEndpoint({ KUBERNETES_SERVICE_PORT: '443' }), { message: msg }, 'no host');
  t.throws(() => inClusterEndpoint({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: 'https' }), /is not a port number/);
  t.throws(() => inClusterEndpoint({ KUBERNETES_SERVICE_HOST: 'bad host', KUBERNETES_SERVICE_PORT: '443' }), /is not a host name or address/);
});
