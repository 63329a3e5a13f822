/**
 * What TLS and Kubernetes token authentication cost a scrape, on this node's containers (run
 * `bench/containers.sh up 200` first): the built exporter (dist/main.js) in three setups, measured interleaved,
 * round by round, so drift hits each alike:
 *   - plain:      HTTP, no authentication (the default);
 *   - tls:        HTTPS with a generated self-signed certificate (--tls=on);
 *   - tls+token:  HTTPS plus --authentication=kubernetes --authorization=kubernetes against a fake API server on
 *                 loopback (test/support/fake-apiserver.ts): every scrape carries a bearer token; its TokenReview and
 *                 SubjectAccessReview are answered once and then cached, as in a cluster.
 * Each scrape is a Prometheus-like GET /metrics (text, gzip) on a keep-alive connection; a second series of scrapes
 * opens a new connection each time (a new TLS handshake: what a scraper without keep-alive pays). Reported: scrape
 * p50/p90 per setup and mode, RSS after the scrapes and its high-water mark, and the ratios to plain.
 *
 *   npm run build && node --import=tsx bench/secure-cost.ts [--scrapes 30] [--rounds 3] [--out bench/results]
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { gunzipSync } from 'node:zlib';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { startPodvisor, stopExporter, type Exporter } from './lib/exporter.js';
import { hwmMiB, rssMiB } from './lib/proc.js';
import { percentile } from './lib/stats.js';
import { startFakeApiServer } from '../test/support/fake-apiserver.js';

function flag(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : Number(process.argv[i + 1]);
}
const outIdx = process.argv.indexOf('--out');
const OUT = outIdx === -1 ? 'bench/results' : (process.argv[outIdx + 1] ?? 'bench/results');
const SCRAPES = flag('scrapes', 30);
const ROUNDS = flag('rounds', 3);
const TOKEN = 'bench-prometheus-token';
const HEADERS = { accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1', 'accept-encoding': 'gzip' };

type Setup = 'plain' | 'tls' | 'tls+token';
type Mode = 'keep-alive' | 'new connection';
const SETUPS: readonly Setup[] = ['plain', 'tls', 'tls+token'];

interface Sample {
  ms: number[];
  rss: number[];
  hwm: number[];
  series?: number;
}
const results = new Map<string, Sample>();
const key = (s: Setup, m: Mode): string => `${s}|${m}`;

let series = 0;

function once(
  url: string,
  agent: http.Agent | https.Agent | false,
  headers: Record<string, string>,
): Promise<{ ms: number; status: number; bytes: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(url, { agent, headers, timeout: 60_000, rejectUnauthorized: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const ms = performance.now() - t0;
        const raw = Buffer.concat(chunks);
        resolve({ ms, status: res.statusCode ?? 0, bytes: raw.length, body: res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url}`)));
    req.on('error', reject);
  });
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-secure-bench-'));
  const api = await startFakeApiServer({
    dir,
    tokens: { [TOKEN]: { user: { username: 'system:serviceaccount:monitoring:prometheus-k8s', groups: ['system:serviceaccounts'] } } },
    rule: () => 'allow',
  });
  const kubeconfig = path.join(dir, 'kubeconfig');
  fs.writeFileSync(kubeconfig, api.kubeconfig());
  const args: Record<Setup, string[]> = {
    plain: [],
    tls: ['--tls=on'],
    'tls+token': ['--tls=on', '--authentication=kubernetes', '--authorization=kubernetes', `--kubeconfig=${kubeconfig}`, '--node-name=bench-node'],
  };
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      // Each round starts with the next setup.
      const order = SETUPS.map((_, i) => SETUPS[(i + round - 1) % SETUPS.length] ?? 'plain');
      for (const setup of order) {
        const e: Exporter = await startPodvisor(args[setup], { readyTimeoutMs: 120_000, scheme: setup === 'plain' ? 'http' : 'https' });
        try {
          const base = e.url;
          const headers = setup === 'tls+token' ? { ...HEADERS, authorization: `Bearer ${TOKEN}` } : HEADERS;
          const agent = base.startsWith('https:') ? new https.Agent({ keepAlive: true, rejectUnauthorized: false }) : new http.Agent({ keepAlive: true });
          // Warm-up: the first gathers (disk walks, label lookups) and, with a token, its two reviews.
          for (let i = 0; i < 3; i++) {
            const w = await once(`${base}/metrics`, agent, headers);
            if (setup === 'plain')
              series = w.body
                .toString('utf8')
                .split('\n')
                .filter((l) => l !== '' && !l.startsWith('#')).length;
          }
          for (const mode of ['keep-alive', 'new connection'] as const) {
            const s = results.get(key(setup, mode)) ?? { ms: [], rss: [], hwm: [] };
            for (let i = 0; i < SCRAPES; i++) {
              const r = await once(`${base}/metrics`, mode === 'keep-alive' ? agent : false, headers);
              if (r.status !== 200) throw new Error(`${setup}: status ${r.status}`);
              s.ms.push(r.ms);
            }
            s.rss.push(rssMiB(e.pid));
            s.hwm.push(hwmMiB(e.pid));
            results.set(key(setup, mode), s);
          }
          agent.destroy();
          process.stderr.write(`round ${round} ${setup}: done\n`);
        } finally {
          await stopExporter(e);
        }
      }
    }
    if (api.reviews().tokenreview < 1) throw new Error('the fake API server saw no TokenReview: token authentication was not exercised');
    report(api.reviews());
  } finally {
    await api.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function fmt(n: number): string {
  return n.toFixed(1);
}

function report(reviews: { tokenreview: number; subjectaccessreview: number }): void {
  const date = new Date().toISOString().slice(0, 10);
  const running = execFileSync('docker', ['ps', '-q'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l !== '').length;
  const lines = [
    `# TLS and token authentication: scrape cost (${date})`,
    '',
    `Node: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.release()}; ${running} Docker containers running; ${series} series per scrape.`,
    `Method: bench/secure-cost.ts, ${ROUNDS} rounds × ${SCRAPES} sequential scrapes per setup and mode, setups interleaved; GET /metrics, text, gzip.`,
    `The fake API server answered ${reviews.tokenreview} TokenReviews and ${reviews.subjectaccessreview} SubjectAccessReviews in all (one each per exporter start: the rest came from the caches).`,
    '',
    '| setup | connection | scrape p50 ms | p90 ms | p50 vs plain | RSS MiB (median) | RSS high-water MiB | RSS vs plain |',
    '|---|---|---|---|---|---|---|---|',
  ];
  const svgRows: { label: string; p50: number }[] = [];
  for (const mode of ['keep-alive', 'new connection'] as const) {
    const plain = results.get(key('plain', mode));
    for (const setup of SETUPS) {
      const s = results.get(key(setup, mode));
      if (s === undefined || plain === undefined) continue;
      const p50 = percentile(s.ms, 0.5);
      const rss = percentile(s.rss, 0.5);
      lines.push(
        `| ${setup} | ${mode} | ${fmt(p50)} | ${fmt(percentile(s.ms, 0.9))} | ${(p50 / percentile(plain.ms, 0.5)).toFixed(2)}× | ${fmt(rss)} | ${fmt(Math.max(...s.hwm))} | ${(rss / percentile(plain.rss, 0.5)).toFixed(2)}× |`,
      );
      svgRows.push({ label: `${setup} (${mode})`, p50 });
    }
  }
  lines.push('', `![scrape p50 by setup](${date}-secure-cost.svg)`, '');
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, `${date}-secure-cost.md`), lines.join('\n'));
  fs.writeFileSync(path.join(OUT, `${date}-secure-cost.svg`), chart(svgRows));
  process.stdout.write(lines.join('\n') + '\n');
}

/** A horizontal bar chart of the p50s. */
function chart(rows: readonly { label: string; p50: number }[]): string {
  const max = Math.max(...rows.map((r) => r.p50), 1);
  const W = 640;
  const barW = 360;
  const rowH = 26;
  const h = 40 + rows.length * rowH;
  const bars = rows
    .map((r, i) => {
      const y = 30 + i * rowH;
      const w = Math.max(1, (r.p50 / max) * barW);
      return `<text x="10" y="${y + 15}" font-size="12">${r.label}</text><rect x="220" y="${y + 3}" width="${w.toFixed(1)}" height="16" fill="#4e79a7"/><text x="${(225 + w).toFixed(1)}" y="${y + 15}" font-size="12">${r.p50.toFixed(1)} ms</text>`;
    })
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" font-family="sans-serif">\n<text x="10" y="18" font-size="14">GET /metrics p50 (ms), plain HTTP vs TLS vs TLS + token</text>\n${bars}\n</svg>\n`;
}

await main();
