import { ParseError } from '../errors.js';

/**
 * Parses `/proc/<pid>/cgroup` (cgroups(7)): one `hierarchy-ID:controller-list:cgroup-path` line per hierarchy, `0::path`
 * for cgroup v2. Returns each distinct path, in file order. A path outside the reader's cgroup namespace starts with
 * `/..` segments (cgroup_namespaces(7)); it is returned as the kernel prints it. Malformed lines throw ParseError.
 */
export function parsePidCgroup(text: string, file: string): string[] {
  const paths: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.trim() === '') continue;
    const first = line.indexOf(':');
    const second = first < 0 ? -1 : line.indexOf(':', first + 1);
    const path = second < 0 ? '' : line.slice(second + 1);
    if (!/^\d+$/.test(line.slice(0, first)) || !path.startsWith('/')) throw new ParseError(file, `line ${i + 1}: "${line}" is not hierarchy:controllers:path`);
    if (!paths.includes(path)) paths.push(path);
  }
  return paths;
}
