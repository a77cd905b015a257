/**
 * Prometheus reaches what the chart asks it to scrape: with the ServiceMonitors on, the
 * NetworkPolicies admit the Prometheus of `networkPolicy.prometheus` (by default
 * prometheus-operator's pods in namespace monitoring) to the members' http port and the
 * bundled etcd's metrics port, and nobody else gains anything; the etcd ServiceMonitor
 * selects the port etcd serves its metrics on. Admission is evaluated as a CNI that enforces
 * NetworkPolicy (Calico, Cilium) would.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IStatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IPodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { admits, type Destination, type PodEnd } from './support/networkPolicy.js';
import {
  TOOLSETS,
  ensureTools,
  find,
  renderChart,
  renderNotes,
  type Manifest,
  type Values,
} from './support/tools.js';

const NAMESPACE = 'pools';
const PROMETHEUS: PodEnd = {
  namespace: 'monitoring',
  labels: {
    'app.kubernetes.io/name': 'prometheus',
    'app.kubernetes.io/managed-by': 'prometheus-operator',
    prometheus: 'kube-prometheus-stack-prometheus',
  },
};
const GRAFANA: PodEnd = {
  namespace: 'monitoring',
  labels: { 'app.kubernetes.io/name': 'grafana' },
};
const NEIGHBOUR: PodEnd = { namespace: NAMESPACE, labels: { app: 'client' } };
const SCRAPING: Values = { metrics: { serviceMonitor: { enabled: true } } };

function destination(template: IPodTemplateSpec): Destination {
  const ports: Record<string, number> = {};
  for (const container of template.spec!.containers) {
    for (const port of container.ports ?? []) if (port.name) ports[port.name] = port.containerPort;
  }
  return { namespace: NAMESPACE, labels: template.metadata!.labels!, ports };
}

function pool(manifests: Manifest[]) {
  const policies = manifests.filter((m) => m.kind === 'NetworkPolicy') as INetworkPolicy[];
  const members = destination(find<IDeployment>(manifests, 'Deployment').spec!.template);
  const etcd = destination(find<IStatefulSet>(manifests, 'StatefulSet').spec!.template);
  return {
    member: (source: PodEnd, port: number) => admits(policies, source, members, port),
    etcd: (source: PodEnd, port: number) => admits(policies, source, etcd, port),
    memberPod: { namespace: NAMESPACE, labels: members.labels },
  };
}

describe('scraping the pool and its etcd through the NetworkPolicies', function () {
  this.timeout(60_000);
  before(ensureTools);

  for (const tools of TOOLSETS) {
    describe(`with ${tools.name}`, () => {
      it("with the ServiceMonitors on, Prometheus reaches the members' /metrics and etcd's metrics; nobody else gains", async () => {
        const { member, etcd, memberPod } = pool(await renderChart(tools, SCRAPING));
        expect(member(PROMETHEUS, 8080), 'Prometheus → member http').to.equal(true);
        expect(etcd(PROMETHEUS, 2381), 'Prometheus → etcd metrics').to.equal(true);
        expect(etcd(PROMETHEUS, 2379), 'Prometheus → etcd client port').to.equal(false);
        expect(member(GRAFANA, 8080), 'another pod of monitoring').to.equal(false);
        expect(etcd(GRAFANA, 2381)).to.equal(false);
        expect(member(NEIGHBOUR, 8080), 'a pod of the namespace (networkPolicy.from)').to.equal(
          true,
        );
        expect(etcd(NEIGHBOUR, 2381), "a pod of the namespace → etcd's metrics").to.equal(false);
        expect(etcd(memberPod, 2379), 'a member → etcd client port').to.equal(true);
      });

      it('without them, Prometheus of another namespace is not admitted', async () => {
        const { member, etcd } = pool(await renderChart(tools, {}));
        expect(member(PROMETHEUS, 8080)).to.equal(false);
        expect(etcd(PROMETHEUS, 2381)).to.equal(false);
      });

      it('networkPolicy.prometheus admits a Prometheus elsewhere, and only it', async () => {
        const elsewhere: PodEnd = { namespace: 'observability', labels: { app: 'prom' } };
        const { member, etcd } = pool(
          await renderChart(tools, {
            ...SCRAPING,
            networkPolicy: {
              prometheus: [
                {
                  namespaceSelector: {
                    matchLabels: { 'kubernetes.io/metadata.name': 'observability' },
                  },
                  podSelector: { matchLabels: { app: 'prom' } },
                },
              ],
            },
          }),
        );
        expect(member(elsewhere, 8080)).to.equal(true);
        expect(etcd(elsewhere, 2381)).to.equal(true);
        expect(member(PROMETHEUS, 8080)).to.equal(false);
      });

      it("the etcd ServiceMonitor selects etcd's Service on the port etcd serves metrics on", async () => {
        const manifests = await renderChart(tools, {
          metrics: { serviceMonitor: { enabled: true, labels: { release: 'stack' } } },
        });
        const monitors = manifests.filter(
          (m) => m.kind === 'ServiceMonitor',
        ) as unknown as IServiceMonitor[];
        expect(monitors.map((m) => m.metadata!.name)).to.have.members([
          'spl-service-pool-leader',
          'spl-service-pool-leader-etcd',
        ]);
        const monitor = monitors.find((m) => m.metadata!.name === 'spl-service-pool-leader-etcd')!;
        expect(monitor.metadata!.labels!.release).to.equal('stack');
        const service = find<IService>(manifests, 'Service', 'spl-service-pool-leader-etcd');
        const selected = Object.entries(monitor.spec.selector.matchLabels ?? {}).every(
          ([key, value]) => service.metadata!.labels![key] === value,
        );
        expect(selected, 'the monitor selects the etcd Service').to.equal(true);
        const endpoint = monitor.spec.endpoints[0]!;
        const servicePort = service.spec!.ports!.find((p) => p.name === endpoint.port)!;
        const statefulSet = find<IStatefulSet>(manifests, 'StatefulSet');
        const container = statefulSet.spec!.template.spec!.containers[0]!;
        const listen = container.args!.find((a) => a.startsWith('--listen-metrics-urls='))!;
        expect(new URL(listen.split('=')[1]!).port).to.equal(String(servicePort.port));
        const target = container.ports!.find(
          (p) => p.containerPort === (servicePort.targetPort ?? servicePort.port),
        );
        expect(target?.name).to.equal('etcd-metrics');

        const without = await renderChart(tools, {
          metrics: { serviceMonitor: { enabled: true, etcd: false } },
        });
        expect(without.filter((m) => m.kind === 'ServiceMonitor')).to.have.length(1);
        expect(pool(without).etcd(PROMETHEUS, 2381), 'no etcd monitor, no admission').to.equal(
          false,
        );
      });
    });
  }

  it('NOTES say how to see the dashboard: the ConfigMap and title the chart renders, or make grafana when it is off', async () => {
    const on = { grafana: { dashboard: { enabled: true } } };
    const notes = await renderNotes(on);
    const configMap = (await renderChart(TOOLSETS.at(-1)!, on)).find(
      (m) => m.kind === 'ConfigMap' && m.metadata?.name?.endsWith('-dashboard'),
    ) as { metadata: { name: string }; data: Record<string, string> } | undefined;
    expect(configMap, 'the dashboard ConfigMap').to.not.equal(undefined);
    const title = (JSON.parse(Object.values(configMap!.data)[0]!) as { title: string }).title;
    expect(notes).to.include(
      `the ConfigMap ${configMap!.metadata.name} (label grafana_dashboard: "1")`,
    );
    expect(notes).to.include(`the dashboard "${title}"`);
    expect(notes).to.include(
      'kubectl -n monitoring port-forward service/kube-prometheus-stack-grafana 3000:80',
    );
    // The names make grafana uses (its Grafana Service is <stack>-grafana in $MONITORING).
    const grafanaScript = readFileSync(
      new URL('../../scripts/grafana.sh', import.meta.url),
      'utf8',
    );
    expect(grafanaScript).to.include('STACK=kube-prometheus-stack\n');
    expect(grafanaScript).to.include('MONITORING="${MONITORING:-monitoring}"');
    expect(grafanaScript).to.include('port-forward service/$STACK-grafana 3000:80');
    const off = await renderNotes({});
    expect(off).to.include('`make grafana` prints (INSTALL=1');
    expect(off).to.include('--set grafana.dashboard.enabled=true');
  });

  it('NOTES say which Prometheus the NetworkPolicy admits, when the ServiceMonitor is on', async () => {
    const notes = await renderNotes(SCRAPING);
    expect(notes).to.include('networkPolicy.prometheus');
    expect(notes).to.include(
      '[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}',
    );
    expect(await renderNotes({})).to.not.include('networkPolicy.prometheus');
  });
});
