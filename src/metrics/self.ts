/**
 * podvisor's own metrics (podvisor_*), every one of them, as specs over plain data like the container metrics:
 * - SNAPSHOT_SELF_METRICS read a gather's Snapshot (collector errors, runtime registration, disk-walk counts), so they
 *   are rendered with the gather, on whichever thread gathers;
 * - SCRAPE_SELF_METRICS read the scrape service's ScrapeStats (gathers, scrapes, build info), rendered on the HTTP
 *   thread when a body is assembled.
 * Node.js process metrics are prom-client's defaults (metrics/process.ts).
 */
import { ATTRIBUTION_SOURCES } from '../model/accelerator.js';
import type { Histogram } from '../model/histogram.js';
import { COLLECTORS, type CollectorName } from '../model/cgroup.js';
import { AUTH_OUTCOMES, SCRAPE_OUTCOMES, type AuthOutcome, type ReviewKind, type ReviewResult, type ScrapeOutcome, type ScrapeStats } from '../model/scrape.js';
import type { Snapshot } from '../model/snapshot.js';
import { VERSION } from '../version.js';
import { FamilyWriter, formatLabels, formatValue, type FamilyType, type RenderedFamily } from './exposition.js';

/** Writes one sample of the family being rendered: label names and values lined up, and a name suffix (`_bucket`). */
export type WriteSample = (value: number, labels?: Readonly<Record<string, string>>, suffix?: string) => void;

export interface SelfMetricSpec<S> {
  name: string;
  help: string;
  type: FamilyType;
  /** Writes the family's samples from `source`; none when the value is absent. */
  collect(source: S, write: WriteSample): void;
}

function value<S>(name: string, type: 'counter' | 'gauge', help: string, pick: (s: S) => number | undefined): SelfMetricSpec<S> {
  return {
    name,
    help,
    type,
    collect(s, write) {
      const v = pick(s);
      if (v !== undefined) write(v);
    },
  };
}

/** One sample per key of `pick`'s record, labelled `label="<key>"`, in `keys` order. */
function byKey<S, K extends string>(
  name: string,
  help: string,
  label: string,
  keys: readonly K[],
  pick: (s: S) => Readonly<Partial<Record<K, number>>> | undefined,
  zero = false,
): SelfMetricSpec<S> {
  return {
    name,
    help,
    type: 'counter',
    collect(s, write) {
      const counts = pick(s);
      if (counts === undefined) return;
      for (const k of keys) {
        const v = counts[k] ?? (zero ? 0 : undefined);
        if (v !== undefined) write(v, { [label]: k });
      }
    },
  };
}

function histogram<S>(name: string, help: string, pick: (s: S) => Histogram | undefined): SelfMetricSpec<S> {
  return {
    name,
    help,
    type: 'histogram',
    collect(s, write) {
      const h = pick(s);
      if (h === undefined) return;
      h.bounds.forEach((le, i) => write(h.counts[i] ?? 0, { le: formatValue(le) }, '_bucket'));
      write(h.count, { le: '+Inf' }, '_bucket');
      write(h.sum, {}, '_sum');
      write(h.count, {}, '_count');
    },
  };
}

