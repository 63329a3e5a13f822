import t from 'tap';
import { OomKillParser, parseKmsgRecord } from '../../src/proc/kmsg-oom.js';

/** The cgroups the parser reports for `messages`, fed in order to one parser. */
function kills(messages: readonly string[], parser = new OomKillParser()): string[] {
  const out: string[] = [];
  for (const m of messages) {
    const cgroup = parser.push(m);
    if (cgroup !== undefined) out.push(cgroup);
  }
  return out;
}

const ID = 'd5f3b2a1c0e9f8d7c6b5a4938271605f4e3d2c1b0a99887766554433221100ff';
const POD = '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7c1e2a44_09b3_4d8e_a1f2_5b6c7d8e9f01.slice';
const CONTAINER = `${POD}/cri-containerd-${ID}.scope`;

/** A memory cgroup OOM as a 5.15 kernel logs it (mm/oom_kill.c dump_header, dump_oom_summary, __oom_kill_process). */
const NEW_MEMCG_OOM = [
  'stress invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=999',
  'CPU: 2 PID: 40211 Comm: stress Not tainted 5.15.0-91-generic #101-Ubuntu',
  'Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.15.0-1 04/01/2014',
  'Call Trace:',
  ' <TASK>',
  ' dump_stack_lvl+0x4a/0x63',
  ' dump_header+0x4a/0x1f4',
  ' oom_kill_process.cold+0xb/0x10',
  ' </TASK>',
  'memory: usage 262144kB, limit 262144kB, failcnt 1722',
  'swap: usage 0kB, limit 0kB, failcnt 0',
  `Memory cgroup stats for ${CONTAINER}:`,
  'anon 265392128',
  'Tasks state (memory values in pages):',
  '[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name',
  '[  40211]     0 40211    67150    64799   561152        0           999 stress',
  `oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=cri-containerd-${ID}.scope,mems_allowed=0,oom_memcg=${POD},task_memcg=${CONTAINER},task=stress,pid=40211,uid=0`,
  'Memory cgroup out of memory: Killed process 40211 (stress) total-vm:268600kB, anon-rss:259036kB, file-rss:160kB, shmem-rss:0kB, UID:0 pgtables:548kB oom_score_adj:999',
  'oom_reaper: reaped process 40211 (stress), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB',
];

/** A global OOM on a 6.1 kernel: no oom_memcg, `global_oom` instead; task_memcg still names the victim's cgroup. */
const NEW_GLOBAL_OOM = [
  'kworker/u8:3 invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0',
  'Mem-Info:',
  'active_anon:1963022 inactive_anon:8120 isolated_anon:0',
  'Out of memory and no swap: trying the largest task',
  'oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0-1,global_oom,task_memcg=/system.slice/postgresql.service,task=postgres,pid=1201,uid=113',
  'Out of memory: Killed process 1201 (postgres) total-vm:8342812kB, anon-rss:7901232kB, file-rss:0kB, shmem-rss:1024kB, UID:113 pgtables:15688kB oom_score_adj:0',
];

/** A memory cgroup OOM on a 4.8 kernel (cgroup v1, Docker): `Task in`, then `Kill process` and `Killed process`. */
const OLD_MEMCG_OOM = [
  'java invoked oom-killer: gfp_mask=0x24000c0(GFP_KERNEL), order=0, oom_score_adj=0',
  'java cpuset=9a7b6c5d mems_allowed=0',
  'CPU: 1 PID: 2210 Comm: java Tainted: G           O    4.8.0-58-generic #63~16.04.1-Ubuntu',
  'Call Trace:',
  ' [<ffffffff8137ad47>] dump_stack+0x4d/0x63',
  'Task in /docker/9a7b6c5d killed as a result of limit of /docker/9a7b6c5d',
  'memory: usage 524288kB, limit 524288kB, failcnt 388',
  'memory+swap: usage 524288kB, limit 1048576kB, failcnt 0',
  'Memory cgroup stats for /docker/9a7b6c5d: cache:0KB rss:524288KB rss_huge:0KB mapped_file:0KB',
  '[ pid ]   uid  tgid total_vm      rss nr_ptes nr_pmds swapents oom_score_adj name',
  '[ 2210]     0  2210   912331   131072     312       6        0             0 java',
  'Memory cgroup out of memory: Kill process 2210 (java) score 1001 or sacrifice child',
  'Killed process 2210 (java) total-vm:3649324kB, anon-rss:523004kB, file-rss:1284kB, shmem-rss:0kB',
];

