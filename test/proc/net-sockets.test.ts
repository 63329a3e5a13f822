import t from 'tap';
import { ParseError } from '../../src/errors.js';
import { TCP_STATES, UDP_STATES, parseTcpStates, parseUdpStats } from '../../src/proc/net-sockets.js';

// Headers as this machine's kernel (6.18) prints them, trailing padding included.
const TCP_HEADER =
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     \n';
const TCP6_HEADER =
  '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
const UDP_HEADER = '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            \n';
const UDP6_HEADER =
  '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n';

/** A full established IPv4 socket row from this machine, with its state replaced. */
function tcpRow(slot: number, st: string): string {
  return `${String(slot).padStart(4)}: 0100007F:A9B1 0100007F:811A ${st} 00000000:00000000 00:00000000 00000000     0        0 1394150 1 00000000c2b7a80b 20 0 0 10 -1\n`;
}

t.test("label values are cAdvisor's, in its order", async (t) => {
  t.same(TCP_STATES, ['established', 'synsent', 'synrecv', 'finwait1', 'finwait2', 'timewait', 'close', 'closewait', 'lastack', 'listen', 'closing']);
  t.same(UDP_STATES, ['listen', 'dropped', 'rxqueued', 'txqueued']);
});

t.test("this machine's /proc/self/net/tcp: two listeners, six established, one TIME_WAIT", async (t) => {
  const text = `${TCP_HEADER}   0: 0100007F:A9B1 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1394138 1 00000000237297e3 100 0 0 10 0                   
   1: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 575 1 000000009c300972 100 0 0 10 0                       
   2: 0100007F:A9B1 0100007F:811A 01 00000000:00000000 00:00000000 00000000     0        0 1394150 1 00000000c2b7a80b 20 0 0 10 -1                   
   3: 0100007F:A9B1 0100007F:8118 01 00000000:00000000 00:00000000 00000000     0        0 1394149 1 000000007ab62d1e 20 0 0 10 -1                   
   4: 0100007F:A9B1 0100007F:8124 01 00000000:00000000 00:00000000 00000000     0        0 1394151 1 000000008c9127b3 20 0 0 10 -1                   
   5: 0100007F:8116 0100007F:A9B1 06 00000000:00000000 03:00001752 00000000     0        0 0 3 00000000dc0abb03                                      
   6: 0100007F:8118 0100007F:A9B1 01 00000000:00000000 00:00000000 00000000     0        0 1394141 2 00000000de576ac2 20 0 0 10 -1                   
   7: 0100007F:811A 0100007F:A9B1 01 00000000:00000000 00:00000000 00000000     0        0 1394142 2 000000002c470489 20 0 0 10 -1                   
   8: 0100007F:8124 0100007F:A9B1 01 00000000:00000000 00:00000000 00000000     0        0 1394143 2 000000000adaf2df 20 0 0 10 -1                   
`;
  t.same(parseTcpStates(text, '/proc/self/net/tcp'), {
    established: 6,
    synsent: 0,
    synrecv: 0,
    finwait1: 0,
    finwait2: 0,
    timewait: 1,
    close: 0,
    closewait: 0,
    lastack: 0,
    listen: 2,
    closing: 0,
  });
});

t.test("this machine's /proc/self/net/tcp6: a listener on ::1 and both ends of a connection", async (t) => {
  const text = `${TCP6_HEADER}   0: 00000000000000000000000001000000:8549 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1394139 1 000000009faaa2db 100 0 0 10 0
   1: 00000000000000000000000001000000:B518 00000000000000000000000001000000:8549 01 00000000:00000000 00:00000000 00000000     0        0 1394144 2 000000001d0d143c 20 0 0 10 -1
   2: 00000000000000000000000001000000:8549 00000000000000000000000001000000:B518 01 00000000:00000000 00:00000000 00000000     0        0 1394148 1 000000007376a768 20 0 0 10 -1
`;
  const states = parseTcpStates(text, '/proc/self/net/tcp6');
  t.equal(states.listen, 1);
  t.equal(states.established, 2);
  t.equal(
    TCP_STATES.reduce((sum, s) => sum + states[s], 0),
    3,
  );
});

t.test('each hex state 01..0B counts under its own label (state n appears n times)', async (t) => {
  let text = TCP_HEADER;
  let slot = 0;
  for (let n = 1; n <= 11; n++) {
    const st = n.toString(16).toUpperCase().padStart(2, '0');
    for (let k = 0; k < n; k++) text += tcpRow(slot++, st);
  }
  const states = parseTcpStates(text, 'tcp');
  t.same(
    TCP_STATES.map((s) => states[s]),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
  );
});

t.test('a request socket (SYN_RECV, 12 fields) and a header-only file', async (t) => {
  const synRecv = '  12: 0A000005:01BB 0A000009:C5D2 03 00000000:00000000 02:0000009F 00000002     0        0 0 1 00000000a4b1c2d3\n';
  t.equal(parseTcpStates(`${TCP_HEADER}${synRecv}`, 'tcp').synrecv, 1);
  t.same(Object.values(parseTcpStates(TCP_HEADER, 'tcp')), new Array<number>(11).fill(0));
});

