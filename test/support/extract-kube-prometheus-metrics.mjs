// Lists the `container_*` metrics that kube-prometheus's rendered manifests query, with the label names their matchers
// use: the contract podvisor has to meet to stand in for the kubelet's cAdvisor endpoint.
//
//   node test/support/extract-kube-prometheus-metrics.mjs <mirror> > test/fixtures/kube-prometheus/container-metrics.json
//
// <mirror> is a git directory (bare or not) of prometheus-operator/kube-prometheus; every file under manifests/ at its
// HEAD is read with git. The PromQL expressions are:
//   - every YAML `expr` scalar (PrometheusRule recording rules and alerts);
//   - in every JSON document held in a YAML `*.json` scalar (the Grafana dashboard ConfigMaps): every `expr` string
//     (panel targets, annotations) and the `query` (or `definition`) of every templating variable of type `query`
//     (Grafana's `label_values(<selector>, <label>)`);
//   - in every YAML document held in a YAML `*.yaml` scalar (prometheus-adapter's config.yaml): every `*Query` scalar,
//     with the adapter's `<<.GroupBy>>` / `<<.LabelMatchers>>` placeholders skipped.
// Each expression is tokenized as PromQL: a metric name is an identifier outside `{...}`, `[...]` and the label lists
// of by/without/on/ignoring/group_left/group_right, not a keyword, not a function or aggregation name; the label names
// recorded for it are those of the matchers in the braces that follow it (or of a `{__name__="..."}` selector).
// Recording-rule names (with a `:`) are never `container_*` metrics and are left out.
//
// Only node: builtins, so that it runs without an install. `--debug` writes to stderr what was read and found.

import { execFileSync } from 'node:child_process';
import { argv, exit, stderr, stdout } from 'node:process';

const REPO = 'prometheus-operator/kube-prometheus';
const PREFIX = 'container_';

// ---------------------------------------------------------------------------------------------------------------------
// git

function git(dir, ...args) {
  return execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', maxBuffer: 1 << 30 });
}

// ---------------------------------------------------------------------------------------------------------------------
// A small YAML scanner: enough of YAML to find every `key: <scalar>` pair of a kubectl-style manifest (plain, quoted,
// literal and folded scalars, multi-line plain scalars, `- key:` sequence entries). Mappings and sequences themselves
// are not built: only the scalars are wanted.

