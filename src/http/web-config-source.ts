/**
 * The web config file (`--web.config.file`) in force, reloaded while podvisor runs, as exporter-toolkit picks up a
 * changed file without a restart (it re-reads it on every request and handshake; podvisor polls instead):
 * - load() reads, parses and checks the file and its certificates at startup; any problem is a ConfigError (fatal);
 * - start() polls every `intervalMs` (1 s): a stat (device, inode, size, mtime, ctime) and a digest of the bytes of
 *   the file and of every certificate file it names. stat follows symlinks, so a Kubernetes Secret volume's update (the kubelet swaps the
 *   `..data` symlink) is seen. On a change it re-reads everything; a good result replaces `current` and is passed to
 *   every onChange listener (which calls `server.setSecureContext`, swaps basic-auth users, headers); a bad one keeps
 *   the old result, logs one warning per distinct problem, and is retried at every poll until it is fixed.
 * - What Node fixes at server creation cannot change: whether TLS is on, and the client certificate policy
 *   (`client_auth_type` with its client CA and allowed SANs: requestCert/rejectUnauthorized). A reload that changes
 *   them logs a warning that this needs a restart and keeps the old setting, taking the rest (certificates, users,
 *   headers) when valid.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, errorMessage } from '../errors.js';
import { errnoCode } from '../guards.js';
import type { Logger } from '../log.js';
import { loadTlsMaterial, readSmallFile, type TlsMaterial } from './tls-options.js';
import { parseWebConfig, type TlsServerConfig, type WebConfig } from './web-config.js';

/** A web config and, when it has TLS, the certificates it names. */
export interface WebConfigState {
  readonly config: WebConfig;
  readonly material?: TlsMaterial;
}

export interface WebConfigSourceOptions {
  /** The web config file. */
  path: string;
  log: Logger;
  /** How often start() polls (ms); default 1000. */
  intervalMs?: number;
}

export type WebConfigListener = (current: WebConfigState, previous: WebConfigState) => void;

/** Reads and parses the web config file; a ConfigError naming the file when it cannot be read or is not valid. */
export function readWebConfigFile(file: string): WebConfig {
  let text: string;
  try {
    text = readSmallFile(file);
  } catch (err) {
    throw new ConfigError(`web config ${file}: cannot read it (${errorMessage(err)})`);
  }
  return parseWebConfig(text, path.dirname(file), file);
}

/** The file, parsed, with its certificates loaded and checked (exporter-toolkit's `web.Validate`): a ConfigError on any problem. */
export function readWebConfig(file: string): WebConfigState {
  const config = readWebConfigFile(file);
  if (config.tls === undefined) return { config };
  return { config, material: loadTlsMaterial(config.tls, file) };
}

/** What a poll compares: one entry per watched path. */
type Stats = Map<string, string>;

/**
 * What a poll compares of one file: its stat (through symlinks) and a digest of its bytes. The digest catches a rewrite
 * that keeps size and inode within one tick of the kernel's coarse file clock; the files are small, and read whole.
 */
