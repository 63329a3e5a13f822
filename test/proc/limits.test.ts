import t from 'tap';
import { ParseError } from '../../src/errors.js';
import { parseLimits } from '../../src/proc/limits.js';

// This machine's /proc/self/limits (kernel 6.18), trailing padding included.
const THIS_MACHINE = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max file size             unlimited            unlimited            bytes     
Max data size             unlimited            unlimited            bytes     
Max stack size            8388608              unlimited            bytes     
Max core file size        0                    unlimited            bytes     
Max resident set          unlimited            unlimited            bytes     
Max processes             96362                96362                processes 
Max open files            20000                20000                files     
Max locked memory         8388608              8388608              bytes     
Max address space         unlimited            unlimited            bytes     
Max file locks            unlimited            unlimited            locks     
Max pending signals       96362                96362                signals   
Max msgqueue size         819200               819200               bytes     
Max nice priority         0                    0                    
Max realtime priority     0                    0                    
Max realtime timeout      unlimited            unlimited            us        
`;

const HEADER = 'Limit                     Soft Limit           Hard Limit           Units     \n';

t.test("this machine's /proc/self/limits", async (t) => {
  const m = parseLimits(THIS_MACHINE, '/proc/self/limits');
  t.same(
    [...m.keys()],
    [
      'Max cpu time',
      'Max file size',
      'Max data size',
      'Max stack size',
      'Max core file size',
      'Max resident set',
      'Max processes',
      'Max open files',
      'Max locked memory',
      'Max address space',
      'Max file locks',
      'Max pending signals',
      'Max msgqueue size',
      'Max nice priority',
      'Max realtime priority',
      'Max realtime timeout',
    ],
  );
  t.same(m.get('Max open files'), { soft: 20000, hard: 20000 });
  t.same(m.get('Max cpu time'), { soft: -1, hard: -1 });
  t.same(m.get('Max stack size'), { soft: 8388608, hard: -1 });
  t.same(m.get('Max core file size'), { soft: 0, hard: -1 });
  t.same(m.get('Max nice priority'), { soft: 0, hard: 0 });
  t.same(m.get('Max realtime timeout'), { soft: -1, hard: -1 });
});

t.test("a container's init process: soft below hard, a limit without a unit, no trailing newline", async (t) => {
  const text = `${HEADER}Max processes             unlimited            unlimited            processes 
Max open files            1024                 1048576              files     
Max nice priority         20                   40                   `;
  const m = parseLimits(text, '/proc/4242/limits');
  t.equal(m.size, 3);
  t.same(m.get('Max open files'), { soft: 1024, hard: 1048576 });
  t.same(m.get('Max processes'), { soft: -1, hard: -1 });
  t.same(m.get('Max nice priority'), { soft: 20, hard: 40 });
  t.equal(m.get('max_open_files'), undefined);
});

t.test('only the header: no limits', async (t) => {
  t.equal(parseLimits(HEADER, 'limits').size, 0);
});

t.test('malformed input throws ParseError', async (t) => {
  for (const text of [
    '',
    '\n',
    'Max open files            1024                 1048576              files     \n',
    `${HEADER}Max open files            1024                 files     \n`,
    `${HEADER}Max open files            1024                 abc                  files     \n`,
    `${HEADER}Max open files            -1                   1048576              files     \n`,
    `${HEADER}Max open files            Unlimited            unlimited            files     \n`,
    `${HEADER}Max open files            1024                 1048576              files      extra\n`,
    `${HEADER}1024                      1048576              files     \n`,
    `${HEADER}Max open files            1024                 1048576              files     \nMax open files            1                    2                    files     \n`,
  ]) {
    t.throws(() => parseLimits(text, 'limits'), ParseError, JSON.stringify(text));
  }
  t.throws(() => parseLimits(`${HEADER}Max open files 10\n`, '/proc/1/limits'), { message: /^\/proc\/1\/limits: line 2: / });
});