const KEY_LINE = /^( *)((?:- +)*)("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"\-?:,[\]{}&*!|>%@`][^#]*?|-[^\s#][^#]*?)[ \t]*:(?:[ \t]+(.*))?$/;
const BLOCK_HEADER = /^([|>])([-+]?)([1-9]?)([-+]?)[ \t]*(?:#.*)?$/;

function indentOf(line) {
  return line.length - line.trimStart().length;
}

function unquoteKey(key) {
  if (key.startsWith('"')) return JSON.parse(key);
  if (key.startsWith("'")) return key.slice(1, -1).replace(/''/g, "'");
  return key;
}

function decodeDoubleQuoted(body) {
  // Line folding first (a line break and the indentation around it is one space, an empty line is a newline), then
  // escapes; an escaped line break joins the lines without a space.
  const folded = body.replace(/\\\n[ \t]*/g, '').replace(/[ \t]*\n([ \t]*\n)*[ \t]*/g, (m) => {
    const breaks = m.split('\n').length - 1;
    return breaks === 1 ? ' ' : '\n'.repeat(breaks - 1);
  });
  const escapes = {
    0: '\0',
    a: '\x07',
    b: '\b',
    t: '\t',
    '\t': '\t',
    n: '\n',
    v: '\v',
    f: '\f',
    r: '\r',
    e: '\x1b',
    ' ': ' ',
    '"': '"',
    '/': '/',
    '\\': '\\',
    N: '\x85',
    _: '\xa0',
    L: '\u2028',
    P: '\u2029',
  };
  return folded.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)/g, (m, e) => {
    if (e.length > 1) return String.fromCodePoint(parseInt(e.slice(1), 16));
    if (e in escapes) return escapes[e];
    throw new Error(`unknown escape ${m} in a double-quoted YAML scalar`);
  });
}

function decodeSingleQuoted(body) {
  return body
    .replace(/[ \t]*\n([ \t]*\n)*[ \t]*/g, (m) => {
      const breaks = m.split('\n').length - 1;
      return breaks === 1 ? ' ' : '\n'.repeat(breaks - 1);
    })
    .replace(/''/g, "'");
}

// Yields { key, value, line } (line: 1-based) for every mapping entry whose value is a scalar.
function* yamlScalars(text) {
  const lines = text.split('\n');
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const m = KEY_LINE.exec(line);
    if (!m || line.trimStart().startsWith('#')) {
      i++;
      continue;
    }
    const keyColumn = m[1].length + m[2].length;
    const key = unquoteKey(m[3]);
    const rest = m[4] ?? '';
    const startLine = i + 1;
    i++;
    if (rest === '' || rest.startsWith('#')) continue; // a nested mapping or sequence (or an empty value)
    const header = BLOCK_HEADER.exec(rest);
    if (header) {
      const [, style, chomp1, explicit, chomp2] = header;
      const chomp = chomp1 || chomp2;
      const body = [];
      let contentIndent = explicit ? keyColumn + Number(explicit) : -1;
      while (i < lines.length) {
        const l = lines[i];
        if (l.trim() === '') {
          body.push('');
          i++;
          continue;
        }
        const ind = indentOf(l);
        if (contentIndent < 0) {
          if (ind <= keyColumn) break;
          contentIndent = ind;
        }
        if (ind < contentIndent) break;
        body.push(l.slice(contentIndent));
        i++;
      }
      // trailing empty lines belong to the chomping, not the content
      let trailing = 0;
      while (body.length && body[body.length - 1] === '') {
        body.pop();
        trailing++;
      }
      let value;
      if (style === '|') value = body.join('\n');
      else {
        // folded: lines join with a space, except around empty or more-indented lines
        value = '';
        body.forEach((l, j) => {
          if (j === 0) value = l;
          else if (l === '' || /^[ \t]/.test(l) || body[j - 1] === '' || /^[ \t]/.test(body[j - 1])) value += '\n' + l;
          else value += ' ' + l;
        });
      }
      if (body.length && chomp !== '-') value += '\n';
      if (chomp === '+') value += '\n'.repeat(trailing);
      yield { key, value, line: startLine };
      continue;
    }
    if (rest.startsWith('"') || rest.startsWith("'")) {
      const q = rest[0];
      let body = rest.slice(1);
      const closing = q === '"' ? /^((?:[^"\\]|\\[\s\S])*)"[ \t]*(?:#.*)?$/ : /^((?:[^']|'')*)'[ \t]*(?:#.*)?$/;
      let c = closing.exec(body);
      while (!c && i < lines.length) {
        body += '\n' + lines[i];
        i++;
        c = closing.exec(body);
      }
      if (!c) throw new Error(`unterminated quoted scalar for key ${key} at line ${startLine}`);
      yield { key, value: q === '"' ? decodeDoubleQuoted(c[1]) : decodeSingleQuoted(c[1]), line: startLine };
      continue;
    }
    if (/^[[{&*!]/.test(rest)) {
      // flow collections, anchors, aliases, tags: not scalars a PromQL expression is kept in
      continue;
    }
    // plain scalar, possibly continued on more-indented lines
    const parts = [rest.replace(/[ \t]+#.*$/, '').trimEnd()];
    while (i < lines.length && lines[i].trim() !== '' && indentOf(lines[i]) > keyColumn && !lines[i].trimStart().startsWith('#')) {
      parts.push(lines[i].trim().replace(/[ \t]+#.*$/, ''));
      i++;
    }
    yield { key, value: parts.join(' '), line: startLine };
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// A PromQL tokenizer and the little parsing the names need.

const GROUPING_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const OTHER_KEYWORDS = new Set(['and', 'or', 'unless', 'offset', 'bool', 'atan2', 'inf', 'nan']);
const MATCH_OPS = new Set(['=', '!=', '=~', '!~']);

function tokenize(expr) {
  const tokens = [];
  let i = 0;
  const n = expr.length;
  while (i < n) {
    const ch = expr[i];
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    if (ch === '#') {
      while (i < n && expr[i] !== '\n') i++;
      continue;
    }
    const start = i;
    if (ch === '"' || ch === "'" || ch === '`') {
      i++;
      let value = '';
      while (i < n && expr[i] !== ch) {
        if (expr[i] === '\\' && ch !== '`') {
          value += expr[i + 1] ?? '';
          i += 2;
        } else value += expr[i++];
      }
      if (i >= n) throw new Error(`unterminated string in: ${expr}`);
      i++;
      tokens.push({ type: 'string', value, start });
      continue;
    }
    if (ch === '<' && expr[i + 1] === '<') {
      // prometheus-adapter template: <<.GroupBy>>, <<.LabelMatchers>>, <<.Series>>
      const end = expr.indexOf('>>', i);
      if (end < 0) throw new Error(`unterminated <<...>> in: ${expr}`);
      i = end + 2;
      tokens.push({ type: 'placeholder', value: expr.slice(start, i), start });
      continue;
    }
    if (ch === '$') {
      // Grafana variable: $name, ${name}, ${name:format}
      i++;
      if (expr[i] === '{') {
        const end = expr.indexOf('}', i);
        if (end < 0) throw new Error(`unterminated \${...} in: ${expr}`);
        i = end + 1;
      } else while (i < n && /[A-Za-z0-9_]/.test(expr[i])) i++;
      tokens.push({ type: 'variable', value: expr.slice(start, i), start });
      continue;
    }
    if (ch === '[') {
      // range or subquery ([5m], [$__rate_interval], [1h:5m]) or a Grafana [[var]]: nothing in it names anything
      let depth = 0;
      do {
        if (expr[i] === '[') depth++;
        else if (expr[i] === ']') depth--;
        i++;
      } while (i < n && depth > 0);
      if (depth > 0) throw new Error(`unterminated [ in: ${expr}`);
      tokens.push({ type: 'range', value: expr.slice(start, i), start });
      continue;
    }
    if (/[A-Za-z_:]/.test(ch)) {
      while (i < n && /[A-Za-z0-9_:]/.test(expr[i])) i++;
      tokens.push({ type: 'ident', value: expr.slice(start, i), start });
      continue;
    }
    if (/[0-9.]/.test(ch)) {
      // numbers, hex, exponents, durations (offset 5m, 1h30m)
      while (i < n && (/[0-9A-Za-z_.]/.test(expr[i]) || (/[eE]/.test(expr[i - 1]) && /[+-]/.test(expr[i])))) i++;
      tokens.push({ type: 'number', value: expr.slice(start, i), start });
      continue;
    }
    const two = expr.slice(i, i + 2);
    if (['!=', '=~', '!~', '==', '<=', '>='].includes(two)) {
      i += 2;
      tokens.push({ type: 'op', value: two, start });
      continue;
    }
    if ('{}(),=<>+-*/%^@'.includes(ch)) {
      i++;
      tokens.push({ type: ch === '{' || ch === '}' || ch === '(' || ch === ')' || ch === ',' ? ch : 'op', value: ch, start });
      continue;
    }
    throw new Error(`unexpected character ${JSON.stringify(ch)} at ${i} in: ${expr}`);
  }
  return tokens;
}

