/**
 * Decodes a newline-delimited JSON stream (Docker's `/events`): objects may be split across chunks, and a line that
 * is not a JSON object is skipped (counted), never thrown.
 */
import { StringDecoder } from 'node:string_decoder';
import { isRecord } from '../../guards.js';

/** A line longer than this without a newline is dropped (a runaway or non-JSON stream). */
export const MAX_LINE_CHARS = 1024 * 1024;

export class JsonLineDecoder {
  #utf8 = new StringDecoder('utf8');
  #pending = '';
  #overflowing = false;
  /** Lines dropped because they were not a JSON object (or too long). */
  skipped = 0;

  /** Feeds one chunk; returns the complete objects it finished. */
  push(chunk: Buffer | string): Record<string, unknown>[] {
    const text = typeof chunk === 'string' ? chunk : this.#utf8.write(chunk);
    const out: Record<string, unknown>[] = [];
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const line = this.#pending + text.slice(start, nl);
      this.#pending = '';
      start = nl + 1;
      if (this.#overflowing) {
        this.#overflowing = false;
        continue;
      }
      this.#line(line, out);
    }
    if (!this.#overflowing) {
      this.#pending += text.slice(start);
      if (this.#pending.length > MAX_LINE_CHARS) {
        this.#pending = '';
        this.#overflowing = true;
        this.skipped++;
      }
    }
    return out;
  }

  /** Flushes a last line that had no trailing newline. */
  end(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    const rest = this.#pending + this.#utf8.end();
    this.#pending = '';
    if (!this.#overflowing) this.#line(rest, out);
    this.#overflowing = false;
    return out;
  }

  #line(line: string, out: Record<string, unknown>[]): void {
    const trimmed = line.trim();
    if (trimmed === '') return;
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch {
      this.skipped++;
      return;
    }
    if (isRecord(value)) out.push(value);
    else this.skipped++;
  }
}
