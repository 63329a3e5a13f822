/** Command line of bench/run.ts (`npm run bench -- <flags>`). */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO } from './exporter.js';

export interface Args {
  containers: number[];
  filesPerContainer: number;
  cadvisor?: string;
  runs: number;
  rounds: number;
  idleSeconds: number;
  keep: boolean;
  out: string;
  skipWalker: boolean;
  /** the Prometheus-like scrapers scenario (lib/prom.ts): warm-up and measured window, s */
  promWarmupSeconds: number;
  promSeconds: number;
  skipProm: boolean;
  help: boolean;
  fromJson?: string;
}

export const HELP = `Usage: npm run bench -- [flags]      (or: node --import=tsx bench/run.ts [flags] after npm run build)

A busy node on the real daemons: N Kubernetes-shaped containers (half Docker, half containerd), files in their
writable layers; podvisor, cAdvisor (when given) and a native C reader measured on it, interleaved; a markdown
report and an SVG chart in --out. Needs root, dockerd + containerd with podvisor-test:1 (test/support/provision.sh)
and cc. See bench/README.md.

  --containers <list>          container counts, comma-separated (default 200), e.g. 50,200,500
  --files-per-container <n>    files written into each writable layer (default 5000)
  --cadvisor <path>            cAdvisor 0.38.7 binary to measure against (bench/cadvisor-fetch.sh puts it in
                               bench/.work/cadvisor/usr/bin/cadvisor); without it only podvisor and the floor
  --runs <n>                   sequential scrapes per round, and native reader passes (default 30)
  --rounds <n>                 rounds per exporter and container count (default 3)
  --idle-seconds <s>           idle window, a scrape every 15 s (default 60; ≥ 60 covers one disk-usage cycle)
  --skip-walker                skip the disk walker measurements (throughput vs du, latency under walks)
  --prom-warmup-seconds <s>    Prometheus-like scrapers (5, 15, 30 s) at the largest count: warm-up before the
                               measured window, per exporter (default 95: the 30 s scraper's third scrape, which
                               makes its schedule learnable, comes up to 90 s after the scrapers start)
  --prom-seconds <s>           Prometheus-like scrapers: the measured window, per exporter (default 120)
  --skip-prom                  skip the Prometheus-like scrapers scenario
  --keep                       leave the containers running afterwards (reused by the next run)
  --out <dir>                  where <date>-<counts>.md and .svg go (default bench/results)
  --from-json <file>           only re-render the report and chart of a saved run (bench/.work/runs/*.json)
  --help                       this text
`;

export class UsageError extends Error {}

function int(name: string, v: string | undefined, def: number, min: number): number {
  if (v === undefined) return def;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name} needs an integer ≥ ${min}, got "${v}"`);
  return Number(v);
}

const OPTIONS = {
  containers: { type: 'string' },
  'files-per-container': { type: 'string' },
  cadvisor: { type: 'string' },
  runs: { type: 'string' },
  rounds: { type: 'string' },
  'idle-seconds': { type: 'string' },
  'skip-walker': { type: 'boolean' },
  'prom-warmup-seconds': { type: 'string' },
  'prom-seconds': { type: 'string' },
  'skip-prom': { type: 'boolean' },
  keep: { type: 'boolean' },
  out: { type: 'string' },
  'from-json': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function flags(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError(`${err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err)} (--help lists the flags)`);
  }
}

export function parse(argv: readonly string[]): Args {
  const values = flags(argv);
  const list = values.containers ?? '200';
  if (!/^\d+(,\d+)*$/.test(list)) throw new UsageError(`--containers needs a comma-separated list of counts, got "${list}"`);
  const containers = [...new Set(list.split(',').map(Number))].sort((a, b) => a - b);
  if (containers.some((n) => n < 1)) throw new UsageError('--containers: every count must be ≥ 1');
  const a: Args = {
    containers,
    filesPerContainer: int('files-per-container', values['files-per-container'], 5000, 0),
    runs: int('runs', values.runs, 30, 3),
    rounds: int('rounds', values.rounds, 3, 1),
    idleSeconds: int('idle-seconds', values['idle-seconds'], 60, 15),
    keep: values.keep ?? false,
    out: path.resolve(values.out ?? path.join(REPO, 'bench/results')),
    skipWalker: values['skip-walker'] ?? false,
    promWarmupSeconds: int('prom-warmup-seconds', values['prom-warmup-seconds'], 95, 0),
    promSeconds: int('prom-seconds', values['prom-seconds'], 120, 5),
    skipProm: values['skip-prom'] ?? false,
    help: values.help ?? false,
  };
  if (values.cadvisor !== undefined) a.cadvisor = path.resolve(values.cadvisor);
  if (values['from-json'] !== undefined) a.fromJson = path.resolve(values['from-json']);
  return a;
}