function statOf(file: string): string {
  let st: fs.BigIntStats | undefined;
  try {
    st = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
  } catch (err) {
    return `error ${errnoCode(err) ?? errorMessage(err)}`;
  }
  if (st === undefined) return 'missing';
  let digest: string;
  try {
    digest = crypto.createHash('sha256').update(readSmallFile(file)).digest('hex');
  } catch (err) {
    digest = `unreadable ${errorMessage(err)}`;
  }
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${digest}`;
}

function statAll(files: Iterable<string>, known?: Stats): Stats {
  const out: Stats = new Map();
  for (const f of files) out.set(f, known?.get(f) ?? statOf(f));
  return out;
}

function sameStats(a: Stats, b: Stats): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

/** `tls` with the client-certificate policy of `old`: client_auth_type, client CA, allowed SANs. */
function withClientPolicy(tls: TlsServerConfig, old: TlsServerConfig): TlsServerConfig {
  const { clientCaFile: _f, clientCaPem: _p, ...rest } = tls;
  const out: TlsServerConfig = { ...rest, clientAuthType: old.clientAuthType, clientAllowedSans: old.clientAllowedSans };
  if (old.clientCaFile !== undefined) out.clientCaFile = old.clientCaFile;
  if (old.clientCaPem !== undefined) out.clientCaPem = old.clientCaPem;
  return out;
}

export class WebConfigSource {
  readonly path: string;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #listeners = new Set<WebConfigListener>();
  readonly #failureListeners = new Set<(problem: string) => void>();
  #current: WebConfigState;
  #stats: Stats;
  #timer: NodeJS.Timeout | undefined;
  /** The problem of the last reload, while it lasts (logged once). */
  #failing: string | undefined;
  /** The change that needs a restart, while it lasts (logged once). */
  #restartNote: string | undefined;

  private constructor(opts: WebConfigSourceOptions, state: WebConfigState, stats: Stats) {
    this.path = opts.path;
    this.#log = opts.log;
    this.#intervalMs = opts.intervalMs ?? 1000;
    this.#current = state;
    this.#stats = stats;
  }

  /** Reads the file and its certificates; a ConfigError (startup is fatal) on any problem. */
  static load(opts: WebConfigSourceOptions): WebConfigSource {
    // Stat before reading: a change made during the read is then seen by the next poll rather than lost.
    const before = statAll([opts.path]);
    const state = readWebConfig(opts.path);
    return new WebConfigSource(opts, state, statAll([opts.path, ...(state.material?.files ?? [])], before));
  }

  /** The config in force and its certificates. */
  get current(): WebConfigState {
    return this.#current;
  }

  /** Calls `fn` after each reload that took a new config; returns a function that stops it. */
  onChange(fn: WebConfigListener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Calls `fn` once for each distinct reload failure (the one logged), with its reason. */
  onFailure(fn: (problem: string) => void): () => void {
    this.#failureListeners.add(fn);
    return () => this.#failureListeners.delete(fn);
  }

  /** Polls every intervalMs, on a timer that does not keep the process alive. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.check(), this.#intervalMs);
    this.#timer.unref();
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
    this.#failureListeners.clear();
  }

  /** One poll, synchronously: true when a changed file was read and taken (and the listeners called). */
  check(): boolean {
    const before = statAll(this.#stats.keys());
    if (this.#failing === undefined && sameStats(before, this.#stats)) return false;
    this.#stats = before;
    const previous = this.#current;
    let next: WebConfigState;
    try {
      next = this.#reload(previous);
    } catch (err) {
      const problem = errorMessage(err);
      if (problem !== this.#failing) {
        this.#log.warn('web config reload failed; keeping the one in force', { file: this.path, err: problem });
        for (const fn of this.#failureListeners) fn(problem);
      }
      this.#failing = problem;
      return false;
    }
    if (this.#failing !== undefined) this.#log.info('web config reload works again', { file: this.path });
    this.#failing = undefined;
    this.#current = next;
    this.#stats = statAll([this.path, ...(next.material?.files ?? [])], before);
    this.#log.info('web config reloaded', {
      file: this.path,
      tls: next.config.tls !== undefined,
      cert_sha256: next.material?.fingerprint256,
      cert_not_after: next.material?.notAfter.toISOString(),
      users: next.config.basicAuthUsers.size,
    });
    for (const fn of this.#listeners) {
      try {
        fn(next, previous);
      } catch (err) {
        this.#log.warn('web config listener failed', { file: this.path, err: errorMessage(err) });
      }
    }
    return true;
  }

  /** The file read again, with what cannot change at runtime kept as in `old`. Throws ConfigError. */
  #reload(old: WebConfigState): WebConfigState {
    const parsed = readWebConfigFile(this.path);
    const oldTls = old.config.tls;
    let note: string | undefined;
    let state: WebConfigState;
    if (oldTls === undefined && parsed.tls !== undefined) {
      note = 'tls_server_config turns TLS on; podvisor serves plain HTTP until restarted';
      const { tls: _, ...plain } = parsed;
      state = { config: plain };
    } else if (oldTls !== undefined && parsed.tls === undefined) {
      note = 'tls_server_config was removed; podvisor keeps serving HTTPS with the certificate in force until restarted';
      state = { config: { ...parsed, tls: oldTls }, ...(old.material === undefined ? {} : { material: old.material }) };
    } else if (oldTls !== undefined && parsed.tls !== undefined) {
      let tls = parsed.tls;
      if (tls.clientAuthType !== oldTls.clientAuthType) {
        note = `client_auth_type changed from ${oldTls.clientAuthType} to ${tls.clientAuthType}; the client certificate policy in force (client_auth_type, client CA, allowed SANs) stays until restarted`;
        tls = withClientPolicy(tls, oldTls);
      }
      state = { config: { ...parsed, tls }, material: loadTlsMaterial(tls, this.path) };
    } else {
      state = { config: parsed };
    }
    if (note !== undefined && note !== this.#restartNote) this.#log.warn('web config change needs a restart', { file: this.path, change: note });
    this.#restartNote = note;
    return state;
  }
}