// Reads the matchers of a `{...}` starting at tokens[k] (the `{`). Returns { end (index after the `}`), labels (names
// used in matchers, __name__ included), name (a metric name given inside: `__name__="x"` or a quoted `"x"`),
// nameRegex }.
function readMatchers(tokens, k, expr) {
  const labels = [];
  let name;
  let nameRegex;
  let j = k + 1;
  for (;;) {
    const t = tokens[j];
    if (!t) throw new Error(`unterminated { in: ${expr}`);
    if (t.type === '}') return { end: j + 1, labels, name, nameRegex };
    if (t.type === ',' || t.type === 'placeholder' || t.type === 'variable') {
      j++;
      continue;
    }
    if (t.type === 'ident' || t.type === 'string') {
      const op = tokens[j + 1];
      if (op && op.type === 'op' && MATCH_OPS.has(op.value)) {
        const v = tokens[j + 2];
        if (!v || (v.type !== 'string' && v.type !== 'variable' && v.type !== 'placeholder')) throw new Error(`bad matcher value in: ${expr}`);
        labels.push(t.value);
        if (t.value === '__name__') {
          if (op.value === '=' && v.type === 'string') name = v.value;
          else nameRegex = `${op.value}${v.type === 'string' ? JSON.stringify(v.value) : v.value}`;
        }
        j += 3;
        continue;
      }
      if (t.type === 'string') {
        // Prometheus 3 UTF-8 syntax: {"metric.name", label="x"}
        name = t.value;
        j++;
        continue;
      }
    }
    throw new Error(`unexpected ${t.type} ${JSON.stringify(t.value)} inside {...} at ${t.start} in: ${expr}`);
  }
}

