/**
 * Who reads a gather's files. Without a read-ahead thread the gather's thread reads every file itself. With one
 * (`--gather-threads=2`), the thread starts with the gather on the files that the last gather's final cgroups read
 * (READ_AHEAD_SHARE of its reads, files plus descriptors) while this thread walks the tree and reads the first
 * cgroups; when this thread reaches the thread's share it takes the outcomes, each used once, exactly as the read it
 * replaces would have returned or thrown. A cgroup gone since is read ahead for nothing; a new one is read here.
 */
import { errorMessage } from '../errors.js';
import type { FileReader } from '../host/file-reader.js';
import type { Logger } from '../log.js';
import { settle, type FdOutcome, type ReadAhead, type ReadOutcome } from './read-ahead.js';

/** The read-ahead thread's share of the last gather's reads: it takes the cgroups at the end of the list. */
const READ_AHEAD_SHARE = 0.7;

interface Outcomes {
  files: Map<string, ReadOutcome>;
  fds: Map<number, FdOutcome>;
}

/** The cgroups the thread reads for this gather, and its outcomes once it answers (undefined: nothing to read). */
interface AheadStart {
  ids: ReadonlySet<string>;
  outcomes: Promise<Outcomes | undefined> | undefined;
}

export class ReadPlan {
  readonly #reader: FileReader;
  readonly #readAhead: ReadAhead | undefined;
  readonly #procRoot: string;
  readonly #log: Logger;
  /** The files each cgroup read in the last gather: what the thread reads for it in the next one. */
  #filesOf = new Map<string, string[]>();
  /** Reads per cgroup in the last gather (files plus descriptors counted): how the work is split. */
  #readsOf = new Map<string, number>();
  /** The cgroups the thread takes in the next gather: chosen at the end of the last one, so it starts at once. */
  #aheadIds: readonly string[] = [];
  #failures = 0;

  constructor(reader: FileReader, readAhead: ReadAhead | undefined, procRoot: string, log: Logger) {
    this.#reader = reader;
    this.#readAhead = readAhead;
    this.#procRoot = procRoot;
    this.#log = log;
  }

  /** Starts a gather's reads: the read-ahead thread, if any, starts on its share now. */
  begin(): GatherReads {
    return new GatherReads(this, this.#reader, this.#readAhead === undefined ? undefined : { ids: new Set(this.#aheadIds), outcomes: this.#start() });
  }

  /** Called by GatherReads at the end of a gather: what was read, for the next one. */
  remember(filesOf: Map<string, string[]>, readsOf: Map<string, number>, paths: readonly string[]): void {
    this.#filesOf = filesOf;
    this.#readsOf = readsOf;
    this.#aheadIds = this.#readAhead === undefined ? [] : paths.slice(this.#splitAt(paths));
  }

  /** The first cgroup of the thread's share: from the end, READ_AHEAD_SHARE of the last gather's reads. */
  #splitAt(paths: readonly string[]): number {
    let total = 0;
    for (const id of paths) total += this.#readsOf.get(id) ?? 0;
    let share = 0;
    let i = paths.length;
    while (i > 0 && share < total * READ_AHEAD_SHARE) share += this.#readsOf.get(paths[--i] ?? '') ?? 0;
    return i;
  }

  /** Outcomes by file and fd counts by pid, or undefined when there is nothing to read or the thread failed. */
  #start(): Promise<Outcomes | undefined> | undefined {
    const readAhead = this.#readAhead;
    if (readAhead === undefined) return undefined;
    const files = this.#aheadIds.flatMap((id) => this.#filesOf.get(id) ?? []);
    if (files.length === 0) return undefined;
    return readAhead.read(files, this.#procRoot).then(
      ({ outcomes, fds }) => ({ files: new Map(files.map((f, i) => [f, outcomes[i] ?? null])), fds }),
      (err: unknown) => {
        // Rate-limited: the first failure and then every 100th are warnings.
        const level = this.#failures++ % 100 === 0 ? 'warn' : 'debug';
        this.#log[level]('read-ahead thread failed; this gather reads its files itself', { error: errorMessage(err) });
        return undefined;
      },
    );
  }
}

/** One gather's reads: from the read-ahead thread's outcomes where it has them, else from the FileReader. */
export class GatherReads {
  readonly #plan: ReadPlan;
  readonly #reader: FileReader;
  readonly #ahead: AheadStart | undefined;
  /** Recorded only with a read-ahead thread: without one nothing needs them. */
  readonly #recording: boolean;
  #current: string[] = [];
  readonly #filesOf = new Map<string, string[]>();
  readonly #readsOf = new Map<string, number>();
  #awaited = false;
  #files: Map<string, ReadOutcome> | undefined;
  #fds: Map<number, FdOutcome> | undefined;

  constructor(plan: ReadPlan, reader: FileReader, ahead: AheadStart | undefined) {
    this.#plan = plan;
    this.#reader = reader;
    this.#ahead = ahead;
    this.#recording = ahead !== undefined;
  }

  /** The whole file as FileReader.read gives it (content, undefined when missing, or the error thrown). */
  read(file: string): string | undefined {
    if (this.#recording) this.#current.push(file);
    const outcome = this.#files?.get(file);
    if (outcome !== undefined && this.#files?.delete(file) === true) return settle(outcome);
    return this.#reader.read(file);
  }

  /** Before cgroup `id` is read: where the thread's share starts, wait for its outcomes; record `id`'s files. */
  async enter(id: string): Promise<void> {
    const ahead = this.#ahead;
    if (!this.#awaited && ahead?.outcomes !== undefined && ahead.ids.has(id)) {
      this.#awaited = true;
      const r = await ahead.outcomes;
      this.#files = r?.files;
      this.#fds = r?.fds;
    }
    if (this.#recording) {
      this.#current = [];
      this.#filesOf.set(id, this.#current);
    }
  }

  /** The thread's fd counts by pid (each used once), once its share has started. */
  get fdsAhead(): Map<number, FdOutcome> | undefined {
    return this.#fds;
  }

  /** After cgroup `id` is read: its share of the work, for the next split. */
  leave(id: string, descriptors: number): void {
    if (this.#recording) this.#readsOf.set(id, this.#current.length + descriptors);
  }

  /** The gather is over: what it read decides the next gather's split. */
  finish(paths: readonly string[]): void {
    this.#plan.remember(this.#filesOf, this.#readsOf, paths);
  }
}
