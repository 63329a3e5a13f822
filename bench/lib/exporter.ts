/**
 * Exporters under test as child processes: podvisor (dist/main.js) and cAdvisor, on free loopback ports; their
 * readiness; stopping them (also from the cleanup); and timed scrapes the way Prometheus makes them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { onCleanup } from './cleanup.js';
import { sleep } from './exec.js';
import { freePort } from '../../test/support/exporter.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const PODVISOR_MAIN = process.env['PODVISOR_MAIN'] ?? path.join(REPO, 'dist/main.js');

// One free loopback port, found as the tests find theirs.
export { freePort };

export type ExporterKind = 'podvisor' | 'cadvisor';

export interface Exporter {
  kind: ExporterKind;
  proc: ChildProcess;
  pid: number;
  url: string;
  /** The last lines of its stderr (podvisor) or log (cAdvisor), for error messages. */
  tail(): string;
}

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const keepAliveTls = new https.Agent({ keepAlive: true, maxSockets: Infinity, rejectUnauthorized: false });

async function waitReady(e: Exporter, probe: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (e.proc.exitCode !== null || e.proc.signalCode !== null) throw new Error(`${e.kind} exited during startup: ${e.tail()}`);
    try {
      if ((await get(`${e.url}${probe}`, 5000)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${e.kind} not ready (${probe}) within ${timeoutMs / 1000} s: ${e.tail()}`);
    await sleep(100);
  }
}

function track(e: Exporter): Exporter {
  const unregister = onCleanup(`stop ${e.kind} (pid ${e.pid})`, () => stopExporter(e));
  e.proc.once('exit', unregister);
  return e;
}

const lastLines = (s: string, n = 3): string => s.trim().split('\n').slice(-n).join(' | ');

/** Starts podvisor on a free loopback port and waits for /readyz (a first gather done). */
export async function startPodvisor(
  args: readonly string[] = [],
  opts: { main?: string; readyTimeoutMs?: number; scheme?: 'http' | 'https' } = {},
): Promise<Exporter> {
  const main = opts.main ?? PODVISOR_MAIN;
  if (!fs.existsSync(main)) throw new Error(`${main} missing: run \`npm run build\` first`);
  const port = await freePort();
  // The environment podvisor runs with in its image, the DaemonSet and `npm start` (MALLOC_ARENA_MAX=2).
  const env = { ...process.env, MALLOC_ARENA_MAX: process.env['MALLOC_ARENA_MAX'] ?? '2' };
  const proc = spawn(process.execPath, [main, `--listen-address=127.0.0.1:${port}`, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-8192);
  });
  const e = track({ kind: 'podvisor', proc, pid: proc.pid ?? 0, url: `${opts.scheme ?? 'http'}://127.0.0.1:${port}`, tail: () => lastLines(err) });
  await waitReady(e, '/readyz', opts.readyTimeoutMs ?? 60_000);
  return e;
}

/**
 * Starts cAdvisor as bench/cadvisor-baseline.sh does (`-logtostderr -docker_only=false`, default housekeeping), on a
 * free loopback port, from `/`, its log in `logFile`; waits for /healthz.
 */
export async function startCadvisor(bin: string, logFile: string, opts: { readyTimeoutMs?: number } = {}): Promise<Exporter> {
  const port = await freePort();
  const log = fs.openSync(logFile, 'w');
  const proc = spawn(bin, ['-port', String(port), '-listen_ip', '127.0.0.1', '-logtostderr', '-docker_only=false'], { cwd: '/', stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const tail = (): string => {
    try {
      // cAdvisor warns about perf_event for every cgroup: leave those out of error messages.
      return lastLines(
        fs
          .readFileSync(logFile, 'utf8')
          .split('\n')
          .filter((l) => !l.includes('perf_event'))
          .join('\n'),
      );
    } catch {
      return '';
    }
  };
  const e = track({ kind: 'cadvisor', proc, pid: proc.pid ?? 0, url: `http://127.0.0.1:${port}`, tail });
  await waitReady(e, '/healthz', opts.readyTimeoutMs ?? 60_000);
  return e;
}

/** SIGTERM, up to 10 s for it to exit, then SIGKILL. */
export async function stopExporter(e: Exporter): Promise<void> {
  if (e.proc.exitCode !== null || e.proc.signalCode !== null) return;
  const exited = new Promise((r) => e.proc.once('exit', r));
  e.proc.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000)]);
  if (e.proc.exitCode === null && e.proc.signalCode === null) {
    e.proc.kill('SIGKILL');
    await Promise.race([exited, sleep(5_000)]);
  }
}

