/**
 * Every object the chart renders (with each values case of the matrix, with Helm 3 and Helm
 * 4) and every object of `kubectl kustomize k8s/overlays/kind` is one that Kubernetes 1.36
 * accepts as written: valid against its OpenAPI schema (CRDs: the prometheus-operator
 * schemas), with no field the API does not know, in an API version it serves.
 */
import { expect } from 'chai';
import {
  KUBERNETES_VERSION,
  SERVED_API_VERSIONS,
  modelsVersion,
  schemaErrors,
  unknownFieldErrors,
  type LabelledManifest,
} from './support/kubernetesSchemas.js';
import {
  KIND_OVERLAY,
  TOOLSETS,
  ensureTools,
  renderChart,
  renderKustomization,
  type Manifest,
} from './support/tools.js';
import { VALUES_MATRIX } from './support/valuesMatrix.js';

interface Source {
  name: string;
  render: () => Promise<Manifest[]>;
}

const SOURCES: Source[] = TOOLSETS.flatMap((tools) => [
  ...VALUES_MATRIX.map((valuesCase) => ({
    name: `${tools.name} chart, ${valuesCase.name}`,
    render: () => renderChart(tools, valuesCase.values),
  })),
  {
    name: `${tools.name} kubectl kustomize k8s/overlays/kind`,
    render: () => renderKustomization(tools, KIND_OVERLAY),
  },
]);

describe(`rendered objects against the Kubernetes ${KUBERNETES_VERSION} OpenAPI schemas (kubernetes-models ${modelsVersion('kubernetes-models')}, prometheus-operator CRDs from @kubernetes-models/prometheus-operator ${modelsVersion('@kubernetes-models/prometheus-operator')})`, function () {
  this.timeout(120_000);
  const rendered = new Map<string, Manifest[]>();
  let fieldErrors: string[] = [];

  before(async () => {
    ensureTools();
    await Promise.all(
      SOURCES.map(async (source) => rendered.set(source.name, await source.render())),
    );
    const all: LabelledManifest[] = [...rendered].flatMap(([name, manifests]) =>
      manifests.map((manifest) => ({
        label: `${name}: ${manifest.kind}/${manifest.metadata.name}`,
        manifest,
      })),
    );
    fieldErrors = unknownFieldErrors(all);
  });

  for (const source of SOURCES) {
    it(`${source.name}: every object is valid, in a served API version, with no unknown field`, async () => {
      const manifests = rendered.get(source.name)!;
      expect(manifests).to.have.length.greaterThan(0);
      const problems: string[] = [];
      for (const manifest of manifests) {
        const where = `${manifest.kind}/${manifest.metadata.name}`;
        if (!SERVED_API_VERSIONS.has(manifest.apiVersion)) {
          problems.push(`${where}: apiVersion ${manifest.apiVersion} is not one we expect`);
        }
        for (const error of await schemaErrors(manifest)) problems.push(`${where}: ${error}`);
      }
      problems.push(...fieldErrors.filter((error) => error.startsWith(`${source.name}: `)));
      expect(problems, problems.join('\n')).to.deep.equal([]);
    });
  }

  it('the checks catch what they are for: a wrong type, a misspelt field, a missing required field', async () => {
    const deployment = rendered
      .get(SOURCES[0]!.name)!
      .find((manifest) => manifest.kind === 'Deployment')!;
    type Editable = Manifest & {
      spec: Record<string, unknown> & {
        template: { spec: { containers: Record<string, unknown>[] } };
      };
    };
    const edited = (edit: (copy: Editable) => void) => {
      const copy = structuredClone(deployment) as Editable;
      edit(copy);
      return copy;
    };
    const misspelt = edited((d) => {
      const container = d.spec.template.spec.containers[0]!;
      container.readinesProbe = container.readinessProbe;
      delete container.readinessProbe;
    });
    const wrongType = edited((d) => {
      d.spec.template.spec.containers[0]!.ports = [{ name: 'http', containerPort: '8080' }];
    });
    const missing = edited((d) => delete d.spec.selector);

    expect(await schemaErrors(wrongType)).to.deep.equal([
      'data/spec/template/spec/containers/0/ports/0/containerPort must be integer',
    ]);
    expect(await schemaErrors(missing)).to.deep.equal([
      'data/spec must have required property selector',
    ]);
    // What the OpenAPI schemas let through, and the API server would silently drop:
    expect(await schemaErrors(misspelt)).to.deep.equal([]);
    expect(
      unknownFieldErrors([
        { label: 'misspelt', manifest: misspelt },
        { label: 'wrong type', manifest: wrongType },
      ]),
    ).to.deep.equal([
      `misspelt: spec.template.spec.containers[0].readinesProbe: Object literal may only specify known properties, and '"readinesProbe"' does not exist in type 'IContainer'.`,
      `wrong type: spec.template.spec.containers[0].ports[0].containerPort: Type 'string' is not assignable to type 'number'.`,
    ]);
  });
});
