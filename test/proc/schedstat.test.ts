import t from 'tap';
import { ParseError } from '../../src/errors.js';
import { parseSchedstat } from '../../src/proc/schedstat.js';

t.test("this machine's /proc/self/schedstat and /proc/1/schedstat", async (t) => {
  t.same(parseSchedstat('3171221 0 1\n', '/proc/self/schedstat'), { runNs: 3171221, runqueueNs: 0, runPeriods: 1 });
  t.same(parseSchedstat('283735131 64158786 1006\n', '/proc/1/task/1/schedstat'), { runNs: 283735131, runqueueNs: 64158786, runPeriods: 1006 });
});

t.test('a long-running thread: counters past 2^32, no newline or several', async (t) => {
  t.same(parseSchedstat('616837987030 98765432109 4294967297', 'schedstat'), { runNs: 616837987030, runqueueNs: 98765432109, runPeriods: 4294967297 });
  t.same(parseSchedstat('5 6 7\n\n', 'schedstat'), { runNs: 5, runqueueNs: 6, runPeriods: 7 });
});

t.test('malformed input throws ParseError', async (t) => {
  for (const text of ['', '\n', '1 2\n', '1 2 3 4\n', '1  2 3\n', ' 1 2 3\n', '1 2 3 \n', '1\t2\t3\n', '1 2 x\n', '-1 2 3\n', '1 2 3\n4 5 6\n']) {
    t.throws(() => parseSchedstat(text, 'schedstat'), ParseError, JSON.stringify(text));
  }
  t.throws(() => parseSchedstat('1 2\n', '/proc/9/task/10/schedstat'), { message: /^\/proc\/9\/task\/10\/schedstat: line 1: / });
});