/** A global OOM on a 3.13 kernel: no `Task in` line at all. */
const OLD_GLOBAL_OOM = [
  'memhog invoked oom-killer: gfp_mask=0x280da, order=0, oom_score_adj=0',
  'memhog cpuset=/ mems_allowed=0',
  'Mem-Info:',
  'Free swap  = 0kB',
  '[ 1532]  1020  1532   410347   398810     788        0             0 memhog',
  'Out of memory: Kill process 1532 (memhog) score 919 or sacrifice child',
  'Killed process 1532 (memhog) total-vm:1641388kB, anon-rss:1595164kB, file-rss:76kB',
];

t.test('parseKmsgRecord: the header fields, the message, continuation lines', async (t) => {
  t.same(parseKmsgRecord('6,1234,5678901,-;eth0: link up\n'), { seq: 1234, message: 'eth0: link up' });
  t.same(parseKmsgRecord('3,7,100,-;usb 1-1: error\n SUBSYSTEM=usb\n DEVICE=c189:1\n'), { seq: 7, message: 'usb 1-1: error' }, 'continuation lines ignored');
  t.same(parseKmsgRecord('4,99,1,c,caller=T1201;a;b,c=d'), { seq: 99, message: 'a;b,c=d' }, 'no newline, extra header field, ; in message');
  t.same(parseKmsgRecord('6,0,0,+;'), { seq: 0, message: '' }, 'an empty message');
  t.same(parseKmsgRecord('6,1,2,-; dump_stack+0x4d/0x63\n'), { seq: 1, message: ' dump_stack+0x4d/0x63' }, 'a message may start with a space');
  t.same(
    parseKmsgRecord('6,5,9,-;Task in /docker/caf\\xc3\\xa9 killed: a\\x5cb\\x0ac'),
    { seq: 5, message: 'Task in /docker/café killed: a\\b\nc' },
    '\\xNN escapes decoded as UTF-8 bytes',
  );
});

t.test('parseKmsgRecord: malformed records are undefined', async (t) => {
  for (const bad of [
    '',
    '\n',
    ' SUBSYSTEM=usb',
    'no header at all',
    '6,1234,5678;three fields',
    '6,1234,5678,;empty flags',
    'x,1,2,-;prio not a number',
    '6,-1,2,-;negative seq',
    '6,1,2.5,-;fractional timestamp',
    '6,,2,-;empty seq',
    '6,99999999999999999999,2,-;seq beyond 2^53',
    '6,1,2,-\n;semicolon on a continuation line',
  ]) {
    t.equal(parseKmsgRecord(bad), undefined, JSON.stringify(bad));
  }
});

t.test('kernel >= 4.19: the oom-kill: summary names task_memcg, counted once', async (t) => {
  t.same(kills(NEW_MEMCG_OOM), [CONTAINER], 'task_memcg (the container), not oom_memcg (the pod)');
  t.same(kills(NEW_GLOBAL_OOM), ['/system.slice/postgresql.service'], 'a global OOM counts for the victim’s cgroup');
  t.same(kills([...NEW_MEMCG_OOM, ...NEW_GLOBAL_OOM, ...NEW_MEMCG_OOM]), [CONTAINER, '/system.slice/postgresql.service', CONTAINER]);
});

