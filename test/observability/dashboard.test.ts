/**
 * The Grafana dashboard, read as a file: what the issue asks it to show, only core panels,
 * templated datasource, namespace and pool, `$__rate_interval` in every rate, a unit on every
 * panel, queries that read documented metrics with the labels those metrics have, leader
 * changes counted from the pool's term, and etcd's own metrics selected through a variable.
 * Whether the queries return data (and whether etcd exports those metrics) is
 * dashboardQueries.test.ts, against a real Prometheus scraping a real pool and etcd.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CHART, DASHBOARD_FILE, documentedMetrics, familiesIn } from './catalog.js';
import { dashboardQueries, loadDashboard, variableQuery, type Panel } from './dashboard.js';

/** Panel types that ship with Grafana 10 and 11: no plugin to install. */
const CORE_PANELS = new Set([
  'row',
  'timeseries',
  'stat',
  'state-timeline',
  'status-history',
  'gauge',
  'bargauge',
  'table',
  'heatmap',
  'text',
]);

/** Labels the scrape adds to every series (kube-prometheus ServiceMonitor, or a local config). */
const TARGET_LABELS = ['namespace', 'pod', 'instance', 'job', 'service', 'container', 'endpoint'];

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

/** etcd's own metrics the issue asks for, as etcd 3.4 and later name them. */
const ETCD_METRICS = [
  'etcd_server_has_leader',
  'etcd_server_leader_changes_seen_total',
  'etcd_disk_wal_fsync_duration_seconds_bucket',
  'etcd_disk_backend_commit_duration_seconds_bucket',
  'etcd_mvcc_db_total_size_in_bytes',
  'etcd_server_quota_backend_bytes',
];

/**
 * A leader change is a change of the pool's term, the newest any member reports (a restarting
 * member reports 0 until it has read the pool, and a term is never reused), over a subquery
 * stepped at the panel's interval.
 */
const TERM_CHANGES =
  'changes(max by (namespace, pool) (service_pool_term{namespace=~"$namespace", pool=~"$pool"} > 0)[$__rate_interval:$__interval])';

