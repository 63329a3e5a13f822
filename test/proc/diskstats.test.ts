import t from 'tap';
import { ParseError } from '../../src/errors.js';
import { parseDiskstats } from '../../src/proc/diskstats.js';

t.test("this machine's /proc/diskstats (kernel 6.18, 20 fields): every device kept, by major:minor", async (t) => {
  const text = `   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   7       1 loop1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 582535 172578 23746666 338577 1156497 2763327 56758992 1050541 0 411812 1765612 1022160 78 25256320 310632 121644 65860
 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
`;
  const m = parseDiskstats(text, '/proc/diskstats');
  t.same([...m.keys()], ['7:0', '7:1', '254:0', '253:0']);
  t.same(m.get('254:0'), {
    name: 'vda',
    readsCompleted: 582535,
    readsMerged: 172578,
    sectorsRead: 23746666,
    readMs: 338577,
    writesCompleted: 1156497,
    writesMerged: 2763327,
    sectorsWritten: 56758992,
    writeMs: 1050541,
    ioInProgress: 0,
    ioMs: 411812,
    weightedIoMs: 1765612,
  });
  t.equal(m.get('253:0')?.name, 'zram0');
  t.equal(m.get('7:1')?.name, 'loop1');
});

t.test('an old kernel (14 fields) and a 4.18 one (18 fields): nvme, partitions, device-mapper, I/O in flight', async (t) => {
  const text = ` 259       0 nvme0n1 1234567 2345 98765432 456789 2345678 3456 123456789 987654 3 1122334 1444443
 259       1 nvme0n1p1 1234000 2300 98700000 456000 2345000 3400 123400000 987000 3 1122000 1443000 12 0 4096 7
 253       0 dm-0 99 0 792 10 4294967296 0 34359738368 9007199254740 0 77 88
`;
  const m = parseDiskstats(text, 'diskstats');
  t.equal(m.size, 3);
  t.same(m.get('259:0'), {
    name: 'nvme0n1',
    readsCompleted: 1234567,
    readsMerged: 2345,
    sectorsRead: 98765432,
    readMs: 456789,
    writesCompleted: 2345678,
    writesMerged: 3456,
    sectorsWritten: 123456789,
    writeMs: 987654,
    ioInProgress: 3,
    ioMs: 1122334,
    weightedIoMs: 1444443,
  });
  t.equal(m.get('259:1')?.name, 'nvme0n1p1');
  t.equal(m.get('259:1')?.weightedIoMs, 1443000);
  t.equal(m.get('253:0')?.writesCompleted, 4294967296);
  t.equal(m.get('253:0')?.sectorsWritten, 34359738368);
  t.equal(m.get('253:0')?.writeMs, 9007199254740);
  t.equal(m.get('0:0'), undefined);
});

t.test('empty text: no devices', async (t) => {
  t.equal(parseDiskstats('', 'diskstats').size, 0);
  t.equal(parseDiskstats('\n\n', 'diskstats').size, 0);
});

t.test('malformed input throws ParseError', async (t) => {
  const good = ' 254       0 vda 582535 172578 23746666 338577 1156497 2763327 56758992 1050541 0 411812 1765612\n';
  for (const text of [
    ' 254       0 vda 582535 172578 23746666 338577 1156497 2763327 56758992 1050541 0 411812\n',
    ' 254       0 vda\n',
    ' 254       0 vda 582535 172578 23746666 338577 1156497 2763327 56758992 1050541 x 411812 1765612\n',
    ' 254       0 vda 582535 172578 23746666 338577 1156497 2763327 56758992 1050541 0 411812 1765612 -5\n',
    ' 254       0 vda 582535 172578 23746666 338577 1156497 2763327 56758992 1050541 0 411812 1765612 12 abc\n',
    ' 25a       0 vda 582535 172578 23746666 338577 1156497 2763327 56758992 1050541 0 411812 1765612\n',
    ' 254      -1 vda 582535 172578 23746666 338577 1156497 2763327 56758992 1050541 0 411812 1765612\n',
    `${good}${good}`,
  ]) {
    t.throws(() => parseDiskstats(text, 'diskstats'), ParseError, JSON.stringify(text));
  }
  t.throws(() => parseDiskstats(`${good}   7 0 loop0 0 0 0\n`, '/proc/diskstats'), { message: /^\/proc\/diskstats: line 2: 6 fields, expected at least 14$/ });
});
