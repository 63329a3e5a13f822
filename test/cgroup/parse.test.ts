import t, { type Test } from 'tap';
import {
  MAX,
  parseBlkioDevices,
  parseCpuMax,
  parseFlatKeyed,
  parseInt64,
  parseIoStatAll,
  parseNestedKeyed,
  parsePerCpu,
  parsePressure,
  parseUint,
  parseUintOrMax,
} from '../../src/cgroup/parse.js';

// Inline inputs are copied from real kernels: cgroup v1 files from this machine (6.18, hybrid layout) and
// cgroup v2 files from a 6.x systemd host. Where a test says "garbage", the text is what a broken file looks like.

const F = '/sys/fs/cgroup/x/file';

/** `fn` throws a ParseError naming the file, with a message matching `message`. */
function throwsParse(t: Test, fn: () => unknown, message: RegExp): void {
  t.throws(fn, { name: 'ParseError', code: 'PODVISOR_PARSE', file: F, message });
}

t.test('single values', async (t) => {
  t.equal(parseUint('93856033445\n', F), 93856033445, 'cpuacct.usage');
  t.equal(parseUint('9223372036854771712\n', F), 9223372036854771712, 'v1 unlimited limit_in_bytes');
  t.equal(parseUint('-4096\n', F), 0, 'negative (kernel bug) clamps to 0');
  t.equal(parseInt64('-1\n', F), -1, 'cpu.cfs_quota_us unlimited stays -1');
  t.equal(parseInt64('50000\n', F), 50000);
  t.equal(parseUintOrMax('max\n', F), MAX, 'memory.max');
  t.equal(parseUintOrMax('268435456\n', F), 268435456);
  throwsParse(t, () => parseUint('max\n', F), /unsigned integer, got "max"/);
  throwsParse(t, () => parseUint('', F), /one value/);
  throwsParse(t, () => parseUint('12 34\n', F), /one value/);
  throwsParse(t, () => parseUint('1.5\n', F), /unsigned integer/);
  throwsParse(t, () => parseInt64('-\n', F), /integer/);
  throwsParse(t, () => parseUintOrMax('unlimited\n', F), /unsigned integer/);
});

t.test('flat keyed: v1 cpu.stat, cpuacct.stat, memory.stat; v2 cpu.stat', async (t) => {
  const v1CpuStat = 'nr_periods 0\nnr_throttled 0\nthrottled_time 0\nnr_bursts 0\nburst_time 0\n';
  t.strictSame(
    [...parseFlatKeyed(v1CpuStat, F)],
    [
      ['nr_periods', 0],
      ['nr_throttled', 0],
      ['throttled_time', 0],
      ['nr_bursts', 0],
      ['burst_time', 0],
    ],
  );
  t.strictSame(
    [...parseFlatKeyed('user 6176\nsystem 3208\n', F)],
    [
      ['user', 6176],
      ['system', 3208],
    ],
  );
  const v1MemoryStat =
    'cache 9809920\nrss 6344704\nrss_huge 0\nshmem 8998912\nmapped_file 7380992\ndirty 20480\nwriteback 0\n' +
    'workingset_refault_anon 0\nworkingset_refault_file 53\nswap 0\nswapcached 0\npgpgin 33451\npgpgout 29507\n' +
    'pgfault 33801\npgmajfault 0\ninactive_anon 0\nactive_anon 1531904\ninactive_file 569344\nactive_file 241664\n' +
    'unevictable 13811712\nhierarchical_memory_limit 9223372036854771712\nhierarchical_memsw_limit 9223372036854771712\n' +
    'total_cache 389222400\ntotal_rss 11669504\ntotal_rss_huge 0\ntotal_shmem 8998912\ntotal_mapped_file 10858496\n' +
    'total_dirty 249856\ntotal_writeback 0\ntotal_workingset_refault_anon 0\ntotal_workingset_refault_file 50436\n' +
    'total_swap 0\ntotal_swapcached 0\ntotal_pgpgin 1975327\ntotal_pgpgout 1892733\ntotal_pgfault 2474043\n' +
    'total_pgmajfault 878\ntotal_inactive_anon 5234688\ntotal_active_anon 1568768\ntotal_inactive_file 247803904\n' +
    'total_active_file 132419584\ntotal_unevictable 13811712\n';
  const stat = parseFlatKeyed(v1MemoryStat, F);
  t.equal(stat.size, 42);
  t.equal(stat.get('total_inactive_file'), 247803904);
  t.equal(stat.get('pgfault'), 33801);
  t.equal(stat.get('total_pgfault'), 2474043);
  t.equal(stat.get('hierarchical_memory_limit'), 9223372036854771712);

  const v2CpuStat =
    'usage_usec 90652702\nuser_usec 59648588\nsystem_usec 31004114\nnice_usec 0\ncore_sched.force_idle_usec 0\n' +
    'nr_periods 120553\nnr_throttled 1873\nthrottled_usec 91352310\nnr_bursts 0\nburst_usec 0\n';
  const cpu = parseFlatKeyed(v2CpuStat, F);
  t.equal(cpu.get('usage_usec'), 90652702);
  t.equal(cpu.get('core_sched.force_idle_usec'), 0, 'dotted keys are keys');
  t.equal(cpu.get('throttled_usec'), 91352310);
  t.equal(cpu.get('missing'), undefined, 'a missing field is absent, not 0');

  t.equal(parseFlatKeyed('anon -8192\nfile 4096\n', F).get('anon'), 0, 'negative memory.stat value clamps to 0');
  t.equal(parseFlatKeyed('', F).size, 0, 'empty file: no keys');
  throwsParse(t, () => parseFlatKeyed('usage_usec\n', F), /<key> <integer>/);
  throwsParse(t, () => parseFlatKeyed('usage_usec 12 34\n', F), /<key> <integer>/);
  throwsParse(t, () => parseFlatKeyed('usage_usec twelve\n', F), /usage_usec twelve/);
});

