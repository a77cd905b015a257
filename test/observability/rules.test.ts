/**
 * The alert rules: promtool accepts them, its unit tests show every alert firing and not
 * firing, each alert waits out a scrape or a burst before it fires, and each carries what an
 * on-call engineer needs (severity, summary, description, a runbook section). What the chart
 * makes of them for a release is chart.test.ts.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import {
  CHART,
  LOCAL_CONFIG,
  ROOT,
  RULES_FILE,
  RULE_TESTS_DIR,
  documentedMetrics,
  familiesIn,
} from './catalog.js';
import { promtool } from './promtool.js';

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface RuleTestFile {
  rule_files: string[];
  tests: { name: string; alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
}

const ruleTestFiles = readdirSync(RULE_TESTS_DIR)
  .filter((name) => name.endsWith('.yml'))
  .map((name) => path.join(RULE_TESTS_DIR, name));

function alertRules(): AlertRule[] {
  const file = parse(readFileSync(RULES_FILE, 'utf8')) as { groups: { rules: AlertRule[] }[] };
  return file.groups.flatMap((group) => group.rules);
}

describe('alert rules', function () {
  this.timeout(30_000);

  it('pass promtool check rules', () => {
    const run = promtool(['check', 'rules', RULES_FILE]);
    expect(run.status, run.output).to.equal(0);
    expect(run.output).to.include(`SUCCESS: ${alertRules().length} rules found`);
  });

  it('load in the local Prometheus config (promtool check config prometheus/prometheus.yml)', () => {
    const run = promtool(['check', 'config', LOCAL_CONFIG]);
    expect(run.status, run.output).to.equal(0);
    expect(run.output).to.include(path.relative(ROOT, RULES_FILE));
  });

  it('pass their promtool unit tests (prometheus/tests/*.yml)', () => {
    expect(ruleTestFiles).to.have.length.above(0);
    const run = promtool(['test', 'rules', ...ruleTestFiles]);
    expect(run.status, run.output).to.equal(0);
  });

  it('every alert has a unit test where it fires and one where it stays quiet', () => {
    const cases = ruleTestFiles.flatMap((file) => {
      const tests = parse(readFileSync(file, 'utf8')) as RuleTestFile;
      for (const ruleFile of tests.rule_files) {
        expect(
          path.resolve(path.dirname(file), ruleFile),
          `${file} tests the chart's rules`,
        ).to.equal(RULES_FILE);
      }
      return tests.tests.flatMap((test) => test.alert_rule_test ?? []);
    });
    for (const { alert } of alertRules()) {
      const own = cases.filter((c) => c.alertname === alert);
      expect(
        own.some((c) => (c.exp_alerts ?? []).length > 0),
        `${alert} fires in a test`,
      ).to.equal(true);
      expect(
        own.some((c) => (c.exp_alerts ?? []).length === 0),
        `${alert} quiet in a test`,
      ).to.equal(true);
    }
  });

  it('every alert has a severity, a summary, a description and a runbook section', () => {
    const operations = readFileSync(path.join(ROOT, 'docs', 'operations.md'), 'utf8');
    for (const rule of alertRules()) {
      expect(rule.labels?.severity, rule.alert).to.be.oneOf(['critical', 'warning']);
      expect(rule.annotations?.summary, rule.alert).to.be.a('string').with.length.above(0);
      expect(rule.annotations?.description, rule.alert).to.be.a('string').with.length.above(0);
      expect(rule.annotations?.runbook_url, rule.alert).to.equal(
        `docs/operations.md#${rule.alert.toLowerCase()}`,
      );
      expect(operations, rule.alert).to.match(new RegExp(`^### ${rule.alert}$`, 'm'));
    }
  });

  it('every alert holds for at least 30 s (two scrapes) before it fires', () => {
    const seconds = (duration = '0s') =>
      [...duration.matchAll(/(\d+)([hms])/g)].reduce(
        (sum, [, n, unit]) => sum + Number(n) * { h: 3600, m: 60, s: 1 }[unit as 'h' | 'm' | 's'],
        0,
      );
    for (const rule of alertRules()) {
      expect(seconds(rule.for), `${rule.alert} for: ${rule.for ?? 'none'}`).to.be.at.least(30);
    }
  });

  it('read only documented metrics', () => {
    const documented = documentedMetrics();
    const names = new Set(documented.map((m) => m.name));
    const histograms = new Set(documented.filter((m) => m.type === 'histogram').map((m) => m.name));
    for (const rule of alertRules()) {
      const families = familiesIn(rule.expr, histograms);
      expect(families, rule.alert).to.have.length.above(0);
      for (const family of families)
        expect(names, `${rule.alert} reads ${family}`).to.include(family);
    }
  });

  it("are what the chart's PrometheusRule embeds", () => {
    const template = readFileSync(path.join(CHART, 'templates', 'prometheusrule.yaml'), 'utf8');
    expect(template).to.include(`$file := "${path.relative(CHART, RULES_FILE)}"`);
    expect(template).to.include('.Files.Get $file');
    expect(template).to.include('.Values.metrics.prometheusRule.enabled');
  });
});
