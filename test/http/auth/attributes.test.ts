import t from 'tap';
import { isSubpath, requestAttributes, verbOf } from '../../../src/http/auth/attributes.js';

t.test('verbs, as the kubelet maps them', async (t) => {
  const table: [string, string][] = [
    ['GET', 'get'],
    ['HEAD', 'get'],
    ['POST', 'create'],
    ['PUT', 'update'],
    ['PATCH', 'patch'],
    ['DELETE', 'delete'],
    ['OPTIONS', '*'],
    ['TRACE', '*'],
    ['get', 'get'],
  ];
  for (const [method, verb] of table) t.equal(verbOf(method), verb, method);
});

t.test('path → subresource, on segments', async (t) => {
  const table: [string, string][] = [
    ['/metrics', 'metrics'],
    ['/metrics/', 'metrics'],
    ['/metrics/cadvisor', 'metrics'],
    ['/metrics/resource', 'metrics'],
    ['/metrics/probes', 'metrics'],
    ['/metrics?name[]=x', 'metrics'],
    ['/metrics/cadvisor?x=1#frag', 'metrics'],
    ['/metricsfoo', 'proxy'],
    ['/stats', 'stats'],
    ['/stats/summary', 'stats'],
    ['/statsx', 'proxy'],
    ['/logs', 'log'],
    ['/logs/kern.log', 'log'],
    ['/spec', 'spec'],
    ['/spec/', 'spec'],
    ['/checkpoint/ns/pod/c', 'checkpoint'],
    ['/', 'proxy'],
    ['', 'proxy'],
    ['/healthz', 'proxy'],
    ['/pods', 'proxy'],
    ['/x/metrics', 'proxy'],
  ];
  for (const [p, sub] of table) t.equal(requestAttributes('GET', p, 'n').subresource, sub, p);
});

t.test('the whole attributes', async (t) => {
  t.same(requestAttributes('GET', '/metrics/cadvisor', 'node-a'), {
    namespace: '',
    verb: 'get',
    group: '',
    version: 'v1',
    resource: 'nodes',
    subresource: 'metrics',
    name: 'node-a',
  });
  t.same(requestAttributes('POST', '/', 'node-b'), {
    namespace: '',
    verb: 'create',
    group: '',
    version: 'v1',
    resource: 'nodes',
    subresource: 'proxy',
    name: 'node-b',
  });
});

t.test('isSubpath', async (t) => {
  t.ok(isSubpath('/a', '/a'));
  t.ok(isSubpath('/a/b', '/a'));
  t.notOk(isSubpath('/ab', '/a'));
  t.notOk(isSubpath('/', '/a'));
});