t.test('malformed TCP input throws ParseError', async (t) => {
  for (const text of [
    '',
    '\n',
    tcpRow(0, '01'),
    `${TCP_HEADER}${tcpRow(0, '00')}`,
    `${TCP_HEADER}${tcpRow(0, '0C')}`,
    `${TCP_HEADER}${tcpRow(0, '0a')}`,
    `${TCP_HEADER}${tcpRow(0, '1')}`,
    `${TCP_HEADER}${tcpRow(0, 'ZZ')}`,
    `${TCP_HEADER}   0: 0100007F:A9B1 0100007F:811A 01 00000000:00000000 00:00000000 00000000     0        0 1394150 1\n`,
    `${TCP_HEADER}   0 0100007F:A9B1 0100007F:811A 01 00000000:00000000 00:00000000 00000000     0        0 1394150 1 00000000c2b7a80b\n`,
    `${TCP_HEADER}   0: 0100007F:A9B 0100007F:811A 01 00000000:00000000 00:00000000 00000000     0        0 1394150 1 00000000c2b7a80b\n`,
    `${TCP_HEADER}   0: 0100007F:A9B1 127.0.0.1:80 01 00000000:00000000 00:00000000 00000000     0        0 1394150 1 00000000c2b7a80b\n`,
  ]) {
    t.throws(() => parseTcpStates(text, 'tcp'), ParseError, JSON.stringify(text));
  }
  t.throws(() => parseTcpStates(`${TCP_HEADER}${tcpRow(0, '01')}${tcpRow(1, '0D')}`, '/proc/42/net/tcp'), {
    message: /^\/proc\/42\/net\/tcp: line 3: unknown TCP state "0D"/,
  });
});

t.test("this machine's /proc/self/net/udp plus two busy sockets: cAdvisor's listen and dropped, the kernel's queues", async (t) => {
  // The first two rows are this machine's (an unconnected 07 and a connected 01 socket); the last two are a DHCP
  // client with 0xA00 bytes waiting to be read and 17 drops, and a connected DNS client with 0x340 bytes unsent.
  const text = `${UDP_HEADER} 5327: 0100007F:DF22 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1394145 2 00000000cb4dd1cc 0       
 7975: 0100007F:E97A 0100007F:DF22 01 00000000:00000000 00:00000000 00000000     0        0 1394152 2 0000000084539107 0       
   68: 00000000:0044 00000000:0000 07 00000000:00000A00 00:00000000 00000000     0        0 23456 2 00000000aabbccdd 17
 9012: 0A000005:D431 08080808:0035 01 00000340:00000000 00:00000000 00000000  1000        0 34567 2 0000000011223344 0
`;
  // listen counts every row whatever its st, as cAdvisor; rxQueued sums the kernel's rx_queue (after the colon) and
  // txQueued its tx_queue (before it), where cAdvisor's Sscanf("%X:%X", &rx, &tx) swaps them.
  t.same(parseUdpStats(text, '/proc/self/net/udp'), { listen: 4, dropped: 17, rxQueued: 0xa00, txQueued: 0x340 });
});

t.test("this machine's /proc/self/net/udp6 and a header-only file", async (t) => {
  const text = `${UDP6_HEADER} 5442: 00000000000000000000000001000000:9F95 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1394146 2 000000004bf63ee3 0
 5443: 00000000000000000000000000000000:14E9 00000000000000000000000000000000:0000 07 00000000:00000300 00:00000000 00000000   101        0 45678 2 000000005cf74ff4 3
`;
  t.same(parseUdpStats(text, '/proc/self/net/udp6'), { listen: 2, dropped: 3, rxQueued: 0x300, txQueued: 0 });
  t.same(parseUdpStats(UDP_HEADER, 'udp'), { listen: 0, dropped: 0, rxQueued: 0, txQueued: 0 });
});

t.test('malformed UDP input throws ParseError', async (t) => {
  const row = (queues: string, drops: string, st = '07'): string =>
    `${UDP_HEADER} 5327: 0100007F:DF22 00000000:0000 ${st} ${queues} 00:00000000 00000000     0        0 1394145 2 00000000cb4dd1cc ${drops}\n`;
  t.same(parseUdpStats(row('00000001:00000002', '3'), 'udp'), { listen: 1, dropped: 3, rxQueued: 2, txQueued: 1 });
  for (const text of [
    '',
    ' 5327: 0100007F:DF22 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1394145 2 00000000cb4dd1cc 0\n',
    row('00000000:00000000', ''),
    row('00000000:00000000', '0 0'),
    row('00000000:00000000', '-1'),
    row('00000000:00000000', 'x'),
    row('00000000', '0'),
    row('0000000a:00000000', '0'),
    row('00000000:0000000G', '0'),
    row('00000000:00000000', '0', '7'),
  ]) {
    t.throws(() => parseUdpStats(text, 'udp'), ParseError, JSON.stringify(text));
  }
  t.throws(() => parseUdpStats(row('00000000:00000000', ''), '/proc/7/net/udp'), { message: /^\/proc\/7\/net\/udp: line 2: 12 fields, expected 13$/ });
});
