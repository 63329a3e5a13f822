import t from 'tap';
import { ParseError } from '../../src/errors.js';
import { parseCgroupProcs } from '../../src/proc/cgroup-procs.js';

t.test('one pid per line, in kernel order, blank lines ignored', async (t) => {
  t.same(parseCgroupProcs('1\n', 'cgroup.procs'), [1]);
  t.same(parseCgroupProcs('4242\n17\n4194304\n', 'cgroup.procs'), [4242, 17, 4194304]);
  t.same(parseCgroupProcs('\n12\n\n  13 \n\n', 'cgroup.procs'), [12, 13]);
  t.same(parseCgroupProcs('', 'cgroup.procs'), [], 'an empty cgroup');
});

t.test('zeros (processes outside our pid namespace) and duplicates are kept as listed', async (t) => {
  t.same(parseCgroupProcs('0\n0\n31\n31\n', 'cgroup.procs'), [0, 0, 31, 31]);
});

t.test('garbage throws ParseError with file and line', async (t) => {
  for (const text of ['abc\n', '12 13\n', '-1\n', '1.5\n', '0x10\n', '1\n99999999999999999999\n']) {
    t.throws(() => parseCgroupProcs(text, '/sys/fs/cgroup/x/cgroup.procs'), ParseError, JSON.stringify(text));
  }
  t.throws(() => parseCgroupProcs('7\nfoo\n', 'procs'), { file: 'procs', message: 'procs: line 2: "foo" is not a pid' });
});
