/**
 * k8s/: the kustomize base is the chart's default rendering written out by hand (so one can
 * read it and `kubectl apply -k` it without Helm), and the kind overlay puts it in a namespace
 * that enforces the restricted Pod Security Standard with the locally built image. The two
 * kubectl versions render it alike, and it never drifts from the chart.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { restrictedViolations } from './support/podSecurity.js';
import {
  KIND_OVERLAY,
  REPO_ROOT,
  TOOLSETS,
  ensureTools,
  find,
  renderChart,
  renderKustomization,
  type Manifest,
} from './support/tools.js';

const BASE = path.join(REPO_ROOT, 'k8s', 'base');
/** Labels and annotations only Helm has: its bookkeeping, and the config checksum. */
const HELM_ONLY_LABELS = [
  'helm.sh/chart',
  'app.kubernetes.io/managed-by',
  'app.kubernetes.io/version',
];
const HELM_ONLY_ANNOTATIONS = ['checksum/config'];

/** kustomize's configMapGenerator names a ConfigMap <name>-<hash of its contents>. */
const GENERATED_NAME = /^(.+)-[a-z0-9]{10}$/;

/** The name the Deployment's envFrom gives to the members' ConfigMap. */
function memberConfigMapName(manifests: Manifest[]): string {
  const deployment = find<IDeployment>(manifests, 'Deployment');
  return deployment.spec!.template.spec!.containers[0]!.envFrom![0]!.configMapRef!.name!;
}

/**
 * Drops what only Helm renders (recursively through pod templates) and the hash suffix that
 * only kustomize's generator adds, and sorts the objects.
 */
function comparable(manifests: Manifest[]): Manifest[] {
  const strip = (metadata: {
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  }) => {
    for (const label of HELM_ONLY_LABELS) delete metadata.labels?.[label];
    for (const annotation of HELM_ONLY_ANNOTATIONS) delete metadata.annotations?.[annotation];
    if (metadata.annotations && Object.keys(metadata.annotations).length === 0) {
      delete metadata.annotations;
    }
  };
  const hashed = GENERATED_NAME.exec(memberConfigMapName(manifests));
  const unhash = (text: string) => (hashed ? text.replaceAll(hashed[0], hashed[1]!) : text);
  return (JSON.parse(unhash(JSON.stringify(manifests))) as Manifest[])
    .filter((manifest) => manifest.metadata.annotations?.['helm.sh/hook'] === undefined)
    .map((manifest) => {
      strip(manifest.metadata);
      const template = (manifest.spec as { template?: { metadata?: object } } | undefined)
        ?.template;
      if (template?.metadata) strip(template.metadata);
      return manifest;
    })
    .sort((a, b) => `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`));
}

describe('k8s/: the kustomize base and the kind overlay', function () {
  this.timeout(60_000);
  before(ensureTools);

  it('k8s/base is what the chart renders with its defaults for a release named service-pool-leader', async () => {
    const [chart, base] = await Promise.all([
      renderChart(TOOLSETS.at(-1)!, {}, 'service-pool-leader'),
      renderKustomization(TOOLSETS.at(-1)!, BASE),
    ]);
    expect(comparable(base)).to.deep.equal(comparable(chart));
  });

  it("the members' ConfigMap is generated, so that an edit of k8s/base/member.env rolls the members under apply -k", async () => {
    const tools = TOOLSETS.at(-1)!;
    const before = await renderKustomization(tools, BASE);
    const name = memberConfigMapName(before);
    expect(name).to.match(GENERATED_NAME);
    expect(find(before, 'ConfigMap', name).data).to.include({ LEASE_TTL_SECONDS: '5' });
    const copy = mkdtempSync(path.join(os.tmpdir(), 'spl-kustomize-'));
    try {
      cpSync(BASE, copy, { recursive: true });
      const env = path.join(copy, 'member.env');
      writeFileSync(env, readFileSync(env, 'utf8').replace('LOG_LEVEL=info', 'LOG_LEVEL=debug'));
      const after = await renderKustomization(tools, copy);
      const renamed = memberConfigMapName(after);
      expect(renamed, 'a new name: a new pod template, a rollout').to.not.equal(name);
      expect(find(after, 'ConfigMap', renamed).data).to.include({ LOG_LEVEL: 'debug' });
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('both kubectl versions render k8s/overlays/kind alike', async () => {
    const [older, newer] = await Promise.all(
      TOOLSETS.map((tools) => renderKustomization(tools, KIND_OVERLAY)),
    );
    expect(older).to.deep.equal(newer);
  });

  it('the kind overlay: its own namespace enforcing the restricted Pod Security Standard, the local image, never pulled', async () => {
    const manifests = await renderKustomization(TOOLSETS[0]!, KIND_OVERLAY);
    const namespace = find(manifests, 'Namespace');
    expect(namespace.metadata.labels).to.include({
      'pod-security.kubernetes.io/enforce': 'restricted',
    });
    for (const manifest of manifests.filter((m) => m.kind !== 'Namespace')) {
      expect(manifest.metadata.namespace, `${manifest.kind}/${manifest.metadata.name}`).to.equal(
        namespace.metadata.name,
      );
    }
    const deployment = find<IDeployment>(manifests, 'Deployment');
    const container = deployment.spec!.template.spec!.containers[0]!;
    expect(container.image).to.equal('service-pool-leader:dev');
    expect(container.imagePullPolicy).to.equal('IfNotPresent');
    const etcd = find<IStatefulSet>(manifests, 'StatefulSet');
    for (const spec of [deployment.spec!.template.spec!, etcd.spec!.template.spec!]) {
      expect(restrictedViolations(spec)).to.deep.equal([]);
    }
  });
});
