/**
 * podvisor's error classes: each has a stable `code`, a readable message and an optional cause.
 * Startup errors become one readable line and a non-zero exit (see main.ts).
 */
export class PodvisorError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PodvisorError';
    this.code = code;
  }
}

/** A cgroup or proc file that exists but does not say what the kernel documents. */
export class ParseError extends PodvisorError {
  readonly file: string;
  constructor(file: string, message: string) {
    super('PODVISOR_PARSE', `${file}: ${message}`);
    this.name = 'ParseError';
    this.file = file;
  }
}

/** A bad flag or environment value. */
export class ConfigError extends PodvisorError {
  constructor(message: string) {
    super('PODVISOR_CONFIG', message);
    this.name = 'ConfigError';
  }
}

/** Nothing podvisor can run on: no cgroup mount, unreadable roots. */
export class StartupError extends PodvisorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PODVISOR_STARTUP', message, options);
    this.name = 'StartupError';
  }
}

/** A gather did not finish before the scrape's deadline. */
export class DeadlineError extends PodvisorError {
  readonly statusCode = 503;
  constructor(message: string) {
    super('PODVISOR_DEADLINE', message);
    this.name = 'DeadlineError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
