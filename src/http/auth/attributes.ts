/**
 * The SubjectAccessReview attributes of a request, mapped as the kubelet maps them (`pkg/kubelet/server/auth.go`
 * `GetRequestAttributes`): always a resource request on `nodes/<subresource>` named after this node, the verb from the
 * HTTP method, the subresource from the path's first segments.
 */
import type { ResourceAttributes } from '../../kube/reviews.js';

const VERBS: Readonly<Record<string, string>> = {
  POST: 'create',
  GET: 'get',
  HEAD: 'get',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

/** Path prefix → subresource, in the kubelet's order. */
const SUBRESOURCES: readonly (readonly [string, string])[] = [
  ['/spec', 'spec'],
  ['/stats', 'stats'],
  ['/metrics', 'metrics'],
  ['/logs', 'log'],
  ['/checkpoint', 'checkpoint'],
];

/** `path` is `prefix` or lies under it (`/metrics/cadvisor` is under `/metrics`, `/metricsfoo` is not). */
export function isSubpath(path: string, prefix: string): boolean {
  return path === prefix || (path.startsWith(prefix) && path[prefix.length] === '/');
}

/** The verb for an HTTP method: POST→create, GET/HEAD→get, PUT→update, PATCH→patch, DELETE→delete, else `*`. */
export function verbOf(method: string): string {
  return VERBS[method.toUpperCase()] ?? '*';
}

/** The kubelet-style resource attributes for `method path` on node `nodeName` (`path` may carry a query). */
export function requestAttributes(method: string, path: string, nodeName: string): ResourceAttributes {
  const q = path.search(/[?#]/);
  const p = q === -1 ? path : path.slice(0, q);
  const subresource = SUBRESOURCES.find(([prefix]) => isSubpath(p, prefix))?.[1] ?? 'proxy';
  return { namespace: '', verb: verbOf(method), group: '', version: 'v1', resource: 'nodes', subresource, name: nodeName };
}
