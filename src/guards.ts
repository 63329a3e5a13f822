/**
 * Small type guards for data from outside the process (JSON bodies, protobuf messages decoded by proto-loader,
 * structured-cloned worker messages, thrown values), and the container-id rule every runtime shares. Pure; imports
 * nothing of ours.
 */

/** A plain object as JSON.parse, proto-loader or a structured clone make them: not null, not an array, not a Buffer or other class instance. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A plain object whose every value is a string (`map<string, string>`, Docker's and CRI-O's label maps). */
export function isStringRecord(v: unknown): v is Record<string, string> {
  return isRecord(v) && Object.values(v).every((x) => typeof x === 'string');
}

export function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** The `code` of a thrown value (`ENOENT`, `PODVISOR_PARSE`), when it has a string one. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

/**
 * A container id as Docker, containerd (CRI) and CRI-O make them: 64 lowercase hex digits. The source of the rule, for
 * the regular expressions that find an id inside a cgroup name (`cri-containerd-<id>.scope`).
 */
export const CONTAINER_ID_PATTERN = '[0-9a-f]{64}';

const CONTAINER_ID = new RegExp(`^${CONTAINER_ID_PATTERN}$`);

export function isContainerId(id: string): boolean {
  return CONTAINER_ID.test(id);
}