t.test('nested keyed: v2 io.stat', async (t) => {
  const ioStat =
    '252:0 rbytes=1945362432 wbytes=7263277056 rios=41932 wios=331504 dbytes=0 dios=0\n' +
    '7:0 rbytes=1126400 wbytes=0 rios=84 wios=0 dbytes=0 dios=0\n' +
    '8:16 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0 cost.vrate=100.00 cost.usage=12 cost.wait=0 cost.indebt=0 cost.indelay=0\n' +
    '8:32 depth=max avg_lat=0 win=0\n';
  const entries = parseNestedKeyed(ioStat, F);
  t.equal(entries.length, 4);
  t.equal(entries[0]?.key, '252:0');
  t.equal(entries[0]?.fields.get('wbytes'), 7263277056);
  t.equal(entries[2]?.fields.get('cost.vrate'), 100, 'decimal values parse');
  t.equal(entries[3]?.fields.has('depth'), false, 'io.latency depth=max is not a number and is left out');
  t.equal(entries[3]?.fields.get('avg_lat'), 0);

  const all = parseIoStatAll(ioStat, F);
  t.strictSame(
    all.bytes,
    [
      { major: 252, minor: 0, values: { Read: 1945362432, Write: 7263277056 } },
      { major: 7, minor: 0, values: { Read: 1126400, Write: 0 } },
      { major: 8, minor: 16, values: { Read: 4096, Write: 0 } },
    ],
    'a device without rbytes/wbytes (8:32, io.latency only) is no bytes row',
  );
  t.strictSame(all.serviced, [
    { major: 252, minor: 0, values: { Read: 41932, Write: 331504 } },
    { major: 7, minor: 0, values: { Read: 84, Write: 0 } },
    { major: 8, minor: 16, values: { Read: 1, Write: 0 } },
  ]);
  t.strictSame(all.costUsage, [{ major: 8, minor: 16, values: { Count: 12 } }], 'iocost rows only where the controller is on');
  t.strictSame(all.costIndelay, [{ major: 8, minor: 16, values: { Count: 0 } }]);
  t.strictSame(
    parseIoStatAll('', F),
    { bytes: [], serviced: [], costUsage: [], costWait: [], costIndebt: [], costIndelay: [] },
    'a cgroup without I/O has an empty io.stat',
  );
  throwsParse(t, () => parseNestedKeyed('252:0 rbytes 12\n', F), /<name>=<value>/);
  throwsParse(t, () => parseNestedKeyed('252:0 =12\n', F), /<name>=<value>/);
  throwsParse(t, () => parseIoStatAll('vda rbytes=1 wbytes=2\n', F), /<major>:<minor>/);
});

