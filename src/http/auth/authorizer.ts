/**
 * May this user do this request: a SubjectAccessReview on the kubelet's attributes (`nodes/<subresource>` of this
 * node, attributes.ts), cached as the apiserver's webhook authorizer caches it (`plugin/pkg/authorizer/webhook`): the
 * key is the JSON of the whole review spec; allowed answers live `allowedTtlMs` (5 m), denied and no-opinion answers
 * `deniedTtlMs` (30 s); errors are not cached; concurrent identical lookups share one review.
 *
 * Decision: `allowed` without `denied` → allow; `denied`, no opinion, or (out of contract) both → deny; the API server
 * unreachable, slow or out of contract → error (the kubelet answers 500 for it).
 */
import { errorMessage } from '../../errors.js';
import type { KubeApiClient } from '../../kube/api-client.js';
import { subjectAccessReview, subjectAccessReviewSpec, type ResourceAttributes, type UserInfo } from '../../kube/reviews.js';
import { requestAttributes } from './attributes.js';
import { SingleFlight, TtlCache } from './cache.js';

export const DEFAULT_ALLOWED_TTL_MS = 5 * 60_000;
export const DEFAULT_DENIED_TTL_MS = 30_000;
/** As the apiserver's webhook authorizer's LRU. */
export const DEFAULT_SAR_CACHE_ENTRIES = 8192;

export type AuthzDecision = 'allow' | 'deny' | 'error';
export type AccessReviewOutcome = 'allowed' | 'denied' | 'error';

export interface AuthzOutcome {
  decision: AuthzDecision;
  attrs: ResourceAttributes;
  reason?: string;
}

export interface SarAuthorizerOptions {
  client: KubeApiClient;
  /** The node whose `nodes/<subresource>` is checked (`--node-name`). */
  nodeName: string;
  allowedTtlMs?: number;
  deniedTtlMs?: number;
  /** Timeout of one SubjectAccessReview (ms). */
  timeoutMs: number;
  now?: () => number;
  /** Called once per SubjectAccessReview made (cache hits and joined lookups make none). */
  onReview?: (result: AccessReviewOutcome) => void;
  maxEntries?: number;
}

interface Verdict {
  decision: AuthzDecision;
  reason?: string;
}

/** A JSON text with object keys sorted, so that equal specs give equal keys whatever order `extra` was built in. */
function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stableJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export class SarAuthorizer {
  readonly #client: KubeApiClient;
  readonly #nodeName: string;
  readonly #allowedTtlMs: number;
  readonly #deniedTtlMs: number;
  readonly #timeoutMs: number;
  readonly #onReview: ((result: AccessReviewOutcome) => void) | undefined;
  readonly #cache: TtlCache<Verdict>;
  readonly #flight = new SingleFlight<Verdict>();

  constructor(opts: SarAuthorizerOptions) {
    this.#client = opts.client;
    this.#nodeName = opts.nodeName;
    this.#allowedTtlMs = opts.allowedTtlMs ?? DEFAULT_ALLOWED_TTL_MS;
    this.#deniedTtlMs = opts.deniedTtlMs ?? DEFAULT_DENIED_TTL_MS;
    this.#timeoutMs = opts.timeoutMs;
    this.#onReview = opts.onReview;
    this.#cache = new TtlCache({ maxEntries: opts.maxEntries ?? DEFAULT_SAR_CACHE_ENTRIES, now: opts.now });
  }

  /** May `user` do `method path` on this node? Never rejects: an error is `decision: 'error'`. */
  async authorize(user: UserInfo, method: string, path: string): Promise<AuthzOutcome> {
    const attrs = requestAttributes(method, path, this.#nodeName);
    const key = stableJson(subjectAccessReviewSpec(user, attrs));
    const verdict = this.#cache.get(key) ?? (await this.#flight.run(key, () => this.#review(key, user, attrs)));
    return verdict.reason === undefined ? { decision: verdict.decision, attrs } : { decision: verdict.decision, attrs, reason: verdict.reason };
  }

  /** Verdicts cached now (for tests and self-metrics). */
  get cacheSize(): number {
    return this.#cache.size;
  }

  async #review(key: string, user: UserInfo, attrs: ResourceAttributes): Promise<Verdict> {
    let verdict: Verdict;
    try {
      const r = await subjectAccessReview(this.#client, user, attrs, this.#timeoutMs);
      if (r.allowed && !r.denied) {
        verdict = { decision: 'allow' };
        if (r.reason !== undefined) verdict.reason = r.reason;
        this.#cache.set(key, verdict, this.#allowedTtlMs);
      } else {
        const why = r.allowed && r.denied ? 'the review answered both allowed and denied' : r.denied ? 'denied' : 'no opinion';
        verdict = { decision: 'deny', reason: r.reason !== undefined ? `${why}: ${r.reason}` : why };
        this.#cache.set(key, verdict, this.#deniedTtlMs);
      }
    } catch (err) {
      verdict = { decision: 'error', reason: `SubjectAccessReview failed: ${errorMessage(err)}` };
    }
    this.#onReview?.(verdict.decision === 'allow' ? 'allowed' : verdict.decision === 'deny' ? 'denied' : 'error');
    return verdict;
  }
}
