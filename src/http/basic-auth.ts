/**
 * HTTP basic authentication against exporter-toolkit's `basic_auth_users` (user → bcrypt hash), done as
 * exporter-toolkit's `web/handler.go` and `web/cache.go` do it, less the plaintext password it keeps in its cache keys:
 * - results (successes and failures) are cached in a bounded LRU keyed by HMAC-SHA256 under a random per-process key
 *   over (user, hash, password), so a reload that changes a user's hash never reuses the old result, and no password
 *   is held in memory beyond the request that carried it;
 * - cache misses are serialised: one bcrypt comparison at a time (bcryptjs runs on the main thread, so this bounds
 *   what a brute-force attempt can take to one core), and concurrent checks of the same credentials share one;
 * - an unknown user's password is compared against a fixed cost-10 hash, so response timing does not tell which users
 *   exist.
 */
import { createHmac, randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { ConfigError } from '../errors.js';

const BCRYPT_HASH = /^\$2[abxy]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

/**
 * Why `hash` is not a bcrypt hash exporter-toolkit would accept (`$2a$`, `$2b$`, `$2x$` or `$2y$`, a two-digit cost
 * from 04 to 31, 53 characters of salt and digest), or undefined when it is one. The hash itself is not repeated.
 */
export function bcryptHashProblem(hash: string): string | undefined {
  const m = BCRYPT_HASH.exec(hash);
  if (m === null) return 'not a bcrypt hash ($2a$, $2b$, $2x$ or $2y$, a two-digit cost, then 53 characters of salt and digest: 60 in all)';
  const cost = Number(m[1]);
  if (cost < 4 || cost > 31) return `bcrypt cost ${cost} is outside 4..31`;
  return undefined;
}

/** Decodes the credentials of an `Authorization: Basic …` header; undefined when there is none or it is malformed. */
export function parseBasicAuthorization(header: string | undefined): { user: string; password: string } | undefined {
  if (header === undefined) return undefined;
  const m = /^basic +([A-Za-z0-9+/]*={0,2})$/i.exec(header);
  if (m === null) return undefined;
  const token = m[1] ?? '';
  if (token.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(token, 'base64');
  // Strict base64: padding only where it belongs and no stray bits, i.e. the token is the canonical encoding.
  if (bytes.toString('base64') !== token) return undefined;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  // Control characters (C0 and DEL) are refused, as @fastify/basic-auth's strict mode does.
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(text)) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/**
 * A valid cost-10 bcrypt hash of a random password nobody kept: what an unknown user's password is compared against,
 * so that the answer for an unknown user takes as long as for a known one. Exported for tests.
 */
export const DUMMY_BCRYPT_HASH = '$2b$10$lqp/lJSAmL04GPTaqtCqa.QSckXDVmjX/aex6kBoEaJ2hHYQdRM5C';

export type PasswordCompare = (password: string, hash: string) => Promise<boolean>;

/**
 * bcryptjs' compare, with `$2x$` read as `$2a$` (Go's x/crypto/bcrypt, which exporter-toolkit uses, accepts any minor
 * version and compares them alike; bcryptjs refuses `$2x$`), and a throw (a malformed hash) read as no match.
 */
async function bcryptCompare(password: string, hash: string): Promise<boolean> {
  try {
    return await bcrypt.compare(password, hash.startsWith('$2x$') ? `$2a$${hash.slice(4)}` : hash);
  } catch {
    return false;
  }
}

export interface BasicAuthVerifierOptions {
  /** Most results cached (default 100, as exporter-toolkit); 0 caches nothing. */
  cacheSize?: number;
  /** The password check (default bcryptjs' compare); injectable for tests. */
  compare?: PasswordCompare;
}

export class BasicAuthVerifier {
  #users: ReadonlyMap<string, string>;
  readonly #cacheSize: number;
  readonly #compare: PasswordCompare;
  readonly #hmacKey = randomBytes(32);
  /** HMAC → the comparison's result; Map insertion order is the LRU order (oldest first). */
  readonly #cache = new Map<string, boolean>();
  /** HMAC → the comparison under way for it (single flight). */
  readonly #inflight = new Map<string, Promise<boolean>>();
  /** The end of the queue of comparisons: each starts when the one before it has settled. */
  #tail: Promise<unknown> = Promise.resolve();

  /** Throws ConfigError when a hash is malformed (bcryptHashProblem). */
  constructor(users: ReadonlyMap<string, string>, opts: BasicAuthVerifierOptions = {}) {
    const cacheSize = opts.cacheSize ?? 100;
    if (!Number.isSafeInteger(cacheSize) || cacheSize < 0) throw new RangeError(`basic auth cache size must be an integer ≥ 0, not ${cacheSize}`);
    this.#cacheSize = cacheSize;
    this.#compare = opts.compare ?? bcryptCompare;
    this.#users = checkedCopy(users);
  }

  /**
   * Replaces the users (a reload of the web config). Cached results stay, but only apply to a user whose hash is
   * unchanged: the hash is part of the key. Throws ConfigError, keeping the users it had, when a hash is malformed.
   */
  update(users: ReadonlyMap<string, string>): void {
    this.#users = checkedCopy(users);
  }

  /** How many users there are. */
  get users(): number {
    return this.#users.size;
  }

  /** Whether `password` is `user`'s. */
  async verify(user: string, password: string): Promise<boolean> {
    const known = this.#users.get(user);
    const hash = known ?? DUMMY_BCRYPT_HASH;
    const key = this.#key(user, hash, password);
    // The raw comparison is what is cached; that the user exists is decided here, from the users of now.
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      this.#cache.delete(key);
      this.#cache.set(key, cached);
      return known !== undefined && cached;
    }
    let pending = this.#inflight.get(key);
    if (pending === undefined) {
      pending = this.#serially(() => this.#compareOnce(password, hash)).then((ok) => {
        this.#remember(key, ok);
        return ok;
      });
      const settled = (): void => {
        this.#inflight.delete(key);
      };
      pending.then(settled, settled);
      this.#inflight.set(key, pending);
    }
    const ok = await pending;
    return known !== undefined && ok;
  }

  /** The cache's keys, oldest first: for tests to check that no password is kept. */
  cacheKeysForTest(): string[] {
    return [...this.#cache.keys()];
  }

  async #compareOnce(password: string, hash: string): Promise<boolean> {
    try {
      return (await this.#compare(password, hash)) === true;
    } catch {
      return false;
    }
  }

  #serially<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  #remember(key: string, ok: boolean): void {
    if (this.#cacheSize === 0) return;
    this.#cache.delete(key);
    this.#cache.set(key, ok);
    while (this.#cache.size > this.#cacheSize) {
      const oldest = this.#cache.keys().next();
      if (oldest.done === true) break;
      this.#cache.delete(oldest.value);
    }
  }

  /** HMAC-SHA256 over the three fields, each prefixed with its byte length so that no two triples share an input. */
  #key(user: string, hash: string, password: string): string {
    const mac = createHmac('sha256', this.#hmacKey);
    for (const field of [user, hash, password]) {
      const bytes = Buffer.from(field, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32BE(bytes.length);
      mac.update(len);
      mac.update(bytes);
    }
    return mac.digest('hex');
  }
}

function checkedCopy(users: ReadonlyMap<string, string>): ReadonlyMap<string, string> {
  for (const [user, hash] of users) {
    const problem = bcryptHashProblem(hash);
    if (problem !== undefined) throw new ConfigError(`basic auth user ${JSON.stringify(user)}: ${problem}`);
  }
  return new Map(users);
}
