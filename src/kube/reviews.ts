/**
 * TokenReview and SubjectAccessReview over REST (kubernetes/api `authentication/v1`, `authorization/v1`), read the
 * way the apiserver's webhook clients read them (`plugin/pkg/authenticator/token/webhook/webhook.go`,
 * `plugin/pkg/authorizer/webhook/webhook.go`):
 *
 * - A review answers 201 Created (200 is accepted too); any other status is a KubeApiError of kind `status`.
 * - Go omits empty fields (`authenticated`, `user`, `audiences`, `error`, `denied` are all `omitempty`), so a missing
 *   field is its zero value; a field of the wrong type is a KubeApiError of kind `invalid`.
 * - Audiences: when some were asked for, the token counts only if `status.audiences` intersects them. podvisor has no
 *   implicit audiences of its own, so an empty `status.audiences` (an audience-unaware server) is not authenticated.
 *   This check comes first and is a plain "not authenticated", as in the webhook client.
 * - `authenticated: false` with a `status.error` is an error of the review (`error` in the result), which callers do
 *   not cache; without one it is a plain "not authenticated".
 */
import { isRecord, isStringArray } from '../guards.js';
import { KubeApiError, type KubeApiClient, type KubeReply } from './api-client.js';

/** An authenticated user as TokenReview `status.user` (and the apiserver's `user.Info`) has it. */
export interface UserInfo {
  username: string;
  uid: string;
  groups: string[];
  extra: Record<string, string[]>;
}

/** SubjectAccessReview `spec.resourceAttributes`. */
export interface ResourceAttributes {
  namespace: string;
  verb: string;
  group: string;
  version: string;
  resource: string;
  subresource: string;
  name: string;
}

export type TokenReviewResult =
  | { authenticated: true; user: UserInfo; audiences: string[] }
  /** `error`: the server could not check the token (`status.error`); not a verdict on it, so not to be cached. */
  | { authenticated: false; reason: string; error?: string };

export interface AccessReviewResult {
  allowed: boolean;
  denied: boolean;
  reason?: string;
  evaluationError?: string;
}

export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
export const SUBJECT_ACCESS_REVIEW_PATH = '/apis/authorization.k8s.io/v1/subjectaccessreviews';

