import { readFileSync } from 'node:fs';

function readVersion(): string {
  try {
    const pkg: unknown = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    if (typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string') return pkg.version;
  } catch {
    // fall through: a build without package.json next to it
  }
  return 'unknown';
}

/** podvisor's version, from package.json (one directory above both src/ and dist/). */
export const VERSION = readVersion();
