/**
 * Offline validation of rendered objects against the Kubernetes API, two ways:
 *
 * - the OpenAPI schemas of Kubernetes 1.36 (kubernetes-models 5.1.0, which 5.0.0 updated to
 *   v1.36.0) and of the prometheus-operator CRDs (@kubernetes-models/prometheus-operator
 *   6.0.0), compiled to ajv validators: types, formats, enums, required fields;
 * - unknown fields. Kubernetes' OpenAPI schemas allow them, and so do those validators, but
 *   the API server drops them (kubectl apply warns), so a misspelt `readinesProbe` would
 *   silently deploy a pod without a readiness probe. Here every object becomes a typed object
 *   literal (`const o: IDeployment = {...}`) in one TypeScript program over the same packages'
 *   interfaces, whose excess-property checks reject any field the API does not define.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import type { Manifest } from './tools.js';
import { REPO_ROOT } from './tools.js';

export const KUBERNETES_VERSION = '1.36';

/** The API versions these objects may use: all served by Kubernetes 1.36. */
export const SERVED_API_VERSIONS = new Set([
  'v1',
  'apps/v1',
  'policy/v1',
  'networking.k8s.io/v1',
  'monitoring.coreos.com/v1',
]);

/** The module of a kind's model, and the name of its interface. */
function modelOf(manifest: Manifest): { module: string; typeName: string } {
  const { apiVersion, kind } = manifest;
  if (!/^[A-Za-z]+$/.test(kind) || !/^[a-z0-9./]+$/.test(apiVersion)) {
    throw new Error(`not a Kubernetes apiVersion/kind: ${apiVersion} ${kind}`);
  }
  const module = apiVersion.startsWith('monitoring.coreos.com/')
    ? `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`
    : `kubernetes-models/${apiVersion}/${kind}`;
  return { module, typeName: `I${kind}` };
}

type ModelClass = new (data: unknown) => { validate(): void };

/** Schema violations of one object, as messages; empty when it is valid. */
export async function schemaErrors(manifest: Manifest): Promise<string[]> {
  const { module } = modelOf(manifest);
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(module)) as Record<string, unknown>;
  } catch {
    return [`no schema for ${manifest.apiVersion} ${manifest.kind} (${module})`];
  }
  const Model = loaded[manifest.kind] as ModelClass;
  try {
    new Model(structuredClone(manifest)).validate();
    return [];
  } catch (error) {
    return [(error as Error).message];
  }
}

export interface LabelledManifest {
  /** Where it came from, e.g. "Helm 4.1 defaults: Deployment/spl-service-pool-leader". */
  label: string;
  manifest: Manifest;
}

/**
 * Fields of these objects that their Kubernetes type does not define, and values of the wrong
 * type, as "label: path: message". One TypeScript program checks them all (a few seconds).
 */
export function unknownFieldErrors(objects: LabelledManifest[]): string[] {
  // The virtual file sits under test/, so that imports resolve from test/node_modules, where
  // the test tooling (test/package.json) installs the models.
  const fileName = path.join(REPO_ROOT, 'test', 'chart', '__rendered_manifests__.ts');
  const imports: string[] = [];
  const declarations: string[] = [];
  objects.forEach(({ manifest }, i) => {
    const { module, typeName } = modelOf(manifest);
    imports.push(`import type { ${typeName} as T${i} } from '${module}';`);
    declarations.push(`export const object${i}: T${i} = ${JSON.stringify(manifest, null, 1)};`);
  });
  const source = [...imports, ...declarations].join('\n');

  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2023,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (name) => (name === fileName ? source : readFile(name));
  host.fileExists = (name) => name === fileName || ts.sys.fileExists(name);
  host.getSourceFile = (name, languageVersion, ...rest) =>
    name === fileName
      ? ts.createSourceFile(name, source, languageVersion, true)
      : getSourceFile(name, languageVersion, ...rest);
  const program = ts.createProgram([fileName], options, host);
  const sourceFile = program.getSourceFile(fileName)!;
  const diagnostics = [
    ...program.getSyntacticDiagnostics(sourceFile),
    ...program.getSemanticDiagnostics(sourceFile),
  ];
  return diagnostics.map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    if (diagnostic.start === undefined) return message;
    const { index, jsonPath } = locate(sourceFile, diagnostic.start);
    const label = index === undefined ? '(imports)' : objects[index]!.label;
    return `${label}: ${jsonPath || '(object)'}: ${message}`;
  });
}

/** Which object (`objectN`) a position is in, and the JSON path of the field there. */
function locate(sourceFile: ts.SourceFile, position: number) {
  let node: ts.Node = sourceFile;
  for (;;) {
    const child = node.getChildren(sourceFile).find((c) => c.pos <= position && position < c.end);
    if (child === undefined) break;
    node = child;
  }
  const parts: string[] = [];
  let index: number | undefined;
  for (let current: ts.Node | undefined = node; current; current = current.parent) {
    const parent: ts.Node | undefined = current.parent;
    if (ts.isPropertyAssignment(current) && ts.isStringLiteral(current.name)) {
      parts.unshift(current.name.text);
    } else if (parent && ts.isArrayLiteralExpression(parent) && ts.isExpression(current)) {
      parts.unshift(`[${parent.elements.indexOf(current)}]`);
    } else if (ts.isVariableDeclaration(current) && ts.isIdentifier(current.name)) {
      index = Number(current.name.text.replace('object', ''));
    }
  }
  return { index, jsonPath: parts.join('.').replace(/\.\[/g, '[') };
}

/** kubernetes-models' own version, read from its package.json in the test tooling. */
export function modelsVersion(
  name: 'kubernetes-models' | '@kubernetes-models/prometheus-operator',
) {
  const pkg = JSON.parse(
    readFileSync(path.join(REPO_ROOT, 'test', 'node_modules', name, 'package.json'), 'utf8'),
  ) as { version: string };
  return pkg.version;
}
