import t from 'tap';
import { ParseError } from '../../src/errors.js';
import { parsePartitions } from '../../src/proc/partitions.js';

t.test("this machine's /proc/partitions (virtio disk, no partitions)", async (t) => {
  const text = 'major minor  #blocks  name\n\n 254        0  268435456 vda\n';
  t.same([...parsePartitions(text, '/proc/partitions')], [['254:0', '/dev/vda']]);
});

t.test('a typical node: nvme with partitions, loop, device-mapper, sd', async (t) => {
  const text = `major minor  #blocks  name

   7        0      65536 loop0
 259        0  104857600 nvme0n1
 259        1  104760303 nvme0n1p1
 259        2       4096 nvme0n1p14
 259        3     108544 nvme0n1p15
   8        0  488386584 sda
   8        1  488385536 sda1
 253        0  20971520 dm-0
  11        0    1048575 sr0
`;
  const m = parsePartitions(text, 'partitions');
  t.equal(m.size, 9);
  t.equal(m.get('259:1'), '/dev/nvme0n1p1');
  t.equal(m.get('8:0'), '/dev/sda');
  t.equal(m.get('253:0'), '/dev/dm-0');
  t.equal(m.get('7:0'), '/dev/loop0');
  t.equal(m.get('1:1'), undefined);
});

t.test('only the header: no devices', async (t) => {
  t.equal(parsePartitions('major minor  #blocks  name\n\n', 'p').size, 0);
});

t.test('malformed input throws ParseError', async (t) => {
  const header = 'major minor  #blocks  name\n\n';
  for (const text of [
    '',
    '\n\n',
    ' 8 0 100 sda\n',
    `${header} 8 0 100\n`,
    `${header} 8 x 100 sda\n`,
    `${header} 8 0 -1 sda\n`,
    `${header} 8 0 100 sda extra\n`,
  ]) {
    t.throws(() => parsePartitions(text, 'partitions'), ParseError, JSON.stringify(text));
  }
  t.throws(() => parsePartitions(`${header} 8 0 100 sda\n8:1 100 sda1\n`, 'partitions'), { message: /^partitions: line 4: / });
});