/** Rendered with each gather, after the container and machine families. */
export const SNAPSHOT_SELF_METRICS: readonly SelfMetricSpec<Snapshot>[] = Object.freeze([
  byKey<Snapshot, CollectorName>(
    'podvisor_collector_errors_total',
    'Files that existed but could not be read or parsed, by collector; the series they feed were left out of the scrape.',
    'collector',
    COLLECTORS,
    (s) => s.collectorErrors,
    true,
  ),
  {
    name: 'podvisor_runtime_up',
    help: 'Whether the container runtime is registered and answering (1) or not (0); podvisor retries with backoff.',
    type: 'gauge',
    collect(s, write) {
      for (const r of s.runtimes ?? []) write(r.up ? 1 : 0, { runtime: r.runtime });
    },
  },
  {
    name: 'podvisor_runtime_info',
    help: 'A metric with a constant 1 value labeled by the runtime and the version strings it reported (as reported, however odd).',
    type: 'gauge',
    collect(s, write) {
      for (const r of s.runtimes ?? []) {
        if (r.up) write(1, { runtime: r.runtime, version: r.version, parsed_version: r.parsedVersion, api_version: r.apiVersion });
      }
    },
  },
  value<Snapshot>(
    'podvisor_containers_label_held',
    'gauge',
    'Cgroups left out of the last gather because their runtime is still looking up their container (they appear, with labels, once it answers).',
    (s) => s.labelHold?.held,
  ),
  value<Snapshot>(
    'podvisor_container_label_hold_expired_total',
    'counter',
    'Cgroups exposed with empty labels because their runtime had not answered the lookup of their container within --label-hold.',
    (s) => s.labelHold?.expired,
  ),
  histogram<Snapshot>(
    'podvisor_disk_walk_duration_seconds',
    'Time one disk usage measurement took (a walk, or a runtime snapshot usage call).',
    (s) => s.disk?.duration,
  ),
  byKey<Snapshot, 'ok' | 'timeout' | 'error'>(
    'podvisor_disk_walks_total',
    'Disk usage measurements by result: ok, timeout (cancelled at the deadline, nothing published), error (failed, or a walk denied permission to part of the tree: nothing published).',
    'result',
    ['ok', 'timeout', 'error'] as const,
    (s) => s.disk?.walks,
  ),
  value<Snapshot>(
    'podvisor_disk_walk_queue_length',
    'gauge',
    'Containers due for a disk usage measurement and waiting for a slot.',
    (s) => s.disk?.queueLength,
  ),
  value<Snapshot>('podvisor_disk_walk_files_total', 'counter', 'Files visited by disk usage walks.', (s) => s.disk?.files),
  {
    name: 'podvisor_accelerator_up',
    help: "Whether each GPU source answers (1) or not (0): nvml (loaded, initialised, no call hung), pod_resources (the kubelet's PodResources API answered its last poll; absent when its socket is missing or it is off).",
    type: 'gauge',
    collect(s, write) {
      const a = s.acceleratorStatus;
      if (a === undefined) return;
      write(a.nvmlUp ? 1 : 0, { source: 'nvml' });
      if (a.podResourcesUp !== undefined) write(a.podResourcesUp ? 1 : 0, { source: 'pod_resources' });
    },
  },
  {
    name: 'podvisor_accelerator_errors_total',
    help: 'Failed NVML calls (NOT_SUPPORTED excluded: that is absence) and timeouts, and failed PodResources polls, since start.',
    type: 'counter',
    collect(s, write) {
      const a = s.acceleratorStatus;
      if (a === undefined) return;
      write(a.nvmlErrors, { source: 'nvml' });
      if (a.podResourcesErrors !== undefined) write(a.podResourcesErrors, { source: 'pod_resources' });
    },
  },
  {
    name: 'podvisor_accelerator_attributions',
    help: "Container-accelerator pairs in the last gather, by how the device was tied to the container: pod_resources (the kubelet's PodResources API), process (NVML's processes and their cgroups), devices_list (cgroup v1 devices.list, as cAdvisor).",
    type: 'gauge',
    collect(s, write) {
      const counts = s.acceleratorStatus?.attributions;
      if (counts === undefined) return;
      for (const source of ATTRIBUTION_SOURCES) write(counts[source], { source });
    },
  },
]);

