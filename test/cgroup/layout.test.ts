import t from 'tap';
import { detectLayout, v1Controllers } from '../../src/cgroup/layout.js';
import { parseMountinfo } from '../../src/proc/mountinfo.js';

/** This machine's /proc/self/mountinfo cgroup lines (6.18, hybrid: cpu and cpuacct apart, an empty unified mount). */
const HYBRID = `22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

/** Ubuntu 20.04 (systemd 245): hybrid with co-mounted cpu,cpuacct and net_cls,net_prio, optional fields present. */
const UBUNTU_HYBRID = `24 31 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
35 24 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
37 35 0:32 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
41 35 0:36 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
42 35 0:37 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,net_cls,net_prio
43 35 0:38 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,memory
44 35 0:39 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,pids
45 35 0:40 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,cpuset,clone_children
`;

t.test('parseMountinfo: fields, optional fields, octal escapes', async (t) => {
  const entries = parseMountinfo(
    '36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n' +
      '412 26 0:54 / /var/lib/my\\040data\\011dir rw,relatime shared:214 propagate_from:2 - tmpfs back\\134slash rw\n' +
      '33 22 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n',
  );
  t.strictSame(entries[0], {
    mountId: 36,
    parentId: 35,
    majorMinor: '98:0',
    root: '/mnt1',
    mountPoint: '/mnt2',
    options: 'rw,noatime',
    fsType: 'ext3',
    source: '/dev/root',
    superOptions: 'rw,errors=continue',
  });
  t.equal(entries[1]?.mountPoint, '/var/lib/my data\tdir', '\\040 is a space, \\011 a tab');
  t.equal(entries[1]?.source, 'back\\slash', '\\134 is a backslash');
  t.equal(entries[1]?.fsType, 'tmpfs', 'two optional fields before the separator');
  t.equal(entries[2]?.fsType, 'cgroup2', 'no optional fields');
  t.throws(() => parseMountinfo('36 35 98:0 /mnt1 /mnt2 rw,noatime ext3 /dev/root rw\n', '/x/mountinfo'), {
    name: 'ParseError',
    file: '/x/mountinfo',
    message: /malformed mountinfo line/,
  });
  t.throws(() => parseMountinfo('a b 98:0 / /m rw - ext4 /dev/x rw\n'), { name: 'ParseError' });
});

t.test('v1Controllers keeps controllers, drops mount options and names', async (t) => {
  t.strictSame(v1Controllers('rw,cpu,cpuacct'), ['cpu', 'cpuacct']);
  t.strictSame(v1Controllers('rw,cpuset,clone_children'), ['cpuset']);
  t.strictSame(v1Controllers('rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd'), []);
  t.strictSame(v1Controllers('rw,nsdelegate'), []);
});

t.test('detectLayout: hybrid (this machine), resolved under rootfs', async (t) => {
  const layout = detectLayout(HYBRID, '/rootfs');
  t.equal(layout.mode, 'hybrid');
  t.equal(layout.v2, '/rootfs/sys/fs/cgroup/unified');
  t.strictSame(Object.fromEntries(layout.v1), {
    cpu: '/rootfs/sys/fs/cgroup/cpu',
    cpuacct: '/rootfs/sys/fs/cgroup/cpuacct',
    cpuset: '/rootfs/sys/fs/cgroup/cpuset',
    memory: '/rootfs/sys/fs/cgroup/memory',
    devices: '/rootfs/sys/fs/cgroup/devices',
    freezer: '/rootfs/sys/fs/cgroup/freezer',
    blkio: '/rootfs/sys/fs/cgroup/blkio',
    pids: '/rootfs/sys/fs/cgroup/pids',
  });
  t.notOk(layout.v1.has('systemd'), 'name=systemd is not a controller');
  t.equal(detectLayout(HYBRID, '/').v2, '/sys/fs/cgroup/unified', 'rootfs / leaves paths as they are');
});

t.test('detectLayout: hybrid with co-mounted controllers', async (t) => {
  const layout = detectLayout(UBUNTU_HYBRID, '/');
  t.equal(layout.mode, 'hybrid');
  t.equal(layout.v1.get('cpu'), '/sys/fs/cgroup/cpu,cpuacct');
  t.equal(layout.v1.get('cpuacct'), '/sys/fs/cgroup/cpu,cpuacct', 'co-mounted controllers share a dir');
  t.equal(layout.v1.get('net_prio'), '/sys/fs/cgroup/net_cls,net_prio');
  t.equal(layout.v1.get('cpuset'), '/sys/fs/cgroup/cpuset', 'clone_children is an option, not a controller');
  t.equal(layout.v1.size, 7);
});

t.test('detectLayout: pure v1 and pure v2', async (t) => {
  const v1Only = HYBRID.split('\n')
    .filter((l) => !l.includes('cgroup2'))
    .join('\n');
  const v1 = detectLayout(v1Only, '/');
  t.equal(v1.mode, 'v1');
  t.equal(v1.v2, undefined);
  t.notOk('v2' in v1, 'no v2 key at all on pure v1');

  const v2 = detectLayout(
    '33 22 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n' +
      '40 22 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n',
    '/host',
  );
  t.equal(v2.mode, 'v2', 'a named-only v1 hierarchy does not make it hybrid');
  t.equal(v2.v2, '/host/sys/fs/cgroup');
  t.equal(v2.v1.size, 0);
});

t.test('detectLayout: first mount of a controller wins; octal escapes in mount points', async (t) => {
  const layout = detectLayout(
    '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n' +
      '90 31 0:29 / /var/lib/docker/overlay2/abc/merged/sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n' +
      '91 31 0:50 / /mnt/cgroup\\040memory rw,relatime - cgroup cgroup rw,memory\n' +
      '92 31 0:51 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n' +
      '93 31 0:51 / /other/unified rw,relatime - cgroup2 cgroup2 rw\n',
    '/',
  );
  t.equal(layout.v1.get('cpu'), '/sys/fs/cgroup/cpu');
  t.equal(layout.v1.get('memory'), '/mnt/cgroup memory');
  t.equal(layout.v2, '/sys/fs/cgroup/unified');
});

t.test('detectLayout: no cgroup mount is a StartupError naming the file', async (t) => {
  const noCgroups = '22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n';
  t.throws(() => detectLayout(noCgroups, '/rootfs'), {
    name: 'StartupError',
    code: 'PODVISOR_STARTUP',
    message: 'no cgroup or cgroup2 mount with controllers found in /rootfs/proc/1/mountinfo',
  });
  t.throws(() => detectLayout('40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n', '/', '/proc/self/mountinfo'), {
    name: 'StartupError',
    message: /in \/proc\/self\/mountinfo$/,
  });
  t.throws(() => detectLayout('', '/'), { name: 'StartupError' }, 'empty mountinfo');
  t.throws(() => detectLayout('not mountinfo at all\n', '/'), {
    name: 'StartupError',
    message: /^cannot read cgroup mounts: \/proc\/1\/mountinfo: malformed mountinfo line/,
  });
});