describe('the Grafana dashboard file', () => {
  const dashboard = loadDashboard();
  const panels = dashboard.panels.filter((panel) => panel.type !== 'row');
  const queries = dashboardQueries(dashboard);
  const documented = documentedMetrics();
  const byName = new Map(documented.map((metric) => [metric.name, metric]));
  const histograms = new Set(documented.filter((m) => m.type === 'histogram').map((m) => m.name));

  it('is a Grafana 10+ dashboard (schema 39 or later) with a stable uid and no instance id', () => {
    expect(dashboard.schemaVersion).to.be.at.least(39);
    expect(dashboard.uid).to.equal('service-pool-leader');
    expect(dashboard.id ?? null).to.equal(null);
  });

  it('shows what the issue asks for', () => {
    const titles = panels.map((panel) => panel.title);
    expect(titles).to.include.members([
      'Current leader',
      'Members',
      'Leader changes',
      'Failover outage',
      'Work rate by role and outcome',
      'Work latency',
      'Forward latency',
      'Keep-alive failures',
      'Lease time left',
      'Watch resyncs',
      'etcd requests by operation',
      'etcd has leader',
      'etcd leader changes',
      'etcd WAL fsync and backend commit (p99)',
      'etcd database size and quota',
    ]);
    const leader = panels.find((panel) => panel.title === 'Current leader');
    expect(leader?.type).to.equal('state-timeline');
    expect(leader?.targets?.[0]?.expr).to.include('service_pool_leader_info');
    const latency = panels.find((panel) => panel.title === 'Work latency');
    expect(
      latency?.targets?.map((t) => t.expr.match(/histogram_quantile\(([\d.]+)/)?.[1]),
    ).to.deep.equal(['0.5', '0.99']);
  });

  it('uses only panels that ship with Grafana', () => {
    for (const panel of dashboard.panels) expect(CORE_PANELS, panel.title).to.include(panel.type);
  });

  it('has a unit on every panel', () => {
    for (const panel of panels) {
      expect(panel.fieldConfig?.defaults?.unit, panel.title).to.be.a('string').with.length.above(0);
    }
  });

  it('queries the templated Prometheus datasource everywhere', () => {
    const datasource = dashboard.templating.list.find((v) => v.name === 'datasource');
    expect(datasource).to.include({ type: 'datasource', query: 'prometheus' });
    for (const panel of panels) {
      expect(panel.datasource, panel.title).to.deep.equal(DATASOURCE);
      for (const target of panel.targets ?? []) {
        expect(target.datasource, `${panel.title} ${target.refId}`).to.deep.equal(DATASOURCE);
      }
    }
    for (const annotation of dashboard.annotations.list.filter((a) => a.expr !== undefined)) {
      expect(annotation.datasource, annotation.name).to.deep.equal(DATASOURCE);
    }
  });

  it('has namespace and pool variables, both with "All" as the regex .*', () => {
    for (const name of ['namespace', 'pool']) {
      const variable = dashboard.templating.list.find((v) => v.name === name);
      expect(variable, name).to.include({ type: 'query', includeAll: true, allValue: '.*' });
      expect(variable?.datasource, name).to.deep.equal(DATASOURCE);
      expect(variableQuery(variable!), name).to.match(/^label_values\(service_pool_\w+.*\)$/);
    }
  });

  it('uses $__rate_interval as the range of every rate, increase and changes', () => {
    for (const { where, expr } of queries) {
      for (const [, range] of expr.matchAll(/\[([^\]]*)\]/g)) {
        // A subquery steps at the panel's interval: never fewer than two points per range.
        expect(range, where).to.be.oneOf(['$__rate_interval', '$__rate_interval:$__interval']);
      }
      const windows =
        expr.match(/\b(rate|irate|increase|changes|delta|idelta|deriv|\w+_over_time)\(/g) ?? [];
      const ranged = expr.match(/\[\$__rate_interval(:\$__interval)?\]/g) ?? [];
      expect(ranged.length, where).to.be.at.least(windows.length);
    }
  });

  it("counts leader changes from the pool's term, which a restarting member cannot move", () => {
    const changes = panels.find((panel) => panel.title === 'Leader changes');
    expect(changes?.targets?.map((t) => t.expr)).to.deep.equal([TERM_CHANGES]);
    const annotation = dashboard.annotations.list.find((a) => a.name === 'Leader changes');
    expect(annotation?.expr).to.equal(`${TERM_CHANGES} > 0`);
    for (const { where, expr } of queries) {
      expect(expr, where).to.not.include('service_pool_leader_changes_total');
    }
  });

  it("reads etcd's own metrics, in the namespace and of the etcd jobs the variables select", () => {
    const variable = dashboard.templating.list.find((v) => v.name === 'etcd_job');
    expect(variable).to.include({ type: 'query', includeAll: true, allValue: '.*' });
    expect(variable?.datasource).to.deep.equal(DATASOURCE);
    expect(variableQuery(variable!)).to.equal(
      'label_values(etcd_server_has_leader{namespace=~"$namespace"}, job)',
    );
    const read = new Set<string>();
    for (const { where, expr } of queries) {
      for (const [, name, matchers] of expr.matchAll(/(?<![\w$])(etcd_\w+)(?:\{([^}]*)\})?/g)) {
        read.add(name!);
        expect(matchers ?? '', `${where}: ${name}`).to.include('namespace=~"$namespace"');
        expect(matchers ?? '', `${where}: ${name}`).to.include('job=~"$etcd_job"');
      }
    }
    expect([...read].sort()).to.deep.equal([...ETCD_METRICS].sort());
  });

  it('aggregates every histogram by le before histogram_quantile', () => {
    for (const { where, expr } of queries) {
      for (const [, by] of expr.matchAll(/histogram_quantile\([\d.]+,\s*sum by \(([^)]*)\)/g)) {
        expect(
          by!.split(',').map((label) => label.trim()),
          where,
        ).to.include('le');
      }
      const quantiles = expr.match(/histogram_quantile\(/g) ?? [];
      const bucketed =
        expr.match(/histogram_quantile\([\d.]+,\s*sum by \([^)]*\)\s*\(rate\(\w+_bucket\{/g) ?? [];
      expect(bucketed.length, where).to.equal(quantiles.length);
    }
  });

  it('reads documented metrics, filtered by namespace, and by pool where the metric has one', () => {
    const selectors = [
      ...queries.map(({ where, expr }) => ({ where, expr })),
      ...dashboard.templating.list
        .filter((v) => v.type === 'query')
        .map((v) => ({ where: `variable ${v.name}`, expr: variableQuery(v) })),
    ];
    for (const { where, expr } of selectors) {
      for (const [, name, matchers] of expr.matchAll(/\b(service_pool_\w+)(?:\{([^}]*)\})?/g)) {
        const [family] = familiesIn(name!, histograms);
        const metric = byName.get(family!);
        expect(
          metric,
          `${where} reads ${name}, which docs/operations.md does not list`,
        ).to.not.equal(undefined);
        const labels = [...(matchers ?? '').matchAll(/(\w+)\s*=~?/g)].map(([, label]) => label!);
        const known = [
          ...metric!.labels,
          ...TARGET_LABELS,
          ...(metric!.type === 'histogram' ? ['le'] : []),
        ];
        for (const label of labels)
          expect(known, `${where}: ${name} has no label ${label}`).to.include(label);
        if (!where.startsWith('variable namespace')) {
          expect(matchers ?? '', `${where}: ${name}`).to.include('namespace=~"$namespace"');
        }
        if (metric!.labels.includes('pool') && !where.startsWith('variable ')) {
          expect(matchers ?? '', `${where}: ${name}`).to.include('pool=~"$pool"');
        }
      }
    }
  });

  it('groups only by labels the metrics have', () => {
    for (const { where, expr } of queries) {
      const families = familiesIn(expr, histograms).map((name) => byName.get(name)!);
      const known = new Set([
        ...families.flatMap((metric) => metric.labels),
        ...TARGET_LABELS,
        'le',
      ]);
      for (const [, by] of expr.matchAll(/\bby \(([^)]*)\)/g)) {
        for (const label of by!.split(',').map((l) => l.trim())) {
          expect(known, `${where}: by (${by})`).to.include(label);
        }
      }
    }
  });

  it('lays panels out on the 24-column grid without overlaps, with unique ids', () => {
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).to.equal(ids.length);
    const overlaps = (a: Panel, b: Panel) =>
      a.gridPos.x < b.gridPos.x + b.gridPos.w &&
      b.gridPos.x < a.gridPos.x + a.gridPos.w &&
      a.gridPos.y < b.gridPos.y + b.gridPos.h &&
      b.gridPos.y < a.gridPos.y + a.gridPos.h;
    for (const [i, a] of dashboard.panels.entries()) {
      expect(a.gridPos.x + a.gridPos.w, a.title).to.be.at.most(24);
      for (const b of dashboard.panels.slice(i + 1)) {
        expect(overlaps(a, b), `"${a.title}" overlaps "${b.title}"`).to.equal(false);
      }
    }
  });

  it("is the file the chart's dashboard ConfigMap loads", () => {
    const template = readFileSync(
      path.join(CHART, 'templates', 'grafana-dashboard-configmap.yaml'),
      'utf8',
    );
    expect(template).to.include(`$file := "${path.relative(CHART, DASHBOARD_FILE)}"`);
    expect(template).to.include('.Files.Get $file');
    expect(template).to.include('grafana_dashboard: "1"');
    expect(template).to.include('.Values.grafana.dashboard.enabled');
  });
});
