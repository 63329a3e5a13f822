/**
 * What a scrape asks for, without HTTP: "the exposition in this format, by this deadline".
 * One single-flight gather serves every concurrent scrape; the assembled body (and its gzip) is built once per
 * gather and format and shared, so memory does not grow with concurrent scrapes. A scraper that keeps a schedule is
 * answered from a gather started just ahead of it (ahead.ts); a scrape whose gather cannot finish by its deadline is
 * answered from the newest result while that is younger than --max-result-age, so a gather slower than the scrape
 * timeout cannot lock the target out. The kubelet's /metrics/resource is one more body of the same gathers: it shares
 * the single flight, the deadlines and the fallback to the newest result.
 */
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { DeadlineError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { newHistogram, observe } from '../model/histogram.js';
import type { RuntimeStatus } from '../model/runtime.js';
import type { ScrapeStats, SecurityStats } from '../model/scrape.js';
import { assemble, CONTENT_TYPES, encodeFamilies, type ExpositionFormat } from '../metrics/exposition.js';
import { ProcessMetrics } from '../metrics/process.js';
import { GATHER_DURATION_BUCKETS, RESULT_AGE_BUCKETS, renderSelfFamilies, SCRAPE_SELF_METRICS } from '../metrics/self.js';
import { GatherAhead, REAL_CLOCK, type Clock } from './ahead.js';
import type { GatherEngine, GatherResult } from './engine.js';
import { SingleFlight } from './single-flight.js';

const gzipAsync = promisify(gzip);

/** What a body holds: /metrics in one of its formats, or the kubelet's /metrics/resource (text 0.0.4). */
type BodyKind = ExpositionFormat | 'resource';

function bodyKey(kind: BodyKind, gzip: boolean): string {
  return `${kind}${gzip ? '+gzip' : ''}`;
}

/** Scrapers whose last request format is remembered (for building their body ahead). */
const MAX_WANTS = 64;

/**
 * The end of a scrape's budget kept for building the body, so that when the gather is late, the newest result can
 * still be encoded and sent in time. Twice the longest of the last few builds in that format, within these bounds;
 * before any build in that format, half the budget. Found by a real Prometheus at a 2 s timeout on a loaded node: the
 * gather was awaited to the last millisecond, so an older result whose body was not built yet had no time left and got
 * a 503; with a fifth of the budget kept, its first OpenMetrics+gzip body (150-320 ms there) still missed it once.
 */
const BODY_RESERVE = { minMs: 10, unknownShare: 0.5, maxShare: 0.5, factor: 2, keep: 4 };

/**
 * Level 1: 12 ms for the 4.8 MB body of 200 containers (level 6: 22 ms, 12% smaller). One 1 MiB output chunk: with
 * zlib's default 16 KiB, each chunk is a thread-pool job plus an event-loop turn, ~30 per body, and every turn waits
 * behind whatever else runs on this thread (measured with disk walks busy: gzip 850-900 ms instead of 16 ms, scrape
 * p99 3x its p50).
 */
const GZIP_OPTIONS = { level: 1, chunkSize: 1024 * 1024 };

export interface Exposition {
  body: Buffer;
  contentType: string;
  gzipped: boolean;
  /** Seconds from the start of the gather this answer comes from to now. */
  ageSeconds: number;
}

/** One scrape of /metrics/resource, as the HTTP layer saw it: always text 0.0.4, as the kubelet serves it. */
export interface ResourceRequest {
  gzip: boolean;
  /** How long the answer may take, from now. */
  budgetMs: number;
  /** How the deadline came about, for the 503's text. */
  budgetText: string;
  /** Who scrapes, as in ScrapeRequest: its schedule is learned. Absent: never predicted. */
  scraper?: string;
}

/** What answers a scrape, whichever path it came by. */
interface BodyRequest {
  kind: BodyKind;
  gzip: boolean;
  budgetMs: number;
  budgetText: string;
  scraper?: string;
}

/** One scrape, as the HTTP layer saw it. */
export interface ScrapeRequest {
  format: ExpositionFormat;
  gzip: boolean;
  /** How long the answer may take, from now. */
  budgetMs: number;
  /** How the deadline came about, for the 503's text. */
  budgetText: string;
  /** Who scrapes (remote address, User-Agent, path, announced timeout): its schedule is learned. Absent: never predicted. */
  scraper?: string;
}

export interface ReadyState {
  ready: boolean;
  lastSuccessAt?: string;
  lastError?: string;
  lastErrorAt?: string;
  lastContainers?: number;
  lastDurationSeconds?: number;
  /** Runtime registration: up or not, version, last error. The first gather waits for each runtime's first list. */
  runtimes?: RuntimeStatus[];
}

export interface ScrapeServiceOptions {
  /** Reuse a gather younger than this for a new scrape (--min-gather-interval). */
  minGatherIntervalMs: number;
  /** When the fresh gather misses the deadline, answer with the newest result if it is at most this old (--max-result-age). */
  maxResultAgeMs: number;
  /** Learn scrapers' schedules and gather ahead of them (--gather-ahead). */
  gatherAhead: boolean;
  /** Node.js process metrics appended to every body (one set per process). */
  processMetrics?: ProcessMetrics;
  /** The HTTP layer's TLS and authentication counts, rendered with the other podvisor_* metrics. */
  securityStats?: SecurityStats;
  clock?: Clock;
}

/** A successful gather and when it ran, on the service's clock. */
interface Gathered {
  result: GatherResult;
  startedAt: number;
}

export class ScrapeService {
  readonly #engine: GatherEngine;
  readonly #process: ProcessMetrics;
  readonly #clock: Clock;
  readonly #maxResultAgeMs: number;
  readonly #stats: ScrapeStats = {
    gathers: { success: 0, error: 0 },
    gatherDuration: newHistogram(GATHER_DURATION_BUCKETS),
    coalesced: 0,
    deadlineExceeded: 0,
    scrapes: { fresh: 0, ahead: 0, stale: 0, deadline_exceeded: 0, error: 0 },
    resultAge: newHistogram(RESULT_AGE_BUCKETS),
    gathersAhead: 0,
    aheadMisses: 0,
  };
  readonly #log: Logger;
  readonly #flight: SingleFlight<Gathered>;
  readonly #ahead: GatherAhead | undefined;
  /** The newest successful gather: answers a scrape whose fresh gather is late, and a predicted scrape. */
  #latest: Gathered | undefined;
  /** What each known scraper asked for last, so a gather ahead of it can build that body in advance. */
  readonly #wants = new Map<string, { kind: BodyKind; gzip: boolean }>();
  readonly #bodies = new WeakMap<GatherResult, Map<string, Promise<Buffer>>>();
  /** Per body format, the newest gather whose body in that format is built: a late scrape's instant answer. */
  readonly #built = new Map<string, Gathered>();
  /** Per body format, how long its last few builds took: the share of a budget kept for building (BODY_RESERVE). */
  readonly #buildMs = new Map<string, number[]>();
  #state: ReadyState = { ready: false };

  constructor(engine: GatherEngine, log: Logger, opts: ScrapeServiceOptions) {
    this.#engine = engine;
    this.#process = opts.processMetrics ?? new ProcessMetrics();
    if (opts.securityStats !== undefined) this.#stats.security = opts.securityStats;
    this.#clock = opts.clock ?? REAL_CLOCK;
    this.#maxResultAgeMs = opts.maxResultAgeMs;
    this.#log = log;
    this.#flight = new SingleFlight(
      () => this.#gather(),
      opts.minGatherIntervalMs,
      () => this.#clock.now(),
    );
    this.#ahead = opts.gatherAhead
      ? new GatherAhead({ clock: this.#clock, inFlight: () => this.#flight.current(), gather: (keys) => this.#gatherAhead(keys) })
      : undefined;
  }

  get state(): Readonly<ReadyState> {
    return this.#state;
  }

  async #gather(): Promise<Gathered> {
    const startedAt = this.#clock.now();
    const end = (): number => {
      const ms = this.#clock.now() - startedAt;
      observe(this.#stats.gatherDuration, ms / 1000);
      this.#ahead?.timed(ms);
      return ms;
    };
    try {
      const result = await this.#engine.gather();
      this.#log.debug('gather done', { ms: end(), cgroups: result.containers });
      this.#stats.gathers.success++;
      this.#stats.cgroups = result.containers;
      this.#state = {
        ...this.#state,
        ready: true,
        lastSuccessAt: new Date(result.timestampMs).toISOString(),
        lastContainers: result.containers,
        lastDurationSeconds: Math.round(result.durationMs) / 1000,
        runtimes: result.runtimes,
      };
      const gathered = { result, startedAt };
      if (this.#latest === undefined || this.#latest.startedAt < startedAt) this.#latest = gathered;
      return gathered;
    } catch (err) {
      end();
      this.#stats.gathers.error++;
      this.#state = { ...this.#state, lastError: errorMessage(err), lastErrorAt: new Date().toISOString() };
      this.#log.error('gather failed', { error: errorMessage(err) });
      throw err;
    }
  }

  /** A gather for the expected scrapes of `scrapers`; each one's body is built as soon as it is done. */
  #gatherAhead(scrapers: readonly string[]): void {
    this.#stats.gathersAhead++;
    this.#flight.get().value.then(
      (g) => {
        for (const key of scrapers) {
          const want = this.#wants.get(key);
          if (want !== undefined) this.#body(g, want.kind, want.gzip).catch(() => undefined);
        }
      },
      () => undefined,
    );
  }

  /** Starts a gather now (at startup, so /readyz turns ready without waiting for the first scrape). */
  warmUp(): Promise<void> {
    return this.#flight.get().value.then(
      () => undefined,
      () => undefined,
    );
  }

  /**
   * The exposition a scrape asks for, by its deadline. A predicted scrape is answered from the gather started ahead of
   * it; any other waits for a gather (joining the one in flight). When that gather cannot finish in time, the newest
   * result answers if it is younger than --max-result-age; otherwise a DeadlineError (503). A gather is never
   * cancelled by a late scrape: it finishes and serves the next one.
   */
  exposition(req: ScrapeRequest): Promise<Exposition> {
    const { format, ...rest } = req;
    return this.#answer({ ...rest, kind: format });
  }

  /**
   * The kubelet's /metrics/resource from the same gathers as exposition(), by the same rules (single flight, deadline,
   * the newest result when the gather is late): text 0.0.4 only, without podvisor's self-metrics or the process
   * metrics. A failed gather is an error here too (no body with resource_scrape_error 1): the route answers it.
   */
  resourceExposition(req: ResourceRequest): Promise<Exposition> {
    return this.#answer({ ...req, kind: 'resource' });
  }

  async #answer(req: BodyRequest): Promise<Exposition> {
    const deadline = this.#clock.now() + req.budgetMs;
    const { source, kind } = this.#source(req);
    const lateGather = `the gather did not finish within the scrape deadline (${req.budgetText}) and no result younger than ${this.#maxResultAgeMs / 1000}s (--max-result-age) was at hand; it goes on in the background and its result will serve the next scrape`;
    const reserveMs = this.#bodyReserveMs(req);
    let gathered: Gathered;
    let served: 'fresh' | 'ahead' | 'stale';
    try {
      // Until the end of the budget less the time its body takes: a late gather then still leaves time for an older
      // result's body; when there is none, the gather is waited for to the end.
      const got = await this.#beforeDeadline(source, deadline - reserveMs, lateGather).then(
        (g) => ({ g, served: kind }),
        async (err: unknown) => {
          if (!(err instanceof DeadlineError)) throw err;
          // The late gather goes on; its body is built when it ends, so the next scrape can answer from it at once.
          source.then((g) => this.#body(g, req.kind, req.gzip)).catch(() => undefined);
          const stale = this.#stale(req);
          if (stale !== undefined) return { g: stale, served: 'stale' as const };
          return { g: await this.#beforeDeadline(source, deadline, lateGather), served: kind };
        },
      );
      gathered = got.g;
      served = got.served;
    } catch (err) {
      this.#failed(err);
      throw err;
    }
    // A gather that ended past its share of the budget (on a busy node the event loop can be held past that timer,
    // and the gather's own end is such a moment) leaves too little time for its body: when an older result's body
    // in this format is built and young enough, it answers at once, and this one's is built for the next scrape.
    if (served !== 'stale' && deadline - this.#clock.now() < reserveMs) {
      const built = this.#builtYoung(req);
      if (built !== undefined && built !== gathered) {
        this.#body(gathered, req.kind, req.gzip).catch(() => undefined);
        gathered = built;
        served = 'stale';
      }
    }
    let body: Buffer;
    try {
      const ageS = ((this.#clock.now() - gathered.startedAt) / 1000).toFixed(1);
      body = await this.#beforeDeadline(
        this.#body(gathered, req.kind, req.gzip),
        deadline,
        `the answer, from a result ${ageS}s old, could not be encoded within the scrape deadline (${req.budgetText})`,
      );
    } catch (err) {
      this.#failed(err);
      throw err;
    }
    this.#stats.scrapes[served]++;
    const ageSeconds = Math.max(0, this.#clock.now() - gathered.startedAt) / 1000;
    observe(this.#stats.resultAge, ageSeconds);
    this.#log.debug('scrape answered', { result: served, age: ageSeconds, ms: this.#clock.now() - (deadline - req.budgetMs) });
    return { body, contentType: CONTENT_TYPES[req.kind === 'resource' ? 'text' : req.kind], gzipped: req.gzip, ageSeconds };
  }

  /** How much of a scrape's budget is kept for building its body (BODY_RESERVE). */
  #bodyReserveMs(req: BodyRequest): number {
    const recent = this.#buildMs.get(bodyKey(req.kind, req.gzip));
    if (recent === undefined) return req.budgetMs * BODY_RESERVE.unknownShare;
    const wanted = Math.max(BODY_RESERVE.minMs, BODY_RESERVE.factor * Math.max(...recent));
    return Math.min(wanted, req.budgetMs * BODY_RESERVE.maxShare);
  }

  /** Where a scrape's answer comes from: the result gathered ahead of it, the gather in flight, or a new gather. */
  #source(req: BodyRequest): { source: Promise<Gathered>; kind: 'fresh' | 'ahead' } {
    const ahead = this.#ahead;
    if (ahead !== undefined && req.scraper !== undefined) {
      this.#wants.set(req.scraper, { kind: req.kind, gzip: req.gzip });
      const arrival = ahead.observe(req.scraper);
      if (this.#wants.size > MAX_WANTS) this.#wants.delete(this.#wants.keys().next().value ?? '');
      const interval = ahead.intervalOf(req.scraper);
      if (arrival.scheduled && interval !== undefined) {
        const running = this.#flight.current();
        if (running !== undefined) {
          this.#stats.coalesced++;
          return { source: running, kind: 'ahead' };
        }
        const latest = this.#latest;
        const now = this.#clock.now();
        // Newer than what this scraper got last time, and young: the gather started ahead of this scrape.
        if (latest !== undefined && latest.startedAt >= (arrival.previousMs ?? -Infinity) && now - latest.startedAt <= ahead.maxAheadAgeMs(interval)) {
          return { source: Promise.resolve(latest), kind: 'ahead' };
        }
      }
    }
    const flight = this.#flight.get();
    if (flight.shared) this.#stats.coalesced++;
    return { source: flight.value, kind: 'fresh' };
  }

  /**
   * What answers a scrape whose gather is late: the newest result whose body in the asked format is already built
   * (answered at once, though the deadline has passed), else the newest result; either only if young enough.
   */
  #stale(req: BodyRequest): Gathered | undefined {
    return this.#builtYoung(req) ?? (this.#young(this.#latest) ? this.#latest : undefined);
  }

  /** The newest result whose body in the asked format is built, if it is at most --max-result-age old. */
  #builtYoung(req: BodyRequest): Gathered | undefined {
    const built = this.#built.get(bodyKey(req.kind, req.gzip));
    return this.#young(built) ? built : undefined;
  }

  #young(g: Gathered | undefined): g is Gathered {
    return g !== undefined && this.#clock.now() - g.startedAt <= this.#maxResultAgeMs;
  }

  #failed(err: unknown): void {
    if (err instanceof DeadlineError) {
      this.#stats.deadlineExceeded++;
      this.#stats.scrapes.deadline_exceeded++;
    } else {
      this.#stats.scrapes.error++;
    }
  }

  /**
   * The body of a gather in one format, built once and shared. A gzipped body is built from a plain one that is not
   * kept (unless asked for itself), so a result held for later scrapes keeps only what was asked.
   */
  #body(gathered: Gathered, kind: BodyKind, wantGzip: boolean): Promise<Buffer> {
    const { result } = gathered;
    let cache = this.#bodies.get(result);
    if (cache === undefined) {
      cache = new Map();
      this.#bodies.set(result, cache);
    }
    const key = bodyKey(kind, wantGzip);
    let body = cache.get(key);
    if (body === undefined) {
      const startedAt = this.#clock.now();
      const plain = cache.get(bodyKey(kind, false));
      body = wantGzip ? (plain ?? this.#assemble(result, kind)).then((b) => gzipAsync(b, GZIP_OPTIONS)) : this.#assemble(result, kind);
      cache.set(key, body);
      body.then(
        () => {
          const ms = this.#clock.now() - startedAt;
          this.#buildMs.set(key, [...(this.#buildMs.get(key) ?? []), ms].slice(-BODY_RESERVE.keep));
          this.#log.debug('body built', { format: key, ms });
          const built = this.#built.get(key);
          if (built === undefined || built.startedAt < gathered.startedAt) this.#built.set(key, gathered);
        },
        () => undefined,
      );
    }
    return body;
  }

  async #assemble(result: GatherResult, kind: BodyKind): Promise<Buffer> {
    // The kubelet's body: its families only, in text 0.0.4 (their samples carry ms timestamps, which OpenMetrics
    // would read as seconds).
    if (kind === 'resource') return assemble([result.resource], 'text');
    if (this.#ahead !== undefined) {
      this.#stats.aheadMisses = this.#ahead.misses;
      this.#stats.schedules = this.#ahead.counts();
    }
    const self = renderSelfFamilies(SCRAPE_SELF_METRICS, this.#stats);
    const proc = await this.#process.families();
    return assemble([result.body, encodeFamilies(self), encodeFamilies(proc)], kind);
  }

  async #beforeDeadline<T>(p: Promise<T>, deadline: number, message: string): Promise<T> {
    const left = deadline - this.#clock.now();
    let timer: unknown;
    const late = new Promise<never>((_, reject) => {
      timer = this.#clock.setTimeout(() => reject(new DeadlineError(message)), Math.max(0, left));
    });
    try {
      return await Promise.race([p, late]);
    } finally {
      this.#clock.clearTimeout(timer);
    }
  }

  close(): Promise<void> {
    this.#ahead?.close();
    return this.#engine.close();
  }
}
