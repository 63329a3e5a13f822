/**
 * The Prometheus exposition formats, written by hand from format-neutral "families".
 * A family's samples are rendered once per gather (off the HTTP thread); assembling the body for text 0.0.4 or
 * OpenMetrics 1.0 is then only header lines and concatenation. Hand-built text is the cheapest exposition measured
 * on this machine (shared/reference/measurements.md) and lets every format come from one snapshot.
 */
import type { MetricType } from './spec.js';

export type ExpositionFormat = 'text' | 'openmetrics';

export const CONTENT_TYPES: Readonly<Record<ExpositionFormat, string>> = {
  text: 'text/plain; version=0.0.4; charset=utf-8',
  openmetrics: 'application/openmetrics-text; version=1.0.0; charset=utf-8',
};

export type FamilyType = MetricType | 'histogram' | 'summary';

/** One metric family with its sample lines already rendered (`name{labels} value\n` ...). */
export interface RenderedFamily {
  name: string;
  help: string;
  type: FamilyType;
  /** Sample lines as text 0.0.4 writes them. */
  samples: string;
  /**
   * Only for counters whose name lacks `_total` (cAdvisor's `container_memory_failcnt`): the sample lines with
   * `_total` appended, as OpenMetrics requires. Otherwise OpenMetrics uses `samples` unchanged.
   */
  openMetricsSamples?: string;
}

/** Escapes a label value: backslash, double quote and newline (both formats). */
export function escapeLabelValue(v: string): string {
  if (!/[\\"\n]/.test(v)) return v;
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(help: string, format: ExpositionFormat): string {
  const s = help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
  return format === 'openmetrics' ? s.replace(/"/g, '\\"') : s;
}

/** Go-compatible float text: integers plainly, NaN, +Inf, -Inf. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** `k1="v1",k2="v2"` for label names and values lined up. */
export function formatLabels(names: readonly string[], values: readonly string[]): string {
  let s = '';
  for (let i = 0; i < names.length; i++) {
    if (i > 0) s += ',';
    s += `${names[i]}="${escapeLabelValue(values[i] ?? '')}"`;
  }
  return s;
}

/** Builds the sample lines of one family; `needsOpenMetricsCopy` tells whether a `_total` twin is kept. */
export class FamilyWriter {
  readonly name: string;
  readonly help: string;
  readonly type: FamilyType;
  #samples = '';
  #om: string | undefined;

  constructor(name: string, help: string, type: FamilyType) {
    this.name = name;
    this.help = help;
    this.type = type;
    if (type === 'counter' && !name.endsWith('_total')) this.#om = '';
  }

  /** Adds `name{labels} value`; `labels` is an already formatted label string (may be empty). */
  sample(labels: string, value: number, suffix = ''): void {
    const body = labels === '' ? ` ${formatValue(value)}\n` : `{${labels}} ${formatValue(value)}\n`;
    this.#samples += this.name + suffix + body;
    if (this.#om !== undefined) this.#om += `${this.name}_total${body}`;
  }

  get empty(): boolean {
    return this.#samples === '';
  }

  finish(): RenderedFamily {
    const f: RenderedFamily = { name: this.name, help: this.help, type: this.type, samples: this.#samples };
    if (this.#om !== undefined) f.openMetricsSamples = this.#om;
    return f;
  }
}

/**
 * Assembles a whole exposition. Families without samples are left out entirely (no orphan HELP/TYPE).
 * OpenMetrics: counter families are named without `_total`, and the body ends with `# EOF`.
 */
export function assemble(groups: readonly (readonly RenderedFamily[])[], format: ExpositionFormat): string {
  const parts: string[] = [];
  for (const families of groups) {
    for (const f of families) {
      if (f.samples === '') continue;
      let family = f.name;
      let samples = f.samples;
      if (format === 'openmetrics') {
        if (f.type === 'counter') {
          if (family.endsWith('_total')) family = family.slice(0, -'_total'.length);
          else samples = f.openMetricsSamples ?? samples;
        }
      }
      parts.push(`# HELP ${family} ${escapeHelp(f.help, format)}\n# TYPE ${family} ${f.type}\n`, samples);
    }
  }
  if (format === 'openmetrics') parts.push('# EOF\n');
  return parts.join('');
}
