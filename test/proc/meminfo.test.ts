import t from 'tap';
import { ParseError } from '../../src/errors.js';
import { parseMeminfo } from '../../src/proc/meminfo.js';

// Excerpt of this machine's /proc/meminfo (kernel 6.18).
const MEMINFO = `MemTotal:       24684096 kB
MemFree:        24175996 kB
MemAvailable:   24315736 kB
Buffers:            5920 kB
Cached:           301176 kB
SwapCached:            0 kB
Active(anon):      97328 kB
Inactive(file):   131360 kB
SwapTotal:             0 kB
SwapFree:              0 kB
VmallocTotal:   34359738367 kB
HugePages_Total:       0
HugePages_Free:        0
HugePages_Rsvd:        0
HugePages_Surp:        0
Hugepagesize:       2048 kB
DirectMap1G:    25165824 kB
`;

t.test('kB values become bytes, unitless values stay as they are', async (t) => {
  const m = parseMeminfo(MEMINFO, '/proc/meminfo');
  t.equal(m.get('MemTotal'), 25276514304, 'matches cAdvisor machine_memory_bytes on this machine');
  t.equal(m.get('MemAvailable'), 24315736 * 1024);
  t.equal(m.get('Active(anon)'), 97328 * 1024, 'names with parentheses');
  t.equal(m.get('SwapTotal'), 0);
  t.equal(m.get('VmallocTotal'), 34359738367 * 1024);
  t.equal(m.get('HugePages_Total'), 0);
  t.equal(m.get('Hugepagesize'), 2097152);
  t.equal(m.get('Nope'), undefined, 'absent is absent');
  t.equal(m.size, 17);
});

t.test('a unitless count that is not zero; no trailing newline; blank lines', async (t) => {
  const m = parseMeminfo('HugePages_Total:     512\n\nHugePages_Free:      500', 'meminfo');
  t.same(
    [...m],
    [
      ['HugePages_Total', 512],
      ['HugePages_Free', 500],
    ],
  );
  t.same(parseMeminfo('', 'meminfo').size, 0);
});

t.test('malformed lines throw ParseError', async (t) => {
  for (const text of ['MemTotal 123 kB\n', ': 5 kB\n', 'MemTotal:\n', 'MemTotal: abc kB\n', 'MemTotal: -5 kB\n', 'MemTotal: 5 kB extra\n']) {
    t.throws(() => parseMeminfo(text, 'meminfo'), ParseError, JSON.stringify(text));
  }
  t.throws(() => parseMeminfo('MemTotal: 5 MB\n', 'meminfo'), { message: 'meminfo: line 1: MemTotal has an unknown unit "MB"' });
});
