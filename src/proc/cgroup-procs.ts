import { ParseError } from '../errors.js';
import { parseDecimal } from './decimal.js';

/**
 * Parses a cgroup's `cgroup.procs`: one thread-group id per line, blank lines allowed. Anything else throws
 * ParseError. The pids are returned as the kernel lists them, unsorted and unfiltered:
 * - a process outside the reader's pid namespace is listed as `0` (one `0` per such process);
 * - cgroup v1 documents that the list may hold duplicates.
 * Callers that count processes decide what to do with those.
 */
export function parseCgroupProcs(text: string, file: string): number[] {
  const pids: number[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const token = (lines[i] ?? '').trim();
    if (token === '') continue;
    const pid = parseDecimal(token);
    if (pid === undefined || !Number.isSafeInteger(pid)) throw new ParseError(file, `line ${i + 1}: "${token}" is not a pid`);
    pids.push(pid);
  }
  return pids;
}