t.test('kernel >= 4.19: the summary on its own, its report’s first lines lost', async (t) => {
  const summary = 'oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/a,task_memcg=/a/b,task=x,pid=7,uid=0';
  t.same(kills([summary, 'Memory cgroup out of memory: Killed process 7 (x) total-vm:1kB']), ['/a/b'], 'the Killed line after it is not a second kill');
  t.same(kills(['oom-kill:constraint=CONSTRAINT_MEMCG,task_memcg=/a/c']), ['/a/c'], 'task_memcg as the last field');
  t.same(kills(['oom-kill:constraint=CONSTRAINT_MEMCG,task_memcg=/a/b,c,task=x,pid=7,uid=0']), ['/a/b,c'], 'a comma in a cgroup name');
  t.same(kills(['oom-kill:constraint=CONSTRAINT_MEMCG,task_memcg=/a/d/,task=x']), ['/a/d'], 'trailing slash cleaned');
  t.same(kills(['oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,task=x,pid=7,uid=0']), ['/'], 'no memcg (CONFIG_MEMCG off)');
  t.same(kills(['oom-kill:constraint=CONSTRAINT_NONE,task_memcg=,task=x']), ['/'], 'an empty task_memcg');
  t.same(kills(['oom-kill:constraint=CONSTRAINT_NONE,oom_memcg=/p,task=x']), ['/'], 'oom_memcg alone is not the task’s cgroup');
});

t.test('older kernels: Task in … then Killed process; a global OOM counts for /', async (t) => {
  t.same(kills(OLD_MEMCG_OOM), ['/docker/9a7b6c5d'], 'Kill process … or sacrifice child is not a second kill');
  t.same(kills(OLD_GLOBAL_OOM), ['/']);
  t.same(kills([...OLD_MEMCG_OOM, ...OLD_GLOBAL_OOM, ...OLD_MEMCG_OOM]), ['/docker/9a7b6c5d', '/', '/docker/9a7b6c5d'], 'each report starts afresh');
  t.same(kills(['Task in mem2 killed as a result of limit of /mem3', 'Killed process 19667 (evil-program2) total-vm:1kB']), ['/mem2'], 'the task’s cgroup');
  t.same(
    kills([
      'a invoked oom-killer: gfp_mask=0xd0, order=0',
      'Out of memory: Kill process 10 (parent) score 900 or sacrifice child',
      'Killed process 11 (child) total-vm:4kB',
    ]),
    ['/'],
    'a sacrificed child is the one kill',
  );
  t.same(
    kills([
      'a invoked oom-killer: gfp_mask=0xd0',
      'Task in /x killed as a result of limit of /x',
      'b invoked oom-killer: gfp_mask=0xd0',
      'Killed process 1 (b)',
    ]),
    ['/'],
    'a report that never killed does not lend its cgroup to the next',
  );
});

t.test('a kernel printing both Task in and the summary: one kill', async (t) => {
  t.same(
    kills([
      'a invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0',
      'Task in /k/c killed as a result of limit of /k',
      'oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/k,task_memcg=/k/c,task=a,pid=3,uid=0',
      'Memory cgroup out of memory: Killed process 3 (a) total-vm:1kB',
    ]),
    ['/k/c'],
  );
});

t.test('anything else is ignored', async (t) => {
  t.same(
    kills([
      '',
      'docker0: port 2(veth380a1cd) entered disabled state',
      'Killed process 13536 (memorymonster) total-vm:33558652kB, anon-rss:920kB',
      'Memory cgroup out of memory: Killed process 1 (x) total-vm:1kB',
      'oom_reaper: reaped process 1381 (gunpowder-memho), now anon-rss:0kB',
      'Out of memory: Kill process 1532 (badsysprogram) score 919 or sacrifice child',
      'Task in  killed', // not the full sentence
      'random oom-kill: text without constraint=',
      '\u0000\uffff garbage',
    ]),
    [],
    'no kill without the report it belongs to',
  );
  const p = new OomKillParser();
  t.same(kills(['x invoked oom-killer: gfp_mask=0xd0', 'lines', 'of', 'noise'], p), [], 'a report in progress is not a kill');
  t.same(kills(['Killed process 2 (y) total-vm:1kB'], p), ['/'], 'the same parser completes it later');
});
