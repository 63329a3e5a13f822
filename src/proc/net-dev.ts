import { ParseError } from '../errors.js';
import type { NetworkInterfaceStats } from '../model/network.js';
import { parseDecimal } from './decimal.js';

/** cAdvisor skips these interfaces (compared lowercased, by prefix): loopback, the host ends of veth pairs, bridges. */
const IGNORED_PREFIXES: readonly string[] = ['lo', 'veth', 'docker', 'nerdctl'];

/** The kernel prints 8 receive and 8 transmit counters per interface (net/core/net-procfs.c dev_seq_printf_stats). */
const COUNTERS = 16;

/** True for interfaces cAdvisor leaves out of container_network_* (`lo`, `veth*`, `docker*`, `nerdctl*`, any case). */
export function isIgnoredInterface(name: string): boolean {
  const lower = name.toLowerCase();
  return IGNORED_PREFIXES.some((prefix) => lower.startsWith(prefix));
}

/**
 * Parses `/proc/<pid>/net/dev`: two header lines, then one line per interface. The name is right-aligned in
 * six columns (`%6s:`), so names longer than that start the line; older kernels print `%6s:%8llu`, so a wide
 * receive-bytes counter touches the colon (`  eth0:4294967296123 ...`).
 * Interfaces cAdvisor ignores are dropped; the rest are sorted by name (code-unit order).
 * Throws ParseError on anything else.
 */
export function parseNetDev(text: string, file: string): NetworkInterfaceStats[] {
  const lines = text.split('\n');
  const [head1, head2] = lines;
  if (head1 === undefined || head2 === undefined || !head1.includes('|') || !head2.includes('|')) {
    throw new ParseError(file, 'missing the two header lines');
  }
  const result: NetworkInterfaceStats[] = [];
  for (let i = 2; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon).trim();
    if (name === '') throw new ParseError(file, `line ${i + 1}: expected "<interface>: <counters>"`);
    const fields = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    if (fields.length < COUNTERS) {
      throw new ParseError(file, `line ${i + 1}: ${name} has ${fields.length} counters, expected ${COUNTERS}`);
    }
    const counters: number[] = [];
    for (const field of fields.slice(0, COUNTERS)) {
      const value = parseDecimal(field);
      if (value === undefined) throw new ParseError(file, `line ${i + 1}: ${name} has a non-numeric counter "${field}"`);
      counters.push(value);
    }
    if (isIgnoredInterface(name)) continue;
    const at = (index: number): number => counters[index] ?? 0;
    result.push({
      name,
      rxBytes: at(0),
      rxPackets: at(1),
      rxErrors: at(2),
      rxDropped: at(3),
      txBytes: at(8),
      txPackets: at(9),
      txErrors: at(10),
      txDropped: at(11),
    });
  }
  return result.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
