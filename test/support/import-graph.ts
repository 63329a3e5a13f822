/**
 * The import graph of src/ and the checks the layering test makes on it. Edges are every relative module specifier
 * the TypeScript scanner finds (`import`, `import type`, `export … from`, `import()`), so type-only imports count.
 * (A worker entry started with `new URL('./x.js', import.meta.url)` is not an import: it runs in another thread and
 * imports its starter's module there.) Pure functions over the graph, I/O only in readImportGraph.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** Repository-relative file → the repository-relative files it imports (only files inside the graph's root). */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

function listTs(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return listTs(p);
    return e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** `./x.js` from `src/a/b.ts` → `src/a/x.ts`; undefined for packages and node: builtins. */
export function resolveSpecifier(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const p = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  return p.replace(/\.js$/, '.ts');
}

export function importsOf(file: string, text: string): string[] {
  const specs = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
  return [...new Set(specs.map((s) => resolveSpecifier(file, s)).filter((p): p is string => p !== undefined))].sort();
}

/** The graph of every .ts file under `root` (e.g. `src`), relative to `repo`. */
export function readImportGraph(repo: string, root: string): ImportGraph {
  const graph = new Map<string, string[]>();
  for (const abs of listTs(path.join(repo, root)).sort()) {
    const file = path.relative(repo, abs).split(path.sep).join('/');
    graph.set(file, importsOf(file, fs.readFileSync(abs, 'utf8')));
  }
  return graph;
}

/**
 * The layers in a ```layers block of a markdown document: one layer per line, lowest first; the names on one line
 * share a layer. Each name is a directory `src/<name>/` or a file `src/<name>.ts`.
 */
export function parseLayers(markdown: string): string[][] {
  const m = /```layers\n([\s\S]*?)```/.exec(markdown);
  if (m?.[1] === undefined) throw new Error('no ```layers block');
  return m[1]
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '')
    .map((l) => l.split(/\s+/));
}

/** The unit a file belongs to: `src/gather/gatherer.ts` → `gather`, `src/main.ts` → `main`. */
export function unitOf(file: string, root = 'src'): string {
  const rest = file.slice(root.length + 1);
  const slash = rest.indexOf('/');
  return slash === -1 ? rest.replace(/\.ts$/, '') : rest.slice(0, slash);
}

export interface LayerViolation {
  from: string;
  to: string;
  why: string;
}

/**
 * Every edge that goes against the layers: to a unit of the same layer (they must not import each other), or to a
 * higher layer. Files of units the layers do not name are violations too (each unit must have its place).
 */
export function layerViolations(graph: ImportGraph, layers: readonly (readonly string[])[], root = 'src'): LayerViolation[] {
  const rank = new Map<string, number>();
  layers.forEach((names, i) => names.forEach((n) => rank.set(n, i)));
  const out: LayerViolation[] = [];
  for (const [from, tos] of graph) {
    const a = unitOf(from, root);
    const ra = rank.get(a);
    if (ra === undefined) {
      out.push({ from, to: from, why: `${a} is in no layer` });
      continue;
    }
    for (const to of tos) {
      const b = unitOf(to, root);
      if (a === b) continue;
      const rb = rank.get(b);
      if (rb === undefined) out.push({ from, to, why: `${b} is in no layer` });
      else if (rb === ra) out.push({ from, to, why: `${a} and ${b} share a layer and must not import each other` });
      else if (rb > ra) out.push({ from, to, why: `${a} (layer ${ra}) imports ${b} (layer ${rb}), a higher layer` });
    }
  }
  return out;
}

/** Every import cycle between files (type imports included), each as the list of files around it, smallest first. */
export function cycles(graph: ImportGraph): string[][] {
  const found = new Map<string, string[]>();
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const to of graph.get(f) ?? []) {
      if (!graph.has(to)) continue;
      const s = state.get(to);
      if (s === 'open') {
        const cycle = stack.slice(stack.indexOf(to));
        const start = cycle.indexOf([...cycle].sort()[0] ?? '');
        const canonical = [...cycle.slice(start), ...cycle.slice(0, start)];
        found.set(canonical.join(' → '), canonical);
      } else if (s === undefined) visit(to);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return [...found.values()];
}
