/**
 * The chart ships the dashboard and the alert rules as they are here: rendered by Helm 3 and
 * Helm 4 (real binaries, from scripts/fetch-helm.sh), the ConfigMap holds the dashboard file
 * unchanged and the PrometheusRule holds the rule file's groups unchanged. Off by default.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, parse } from 'yaml';
import { CHART, DASHBOARD_FILE, ROOT, RULES_FILE } from './catalog.js';

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: unknown;
}

function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  if (result.error || result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')}: ${result.error?.message ?? result.stderr}`);
  }
  return result.stdout;
}

function render(helm: string, values: string[]): Manifest[] {
  const out = run(helm, [
    'template',
    'spl',
    CHART,
    '--namespace',
    'shop',
    ...values.flatMap((v) => ['--set', v]),
  ]);
  return parseAllDocuments(out)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((doc): doc is Manifest => doc !== null);
}

describe('the chart with the dashboard and the alert rules', function () {
  this.timeout(60_000);

  before(() => {
    run(path.join(ROOT, 'scripts', 'fetch-helm.sh'), []);
  });

  for (const version of ['helm3', 'helm4']) {
    const helm = path.join(ROOT, '.tools', version, 'helm');

    it(`${version}: renders neither by default`, () => {
      const manifests = render(helm, []);
      expect(manifests.map((m) => m.kind)).to.not.include('PrometheusRule');
      expect(manifests.filter((m) => m.metadata.labels?.grafana_dashboard)).to.deep.equal([]);
    });

    it(`${version}: embeds both files unchanged, with the labels the operator and Grafana select`, () => {
      const manifests = render(helm, [
        'metrics.prometheusRule.enabled=true',
        'metrics.prometheusRule.labels.release=kube-prometheus-stack',
        'grafana.dashboard.enabled=true',
        'grafana.dashboard.namespace=monitoring',
      ]);
      const rule = manifests.find((m) => m.kind === 'PrometheusRule');
      expect(rule?.metadata.namespace).to.equal('shop');
      expect(rule?.metadata.labels?.release).to.equal('kube-prometheus-stack');
      expect(rule?.spec).to.deep.equal(parse(readFileSync(RULES_FILE, 'utf8')));

      const dashboard = manifests.find((m) => m.metadata.labels?.grafana_dashboard === '1');
      expect(dashboard?.kind).to.equal('ConfigMap');
      expect(dashboard?.metadata.namespace).to.equal('monitoring');
      expect(dashboard?.data?.['service-pool-leader.json']).to.equal(
        readFileSync(DASHBOARD_FILE, 'utf8').trimEnd(),
      );
    });
  }
});
