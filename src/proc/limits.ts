import { ParseError } from '../errors.js';
import { parseDecimal } from './decimal.js';

/** A resource limit's soft and hard values; -1 for `unlimited`, as in cAdvisor's UlimitSpec. */
export interface Limit {
  soft: number;
  hard: number;
}

/**
 * A row of fs/proc/base.c proc_pid_limits: `%-25s %-20s %-20s %-10s\n` of name, soft, hard and unit, the unit and
 * its padding left out for limits without one (`Max nice priority`). Names and units are words of letters (names
 * separated by single spaces), so a row splits one way only.
 */
const ROW = /^([A-Za-z]+(?: [A-Za-z]+)*)\s+(unlimited|\d+)\s+(unlimited|\d+)(?:\s+[A-Za-z]+)?\s*$/;

function limitValue(token: string | undefined): number | undefined {
  return token === 'unlimited' ? -1 : parseDecimal(token);
}

/**
 * Parses `/proc/<pid>/limits` into limit name as printed (`Max open files`) → soft and hard values, `unlimited` being
 * -1. The file is a `Limit  Soft Limit  Hard Limit  Units` header and one row per limit. Values above 2^53 lose
 * precision (cAdvisor parses them as int64 and drops a row above 2^63-1). Throws ParseError on a missing header, a
 * malformed row or a name given twice.
 */
export function parseLimits(text: string, file: string): Map<string, Limit> {
  const result = new Map<string, Limit>();
  const lines = text.split('\n');
  let sawHeader = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.trim() === '') continue;
    if (!sawHeader) {
      if (!/^Limit\s+Soft Limit\s+Hard Limit\b/.test(line))
        throw new ParseError(file, `line ${i + 1}: expected the "Limit Soft Limit Hard Limit Units" header`);
      sawHeader = true;
      continue;
    }
    const match = ROW.exec(line);
    const name = match?.[1];
    const soft = limitValue(match?.[2]);
    const hard = limitValue(match?.[3]);
    if (name === undefined || soft === undefined || hard === undefined) {
      throw new ParseError(file, `line ${i + 1}: expected "<name> <soft> <hard> [<units>]"`);
    }
    if (result.has(name)) throw new ParseError(file, `line ${i + 1}: "${name}" given twice`);
    result.set(name, { soft, hard });
  }
  if (!sawHeader) throw new ParseError(file, 'missing the "Limit Soft Limit Hard Limit Units" header');
  return result;
}
