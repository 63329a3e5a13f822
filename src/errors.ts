/**
 * Every error class of podvisor, in one place. Each has a stable `code` (for tests, logs and callers that branch on
 * it) and the HTTP `statusCode` it maps to if it ever reaches a response (fastify's `lib/errors.js` convention): the
 * HTTP layer answers `err.statusCode` for a PodvisorError and 500 for anything else. Startup errors become one
 * readable line and a non-zero exit (see main.ts). Imports nothing of ours.
 *
 * | class                | code                          | HTTP | raised when                                            |
 * |----------------------|-------------------------------|------|--------------------------------------------------------|
 * | ConfigError          | PODVISOR_CONFIG               | 500  | a flag or environment value is invalid (exit 2)        |
 * | StartupError         | PODVISOR_STARTUP              | 500  | nothing to run on: no cgroup mount, unreadable roots   |
 * | ParseError           | PODVISOR_PARSE                | 500  | a cgroup or /proc file does not say what is documented |
 * | GatherError          | PODVISOR_GATHER               | 500  | a gather failed as a whole (no hierarchy, dead worker) |
 * | DeadlineError        | PODVISOR_DEADLINE             | 503  | a gather did not finish before the scrape's deadline   |
 * | DiskPermissionError  | PODVISOR_DISK_PERMISSION      | 500  | a disk walk was denied part of its tree                |
 * | ResponseShapeError   | PODVISOR_RESPONSE_SHAPE       | 502  | a runtime answered a body of an undocumented shape     |
 * | DockerError          | PODVISOR_RUNTIME_DOCKER       | 502  | a Docker Engine API call failed                        |
 * | ContainerdError      | PODVISOR_RUNTIME_CONTAINERD   | 502  | a containerd gRPC call failed                          |
 * | CrioError            | PODVISOR_RUNTIME_CRIO         | 502  | a CRI-O HTTP call failed                               |
 * | StaleSocketError     | PODVISOR_RUNTIME_STALE_SOCKET | 502  | a kept-alive socket died before its answer (retried)   |
 * | PodResourcesError    | PODVISOR_POD_RESOURCES        | 502  | a call to the kubelet's PodResources API failed        |
 */

export class PodvisorError extends Error {
  readonly code: string;
  /** The HTTP status this error maps to when it ends a request. */
  readonly statusCode: number;
  constructor(code: string, statusCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PodvisorError';
    this.code = code;
    this.statusCode = statusCode;
  }
}

/** A bad flag or environment value. */
export class ConfigError extends PodvisorError {
  constructor(message: string) {
    super('PODVISOR_CONFIG', 500, message);
    this.name = 'ConfigError';
  }
}

/** Nothing podvisor can run on: no cgroup mount, unreadable roots. */
export class StartupError extends PodvisorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PODVISOR_STARTUP', 500, message, options);
    this.name = 'StartupError';
  }
}

/** A cgroup or proc file that exists but does not say what the kernel documents. */
export class ParseError extends PodvisorError {
  readonly file: string;
  constructor(file: string, message: string) {
    super('PODVISOR_PARSE', 500, `${file}: ${message}`);
    this.name = 'ParseError';
    this.file = file;
  }
}

/** A gather that failed as a whole: no cgroup hierarchy could be listed, the gather thread died or hung. */
export class GatherError extends PodvisorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PODVISOR_GATHER', 500, message, options);
    this.name = 'GatherError';
  }
}

/** A gather did not finish before the scrape's deadline. */
export class DeadlineError extends PodvisorError {
  constructor(message: string) {
    super('PODVISOR_DEADLINE', 503, message);
    this.name = 'DeadlineError';
  }
}

/**
 * A walk that could not read `denied` entries under `dir` for lack of permission: its sums are an undercount, so the
 * measurement fails rather than publish them.
 */
export class DiskPermissionError extends PodvisorError {
  readonly dir: string;
  readonly denied: number;
  readonly deniedPath: string | undefined;
  constructor(dir: string, denied: number, deniedPath?: string) {
    super(
      'PODVISOR_DISK_PERMISSION',
      500,
      `permission denied reading ${denied} ${denied === 1 ? 'entry' : 'entries'} under ${dir}: podvisor needs CAP_DAC_READ_SEARCH (see deploy/README.md)`,
    );
    this.name = 'DiskPermissionError';
    this.dir = dir;
    this.denied = denied;
    this.deniedPath = deniedPath;
  }
}

/**
 * A runtime's response that does not have the shape its API documents: `<what>: <why>`, naming the first bad field.
 * The runtime's client wraps it in its own error, which adds the endpoint and the call.
 */
export class ResponseShapeError extends PodvisorError {
  constructor(message: string) {
    super('PODVISOR_RESPONSE_SHAPE', 502, message);
    this.name = 'ResponseShapeError';
  }
}

/** A Docker Engine API call that failed; `httpStatus` is set when the daemon answered with an error status. */
export class DockerError extends PodvisorError {
  readonly httpStatus: number | undefined;
  constructor(message: string, options: { cause?: unknown; httpStatus?: number } = {}) {
    super('PODVISOR_RUNTIME_DOCKER', 502, message, { cause: options.cause });
    this.name = 'DockerError';
    this.httpStatus = options.httpStatus;
  }
}

/** A containerd call failed (transport, status, deadline, cancellation or an unexpected response shape). */
export class ContainerdError extends PodvisorError {
  /** The gRPC status code, when the server or grpc-js gave one. */
  readonly grpcCode: number | undefined;
  constructor(message: string, grpcCode: number | undefined, cause: unknown) {
    super('PODVISOR_RUNTIME_CONTAINERD', 502, message, { cause });
    this.name = 'ContainerdError';
    this.grpcCode = grpcCode;
  }
}

/** A CRI-O call that failed: unreachable, timed out, an HTTP error or a body that is not CRI-O's. */
export class CrioError extends PodvisorError {
  /** The HTTP status, when CRI-O answered with one. */
  readonly httpStatus: number | undefined;
  constructor(message: string, options?: { cause?: unknown; httpStatus?: number }) {
    super('PODVISOR_RUNTIME_CRIO', 502, message, options);
    this.name = 'CrioError';
    this.httpStatus = options?.httpStatus;
  }
}

/** A kept-alive socket was closed by the peer before it answered: safe to retry an idempotent request once. */
export class StaleSocketError extends PodvisorError {
  constructor(cause: unknown) {
    super('PODVISOR_RUNTIME_STALE_SOCKET', 502, 'kept-alive socket was closed by the peer', { cause });
    this.name = 'StaleSocketError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** A PodResources call that failed: transport, gRPC status, deadline or cancellation. */
export class PodResourcesError extends PodvisorError {
  /** The gRPC status code, when the server or grpc-js gave one (8 RESOURCE_EXHAUSTED: the kubelet's rate limit). */
  readonly grpcCode: number | undefined;
  constructor(message: string, grpcCode: number | undefined, cause?: unknown) {
    super('PODVISOR_POD_RESOURCES', 502, message, { cause });
    this.name = 'PodResourcesError';
    this.grpcCode = grpcCode;
  }
}
