/**
 * One progress line on stderr while something long runs (hundreds of containers): rewritten in place on a
 * terminal, otherwise printed every 10% or 15 s, so a log stays short.
 */
export class Progress {
  readonly #label: string;
  readonly #total: number;
  readonly #t0 = performance.now();
  readonly #tty = process.stderr.isTTY === true;
  #done = 0;
  #lastPrinted = -1;
  #lastAt = 0;
  #extra = '';

  constructor(label: string, total: number) {
    this.#label = label;
    this.#total = total;
    this.#print(true);
  }

  get elapsedS(): number {
    return (performance.now() - this.#t0) / 1000;
  }

  tick(n = 1, extra?: string): void {
    this.#done += n;
    if (extra !== undefined) this.#extra = extra;
    this.#print(false);
  }

  #line(): string {
    const s = this.elapsedS;
    const rate = this.#done / Math.max(s, 1e-3);
    const eta = this.#done > 0 && this.#done < this.#total ? `, ~${Math.ceil((this.#total - this.#done) / rate)} s left` : '';
    return `bench: ${this.#label}: ${this.#done}/${this.#total}${this.#extra === '' ? '' : ` (${this.#extra})`}, ${s.toFixed(0)} s${eta}`;
  }

  #print(force: boolean): void {
    if (this.#tty) {
      process.stderr.write(`\r\x1b[K${this.#line()}`);
      return;
    }
    const pct = this.#total === 0 ? 100 : Math.floor((this.#done / this.#total) * 10);
    const now = performance.now();
    if (force || pct !== this.#lastPrinted || now - this.#lastAt > 15_000) {
      this.#lastPrinted = pct;
      this.#lastAt = now;
      process.stderr.write(`${this.#line()}\n`);
    }
  }

  /** Ends the line. */
  finish(extra?: string): void {
    if (extra !== undefined) this.#extra = extra;
    if (this.#tty) process.stderr.write(`\r\x1b[K${this.#line()}\n`);
    else if (this.#lastPrinted !== 10) process.stderr.write(`${this.#line()}\n`);
  }
}
