/**
 * Where the pods run and which images they run: the members' and etcd's affinity, node
 * selectors, tolerations and priority classes reach their pod specs; a digest pins an image;
 * etcd's own spreading survives an etcd.affinity that says nothing of it; etcd.extraEnv may not
 * shadow the chart's variables or flags (etcd exits when a variable shadows a flag).
 */
import { expect } from 'chai';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IPod } from 'kubernetes-models/v1/Pod';
import { TOOLSETS, ensureTools, find, renderChart, templateChart } from './support/tools.js';
import { PLACED } from './support/valuesMatrix.js';

describe('placing and pinning the pods', function () {
  this.timeout(60_000);
  before(ensureTools);

  for (const tools of TOOLSETS) {
    describe(`with ${tools.name}`, () => {
      it('affinity, tolerations, priority classes and digests reach the pod specs', async () => {
        const manifests = await renderChart(tools, PLACED);
        const unpinned = await renderChart(tools, {});
        const imageOf = (kind: 'Deployment' | 'StatefulSet') =>
          find<IDeployment | IStatefulSet>(unpinned, kind).spec!.template.spec!.containers[0]!
            .image!;
        const placed = PLACED as {
          image: { digest: string };
          affinity: object;
          tolerations: object[];
          etcd: { affinity: object; nodeSelector: object; tolerations: object[] };
        };
        const members = find<IDeployment>(manifests, 'Deployment').spec!.template.spec!;
        expect(members.affinity).to.deep.equal(placed.affinity);
        expect(members.tolerations).to.deep.equal(placed.tolerations);
        expect(members.priorityClassName).to.equal('pool-members');
        expect(members.containers[0]!.image).to.equal(
          `${imageOf('Deployment')}@${placed.image.digest}`,
        );
        const check = find<IPod>(manifests, 'Pod').spec!;
        expect(check.containers[0]!.image, 'the helm test pod runs the same image').to.equal(
          members.containers[0]!.image,
        );

        const etcd = find<IStatefulSet>(manifests, 'StatefulSet').spec!.template.spec!;
        expect(etcd.priorityClassName).to.equal('pool-etcd');
        expect(etcd.nodeSelector).to.deep.equal(placed.etcd.nodeSelector);
        expect(etcd.tolerations).to.deep.equal(placed.etcd.tolerations);
        expect(etcd.affinity?.nodeAffinity).to.deep.equal(
          (placed.etcd.affinity as { nodeAffinity: object }).nodeAffinity,
        );
        expect(
          etcd.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution,
          "etcd's own spreading stays",
        ).to.have.length(1);
        expect(etcd.containers[0]!.image).to.equal(
          `${imageOf('StatefulSet')}@${placed.image.digest}`,
        );
        expect(etcd.containers[0]!.env!.map((variable) => variable.name)).to.include('GOMAXPROCS');
      });

      it("an etcd.affinity with its own podAntiAffinity replaces etcd's spreading", async () => {
        const own = {
          requiredDuringSchedulingIgnoredDuringExecution: [
            {
              topologyKey: 'topology.kubernetes.io/zone',
              labelSelector: { matchLabels: { a: 'b' } },
            },
          ],
        };
        const manifests = await renderChart(tools, {
          etcd: { affinity: { podAntiAffinity: own } },
        });
        const etcd = find<IStatefulSet>(manifests, 'StatefulSet').spec!.template.spec!;
        expect(etcd.affinity?.podAntiAffinity).to.deep.equal(own);
      });

      it('etcd.extraEnv may not shadow a flag or a variable of the chart', async () => {
        const refusals = [
          {
            extraEnv: [{ name: 'ETCD_QUOTA_BACKEND_BYTES', value: '1' }],
            says: 'etcd.extraEnv[0]: ETCD_QUOTA_BACKEND_BYTES is already set by the flag --quota-backend-bytes',
          },
          {
            extraEnv: [{ name: 'ETCD_LISTEN_METRICS_URLS', value: 'http://0.0.0.0:9000' }],
            says: 'ETCD_LISTEN_METRICS_URLS is already set by the flag --listen-metrics-urls',
          },
          {
            extraEnv: [{ name: 'HOSTNAME', value: 'x' }],
            says: 'HOSTNAME is already set by the chart',
          },
        ];
        for (const { extraEnv, says } of refusals) {
          const result = await templateChart(tools, { etcd: { extraEnv } });
          expect(result.code, extraEnv[0]!.name).to.not.equal(0);
          expect(result.stderr).to.include(says);
        }
      });
    });
  }
});