function short(s: string, max = 200): string {
  const line = s.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

/** The reply must be 201 (or 200) with a JSON object; otherwise a `status` error naming the server's message. */
function expectCreated(what: string, reply: KubeReply): Record<string, unknown> {
  if (reply.status !== 201 && reply.status !== 200) {
    const b = reply.body;
    const message = isRecord(b) && typeof b['message'] === 'string' ? b['message'] : typeof b === 'string' ? b : '';
    throw new KubeApiError('status', `${what}: the API server answered HTTP ${reply.status}${message !== '' ? `: ${short(message)}` : ''}`, {
      httpStatus: reply.status,
    });
  }
  if (!isRecord(reply.body)) throw new KubeApiError('invalid', `${what}: the API server answered a body that is not a JSON object`);
  return reply.body;
}

function invalid(what: string, why: string): never {
  throw new KubeApiError('invalid', `${what}: ${why}`);
}

function optString(what: string, m: Record<string, unknown>, key: string, where: string): string | undefined {
  const v = m[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') invalid(what, `${where}.${key} is not a string`);
  return v;
}

function optBool(what: string, m: Record<string, unknown>, key: string, where: string): boolean {
  const v = m[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') invalid(what, `${where}.${key} is not a boolean`);
  return v;
}

function optStringArray(what: string, m: Record<string, unknown>, key: string, where: string): string[] {
  const v = m[key];
  if (v === undefined || v === null) return [];
  if (!isStringArray(v)) invalid(what, `${where}.${key} is not a list of strings`);
  return [...v];
}

function parseUser(what: string, v: unknown): UserInfo {
  if (v === undefined || v === null) return { username: '', uid: '', groups: [], extra: {} };
  if (!isRecord(v)) invalid(what, 'status.user is not an object');
  const extraRaw = v['extra'];
  const extra: Record<string, string[]> = {};
  if (extraRaw !== undefined && extraRaw !== null) {
    if (!isRecord(extraRaw)) invalid(what, 'status.user.extra is not a map');
    for (const [k, values] of Object.entries(extraRaw)) {
      if (values === null) extra[k] = [];
      else if (isStringArray(values)) extra[k] = [...values];
      else invalid(what, `status.user.extra[${JSON.stringify(k)}] is not a list of strings`);
    }
  }
  return {
    username: optString(what, v, 'username', 'status.user') ?? '',
    uid: optString(what, v, 'uid', 'status.user') ?? '',
    groups: optStringArray(what, v, 'groups', 'status.user'),
    extra,
  };
}

/**
 * Asks the API server who `token` is. `audiences` (may be empty) go into `spec.audiences` and must intersect
 * `status.audiences`. Rejects with KubeApiError when the server could not be asked or answered out of contract.
 */
export async function tokenReview(client: KubeApiClient, token: string, audiences: readonly string[], timeoutMs: number): Promise<TokenReviewResult> {
  const what = 'TokenReview';
  const spec: Record<string, unknown> = { token };
  if (audiences.length > 0) spec['audiences'] = [...audiences];
  const reply = await client.post(TOKEN_REVIEW_PATH, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec }, timeoutMs);
  const body = expectCreated(what, reply);
  const status = body['status'];
  if (!isRecord(status)) invalid(what, 'the answer has no status');
  const authenticated = optBool(what, status, 'authenticated', 'status');
  const gotAudiences = optStringArray(what, status, 'audiences', 'status');
  const error = optString(what, status, 'error', 'status');
  const user = parseUser(what, status['user']);

  if (audiences.length > 0) {
    const common = gotAudiences.filter((a) => audiences.includes(a));
    if (common.length === 0) {
      const got = gotAudiences.length === 0 ? 'none' : gotAudiences.join(',');
      return { authenticated: false, reason: `token audiences (${got}) do not include ${audiences.join(',')}` };
    }
  }
  if (!authenticated) {
    if (error !== undefined && error !== '') return { authenticated: false, reason: `token review error: ${short(error)}`, error };
    return { authenticated: false, reason: 'token not authenticated' };
  }
  if (user.username === '') invalid(what, 'authenticated, but status.user.username is empty');
  return { authenticated: true, user, audiences: audiences.length > 0 ? gotAudiences.filter((a) => audiences.includes(a)) : gotAudiences };
}

/**
 * Asks the API server whether `user` may do `attrs`. `allowed` and `denied` as the server says them (both false: no
 * opinion). Rejects with KubeApiError when the server could not be asked or answered out of contract.
 */
export async function subjectAccessReview(client: KubeApiClient, user: UserInfo, attrs: ResourceAttributes, timeoutMs: number): Promise<AccessReviewResult> {
  const what = 'SubjectAccessReview';
  const reply = await client.post(
    SUBJECT_ACCESS_REVIEW_PATH,
    { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: subjectAccessReviewSpec(user, attrs) },
    timeoutMs,
  );
  const body = expectCreated(what, reply);
  const status = body['status'];
  if (!isRecord(status)) invalid(what, 'the answer has no status');
  if (typeof status['allowed'] !== 'boolean') invalid(what, 'status.allowed is not a boolean');
  const result: AccessReviewResult = { allowed: status['allowed'], denied: optBool(what, status, 'denied', 'status') };
  const reason = optString(what, status, 'reason', 'status');
  if (reason !== undefined && reason !== '') result.reason = reason;
  const evaluationError = optString(what, status, 'evaluationError', 'status');
  if (evaluationError !== undefined && evaluationError !== '') result.evaluationError = evaluationError;
  return result;
}

/** The SAR `spec` for `user` and `attrs`: the user copied verbatim, as the apiserver's webhook authorizer does. */
export function subjectAccessReviewSpec(user: UserInfo, attrs: ResourceAttributes): Record<string, unknown> {
  return { user: user.username, uid: user.uid, groups: [...user.groups], extra: { ...user.extra }, resourceAttributes: { ...attrs } };
}