/** A timed scrape. The body is decompressed on first use, after the clock stopped (and after a batch finished). */
export class Scrape {
  #raw: Buffer | undefined;
  #body: string | undefined;

  constructor(
    /** request sent → last byte of the body received */
    readonly ms: number,
    readonly status: number,
    /** bytes on the wire (compressed when the exporter gzipped) */
    readonly wireBytes: number,
    raw: Buffer,
    readonly gzipped: boolean,
  ) {
    this.#raw = raw;
  }

  /** The exposition, decompressed. */
  get body(): string {
    if (this.#body === undefined) {
      const raw = this.#raw ?? Buffer.alloc(0);
      this.#body = (this.gzipped ? gunzipSync(raw) : raw).toString('utf8');
      this.#raw = undefined;
    }
    return this.#body;
  }
}

/** Prometheus' text-format request: keep-alive, `Accept-Encoding: gzip`. */
const SCRAPE_HEADERS = { accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1', 'accept-encoding': 'gzip' };

function get(url: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<{ status: number; raw: Buffer; gzip: boolean; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // HTTPS (a podvisor with --tls=on): its certificate is self-signed, and what is measured is the exporter, not PKI.
    const req = url.startsWith('https:')
      ? https.get(url, { agent: keepAliveTls, headers, timeout: timeoutMs }, onResponse)
      : http.get(url, { agent: keepAlive, headers, timeout: timeoutMs }, onResponse);
    function onResponse(res: http.IncomingMessage): void {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, raw: Buffer.concat(chunks), gzip: res.headers['content-encoding'] === 'gzip', ms: performance.now() - t0 }),
      );
      res.on('error', reject);
    }
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs / 1000} s`)));
    req.on('error', reject);
  });
}

/** One timed scrape of `path` (default /metrics). Decompression happens after the clock stops. */
export async function scrape(url: string, opts: { path?: string; timeoutMs?: number } = {}): Promise<Scrape> {
  const r = await get(`${url}${opts.path ?? '/metrics'}`, opts.timeoutMs ?? 120_000, SCRAPE_HEADERS);
  return new Scrape(r.ms, r.status, r.raw.length, r.raw, r.gzip);
}

/** The value of the first sample line `name value` (name may include `{labels}`); NaN if absent. */
export function metric(body: string, name: string): number {
  const at = body.startsWith(`${name} `) ? 0 : body.indexOf(`\n${name} `);
  if (at < 0) return NaN;
  const start = at === 0 ? name.length + 1 : at + name.length + 2;
  const end = body.indexOf('\n', start);
  return Number(body.slice(start, end < 0 ? undefined : end).split(' ')[0]);
}

/** Distinct non-empty `name` labels on `container_*` series (cadvisor-baseline.sh's readiness check). */
export function containerNames(body: string): Set<string> {
  const names = new Set<string>();
  const re = /^container_[a-z_]+\{[^\n]*?[{,]name="([^"]+)"/gm;
  for (let m = re.exec(body); m !== null; m = re.exec(body)) names.add(m[1] ?? '');
  return names;
}

export interface Exposition {
  /** bytes of the decompressed exposition */
  bytes: number;
  /** sample lines */
  series: number;
  /** `container_*` sample lines */
  containerSeries: number;
  /** `# TYPE` lines */
  families: number;
}

export function exposition(body: string): Exposition {
  let series = 0;
  let containerSeries = 0;
  let families = 0;
  for (const line of body.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      if (line.startsWith('# TYPE ')) families++;
      continue;
    }
    series++;
    if (line.startsWith('container_')) containerSeries++;
  }
  return { bytes: Buffer.byteLength(body), series, containerSeries, families };
}
