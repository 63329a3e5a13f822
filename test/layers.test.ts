/**
 * The structure of src/ stays what DEVELOPERS.md says it is: every import (type imports included) goes from a higher
 * layer to a lower one, units of one layer do not import each other, every unit has a layer, and no file imports
 * itself round a cycle. The layers are read from the ```layers block of DEVELOPERS.md, so the document and the check
 * cannot drift apart.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cycles, importsOf, layerViolations, parseLayers, readImportGraph, unitOf, type ImportGraph } from './support/import-graph.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const layers = parseLayers(fs.readFileSync(path.join(REPO, 'DEVELOPERS.md'), 'utf8'));
const graph = readImportGraph(REPO, 'src');

t.test('src/ follows the documented layers', async (t) => {
  t.ok(graph.size > 50, `${graph.size} files read`);
  const edges = [...graph.values()].reduce((n, tos) => n + tos.length, 0);
  t.ok(edges > 100, `${edges} imports read`);
  const violations = layerViolations(graph, layers);
  t.same(
    violations.map((v) => `${v.from} → ${v.to}: ${v.why}`),
    [],
    'no import against the layer order',
  );
});

t.test('no import cycle in src/, type imports included', async (t) => {
  t.same(
    cycles(graph).map((c) => c.join(' → ')),
    [],
  );
});

t.test('the data model and the other leaves import nothing of ours', async (t) => {
  const bottom = layers[0] ?? [];
  t.ok(bottom.includes('model'), 'model is in the lowest layer');
  for (const [file, tos] of graph) {
    const unit = unitOf(file);
    if (!bottom.includes(unit)) continue;
    const outside = tos.filter((to) => unitOf(to) !== unit);
    t.same(outside, [], `${file} imports nothing outside ${unit}`);
  }
});

t.test('every unit named in the layers exists, once', async (t) => {
  const names = layers.flat();
  t.equal(new Set(names).size, names.length, 'no name twice');
  for (const n of names) t.ok(fs.existsSync(path.join(REPO, 'src', n)) || fs.existsSync(path.join(REPO, 'src', `${n}.ts`)), `src/${n} exists`);
});

t.test('the checks catch what they are for (synthetic graphs)', async (t) => {
  const demo: readonly (readonly string[])[] = [['model', 'errors'], ['host'], ['gather'], ['main']];
  const g = (edges: Record<string, string[]>): ImportGraph => new Map(Object.entries(edges));
  t.same(layerViolations(g({ 'src/gather/a.ts': ['src/host/b.ts', 'src/model/c.ts'], 'src/main.ts': ['src/gather/a.ts'] }), demo), []);
  t.match(layerViolations(g({ 'src/host/b.ts': ['src/gather/a.ts'] }), demo), [{ from: 'src/host/b.ts', to: 'src/gather/a.ts', why: /higher layer/ }]);
  t.match(layerViolations(g({ 'src/model/a.ts': ['src/errors.ts'] }), demo), [{ why: /share a layer/ }]);
  t.match(layerViolations(g({ 'src/extra/a.ts': [] }), demo), [{ why: 'extra is in no layer' }]);
  t.match(layerViolations(g({ 'src/gather/a.ts': ['src/extra/b.ts'] }), demo), [{ why: 'extra is in no layer' }]);
  t.same(cycles(g({ 'src/a.ts': ['src/b.ts'], 'src/b.ts': ['src/c.ts'], 'src/c.ts': [] })), []);
  t.same(cycles(g({ 'src/b.ts': ['src/c.ts'], 'src/c.ts': ['src/a.ts'], 'src/a.ts': ['src/b.ts'] })), [['src/a.ts', 'src/b.ts', 'src/c.ts']]);
  t.same(cycles(g({ 'src/a.ts': ['src/a.ts'] })), [['src/a.ts']]);
});

t.test('what counts as an import', async (t) => {
  const text = [
    "import type { A } from '../model/a.js';",
    "export { b } from './b.js';",
    "import fs from 'node:fs';",
    "import Fastify from 'fastify';",
    "const c = await import('../c.js');",
    "// import { z } from './commented.js';",
    "const w = new URL('./worker.js', import.meta.url);",
  ].join('\n');
  t.same(
    importsOf('src/gather/x.ts', text),
    ['src/c.ts', 'src/gather/b.ts', 'src/model/a.ts'],
    'type imports and re-exports count; comments and worker URLs do not',
  );
  t.same(parseLayers('text\n```layers\nmodel errors  # leaves\n\nhost\n```\n'), [['model', 'errors'], ['host']]);
  t.throws(() => parseLayers('no block'), /no ```layers block/);
});
