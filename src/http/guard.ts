/**
 * Who may read what: the decision for one request, as the kubelet makes it, without fastify.
 * - /healthz and /readyz are open (probes carry no credentials); everything else, the landing page included, needs
 *   credentials as soon as any authentication is configured.
 * - The web config's rate_limit comes first (429), as in exporter-toolkit, but never for the probes.
 * - Authentication, first match wins: a client certificate verified against the web config's client CA (CN is the
 *   user, O the groups), a bearer token (TokenReview), basic auth (the web config's bcrypt users). None, or a bad
 *   one: 401.
 * - Authorization: a SubjectAccessReview for users the API server knows (token and certificate users); the web
 *   config's basic-auth users are the operator's own and are not reviewed. Denied, or no answer in time: 403.
 * Answers carry one generic line; what was refused and why goes to the log (rate-limited), never the token.
 */
import type { Fields, Logger } from '../log.js';
import type { AuthOutcome, ReviewKind, ReviewResult, SecurityStats } from '../model/scrape.js';
import { bearerToken } from './auth/authenticator.js';
import { parseBasicAuthorization } from './basic-auth.js';

/** Paths answered without credentials. */
export const OPEN_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

export interface Identity {
  username: string;
  uid: string;
  groups: string[];
  extra: Record<string, string[]>;
  /** How the user proved who they are. */
  via: 'certificate' | 'token' | 'basic';
}

export type TokenCheck = { ok: true; user: Omit<Identity, 'via'> } | { ok: false; error: boolean; reason: string };

export interface GuardParts {
  /** The web config's basic-auth users; absent or `size` 0: no basic auth. */
  basic?: { readonly users: number; verify(user: string, password: string): Promise<boolean> };
  /** Bearer tokens (TokenReview). */
  token?: { authenticate(token: string): Promise<TokenCheck> };
  /** The user of a client certificate verified against the client CA, if the connection presented one. */
  certificate?: (req: GuardRequest) => Omit<Identity, 'via'> | undefined;
  /** SubjectAccessReview of token and certificate users. */
  authorizer?: {
    authorize(user: Omit<Identity, 'via'>, method: string, path: string): Promise<{ decision: 'allow' | 'deny' | 'error'; reason?: string; attrs?: unknown }>;
  };
  /** The web config's rate_limit: false when no token is left. */
  rateLimit?: () => boolean;
}

export interface GuardRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
  authorization?: string;
  /** The connection, for a client certificate (opaque here). */
  socket?: unknown;
}

export type Verdict =
  { status: 200; identity?: Identity } | { status: 401 | 403 | 429; body: string; headers: Readonly<Record<string, string>>; outcome: AuthOutcome };

const UNAUTHORIZED = 'Unauthorized\n';
const FORBIDDEN = 'Forbidden\n';

/** The path without its query string. */
export function pathOf(url: string): string {
  const q = url.search(/[?#]/);
  return q === -1 ? url : url.slice(0, q);
}

/** Logs one line per key at most every `everyMs`, with how many were held back since. */
export class RateLimitedLog {
  readonly #log: Logger;
  readonly #everyMs: number;
  readonly #now: () => number;
  readonly #last = new Map<string, { at: number; held: number }>();

  constructor(log: Logger, everyMs = 30_000, now: () => number = Date.now) {
    this.#log = log;
    this.#everyMs = everyMs;
    this.#now = now;
  }

  warn(key: string, msg: string, fields: Fields): void {
    const now = this.#now();
    const last = this.#last.get(key);
    if (last !== undefined && now - last.at < this.#everyMs) {
      last.held++;
      return;
    }
    if (this.#last.size > 256) this.#last.clear();
    this.#last.set(key, { at: now, held: 0 });
    this.#log.warn(msg, last !== undefined && last.held > 0 ? { ...fields, suppressed: last.held } : fields);
  }
}

export class Guard {
  readonly #parts: GuardParts;
  readonly #stats: SecurityStats;
  readonly #log: Logger;
  readonly #warn: RateLimitedLog;

  constructor(parts: GuardParts, stats: SecurityStats, log: Logger, warn = new RateLimitedLog(log)) {
    this.#parts = parts;
    this.#stats = stats;
    this.#log = log;
    this.#warn = warn;
  }

  /** True when some request needs credentials. */
  get authenticating(): boolean {
    const p = this.#parts;
    return (p.basic !== undefined && p.basic.users > 0) || p.token !== undefined || p.certificate !== undefined;
  }

  /** Counts a review's answer (the authenticator's and authorizer's onReview). */
  review(kind: ReviewKind, result: ReviewResult): void {
    const r = this.#stats.reviews[kind];
    r[result] = (r[result] ?? 0) + 1;
    if (result === 'error') this.#warn.warn(`review-${kind}`, 'the API server did not answer a review: requests are refused until it does', { review: kind });
  }

  async check(req: GuardRequest): Promise<Verdict> {
    const path = pathOf(req.url);
    if (OPEN_PATHS.has(path)) return { status: 200 };
    if (this.#parts.rateLimit !== undefined && !this.#parts.rateLimit()) return this.#refuse(429, 'Too Many Requests\n', 'rate_limited', {});
    if (!this.authenticating) return { status: 200 };
    const identity = await this.#authenticate(req);
    if (identity === undefined) {
      const basic = this.#parts.basic !== undefined && this.#parts.basic.users > 0;
      return this.#refuse(401, UNAUTHORIZED, 'unauthenticated', basic ? { 'www-authenticate': 'Basic' } : {});
    }
    const authz = this.#parts.authorizer;
    if (authz !== undefined && identity.via !== 'basic') {
      const d = await authz.authorize(identity, req.method, path);
      if (d.decision !== 'allow') {
        const fields = { user: identity.username, method: req.method, path, decision: d.decision, reason: d.reason ?? '' };
        if (d.decision === 'error') this.#warn.warn('authorize-error', 'request refused: its SubjectAccessReview failed', fields);
        else this.#log.debug('request forbidden', fields);
        return this.#refuse(403, FORBIDDEN, 'forbidden', {});
      }
    }
    this.#stats.requests.allowed++;
    return { status: 200, identity };
  }

  async #authenticate(req: GuardRequest): Promise<Identity | undefined> {
    const p = this.#parts;
    const fromCert = p.certificate?.(req);
    if (fromCert !== undefined) return { ...fromCert, via: 'certificate' };
    const token = bearerToken(req.authorization);
    if (token !== undefined && p.token !== undefined) {
      const r = await p.token.authenticate(token);
      if (r.ok) return { ...r.user, via: 'token' };
      if (r.error) this.#warn.warn('authenticate-error', 'request refused: its TokenReview failed', { reason: r.reason });
      else this.#log.debug('bearer token refused', { reason: r.reason });
      return undefined;
    }
    const decoded = parseBasicAuthorization(req.authorization);
    if (decoded !== undefined && p.basic !== undefined && p.basic.users > 0) {
      if (!(await p.basic.verify(decoded.user, decoded.password))) {
        this.#log.debug('basic auth refused', { user: decoded.user });
        return undefined;
      }
      return { username: decoded.user, uid: '', groups: [], extra: {}, via: 'basic' };
    }
    return undefined;
  }

  #refuse(status: 401 | 403 | 429, body: string, outcome: AuthOutcome, headers: Readonly<Record<string, string>>): Verdict {
    this.#stats.requests[outcome]++;
    return { status, body, headers, outcome };
  }
}
