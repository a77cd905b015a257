/**
 * The Grafana dashboard as data: its panels, the PromQL of every target and annotation, and
 * the template variables filled in the way Grafana fills them before a query.
 */
import { readFileSync } from 'node:fs';
import { DASHBOARD_FILE } from './catalog.js';

export interface Datasource {
  type?: string;
  uid?: string;
}

export interface Target {
  refId: string;
  expr: string;
  legendFormat?: string;
  datasource?: Datasource;
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: Datasource;
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: Target[];
}

export interface Variable {
  type: string;
  name: string;
  query?: string | { query: string };
  datasource?: Datasource;
  includeAll?: boolean;
  allValue?: string;
}

export interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  id?: number | null;
  panels: Panel[];
  templating: { list: Variable[] };
  annotations: { list: { name: string; expr?: string; datasource?: Datasource }[] };
}

/** One PromQL query of the dashboard, named by where it sits. */
export interface DashboardQuery {
  where: string;
  panel?: string;
  expr: string;
}

export function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
}

/** Every panel target and every PromQL annotation. */
export function dashboardQueries(dashboard: Dashboard): DashboardQuery[] {
  const fromPanels = dashboard.panels.flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({
      where: `panel "${panel.title}" target ${target.refId}`,
      panel: panel.title,
      expr: target.expr,
    })),
  );
  const fromAnnotations = dashboard.annotations.list
    .filter((annotation) => annotation.expr !== undefined)
    .map((annotation) => ({ where: `annotation "${annotation.name}"`, expr: annotation.expr! }));
  return [...fromPanels, ...fromAnnotations];
}

/** The PromQL of a query variable: `label_values(<selector>, <label>)`. */
export function variableQuery(variable: Variable): string {
  const query = variable.query;
  return typeof query === 'string' ? query : (query?.query ?? '');
}

/**
 * Fills Grafana's variables as a query would see them. `$__rate_interval` and `$__interval`
 * are what Grafana derives from the scrape interval and the step; every `$name` and
 * `${name}` must be given, or the expression keeps a `$` and this throws.
 */
export function fillVariables(expr: string, values: Record<string, string>): string {
  const filled = expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced?: string, bare?: string) => {
    const value = values[(braced ?? bare)!];
    return value ?? whole;
  });
  if (filled.includes('$')) throw new Error(`a variable is left in ${filled}`);
  return filled;
}
