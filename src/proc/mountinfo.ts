import { ParseError } from '../errors.js';

/**
 * /proc/<pid>/mountinfo (Documentation/filesystems/proc.rst §3.5):
 * `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
 * mount ID, parent ID, major:minor, root, mount point, mount options, optional fields, `-`, fs type, source,
 * super options. Paths escape space, tab, newline and backslash as octal (`\040`, `\011`, `\012`, `\134`).
 */
export interface MountinfoEntry {
  mountId: number;
  parentId: number;
  /** `major:minor` of the filesystem (st_dev of files on it). */
  majorMinor: string;
  root: string;
  mountPoint: string;
  options: string;
  fsType: string;
  source: string;
  superOptions: string;
}

function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses mountinfo text; a line without the ` - ` separator or with too few fields throws ParseError. */
export function parseMountinfo(text: string, file = '/proc/self/mountinfo'): MountinfoEntry[] {
  const result: MountinfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    const [id, parent, majorMinor, root, mountPoint, options] = fields;
    const [fsType, source, superOptions] = sep < 0 ? [] : fields.slice(sep + 1);
    if (
      id === undefined ||
      parent === undefined ||
      majorMinor === undefined ||
      !/^\d+:\d+$/.test(majorMinor) ||
      root === undefined ||
      mountPoint === undefined ||
      options === undefined ||
      fsType === undefined ||
      source === undefined ||
      superOptions === undefined ||
      !/^\d+$/.test(id) ||
      !/^\d+$/.test(parent)
    ) {
      throw new ParseError(file, `malformed mountinfo line "${line}"`);
    }
    result.push({
      mountId: Number(id),
      parentId: Number(parent),
      majorMinor,
      root: unescapeOctal(root),
      mountPoint: unescapeOctal(mountPoint),
      options,
      fsType,
      source: unescapeOctal(source),
      superOptions,
    });
  }
  return result;
}
