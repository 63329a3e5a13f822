import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { FileReader, isMissing } from '../../src/host/file-reader.js';

t.test('reads whole files, growing the buffer, and says undefined for missing ones', async (t) => {
  const dir = t.testdir({ small: 'hello\n', empty: '', big: 'x'.repeat(200_000) + '\n', exact: 'y'.repeat(1024) });
  const r = new FileReader(1024);
  t.equal(r.read(path.join(dir, 'small')), 'hello\n');
  t.equal(r.read(path.join(dir, 'empty')), '');
  t.equal(r.read(path.join(dir, 'exact')), 'y'.repeat(1024), 'a file exactly the buffer size');
  t.equal(r.read(path.join(dir, 'big'))?.length, 200_001, 'larger than the initial buffer');
  t.equal(r.read(path.join(dir, 'small')), 'hello\n', 'the reused buffer does not leak old bytes');
  for (const size of [2047, 2048, 2049, 5000]) {
    fs.writeFileSync(path.join(dir, `s${size}`), 'z'.repeat(size));
    t.equal(new FileReader(4096).read(path.join(dir, `s${size}`))?.length, size, `${size} bytes around the one-read threshold`);
  }
  t.equal(r.read(path.join(dir, 'nope')), undefined);
  t.equal(r.read(path.join(dir, 'small', 'below-a-file')), undefined, 'ENOTDIR is missing too');
  t.throws(() => r.read(dir), /EISDIR/, 'other errors throw');
  t.throws(() => new FileReader(16, 64).read(path.join(dir, 'big')), /larger than 64 bytes/);
});

t.test('pseudo-files read whole: procfs seq_files hand out a page per read; nothing is cut', async (t) => {
  const r = new FileReader(1024);
  // Stable files; mountinfo spans several pages on any machine running containers.
  for (const f of ['/proc/self/mountinfo', '/proc/filesystems', '/proc/self/limits', '/proc/partitions']) {
    t.equal(r.read(f), fs.readFileSync(f, 'utf8'), f);
  }
});

t.test('isMissing', async (t) => {
  t.equal(isMissing(Object.assign(new Error('x'), { code: 'ENOENT' })), true);
  t.equal(isMissing(Object.assign(new Error('x'), { code: 'EACCES' })), false);
  t.equal(isMissing('ENOENT'), false);
});
