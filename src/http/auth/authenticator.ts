/**
 * Who is calling: a bearer token checked with a TokenReview (cached as the apiserver's delegating authenticator caches
 * it, `pkg/authentication/token/cache`), or a verified client certificate (CN → user, O → groups, as
 * `x509.CommonNameUserConversion`). Either identity gets the group `system:authenticated`, as the apiserver's
 * `AuthenticatedGroupAdder` adds it around the whole union of authenticators.
 *
 * Token cache: keyed on HMAC-SHA256(a random per-process key, audiences + token), never the token itself; verdicts
 * (authenticated or not) live `ttlMs` (2 m by default, the kubelet's `--authentication-token-webhook-cache-ttl`);
 * errors (the API server unreachable, slow, out of contract, or a review with `status.error`) are not cached;
 * concurrent lookups of one token share one TokenReview.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { errorMessage } from '../../errors.js';
import type { KubeApiClient } from '../../kube/api-client.js';
import { tokenReview, type UserInfo } from '../../kube/reviews.js';
import { SingleFlight, TtlCache } from './cache.js';

export const ALL_AUTHENTICATED = 'system:authenticated';
export const ALL_UNAUTHENTICATED = 'system:unauthenticated';
export const ANONYMOUS = 'system:anonymous';
export const DEFAULT_TOKEN_TTL_MS = 2 * 60_000;

export type AuthnOutcome = { ok: true; user: UserInfo } | { ok: false; error: boolean; reason: string };
export type TokenReviewOutcome = 'authenticated' | 'unauthenticated' | 'error';

export interface TokenAuthenticatorOptions {
  client: KubeApiClient;
  /** `--auth-token-audiences`; empty: the API server's own audience. */
  audiences: readonly string[];
  /** How long a verdict is cached (ms), success and failure alike. */
  ttlMs?: number;
  /** Timeout of one TokenReview (ms). */
  timeoutMs: number;
  now?: () => number;
  /** Called once per TokenReview made (cache hits and joined lookups make none). */
  onReview?: (result: TokenReviewOutcome) => void;
  maxEntries?: number;
}

/** `user` with `system:authenticated` added, unless it is anonymous or already has it (or system:unauthenticated). */
export function withAuthenticatedGroup(user: UserInfo): UserInfo {
  if (user.username === ANONYMOUS || user.groups.some((g) => g === ALL_AUTHENTICATED || g === ALL_UNAUTHENTICATED)) return user;
  return { ...user, groups: [...user.groups, ALL_AUTHENTICATED] };
}

function freeze(user: UserInfo): UserInfo {
  for (const v of Object.values(user.extra)) Object.freeze(v);
  Object.freeze(user.extra);
  Object.freeze(user.groups);
  return Object.freeze(user);
}

export class TokenAuthenticator {
  readonly #client: KubeApiClient;
  readonly #audiences: readonly string[];
  readonly #ttlMs: number;
  readonly #timeoutMs: number;
  readonly #onReview: ((result: TokenReviewOutcome) => void) | undefined;
  readonly #cache: TtlCache<AuthnOutcome>;
  readonly #flight = new SingleFlight<AuthnOutcome>();
  readonly #key = randomBytes(32);
  readonly #audiencePrefix: string;

  constructor(opts: TokenAuthenticatorOptions) {
    this.#client = opts.client;
    this.#audiences = [...opts.audiences];
    this.#ttlMs = opts.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
    this.#timeoutMs = opts.timeoutMs;
    this.#onReview = opts.onReview;
    this.#cache = new TtlCache({ maxEntries: opts.maxEntries, now: opts.now });
    this.#audiencePrefix = `${JSON.stringify(this.#audiences)}\n`;
  }

  /** Who `token` is, from the cache or a TokenReview. Never rejects: an error is `{ ok: false, error: true }`. */
  authenticate(token: string): Promise<AuthnOutcome> {
    if (token === '') return Promise.resolve({ ok: false, error: false, reason: 'empty bearer token' });
    const key = createHmac('sha256', this.#key).update(this.#audiencePrefix).update(token).digest('base64');
    const cached = this.#cache.get(key);
    if (cached !== undefined) return Promise.resolve(cached);
    return this.#flight.run(key, () => this.#review(key, token));
  }

  /** Verdicts cached now (for tests and self-metrics). */
  get cacheSize(): number {
    return this.#cache.size;
  }

  async #review(key: string, token: string): Promise<AuthnOutcome> {
    let outcome: AuthnOutcome;
    // The apiserver's webhook client does not cache a refusal that came with status.error (its cache keeps no
    // errors), and neither does this. It is still a refusal of the token (a malformed or foreign JWT comes back this
    // way), not a failure of the API server: 401, counted and logged as unauthenticated.
    let cache = true;
    try {
      const r = await tokenReview(this.#client, token, this.#audiences, this.#timeoutMs);
      if (r.authenticated) outcome = Object.freeze({ ok: true, user: freeze(withAuthenticatedGroup(r.user)) });
      else {
        outcome = Object.freeze({ ok: false, error: false, reason: r.reason });
        cache = r.error === undefined;
      }
    } catch (err) {
      outcome = { ok: false, error: true, reason: `TokenReview failed: ${errorMessage(err)}` };
      cache = false;
    }
    this.#onReview?.(outcome.ok ? 'authenticated' : outcome.error ? 'error' : 'unauthenticated');
    if (cache) this.#cache.set(key, outcome, this.#ttlMs);
    return outcome;
  }
}

/**
 * The token of an `Authorization: Bearer <token>` header, as the apiserver's bearertoken authenticator reads it: the
 * scheme case-insensitive, the token up to the next space. Undefined when the header is absent, not Bearer, or empty.
 */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  const parts = header.trim().split(' ');
  if (parts.length < 2 || parts[0]?.toLowerCase() !== 'bearer') return undefined;
  const token = parts[1] ?? '';
  return token === '' ? undefined : token;
}

type Name = string | string[] | undefined;

/**
 * The user a verified client certificate names: CN → username (required, exactly one), every O → a group, plus
 * `system:authenticated`. `cert` is Node's `getPeerCertificate()`, whose subject fields are a string, or a list when
 * the name repeats; `{}` (no certificate) gives undefined. Only call it for a certificate the TLS layer verified.
 */
export function userFromCertificate(cert: { subject?: { CN?: Name; O?: Name } }): UserInfo | undefined {
  const cn = cert.subject?.CN;
  // Go's pkix.Name keeps the last of several CNs; an ambiguous name is refused here instead.
  const username = Array.isArray(cn) ? (cn.length === 1 ? cn[0] : undefined) : cn;
  if (typeof username !== 'string' || username === '') return undefined;
  const o = cert.subject?.O;
  const groups = o === undefined ? [] : Array.isArray(o) ? o.filter((g) => typeof g === 'string') : [o];
  return withAuthenticatedGroup({ username, uid: '', groups, extra: {} });
}
