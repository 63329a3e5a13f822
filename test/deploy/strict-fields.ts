/**
 * The API server's strict field validation (`kubectl apply` with `--validate=strict`, the default since 1.27):
 * a key the schema does not declare is an error. The kubernetes-models validators do not check that
 * (Kubernetes' OpenAPI has no additionalProperties: false), and kubernetes-models ships its schemas only
 * as compiled validators, not as JSON. Its TypeScript declarations are generated from the same OpenAPI
 * definitions, one interface per schema with one property per schema property, a string index signature
 * where the schema has additionalProperties, and `{}`-like types where it has neither (free-form objects).
 * So the declarations are walked with the TypeScript checker alongside the object, and every key that is
 * not declared where the type declares properties and has no index signature is reported, with its path.
 */
import path from 'node:path';
import ts from 'typescript';

/** The kinds we deploy, and where their model interfaces live. */
const ROOTS = {
  Namespace: ['kubernetes-models/v1/Namespace', 'INamespace'],
  ServiceAccount: ['kubernetes-models/v1/ServiceAccount', 'IServiceAccount'],
  Service: ['kubernetes-models/v1/Service', 'IService'],
  DaemonSet: ['kubernetes-models/apps/v1/DaemonSet', 'IDaemonSet'],
  Role: ['kubernetes-models/rbac.authorization.k8s.io/v1/Role', 'IRole'],
  RoleBinding: ['kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding', 'IRoleBinding'],
  ClusterRole: ['kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole', 'IClusterRole'],
  ClusterRoleBinding: ['kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding', 'IClusterRoleBinding'],
  ConfigMap: ['kubernetes-models/v1/ConfigMap', 'IConfigMap'],
  Deployment: ['kubernetes-models/apps/v1/Deployment', 'IDeployment'],
  ServiceMonitor: ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', 'IServiceMonitor'],
} as const;

export type StrictKind = keyof typeof ROOTS;

export function isStrictKind(kind: string): kind is StrictKind {
  return Object.hasOwn(ROOTS, kind);
}

export interface StrictChecker {
  /** Paths of the keys the schema of `kind` does not declare, as the API server names them (`spec.x[0].y`). */
  unknownFields(kind: StrictKind, obj: unknown): string[];
}

/** Builds a checker over the model declarations in node_modules (about a second: one TypeScript program). */
export function createStrictChecker(repoRoot: string): StrictChecker {
  const rootFile = path.join(repoRoot, 'test', 'deploy', '__strict_roots__.ts');
  const source =
    Object.entries(ROOTS)
      .map(([kind, [mod, iface]]) => `import type { ${iface} as ${kind} } from '${mod}';`)
      .join('\n') +
    `\nexport interface Roots {\n${Object.keys(ROOTS)
      .map((k) => `  ${k}: ${k};`)
      .join('\n')}\n}\n`;
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.getSourceFile = (name, lang, onError, create) =>
    path.resolve(name) === rootFile ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, onError, create);
  host.fileExists = (name) => path.resolve(name) === rootFile || fileExists(name);
  host.readFile = (name) => (path.resolve(name) === rootFile ? source : readFile(name));
  const program = ts.createProgram({ rootNames: [rootFile], options, host });
  const checker = program.getTypeChecker();
  const sf = program.getSourceFile(rootFile);
  if (sf === undefined) throw new Error('strict-fields: root file not loaded');
  const unresolved = program.getSemanticDiagnostics(sf);
  if (unresolved.length > 0) {
    throw new Error(`strict-fields: cannot load the model declarations: ${ts.flattenDiagnosticMessageText(unresolved[0]?.messageText ?? '', ' ')}`);
  }
  const moduleSymbol = checker.getSymbolAtLocation(sf);
  const rootsSymbol = moduleSymbol === undefined ? undefined : checker.getExportsOfModule(moduleSymbol).find((s) => s.name === 'Roots');
  if (rootsSymbol === undefined) throw new Error('strict-fields: no Roots interface');
  const roots = checker.getDeclaredTypeOfSymbol(rootsSymbol);

  const typeOf = (sym: ts.Symbol): ts.Type => checker.getTypeOfSymbol(sym);
  const members = (t: ts.Type): ts.Type[] => (t.isUnion() ? t.types : [t]);

  const walk = (value: unknown, declared: ts.Type, at: string, out: string[]): void => {
    const type = checker.getNonNullableType(declared);
    if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return;
    if (Array.isArray(value)) {
      const arr = members(type).find((m) => checker.isArrayType(m));
      const elem = arr === undefined ? undefined : checker.getTypeArguments(arr as ts.TypeReference)[0];
      if (elem === undefined) return; // a type mismatch: the schema validator reports it
      value.forEach((v: unknown, i) => walk(v, elem, `${at}[${i}]`, out));
      return;
    }
    if (value === null || typeof value !== 'object') return;
    const objects = members(type).filter((m) => m.flags & ts.TypeFlags.Object && !checker.isArrayType(m));
    if (objects.length === 0) return; // a type mismatch: the schema validator reports it
    const index = objects.map((m) => checker.getIndexInfoOfType(m, ts.IndexKind.String)).find((i) => i !== undefined);
    const open = objects.every((m) => checker.getPropertiesOfType(m).length === 0);
    for (const [key, v] of Object.entries(value)) {
      const where = at === '' ? key : `${at}.${key}`;
      const prop = objects.map((m) => checker.getPropertyOfType(m, key)).find((p) => p !== undefined);
      if (prop !== undefined) walk(v, typeOf(prop), where, out);
      else if (index !== undefined) walk(v, index.type, where, out);
      else if (!open) out.push(where);
    }
  };

  return {
    unknownFields(kind, obj) {
      const prop = checker.getPropertyOfType(roots, kind);
      if (prop === undefined) throw new Error(`strict-fields: no model for ${kind}`);
      const out: string[] = [];
      walk(obj, typeOf(prop), '', out);
      return out;
    },
  };
}
