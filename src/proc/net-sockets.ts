import { ParseError } from '../errors.js';
import { parseDecimal } from './decimal.js';

/**
 * The `tcp_state` label values of `container_network_tcp_usage_total` and `container_network_tcp6_usage_total`, in the
 * order cAdvisor emits them (lib/metrics/prometheus.go). The order is also the kernel's (include/net/tcp_states.h):
 * the state printed as `st` = n (01..0B) is `TCP_STATES[n - 1]`.
 */
export const TCP_STATES = [
  'established',
  'synsent',
  'synrecv',
  'finwait1',
  'finwait2',
  'timewait',
  'close',
  'closewait',
  'lastack',
  'listen',
  'closing',
] as const;

export type TcpState = (typeof TCP_STATES)[number];

/** The number of sockets in each state, keyed by the `tcp_state` label value. */
export type TcpStates = Record<TcpState, number>;

/** The `udp_state` label values of `container_network_udp_usage_total` and `..._udp6_...`, in cAdvisor's order. */
export const UDP_STATES = ['listen', 'dropped', 'rxqueued', 'txqueued'] as const;

export type UdpState = (typeof UDP_STATES)[number];

/** The four sums behind the `udp_state` label values (`rxQueued` → `rxqueued`, `txQueued` → `txqueued`). */
export interface UdpStats {
  listen: number;
  dropped: number;
  rxQueued: number;
  txQueued: number;
}

/** `st`: the kernel's `%02X`. cAdvisor looks it up as a string in a map keyed "01".."0B", so only upper case matches. */
const STATE = /^[0-9A-F]{2}$/;
/** `sl`: the bucket or row number, `%4d:` / `%5d:`. */
const SLOT = /^\d+:$/;
/** An address: `%08X:%04X` (IPv4) or `%08X%08X%08X%08X:%04X` (IPv6). */
const ADDRESS = /^(?:[0-9A-F]{8}|[0-9A-F]{32}):[0-9A-F]{4}$/;
/** `tx_queue:rx_queue`, `%08X:%08X`. */
const QUEUES = /^([0-9A-F]{1,16}):([0-9A-F]{1,16})$/;

/**
 * A TCP row has at least 12 fields: a full socket prints more (inode refcount pointer rto ato quick cwnd ssthresh),
 * a TIME_WAIT or request socket exactly 12 (net/ipv4/tcp_ipv4.c get_timewait4_sock, get_openreq4).
 */
const TCP_MIN_FIELDS = 12;
/** A UDP row has exactly 13 fields, the last being `drops` (net/ipv4/udp.c udp4_format_sock, ipv6 ip6_dgram_sock_seq_show). */
const UDP_FIELDS = 13;

function newTcpStates(): TcpStates {
  return { established: 0, synsent: 0, synrecv: 0, finwait1: 0, finwait2: 0, timewait: 0, close: 0, closewait: 0, lastack: 0, listen: 0, closing: 0 };
}

/**
 * Splits the text into rows after checking the header line (`  sl  local_address ...`), skipping blank lines; each row
 * comes with its 1-based line number and its fields, whose first three are checked to be `sl local rem`.
 */
function rows(text: string, file: string): { line: number; fields: string[] }[] {
  const lines = text.split('\n');
  const header = (lines[0] ?? '').trim().split(/\s+/);
  if (header[0] !== 'sl' || header[1] !== 'local_address') throw new ParseError(file, 'line 1: expected the "sl local_address ..." header');
  const result: { line: number; fields: string[] }[] = [];
  for (let i = 1; i < lines.length; i++) {
    const trimmed = (lines[i] ?? '').trim();
    if (trimmed === '') continue;
    const fields = trimmed.split(/\s+/);
    const [slot, local, remote] = fields;
    if (slot === undefined || !SLOT.test(slot) || local === undefined || !ADDRESS.test(local) || remote === undefined || !ADDRESS.test(remote)) {
      throw new ParseError(file, `line ${i + 1}: expected "<sl>: <local_address> <rem_address> <st> ..."`);
    }
    result.push({ line: i + 1, fields });
  }
  return result;
}

/**
 * Counts the sockets of `/proc/<pid>/net/tcp` or `/proc/<pid>/net/tcp6` per state, as cAdvisor's scanTCPStats
 * (lib/container/libcontainer/handler.go) does: the header line, then one row per socket whose 4th field `st` is the
 * state in hex, 01 (ESTABLISHED) to 0B (CLOSING). The kernel prints request sockets as 03 (SYN_RECV) and TIME_WAIT
 * sockets by their substate (05 or 06), so no other value appears. Throws ParseError on a missing header, a short or
 * malformed row, or a state outside 01..0B (where cAdvisor fails the whole file).
 */
export function parseTcpStates(text: string, file: string): TcpStates {
  const states = newTcpStates();
  for (const { line, fields } of rows(text, file)) {
    if (fields.length < TCP_MIN_FIELDS) throw new ParseError(file, `line ${line}: ${fields.length} fields, expected at least ${TCP_MIN_FIELDS}`);
    const st = fields[3] ?? '';
    const state = STATE.test(st) ? TCP_STATES[parseInt(st, 16) - 1] : undefined;
    if (state === undefined) throw new ParseError(file, `line ${line}: unknown TCP state "${st}"`);
    states[state]++;
  }
  return states;
}

/**
 * Sums `/proc/<pid>/net/udp` or `/proc/<pid>/net/udp6` with the semantics of cAdvisor's scanUDPStats
 * (lib/container/libcontainer/handler.go), which are not what the names suggest:
 * - `listen` counts every socket row, whatever its `st` (UDP sockets show 07 unconnected or 01 connected, never 0A);
 * - `dropped` sums the 13th field, `drops` (decimal);
 * - `rxQueued` sums the receive queue and `txQueued` the send queue. The kernel prints the 5th field as
 *   `tx_queue:rx_queue`; cAdvisor scans it as `%X:%X` into (rx, tx), so its `rxqueued` carries the kernel's tx_queue
 *   and its `txqueued` the rx_queue. podvisor reports what the label names say (README, "What is exported").
 * Where cAdvisor silently skips a row that is not 13 fields or whose queues or drops do not parse (still counting it in
 * `listen`), this throws ParseError, as it does on a missing header.
 */
export function parseUdpStats(text: string, file: string): UdpStats {
  const stats: UdpStats = { listen: 0, dropped: 0, rxQueued: 0, txQueued: 0 };
  for (const { line, fields } of rows(text, file)) {
    if (fields.length !== UDP_FIELDS) throw new ParseError(file, `line ${line}: ${fields.length} fields, expected ${UDP_FIELDS}`);
    const st = fields[3] ?? '';
    const queues = QUEUES.exec(fields[4] ?? '');
    const drops = parseDecimal(fields[12]);
    if (!STATE.test(st) || queues === null || drops === undefined) {
      throw new ParseError(file, `line ${line}: expected "<st> <tx_queue>:<rx_queue> ... <drops>" in hex, hex:hex and decimal`);
    }
    stats.listen++;
    stats.dropped += drops;
    stats.txQueued += parseInt(queues[1] ?? '', 16);
    stats.rxQueued += parseInt(queues[2] ?? '', 16);
  }
  return stats;
}
