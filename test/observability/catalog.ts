/**
 * What the observability files are checked against: the metrics table of docs/operations.md
 * (name, type, labels), and the chart's dashboard and alert rules as files.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHART = path.join(ROOT, 'helm', 'service-pool-leader');
export const DASHBOARD_FILE = path.join(CHART, 'dashboards', 'service-pool-leader.json');
export const RULES_FILE = path.join(CHART, 'rules', 'service-pool-leader.rules.yml');
export const RULE_TESTS_DIR = path.join(ROOT, 'prometheus', 'tests');
export const LOCAL_CONFIG = path.join(ROOT, 'prometheus', 'prometheus.yml');

export interface DocumentedMetric {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  labels: string[];
}

/** The rows of the table under "## Metrics" in docs/operations.md. */
export function documentedMetrics(): DocumentedMetric[] {
  const doc = readFileSync(path.join(ROOT, 'docs', 'operations.md'), 'utf8');
  const section = doc.split(/^## Metrics$/m)[1]?.split(/^## /m)[0] ?? '';
  const rows = section.matchAll(/^\| `(service_pool_\w+)`\s*\|\s*(\w+)\s*\|([^|]*)\|$/gm);
  return [...rows].map(([, name, type, labels]) => ({
    name: name!,
    type: type as DocumentedMetric['type'],
    // "operation (gRPC method: range, ...)" and "reason (threw, ...)": the label is the word.
    labels: labels!
      .replace(/\([^)]*\)/g, '')
      .split(',')
      .map((label) => label.trim())
      .filter((label) => label !== ''),
  }));
}

/** Metric families a PromQL expression reads: `x_bucket`, `x_sum`, `x_count` count as `x`. */
export function familiesIn(expr: string, histograms: ReadonlySet<string>): string[] {
  const names = [...expr.matchAll(/\bservice_pool_\w+/g)].map(([name]) => {
    const base = name.replace(/_(bucket|sum|count)$/, '');
    return histograms.has(base) ? base : name;
  });
  return [...new Set(names)];
}