/** Rendered on the HTTP thread with every body, after the gather's families. */
export const SCRAPE_SELF_METRICS: readonly SelfMetricSpec<ScrapeStats>[] = Object.freeze([
  byKey<ScrapeStats, 'success' | 'error'>(
    'podvisor_gathers_total',
    'Gathers run, by result (success or error).',
    'result',
    ['success', 'error'] as const,
    (s) => s.gathers,
  ),
  histogram<ScrapeStats>(
    'podvisor_gather_duration_seconds',
    'Time one gather took: discovering cgroups, reading their files and rendering the series.',
    (s) => s.gatherDuration,
  ),
  value<ScrapeStats>(
    'podvisor_scrapes_coalesced_total',
    'counter',
    'Scrapes served from a gather another scrape started (in flight or younger than --min-gather-interval).',
    (s) => s.coalesced,
  ),
  value<ScrapeStats>(
    'podvisor_scrape_deadline_exceeded_total',
    'counter',
    'Scrapes answered 503 because the gather could not finish before the scrape deadline and no result younger than --max-result-age was at hand.',
    (s) => s.deadlineExceeded,
  ),
  byKey<ScrapeStats, ScrapeOutcome>(
    'podvisor_scrapes_total',
    'Scrapes by how they were answered: fresh (waited for a gather, or joined one in flight), ahead (from a gather started just before a predicted scrape), stale (the fresh gather missed the deadline; the newest result younger than --max-result-age answered), deadline_exceeded (503: nothing young enough), error (the gather failed).',
    'result',
    SCRAPE_OUTCOMES,
    (s) => s.scrapes,
    true,
  ),
  histogram<ScrapeStats>(
    'podvisor_scrape_result_age_seconds',
    'Age of the data each scrape was answered with: from the start of the gather that produced it to the answer.',
    (s) => s.resultAge,
  ),
  value<ScrapeStats>(
    'podvisor_gathers_ahead_total',
    'counter',
    "Gathers started ahead of a scrape predicted from its scraper's schedule (--gather-ahead).",
    (s) => s.gathersAhead,
  ),
  value<ScrapeStats>(
    'podvisor_gather_ahead_misses_total',
    'counter',
    "Predicted scrapes that did not come when expected; the scraper's schedule is then learned again before any gather is started for it.",
    (s) => s.aheadMisses,
  ),
  {
    name: 'podvisor_scrape_schedules',
    help: 'Scrapers seen recently, by whether their schedule is predicted (gathers start ahead of them) or still being learned.',
    type: 'gauge',
    collect(s, write) {
      if (s.schedules === undefined) return;
      write(s.schedules.predicted, { state: 'predicted' });
      write(s.schedules.scrapers - s.schedules.predicted, { state: 'learning' });
    },
  },
  value<ScrapeStats>('podvisor_cgroups', 'gauge', 'Cgroups reported by the last successful gather.', (s) => s.cgroups),
  byKey<ScrapeStats, AuthOutcome>(
    'podvisor_http_auth_requests_total',
    'Requests that needed credentials (all but /healthz and /readyz, with TLS client certificates, basic auth or --authentication on), by answer: allowed, unauthenticated (401), forbidden (403), rate_limited (429, the web config rate_limit).',
    'result',
    AUTH_OUTCOMES,
    (s) => s.security?.requests,
    true,
  ),
  {
    name: 'podvisor_kube_reviews_total',
    help: 'TokenReviews and SubjectAccessReviews sent to the API server (cache misses), by answer; error: no answer within --kube-api-timeout, a failed call or a malformed answer (the request was refused).',
    type: 'counter',
    collect(s, write) {
      const reviews = s.security?.reviews;
      if (reviews === undefined) return;
      const results: Record<ReviewKind, readonly ReviewResult[]> = {
        tokenreview: ['authenticated', 'unauthenticated', 'error'],
        subjectaccessreview: ['allowed', 'denied', 'error'],
      };
      for (const review of ['tokenreview', 'subjectaccessreview'] as const) {
        for (const result of results[review]) write(reviews[review][result] ?? 0, { review, result });
      }
    },
  },
  byKey<ScrapeStats, 'success' | 'failure'>(
    'podvisor_web_config_reloads_total',
    'Reloads of --web.config.file and the certificates, keys and CAs it names after a change on disk, by result (failure: the previous configuration stays in force; the log says why).',
    'result',
    ['success', 'failure'] as const,
    (s) => s.security?.reloads,
  ),
  byKey<ScrapeStats, 'handshake' | 'client_certificate'>(
    'podvisor_tls_connections_rejected_total',
    'TLS connections closed before any request: failed handshakes (protocol version, cipher, untrusted client certificate, timeout) and client certificates refused by client_auth_type or client_allowed_sans.',
    'reason',
    ['handshake', 'client_certificate'] as const,
    (s) => s.security?.tlsRejected,
  ),
  value<ScrapeStats>(
    'podvisor_tls_certificate_not_after_timestamp_seconds',
    'gauge',
    'When the serving certificate expires (Unix seconds); it is reloaded from disk on change.',
    (s) => s.security?.certificateNotAfter,
  ),
  {
    name: 'podvisor_build_info',
    help: 'A metric with a constant 1 value labeled by podvisor version and Node.js version.',
    type: 'gauge',
    collect(_s, write) {
      write(1, { version: VERSION, nodejs_version: process.version });
    },
  },
]);

/** Upper bounds of podvisor_scrape_result_age_seconds: sub-second when gathering ahead, up to --max-result-age when stale. */
export const RESULT_AGE_BUCKETS: readonly number[] = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Upper bounds of podvisor_gather_duration_seconds. */
export const GATHER_DURATION_BUCKETS: readonly number[] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function renderSelfFamilies<S>(specs: readonly SelfMetricSpec<S>[], source: S): RenderedFamily[] {
  return specs.map((spec) => {
    const w = new FamilyWriter(spec.name, spec.help, spec.type);
    spec.collect(source, (v, labels = {}, suffix = '') => w.sample(formatLabels(Object.keys(labels), Object.values(labels)), v, suffix));
    return w.finish();
  });
}
