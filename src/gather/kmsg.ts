import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { errorMessage } from '../errors.js';
import { errnoCode } from '../guards.js';
import type { Logger } from '../log.js';
import { OomKillParser, parseKmsgRecord } from '../proc/kmsg-oom.js';

/** What KmsgOomCounter needs of an open file: fs.promises' FileHandle has it. */
export interface KmsgHandle {
  read(buffer: Buffer, offset: number, length: number, position: null): Promise<{ bytesRead: number }>;
  stat(): Promise<{ isFile(): boolean }>;
  close(): Promise<void>;
}

export interface KmsgOomCounterOptions {
  /** The kernel's log: `<rootfs>/dev/kmsg`; a FIFO or a regular file of records in tests. */
  path: string;
  log: Logger;
  /** Opens `path` read-only and non-blocking (default: fs.promises.open with O_RDONLY | O_NONBLOCK). */
  open?: (path: string) => Promise<KmsgHandle>;
  /** How long to wait when there is nothing new to read (default 1000 ms). */
  pollMs?: number;
}

/** /dev/kmsg hands out one record per read() and fails it with EINVAL if the buffer is smaller (records are < 8 KiB). */
const READ_BYTES = 16 * 1024;
/** A FIFO writer that never ends its line does not make the pending text grow without bound. */
const MAX_PENDING_CHARS = 64 * 1024;

const openNonBlocking = (path: string): Promise<KmsgHandle> => fs.promises.open(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);

/**
 * Counts OOM kills per memory cgroup from the kernel's log, for kernels without the cgroup's own `oom_kill` counter.
 * Reads from the start of the ring buffer (as cAdvisor does), so kills still in it count. The file is opened
 * non-blocking and read with one read() per record into a 16 KiB buffer; when there is nothing new (EAGAIN, or 0
 * bytes from a FIFO without a writer) it waits `pollMs` and reads again. A regular file is read to its end, then
 * reading stops. Whatever it reads is split into lines: /dev/kmsg gives whole records, a FIFO may give several at
 * once or part of one; a line starting with a space continues the record before it and is skipped.
 * EPIPE (records overwritten before they were read) is logged once at debug, and reading goes on; any other read
 * error is logged once at warn, and reading stops. Nothing it does throws into the process.
 */
export class KmsgOomCounter {
  readonly path: string;
  readonly #log: Logger;
  readonly #open: (path: string) => Promise<KmsgHandle>;
  readonly #pollMs: number;
  readonly #counts = new Map<string, number>();
  readonly #parser = new OomKillParser();
  readonly #decoder = new StringDecoder('utf8');
  #pendingText = '';
  #started = false;
  #closed = false;
  #sawEpipe = false;
  #loop: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;

  constructor(opts: KmsgOomCounterOptions) {
    this.path = opts.path;
    this.#log = opts.log;
    this.#open = opts.open ?? openNonBlocking;
    this.#pollMs = opts.pollMs ?? 1000;
  }

  /**
   * Opens the file and starts reading in the background. Rejects, naming the path and the reason, if it cannot be
   * opened (ENOENT: no /dev/kmsg under the rootfs; EACCES/EPERM: no permission) or was started before.
   */
  async start(): Promise<void> {
    if (this.#started) throw new Error(`${this.path}: already started`);
    this.#started = true;
    let handle: KmsgHandle;
    let regular: boolean;
    try {
      handle = await this.#open(this.path);
    } catch (err) {
      throw new Error(`cannot read OOM kills from ${this.path}: ${reason(err)}`, { cause: err });
    }
    try {
      regular = (await handle.stat()).isFile();
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw new Error(`cannot read OOM kills from ${this.path}: ${reason(err)}`, { cause: err });
    }
    if (this.#closed) {
      await handle.close().catch(() => undefined);
      return;
    }
    this.#loop = this.#read(handle, regular);
  }

  /** Kills seen per cgroup path (`/` for the root) since reading began: a live view, not a copy. */
  counts(): ReadonlyMap<string, number> {
    return this.#counts;
  }

  /** Stops reading and closes the file; resolves once the last read has returned and the fd is released. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#wake?.();
    await this.#loop;
  }

  async #read(handle: KmsgHandle, regular: boolean): Promise<void> {
    const buf = Buffer.allocUnsafe(READ_BYTES);
    try {
      while (!this.#closed) {
        let n: number;
        try {
          n = (await handle.read(buf, 0, buf.length, null)).bytesRead;
        } catch (err) {
          const code = errnoCode(err);
          if (code === 'EAGAIN' || code === 'EWOULDBLOCK') {
            await this.#sleep();
          } else if (code === 'EPIPE') {
            if (!this.#sawEpipe) this.#log.debug('kernel log records were overwritten before they were read', { path: this.path });
            this.#sawEpipe = true;
          } else {
            if (!this.#closed) this.#log.warn('reading OOM kills from the kernel log failed; stopped', { path: this.path, error: errorMessage(err) });
            return;
          }
          continue;
        }
        if (n > 0) this.#consume(this.#decoder.write(buf.subarray(0, n)));
        else if (regular) {
          this.#log.debug('read the kernel log file to its end; stopped', { path: this.path });
          return;
        } else await this.#sleep();
      }
    } finally {
      await handle.close().catch((err: unknown) => this.#log.debug('closing the kernel log failed', { path: this.path, error: errorMessage(err) }));
    }
  }

  #consume(text: string): void {
    const lines = (this.#pendingText + text).split('\n');
    this.#pendingText = lines.pop() ?? '';
    if (this.#pendingText.length > MAX_PENDING_CHARS) this.#pendingText = '';
    for (const line of lines) {
      if (line.startsWith(' ')) continue;
      const record = parseKmsgRecord(line);
      if (record === undefined) continue;
      const cgroup = this.#parser.push(record.message);
      if (cgroup !== undefined) this.#counts.set(cgroup, (this.#counts.get(cgroup) ?? 0) + 1);
    }
  }

  #sleep(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#wake = undefined;
        resolve();
      }, this.#pollMs);
    });
  }
}

function reason(err: unknown): string {
  const code = errnoCode(err);
  if (code === 'ENOENT') return 'ENOENT: no such file (no /dev/kmsg under the host root?)';
  if (code === 'EACCES' || code === 'EPERM') return `${code}: permission denied (reading /dev/kmsg needs CAP_SYSLOG when kernel.dmesg_restrict=1)`;
  return errorMessage(err);
}