// Returns { selectors: [{ name, labels }], groupingLabels: [...], queriedLabels: [...], oddities: [...] } for one
// expression. `grafana`: the expression may be a templating query (label_values(...)).
function analyze(expr) {
  const tokens = tokenize(expr);
  const selectors = [];
  const groupingLabels = [];
  const queriedLabels = [];
  const oddities = [];
  // one entry per open paren: 'labels' (a by/on/... list), 'label_values' (Grafana's), or 'expr'
  const stack = [];
  let k = 0;
  while (k < tokens.length) {
    const t = tokens[k];
    const next = tokens[k + 1];
    const top = stack[stack.length - 1];
    if (t.type === '(') {
      const prev = tokens[k - 1];
      if (prev && prev.type === 'ident' && GROUPING_KEYWORDS.has(prev.value.toLowerCase())) stack.push({ kind: 'labels' });
      else if (prev && prev.type === 'ident' && prev.value === 'label_values') stack.push({ kind: 'label_values', arg: 0, tokensInArg: 0 });
      else stack.push({ kind: 'expr' });
      k++;
      continue;
    }
    if (t.type === ')') {
      if (!stack.length) throw new Error(`unbalanced ) in: ${expr}`);
      stack.pop();
      k++;
      continue;
    }
    if (t.type === ',' && top && top.kind === 'label_values') {
      top.arg++;
      k++;
      continue;
    }
    if (t.type === '{') {
      // a selector with no name before it: {__name__="..."} or {"name"}
      const m = readMatchers(tokens, k, expr);
      if (m.name !== undefined) selectors.push({ name: m.name, labels: m.labels.filter((l) => l !== '__name__') });
      else if (m.nameRegex !== undefined) oddities.push(`selector by __name__${m.nameRegex}`);
      else oddities.push('selector without a metric name');
      k = m.end;
      continue;
    }
    if (t.type === '}') throw new Error(`unbalanced } in: ${expr}`);
    if (t.type === 'ident') {
      const lower = t.value.toLowerCase();
      if (top && top.kind === 'labels') {
        groupingLabels.push(t.value);
        k++;
        continue;
      }
      if (top && top.kind === 'label_values' && (top.arg > 0 || (next && next.type === ')' && tokens[k - 1].type === '('))) {
        queriedLabels.push(t.value);
        k++;
        continue;
      }
      if (next && next.type === '(') {
        k++; // a function or an aggregation: sum(...), rate(...), label_values(...)
        continue;
      }
      if (next && next.type === 'ident' && (next.value.toLowerCase() === 'by' || next.value.toLowerCase() === 'without')) {
        k++; // an aggregation: sum by (...) (...)
        continue;
      }
      if (GROUPING_KEYWORDS.has(lower) || OTHER_KEYWORDS.has(lower)) {
        k++;
        continue;
      }
      if (next && next.type === 'op' && MATCH_OPS.has(next.value) && next.value !== '=') {
        throw new Error(`label matcher outside braces at ${t.start} in: ${expr}`);
      }
      // a metric name, with or without matchers
      let labels = [];
      let end = k + 1;
      if (next && next.type === '{') {
        const m = readMatchers(tokens, k + 1, expr);
        if (m.name !== undefined || m.nameRegex !== undefined) oddities.push(`${t.value} with a __name__ matcher too`);
        labels = m.labels;
        end = m.end;
      }
      selectors.push({ name: t.value, labels });
      k = end;
      continue;
    }
    k++;
  }
  if (stack.length) throw new Error(`unbalanced ( in: ${expr}`);
  return { selectors, groupingLabels, queriedLabels, oddities };
}

// ---------------------------------------------------------------------------------------------------------------------
// Where the expressions are

