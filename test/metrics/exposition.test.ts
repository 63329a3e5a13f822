import t from 'tap';
import { assemble, encodeFamilies, escapeLabelValue, familySamples, FamilyWriter, formatLabels, formatValue } from '../../src/metrics/exposition.js';

t.test('label values are escaped whatever they contain', async (t) => {
  t.equal(escapeLabelValue('plain/path-1'), 'plain/path-1');
  t.equal(escapeLabelValue('a"b'), 'a\\"b');
  t.equal(escapeLabelValue('a\\b'), 'a\\\\b');
  t.equal(escapeLabelValue('a\nb'), 'a\\nb');
  t.equal(escapeLabelValue('ünï 🐳'), 'ünï 🐳', 'UTF-8 passes through');
  t.equal(formatLabels(['a', 'b'], ['x', 'y"']), 'a="x",b="y\\""');
});

t.test('values', async (t) => {
  t.equal(formatValue(1), '1');
  t.equal(formatValue(0.25), '0.25');
  t.equal(formatValue(1.5e21), '1.5e+21');
  t.equal(formatValue(NaN), 'NaN');
  t.equal(formatValue(Infinity), '+Inf');
  t.equal(formatValue(-Infinity), '-Inf');
});

t.test('text 0.0.4 and OpenMetrics from the same families', async (t) => {
  const c = new FamilyWriter('x_seconds_total', 'Help with \\ and\nnewline "q".', 'counter');
  c.sample('id="/"', 1.5);
  const fc = new FamilyWriter('legacy_events', 'A counter named without _total', 'counter');
  fc.sample('id="/"', 3);
  const g = new FamilyWriter('g_bytes', 'A gauge.', 'gauge');
  g.sample('', 7);
  const empty = new FamilyWriter('never_emitted', 'No samples.', 'gauge');
  const families = encodeFamilies([c.finish(), fc.finish(), g.finish(), empty.finish()]);

  t.equal(
    assemble([families], 'text').toString('utf8'),
    [
      '# HELP x_seconds_total Help with \\\\ and\\nnewline "q".',
      '# TYPE x_seconds_total counter',
      'x_seconds_total{id="/"} 1.5',
      '# HELP legacy_events A counter named without _total',
      '# TYPE legacy_events counter',
      'legacy_events{id="/"} 3',
      '# HELP g_bytes A gauge.',
      '# TYPE g_bytes gauge',
      'g_bytes 7',
      '',
    ].join('\n'),
  );
  t.equal(
    assemble([families], 'openmetrics').toString('utf8'),
    [
      '# HELP x_seconds Help with \\\\ and\\nnewline \\"q\\".',
      '# TYPE x_seconds counter',
      'x_seconds_total{id="/"} 1.5',
      '# HELP legacy_events A counter named without _total',
      '# TYPE legacy_events counter',
      'legacy_events_total{id="/"} 3',
      '# HELP g_bytes A gauge.',
      '# TYPE g_bytes gauge',
      'g_bytes 7',
      '# EOF',
      '',
    ].join('\n'),
  );
});

t.test('encoded families: one owned buffer, UTF-8 offsets, empty families dropped', async (t) => {
  const a = new FamilyWriter('a_bytes', 'A.', 'gauge');
  a.sample('id="/pod/ünï"', 1);
  const b = new FamilyWriter('b_bytes', 'B.', 'gauge');
  b.sample('id="x"', 2);
  const e = encodeFamilies([a.finish(), new FamilyWriter('none', 'N.', 'gauge').finish(), b.finish()]);
  t.same(
    e.families.map((f) => f.name),
    ['a_bytes', 'b_bytes'],
  );
  t.equal(e.bytes.byteOffset, 0);
  t.equal(e.bytes.buffer.byteLength, e.bytes.byteLength, 'owns its ArrayBuffer, so it can be transferred');
  t.equal(familySamples(e, 'a_bytes'), 'a_bytes{id="/pod/ünï"} 1\n');
  t.equal(familySamples(e, 'b_bytes'), 'b_bytes{id="x"} 2\n');
  t.equal(familySamples(e, 'none'), undefined);
});

t.test('untyped families: `untyped` in text 0.0.4, `unknown` in OpenMetrics', async (t) => {
  const u = new FamilyWriter('container_fs_inodes_total', 'Number of Inodes', 'untyped');
  u.sample('device="/dev/vda"', 42);
  const e = encodeFamilies([u.finish()]);
  t.match(assemble([e], 'text').toString(), /# TYPE container_fs_inodes_total untyped\ncontainer_fs_inodes_total\{device="\/dev\/vda"\} 42\n/);
  t.match(assemble([e], 'openmetrics').toString(), /# TYPE container_fs_inodes_total unknown\ncontainer_fs_inodes_total\{device="\/dev\/vda"\} 42\n# EOF\n$/);
});
