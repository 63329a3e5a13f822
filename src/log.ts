/** A tiny leveled logger writing one logfmt line per event to stderr. */

/** The levels, lowest first; `--log-level` takes one. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export type Fields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

function quote(v: string): string {
  return /^[\w./:@-]+$/.test(v) ? v : JSON.stringify(v);
}

export function createLogger(level: LogLevel, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const log = (at: LogLevel, msg: string, fields?: Fields): void => {
    if (ORDER[at] < ORDER[level]) return;
    let line = `ts=${new Date().toISOString()} level=${at} msg=${quote(msg)}`;
    for (const [k, v] of Object.entries(fields ?? {})) if (v !== undefined) line += ` ${k}=${quote(String(v))}`;
    write(line + '\n');
  };
  return {
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