t.test('v1 blkio recursive files', async (t) => {
  const throttle =
    '259:0 Read 12324864\n259:0 Write 4096\n259:0 Sync 4096\n259:0 Async 12324864\n259:0 Discard 0\n259:0 Total 12328960\n' +
    '253:1 Read 0\n253:1 Write 8192\n253:1 Sync 8192\n253:1 Async 0\n253:1 Discard 0\n253:1 Total 8192\n' +
    'Total 12337152\n';
  t.strictSame(parseBlkioDevices(throttle, F), [
    { major: 259, minor: 0, values: { Read: 12324864, Write: 4096, Sync: 4096, Async: 12324864, Discard: 0, Total: 12328960 } },
    { major: 253, minor: 1, values: { Read: 0, Write: 8192, Sync: 8192, Async: 0, Discard: 0, Total: 8192 } },
  ]);
  t.strictSame(
    parseBlkioDevices('8:0 4096\n8:16 0\n', F),
    [
      { major: 8, minor: 0, values: { Count: 4096 } },
      { major: 8, minor: 16, values: { Count: 0 } },
    ],
    'files without operations (blkio.sectors_recursive): one Count per device',
  );
  t.strictSame(parseBlkioDevices('Total 0\n', F), [], 'this machine: only the grand total, no device row');
  t.strictSame(parseBlkioDevices('', F), []);
  throwsParse(t, () => parseBlkioDevices('259:0 Read\n', F), /<op> <integer>/);
  throwsParse(t, () => parseBlkioDevices('259:0 Read x\n', F), /<op> <integer>/);
  throwsParse(t, () => parseBlkioDevices('nvme0n1 Read 12\n', F), /<major>:<minor>/);
  throwsParse(t, () => parseBlkioDevices('Total\n', F), /<op> <integer>/);
});

t.test('PSI files', async (t) => {
  t.strictSame(parsePressure('some avg10=1.39 avg60=0.96 avg300=1.67 total=11714915\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n', F), {
    someSeconds: 11.714915,
    fullSeconds: 0,
  });
  t.strictSame(
    parsePressure('some avg10=0.00 avg60=0.00 avg300=0.00 total=2856686\n', F),
    { someSeconds: 2.856686 },
    'cpu.pressure before 5.13 has no full line: fullSeconds stays absent',
  );
  throwsParse(t, () => parsePressure('some avg10=0.00 avg60=0.00 avg300=0.00\n', F), /total=/);
  throwsParse(t, () => parsePressure('some avg10=0.00 total=abc\n', F), /total=/);
  throwsParse(t, () => parsePressure('partial avg10=0.00 total=1\n', F), /"some" or "full"/);
});

t.test('cpu.max', async (t) => {
  t.strictSame(parseCpuMax('max 100000\n', F), { quota: MAX, period: 100000 });
  t.strictSame(parseCpuMax('50000 100000\n', F), { quota: 50000, period: 100000 });
  throwsParse(t, () => parseCpuMax('max\n', F), /<quota\|max> <period>/);
  throwsParse(t, () => parseCpuMax('50000 max\n', F), /<quota\|max> <period>/);
  throwsParse(t, () => parseCpuMax('50000 100000 1\n', F), /<quota\|max> <period>/);
});

t.test('cpuacct.usage_percpu', async (t) => {
  t.strictSame(parsePerCpu('37842453174 56016670394 \n', F), [37842453174, 56016670394], 'trailing space as the kernel prints it');
  t.strictSame(parsePerCpu('0 0 1 \n', F), [0, 0, 1], 'offline CPUs keep their index');
  throwsParse(t, () => parsePerCpu('\n', F), /empty/);
  throwsParse(t, () => parsePerCpu('123 abc\n', F), /integers/);
});
