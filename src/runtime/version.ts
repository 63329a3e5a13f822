/**
 * Lenient runtime version parsing. Runtimes report versions like `20.10.24+dfsg1`, `17.03.0-ce`,
 * `v1.7.0-beta.3`, `dev` or ''. A strict semver parse would reject many of them, and cAdvisor's strict parse
 * disables its Docker handler (google/cadvisor#3830, #3119). We read only the leading `major.minor[.patch]` and ignore
 * the rest. The result is informational (podvisor_runtime_info): it never gates registration.
 */

/** Anchored at the start: `v` is optional, the patch is optional, anything after it is ignored. */
const VERSION_RE = /^v?(\d+)\.(\d+)(?:\.(\d+))?/;

/** `007` → `7`, `0` → `0`; done on the string so that long components stay exact. */
function normalise(component: string): string {
  return component.replace(/^0+(?=\d)/, '');
}

/**
 * `'major.minor.patch'` or `'major.minor'` from the start of `raw` (surrounding whitespace trimmed, leading zeros
 * dropped: `17.03.0-ce` → `17.3.0`), else `'unknown'` (`dev`, `library-import`, `1.mga9`, `''`). Never throws.
 */
export function parseVersion(raw: string): string {
  if (typeof raw !== 'string') return 'unknown';
  const m = VERSION_RE.exec(raw.trim());
  if (m === null) return 'unknown';
  const [, major, minor, patch] = m;
  /* c8 ignore next -- groups 1 and 2 always take part in a match; this only narrows the types */
  if (major === undefined || minor === undefined) return 'unknown';
  const parts = [major, minor];
  if (patch !== undefined) parts.push(patch);
  return parts.map(normalise).join('.');
}
