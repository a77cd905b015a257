/**
 * What the chart makes of the dashboard and the alert rules for one release, rendered by
 * Helm 3 and Helm 4 (real binaries, from scripts/fetch-helm.sh); off by default.
 *
 * - The PrometheusRule is the rule file with three changes: runbook links that Alertmanager
 *   and Grafana can open (absolute, under runbookBaseUrl), absent() scoped to the release's
 *   namespace and pools, and the slow-failover threshold at config.LEASE_TTL_SECONDS.
 *   promtool accepts the rendered groups, and its unit tests show the scoped absent() firing
 *   for this release while another namespace's pool runs. A rule file that lost what the
 *   chart rewrites fails the render, saying what is missing.
 * - The dashboard ConfigMap holds the dashboard file with a uid and title of the release's
 *   own, so that two releases install two dashboards.
 */
import { expect } from 'chai';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import {
  CHART_DIR,
  TOOLSETS,
  ensureTools,
  find,
  renderChart,
  run,
  type Manifest,
  type Values,
} from '../chart/support/tools.js';
import { DASHBOARD_FILE, RULES_FILE } from './catalog.js';
import type { Dashboard } from './dashboard.js';
import { promtool } from './promtool.js';

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations: Record<string, string>;
}

interface RuleGroups {
  groups: { name: string; rules: AlertRule[] }[];
}

/** `helm template` renders into namespace "pools" (test/chart/support/tools.ts). */
const NAMESPACE = 'pools';
const APP_VERSION = (
  parse(readFileSync(path.join(CHART_DIR, 'Chart.yaml'), 'utf8')) as {
    appVersion: string;
  }
).appVersion;
const DEFAULT_RUNBOOK_BASE = `https://github.com/service-pool-leader/service-pool-leader/blob/v${APP_VERSION}/`;
const RULES_ON = { metrics: { prometheusRule: { enabled: true } } };

function ruleFile(): RuleGroups {
  return parse(readFileSync(RULES_FILE, 'utf8')) as RuleGroups;
}

function renderedRules(manifests: Manifest[]): RuleGroups {
  return find<Manifest & { spec: RuleGroups }>(manifests, 'PrometheusRule').spec;
}

function rule(groups: RuleGroups, alert: string): AlertRule {
  const found = groups.groups.flatMap((g) => g.rules).find((r) => r.alert === alert);
  if (!found) throw new Error(`no alert ${alert}`);
  return found;
}

function dashboardOf(manifests: Manifest[]): Dashboard {
  const configMap = manifests.find((m) => m.metadata.labels?.grafana_dashboard === '1') as
    | (Manifest & { data: Record<string, string> })
    | undefined;
  const json = configMap?.data['service-pool-leader.json'];
  if (json === undefined) throw new Error('no dashboard ConfigMap');
  return JSON.parse(json) as Dashboard;
}