function* dashboardExpressions(doc, where) {
  const walk = function* (node, path) {
    if (Array.isArray(node)) {
      for (let j = 0; j < node.length; j++) yield* walk(node[j], `${path}[${j}]`);
      return;
    }
    if (!node || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (k === 'expr' && typeof v === 'string') yield { expr: v, kind: 'dashboard', where: `${where}${path}.expr` };
      else yield* walk(v, `${path}.${k}`);
    }
  };
  yield* walk(doc, '');
  const vars = doc?.templating?.list ?? [];
  for (const [j, v] of vars.entries()) {
    if (v?.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : typeof v.query?.query === 'string' ? v.query.query : v.definition;
    if (typeof q === 'string' && q.trim() !== '') yield { expr: q, kind: 'dashboard-variable', where: `${where}.templating.list[${j}].query` };
  }
}

function* expressionsOf(text, where, nested = false) {
  for (const { key, value, line } of yamlScalars(text)) {
    const at = `${where}:${line}`;
    if (key === 'expr') {
      yield { expr: value, kind: nested ? 'embedded-yaml' : 'rule', where: at };
    } else if (nested && /Query$/.test(key)) {
      yield { expr: value, kind: 'adapter', where: `${at} (${key})` };
    } else if (/\.(json|ya?ml)$/.test(key) && /^[{[]/.test(value.trimStart())) {
      // a JSON document (YAML flow style counts: grafana's datasources.yaml is written as JSON)
      let doc;
      try {
        doc = JSON.parse(value);
      } catch (err) {
        throw new Error(`${at}: ${key} is not JSON: ${err.message}`, { cause: err });
      }
      yield* dashboardExpressions(doc, `${at} ${key}`);
    } else if (/\.ya?ml$/.test(key)) {
      yield* expressionsOf(value, `${at} ${key}`, true);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------------

function main() {
  const mirror = argv[2];
  const debug = argv.includes('--debug');
  if (!mirror) {
    stderr.write('usage: node test/support/extract-kube-prometheus-metrics.mjs <kube-prometheus git dir> [--debug]\n');
    exit(2);
  }
  const sha = git(mirror, 'rev-parse', 'HEAD^{commit}').trim();
  const files = git(mirror, 'ls-tree', '-r', '--name-only', '-z', sha, '--', 'manifests/').split('\0').filter(Boolean).sort();

  const metrics = new Map(); // name -> { labels: Set, files: Set, expressions: n }
  const log = [];
  const grouping = new Set();
  const queried = new Set();
  const recordingNames = new Set();
  let expressionCount = 0;
  for (const file of files) {
    const text = git(mirror, 'show', `${sha}:${file}`);
    let inFile = 0;
    for (const { expr, kind, where } of expressionsOf(text, file)) {
      expressionCount++;
      inFile++;
      let result;
      try {
        result = analyze(expr);
      } catch (err) {
        throw new Error(`${where}: ${err.message}`, { cause: err });
      }
      const used = new Set();
      for (const { name, labels } of result.selectors) {
        if (!name.startsWith(PREFIX)) {
          if (name.includes(':') && name.includes(PREFIX)) recordingNames.add(name);
          continue;
        }
        if (name.includes(':')) {
          recordingNames.add(name);
          continue;
        }
        let entry = metrics.get(name);
        if (!entry) metrics.set(name, (entry = { labels: new Set(), files: new Set(), expressions: 0 }));
        for (const l of labels) entry.labels.add(l);
        entry.files.add(file);
        used.add(name);
      }
      for (const name of used) metrics.get(name).expressions++;
      if (used.size) {
        for (const l of result.groupingLabels) grouping.add(l);
        for (const l of result.queriedLabels) queried.add(l);
      }
      if (debug && (used.size || result.oddities.length))
        log.push(`${kind} ${where}: ${[...used].join(', ')}${result.oddities.length ? ` [${result.oddities.join('; ')}]` : ''}`);
    }
    if (debug) stderr.write(`read ${file}: ${inFile} expressions\n`);
  }
  if (debug) {
    stderr.write(`${expressionCount} expressions in ${files.length} files\n`);
    for (const l of log) stderr.write(`${l}\n`);
    stderr.write(`grouping labels (by/without/on/ignoring/group_*) in expressions using ${PREFIX}*: ${[...grouping].sort().join(', ')}\n`);
    stderr.write(`labels queried by label_values(${PREFIX}*, ...): ${[...queried].sort().join(', ')}\n`);
    stderr.write(`recording-rule names mentioning ${PREFIX} (not metrics): ${[...recordingNames].sort().join(', ')}\n`);
  }

  const out = {
    source: `${REPO}@${sha}`,
    generatedBy: 'node test/support/extract-kube-prometheus-metrics.mjs <mirror>',
    metrics: Object.fromEntries(
      [...metrics.keys()].sort().map((name) => {
        const e = metrics.get(name);
        return [name, { labels: [...e.labels].sort(), files: [...e.files].sort(), expressions: e.expressions }];
      }),
    ),
  };
  stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

main();
