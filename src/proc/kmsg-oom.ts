/**
 * OOM kills as the kernel logs them to /dev/kmsg: the fallback for kernels without the memory cgroup's own `oom_kill`
 * counter (cgroup v2 memory.events, v1 memory.oom_control; kernel >= 4.13), as cAdvisor's utils/oomparser does. Pure:
 * host/kmsg.ts reads the records and feeds them here.
 */

/**
 * One /dev/kmsg record (Documentation/ABI/testing/dev-kmsg): `<prio>,<seq>,<timestamp_us>,<flags>[,...];<message>\n`,
 * then optional continuation lines starting with a space (` SUBSYSTEM=...`), which are ignored. The kernel escapes
 * non-printable bytes and `\` in the message as `\xNN`; they are decoded here. `undefined` for anything else.
 */
export function parseKmsgRecord(record: string): { seq: number; message: string } | undefined {
  const end = record.indexOf('\n');
  const line = end === -1 ? record : record.slice(0, end);
  const semi = line.indexOf(';');
  if (semi === -1) return undefined;
  const [prio, seq, timestamp, flags] = line.slice(0, semi).split(',');
  if (!isDigits(prio) || !isDigits(seq) || !isDigits(timestamp) || flags === undefined || flags === '') return undefined;
  const n = Number(seq);
  if (!Number.isSafeInteger(n)) return undefined;
  return { seq: n, message: unescapeKmsg(line.slice(semi + 1)) };
}

function isDigits(s: string | undefined): s is string {
  return s !== undefined && /^\d+$/.test(s);
}

const ESCAPE = /\\x([0-9a-fA-F]{2})/;

/** `\xNN` → the byte NN; the bytes are read as UTF-8 (a cgroup name with non-ASCII characters comes out whole). */
function unescapeKmsg(text: string): string {
  if (!ESCAPE.test(text)) return text;
  const encoder = new TextEncoder();
  const bytes: number[] = [];
  // split() with a capturing group: even indexes are plain text, odd ones the two hex digits of an escape.
  text.split(new RegExp(ESCAPE.source, 'g')).forEach((part, i) => {
    if (i % 2 === 1) bytes.push(parseInt(part, 16));
    else bytes.push(...encoder.encode(part));
  });
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** The first line of an OOM report, on every kernel: `<comm> invoked oom-killer: gfp_mask=..., order=0, oom_score_adj=0`. */
const INVOKED = 'invoked oom-killer:';
/** Kernel >= 4.19: `oom-kill:constraint=...,nodemask=...,cpuset=...,mems_allowed=...,oom_memcg=...|global_oom,task_memcg=...,task=...,pid=...,uid=...`. */
const SUMMARY = 'oom-kill:constraint=';
/** The value of `task_memcg=`, up to the next `,key=` or the end (a path may itself hold a comma). */
const TASK_MEMCG = /(?:^|,)task_memcg=(.*?)(?=,[a-z_]+=|$)/;
/** Older kernels, within a memory cgroup OOM: `Task in <task's memcg> killed as a result of limit of <memcg at its limit>`. */
const TASK_IN = /Task in (.+?) killed as a result of limit of /;
/**
 * The kill itself: `Killed process <pid> (<comm>) total-vm:...` (older kernels, after `... Kill process <pid> (<comm>)
 * score <n> or sacrifice child`), or `Memory cgroup out of memory: Killed process ...` / `Out of memory: Killed process
 * ...` (newer ones, after the `oom-kill:` summary). `Kill process` alone is not the kill: the victim may be a child.
 */
const KILLED = /Killed process \d+ \(/;

/**
 * Follows the messages of /dev/kmsg in order and tells, once per OOM kill, the memory cgroup of the killed task.
 * - Kernel >= 4.19: the `oom-kill:` summary names it (`task_memcg=`), global OOMs included; the `... Killed process`
 *   line after it belongs to the same kill and is not counted again.
 * - Older kernels: `invoked oom-killer:` opens a report, `Task in <path> killed ...` (memory cgroup OOMs only) names the
 *   cgroup, `Killed process` closes it; with no `Task in` line (a global OOM) the kill counts for `/`.
 * A `Killed process` outside a report (its first lines lost to the ring buffer) is not counted: its cgroup is unknown.
 */
export class OomKillParser {
  /** The cgroup of the report under way, or undefined between reports. */
  #pending: string | undefined;

  /** Feeds the next message; returns the killed task's cgroup path (`/` for the root) if it completes a kill. */
  push(message: string): string | undefined {
    if (message.includes(INVOKED)) {
      this.#pending = '/';
      return undefined;
    }
    if (message.includes(SUMMARY)) {
      const memcg = TASK_MEMCG.exec(message.slice(message.indexOf(SUMMARY) + 'oom-kill:'.length))?.[1];
      const path = memcg !== undefined && memcg !== '' ? cleanPath(memcg) : (this.#pending ?? '/');
      this.#pending = undefined;
      return path;
    }
    const taskIn = TASK_IN.exec(message);
    if (taskIn?.[1] !== undefined) {
      this.#pending = cleanPath(taskIn[1]);
      return undefined;
    }
    if (this.#pending !== undefined && KILLED.test(message)) {
      const path = this.#pending;
      this.#pending = undefined;
      return path;
    }
    return undefined;
  }
}

/** `/a//b/` → `/a/b`, `a` → `/a`, `` → `/`: the form cgroup paths have everywhere else in podvisor. */
function cleanPath(path: string): string {
  return (
    '/' +
    path
      .split('/')
      .filter((s) => s !== '')
      .join('/')
  );
}