/** A scratch directory for one test, removed afterwards. */
async function withScratch<T>(use: (dir: string) => T | Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-observability-'));
  try {
    return await use(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the chart with the dashboard and the alert rules', function () {
  this.timeout(60_000);

  before(() => ensureTools());

  for (const tools of TOOLSETS) {
    const render = (values: Values, release?: string) => renderChart(tools, values, release);

    describe(tools.name, () => {
      it('renders neither by default', async () => {
        const manifests = await render({});
        expect(manifests.map((m) => m.kind)).to.not.include('PrometheusRule');
        expect(manifests.filter((m) => m.metadata.labels?.grafana_dashboard)).to.deep.equal([]);
      });

      it('the PrometheusRule is the rule file with absolute runbook links, absent() scoped to the release, and the TTL of its values', async () => {
        const manifests = await render({
          metrics: {
            prometheusRule: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
          },
        });
        const object = find(manifests, 'PrometheusRule');
        expect(object.metadata.namespace).to.equal(NAMESPACE);
        expect(object.metadata.labels?.release).to.equal('kube-prometheus-stack');

        const expected = ruleFile();
        for (const each of expected.groups.flatMap((g) => g.rules)) {
          each.annotations.runbook_url = `${DEFAULT_RUNBOOK_BASE}${each.annotations.runbook_url}`;
        }
        rule(expected, 'ServicePoolMetricsAbsent').expr =
          `absent(service_pool_is_leader{namespace="${NAMESPACE}", pool="default"})`;
        // The file's threshold is the default TTL, 5: the values' default.
        expect(renderedRules(manifests)).to.deep.equal(expected);
      });

      it('every runbook_url starts with runbookBaseUrl, with or without its trailing slash', async () => {
        for (const base of [
          'https://runbooks.example.com/spl/',
          'https://runbooks.example.com/spl',
        ]) {
          const manifests = await render({
            metrics: { prometheusRule: { enabled: true, runbookBaseUrl: base } },
          });
          for (const each of renderedRules(manifests).groups.flatMap((g) => g.rules)) {
            expect(each.annotations.runbook_url, each.alert).to.equal(
              `https://runbooks.example.com/spl/docs/operations.md#${each.alert.toLowerCase()}`,
            );
          }
        }
      });

      it('the slow-failover threshold follows config.LEASE_TTL_SECONDS', async () => {
        const manifests = await render({ ...RULES_ON, config: { LEASE_TTL_SECONDS: 12 } });
        const slow = rule(renderedRules(manifests), 'ServicePoolSlowFailover');
        expect(slow.expr).to.match(/\)\s*> 2 \* 12$/);
        expect(slow.expr).to.equal(
          rule(ruleFile(), 'ServicePoolSlowFailover').expr.replace(/> 2 \* 5$/, '> 2 * 12'),
        );
      });

      it('promtool checks the rendered groups; the scoped absent() fires for a missing pool of the release while another namespace runs one', async () => {
        const manifests = await render({
          ...RULES_ON,
          config: { POOLS: ' orders, billing ,', LEASE_TTL_SECONDS: 7 },
        });
        const groups = renderedRules(manifests);
        const absent = rule(groups, 'ServicePoolMetricsAbsent');
        expect(absent.expr).to.equal(
          `absent(service_pool_is_leader{namespace="${NAMESPACE}", pool="orders"}) or ` +
            `absent(service_pool_is_leader{namespace="${NAMESPACE}", pool="billing"})`,
        );
        await withScratch((dir) => {
          const rulesFile = path.join(dir, 'rendered.rules.yml');
          writeFileSync(rulesFile, JSON.stringify(groups));
          const check = promtool(['check', 'rules', rulesFile]);
          expect(check.status, check.output).to.equal(0);

          const isLeader = (namespace: string, pool: string) => ({
            series: `service_pool_is_leader{namespace="${namespace}", pool="${pool}", pod="p"}`,
            values: '1x10',
          });
          const testFile = path.join(dir, 'absent.test.yml');
          writeFileSync(
            testFile,
            JSON.stringify({
              rule_files: [rulesFile],
              evaluation_interval: '1m',
              tests: [
                {
                  interval: '1m',
                  // Pool "orders" runs in another namespace only; "billing" runs here.
                  input_series: [isLeader('shop', 'orders'), isLeader(NAMESPACE, 'billing')],
                  alert_rule_test: [
                    {
                      alertname: 'ServicePoolMetricsAbsent',
                      eval_time: '6m',
                      exp_alerts: [
                        {
                          exp_labels: {
                            severity: 'critical',
                            namespace: NAMESPACE,
                            pool: 'orders',
                          },
                          exp_annotations: absent.annotations,
                        },
                      ],
                    },
                  ],
                },
                {
                  interval: '1m',
                  input_series: [isLeader(NAMESPACE, 'orders'), isLeader(NAMESPACE, 'billing')],
                  alert_rule_test: [{ alertname: 'ServicePoolMetricsAbsent', eval_time: '6m' }],
                },
              ],
            }),
          );
          const tests = promtool(['test', 'rules', testFile]);
          expect(tests.status, tests.output).to.equal(0);
        });
      });

      it('a rule file without what the chart rewrites fails the render, naming what is missing', async () => {
        const original = readFileSync(RULES_FILE, 'utf8');
        const cases = [
          {
            edit: (text: string) => text.replace(/ # LEASE_TTL_SECONDS$/m, ''),
            message: 'no number before a "# LEASE_TTL_SECONDS" comment',
          },
          {
            edit: (text: string) =>
              text.replace(
                'expr: absent(service_pool_is_leader)',
                'expr: absent(service_pool_members)',
              ),
            message: 'no rule whose expr is absent(service_pool_is_leader)',
          },
          {
            edit: (text: string) => text.replace(/^\s*runbook_url: .*\n/gm, ''),
            message: 'no runbook_url to prefix',
          },
        ];
        for (const { edit, message } of cases) {
          expect(edit(original), message).to.not.equal(original);
          await withScratch(async (dir) => {
            const chart = path.join(dir, 'chart');
            cpSync(CHART_DIR, chart, { recursive: true });
            writeFileSync(path.join(chart, path.relative(CHART_DIR, RULES_FILE)), edit(original));
            const result = await run(tools.helm, [
              'template',
              'spl',
              chart,
              '--set',
              'metrics.prometheusRule.enabled=true',
            ]);
            expect(result.code, message).to.not.equal(0);
            expect(result.stderr).to.include(message);
          });
        }
      });

      it('two releases install two dashboards: a stable uid of at most 40 characters each, the same JSON otherwise', async () => {
        const file = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
        const values = {
          grafana: { dashboard: { enabled: true, namespace: 'monitoring' } },
        };
        const [one, again, other] = await Promise.all([
          render(values, 'spl'),
          render(values, 'spl'),
          render(values, 'spl-canary'),
        ]);
        const configMap = one.find((m) => m.metadata.labels?.grafana_dashboard === '1');
        expect(configMap?.kind).to.equal('ConfigMap');
        expect(configMap?.metadata.namespace).to.equal('monitoring');

        const [a, b, c] = [one, again, other].map(dashboardOf);
        expect(a!.uid).to.equal(b!.uid);
        expect(a!.uid).to.not.equal(c!.uid);
        expect(a!.title).to.not.equal(c!.title);
        for (const dashboard of [a!, c!]) {
          expect(dashboard.uid).to.match(/^[A-Za-z0-9_-]{1,40}$/);
          expect(dashboard.title).to.equal(
            `${file.title} (${NAMESPACE}/${a === dashboard ? 'spl' : 'spl-canary'})`,
          );
          expect({ ...dashboard, uid: file.uid, title: file.title }).to.deep.equal(file);
        }
      });

      it('grafana.dashboard.uid sets the uid', async () => {
        const manifests = await render({
          grafana: { dashboard: { enabled: true, uid: 'pools-spl' } },
        });
        expect(dashboardOf(manifests).uid).to.equal('pools-spl');
      });
    });
  }
});
