import t from 'tap';
import { ParseError } from '../../src/errors.js';
import { isIgnoredInterface, parseNetDev } from '../../src/proc/net-dev.js';

const HEADER = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
`;

t.test('this machine: lo skipped, ifb* and eth0 kept, sorted', async (t) => {
  const text = `${HEADER}    lo:   32970      63    0    0    0     0          0         0    32970      63    0    0    0     0       0          0
  ifb0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  ifb1:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 286017885    7356    0    0    0     0          0         0   674402    4771    0    0    0     0       0          0
`;
  const got = parseNetDev(text, '/proc/1/net/dev');
  t.same(
    got.map((i) => i.name),
    ['eth0', 'ifb0', 'ifb1'],
  );
  t.same(got[0], {
    name: 'eth0',
    rxBytes: 286017885,
    rxPackets: 7356,
    rxErrors: 0,
    rxDropped: 0,
    txBytes: 674402,
    txPackets: 4771,
    txErrors: 0,
    txDropped: 0,
  });
});

t.test('a Kubernetes node: docker0 and veth skipped, cali/flannel/cni0 kept, long names and counters', async (t) => {
  // Names longer than six columns start the line; an old kernel's `%6s:%8llu` glues wide counters to the colon.
  const text = `${HEADER}flannel.1: 98123456  712345    0    0    0     0          0         0 87654321  654321    0   21    0     0       0          0
  eth0:18446744073709 912345678   12   34    0     0          0      1234 9876543210987 876543210    5    6    0     0       0          0
vethd2f3a1b:  123456     789    0    0    0     0          0         0   654321     987    0    0    0     0       0          0
docker0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
cali8d6e2b1f0a3: 5566778    3344    1    2    0     0          0         0  1122334    5566    3    4    0     0       0          0
  cni0: 4444444    5555    0    7    0     0          0         0  3333333    2222    0    0    0     0       0          0
    lo: 7272727    8181    0    0    0     0          0         0  7272727    8181    0    0    0     0       0          0
 tunl0:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
`;
  const got = parseNetDev(text, 'net/dev');
  t.same(
    got.map((i) => i.name),
    ['cali8d6e2b1f0a3', 'cni0', 'eth0', 'flannel.1', 'tunl0'],
  );
  const eth0 = got.find((i) => i.name === 'eth0');
  t.same(eth0, {
    name: 'eth0',
    rxBytes: 18446744073709,
    rxPackets: 912345678,
    rxErrors: 12,
    rxDropped: 34,
    txBytes: 9876543210987,
    txPackets: 876543210,
    txErrors: 5,
    txDropped: 6,
  });
  t.same(
    got.find((i) => i.name === 'cali8d6e2b1f0a3'),
    {
      name: 'cali8d6e2b1f0a3',
      rxBytes: 5566778,
      rxPackets: 3344,
      rxErrors: 1,
      rxDropped: 2,
      txBytes: 1122334,
      txPackets: 5566,
      txErrors: 3,
      txDropped: 4,
    },
  );
  t.equal(got.find((i) => i.name === 'flannel.1')?.txDropped, 21);
});

t.test('a container netns with only lo and eth0; no interfaces at all', async (t) => {
  const text = `${HEADER}  eth0:    1426      17    0    0    0     0          0         0      936      12    0    0    0     0       0          0
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
`;
  t.same(
    parseNetDev(text, 'f').map((i) => i.name),
    ['eth0'],
  );
  t.same(parseNetDev(HEADER, 'f'), []);
  t.same(parseNetDev(HEADER.trimEnd(), 'f'), []);
});

t.test('ignored prefixes match cAdvisor: lo, veth, docker, nerdctl, any case', async (t) => {
  for (const name of ['lo', 'LO', 'loopback0', 'veth1234', 'VETHabc', 'docker0', 'docker_gwbridge', 'nerdctl0', 'Nerdctl1']) {
    t.ok(isIgnoredInterface(name), name);
  }
  for (const name of ['eth0', 'ens5', 'cali123', 'flannel.1', 'cni0', 'br-1234', 'wlan0', 'bond0', 'xlo']) {
    t.notOk(isIgnoredInterface(name), name);
  }
});

t.test('malformed input throws ParseError naming the file', async (t) => {
  const row = '  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n';
  t.throws(() => parseNetDev('', 'nd'), ParseError);
  t.throws(() => parseNetDev(row, 'nd'), ParseError, 'no header');
  t.throws(() => parseNetDev(`${HEADER}  eth0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n`, 'nd'), ParseError, 'no colon');
  t.throws(() => parseNetDev(`${HEADER}: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n`, 'nd'), ParseError, 'no name');
  t.throws(() => parseNetDev(`${HEADER}  eth0: 1 2 3 4 5 6 7 8\n`, 'nd'), /eth0 has 8 counters, expected 16/, 'short row');
  t.throws(() => parseNetDev(`${HEADER}  eth0: 1 2 x 4 5 6 7 8 9 10 11 12 13 14 15 16\n`, 'nd'), /non-numeric counter "x"/);
  t.throws(() => parseNetDev(`${HEADER}  eth0: 1 2 -3 4 5 6 7 8 9 10 11 12 13 14 15 16\n`, 'nd'), ParseError, 'negative');
  t.throws(() => parseNetDev(`${HEADER}    lo: 1 2\n`, 'nd'), ParseError, 'ignored interfaces are still validated');
  t.throws(() => parseNetDev(`${HEADER}${row}`.replace('eth0: 1', 'eth0: 1.5'), '/proc/7/net/dev'), {
    name: 'ParseError',
    file: '/proc/7/net/dev',
    message: /^\/proc\/7\/net\/dev: line 3:/,
  });
});
