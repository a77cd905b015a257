/**
 * The dashboard against a real Prometheus scraping a live pool and its etcd, as a user sees
 * it after a follower crash-loops and then `kubectl delete pod <leader>`: three members on a
 * real etcd (its metrics on their own port, as the chart's etcd exposes them on 2381), all
 * scraped every second; follower c is SIGKILLed and restarted, then the leader gets SIGTERM,
 * then its successor does. Every query of every panel, with the variables filled in as
 * Grafana fills them, must return data over the test window; the leadership panels must show
 * both failovers and nothing for c's restart.
 *
 * Variables: the local members have no namespace label, and "All" (`.*`) matches a missing
 * label, so $namespace is `.*`; $pool is `default`; $etcd_job is the etcd scrape job;
 * $__rate_interval is 15 s (Grafana's floor of four scrape intervals would be 4 s; 15 s is
 * what a 15 s scrape gets) and $__interval, the step, 1 s.
 *
 * Two failovers, not one: a member creates its failover histogram series at the first
 * failover it observes, with the count already at 1, so rate() sees a failover only from the
 * second one on.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { EtcdCluster } from '../support/etcdCluster.js';
import { freePort, freePorts } from '../../src/demo/ports.js';
import { TestPool, eventually, workLoop } from '../support/pool.js';
import { DASHBOARD_FILE, RULES_FILE } from './catalog.js';
import { dashboardQueries, fillVariables, loadDashboard, variableQuery } from './dashboard.js';
import { PrometheusServer, isFiniteSample, type Series } from './prometheusServer.js';

const MEMBERS = ['a', 'b', 'c'];
const JOB = 'service-pool-leader';
const ETCD_JOB = 'etcd';
const VARIABLES = {
  datasource: 'prometheus',
  namespace: '.*',
  pool: 'default',
  etcd_job: ETCD_JOB,
  __rate_interval: '15s',
  __interval: '1s',
};

const seconds = () => Date.now() / 1000;

/** The values of `label` among series that have a finite sample equal to `value` (or any). */
function labelValues(series: Series[], label: string, value?: number): string[] {
  const found = series
    .filter((s) =>
      s.values.some((v) => isFiniteSample(v) && (value === undefined || Number(v[1]) === value)),
    )
    .map((s) => s.metric[label] ?? '');
  return [...new Set(found)].sort();
}

function finiteValues(series: Series[]): number[] {
  return series.flatMap((s) => s.values.filter(isFiniteSample).map(([, v]) => Number(v)));
}

describe('the dashboard on a real Prometheus scraping a live pool', function () {
  this.timeout(90_000);
  const dashboard = loadDashboard();
  let etcd: EtcdCluster | undefined;
  let etcdMetricsUrl = '';
  let pool: TestPool | undefined;
  let prometheus: PrometheusServer | undefined;
  let start = 0;
  let end = 0;
  /** By then a had claimed the pool. */
  let aLeading = 0;
  /** After c's restart was scraped, before the first failover. */
  let quietUntil = 0;

  const panelQueryExpr = (title: string, refId = 'A') => {
    const panel = dashboard.panels.find((p) => p.title === title);
    const expr = panel?.targets?.find((t) => t.refId === refId)?.expr;
    if (expr === undefined) throw new Error(`no panel "${title}" target ${refId}`);
    return expr;
  };

  const panelQuery = (title: string, refId = 'A') =>
    prometheus!.queryRange(fillVariables(panelQueryExpr(title, refId), VARIABLES), start, end);

  /** Waits until Prometheus' latest scrape names `leader` as the leader of every member. */
  const scrapedLeader = (leader: string, members: number) =>
    eventually(
      `Prometheus scraped ${leader} as leader from ${members} members`,
      async () => {
        const series = await prometheus!.query(
          `count(service_pool_leader_info{job="${JOB}", leader_id="${leader}"})`,
        );
        return Number(series[0]?.values[0]?.[1] ?? 0) === members;
      },
      15_000,
    );

  /** The latest scraped start time of member `id`'s process. */
  const scrapedStart = async (id: string) => {
    const series = await prometheus!.query(`process_start_time_seconds{job="${JOB}", pod="${id}"}`);
    return Number(series[0]?.values[0]?.[1] ?? 0);
  };

  before(async () => {
    const began = Date.now();
    const etcdMetricsPort = await freePort();
    etcdMetricsUrl = `http://127.0.0.1:${etcdMetricsPort}/metrics`;
    etcd = await EtcdCluster.start({
      size: 1,
      extraArgs: [`--listen-metrics-urls=http://127.0.0.1:${etcdMetricsPort}`],
    });
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '2' });
    const ports = await freePorts(MEMBERS.length);
    const config = {
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: [RULES_FILE],
      scrape_configs: [
        {
          job_name: JOB,
          // As a ServiceMonitor would, each target carries its pod name; no namespace here.
          static_configs: MEMBERS.map((id, i) => ({
            targets: [`127.0.0.1:${ports[i]}`],
            labels: { pod: id },
          })),
        },
        { job_name: ETCD_JOB, static_configs: [{ targets: [`127.0.0.1:${etcdMetricsPort}`] }] },
      ],
    };
    // Prometheus takes ~5 s to its first scrape: start it while the members start.
    const starting = PrometheusServer.start(config);
    for (const [i, id] of MEMBERS.entries()) await pool.startMember(id, ports[i]);
    prometheus = await starting;
    expect(await pool.agreedLeader()).to.equal('a');
    aLeading = seconds();
    const load = workLoop(pool, ['c']);

    await scrapedLeader('a', 3);
    start = Math.floor(seconds()) - 1;
    console.log(
      `      measured: first scrape of all 3 members ${Date.now() - began} ms after start`,
    );
    await delay(3000);

    // Follower c crashes and comes back on its port, under the same leader.
    const cStarted = await scrapedStart('c');
    await pool.member('c').kill();
    await pool.startMember('c', ports[2]);
    expect(await pool.agreedLeader()).to.equal('a');
    await eventually(
      'Prometheus scraped the restarted c',
      async () => (await scrapedStart('c')) > cStarted,
      15_000,
    );
    await delay(2000);
    quietUntil = Math.floor(seconds());

    const first = Date.now();
    expect((await pool.member('a').stop()).code).to.equal(0);
    expect(await pool.agreedLeader(5000, { except: 'a' })).to.equal('b');
    await scrapedLeader('b', 2);
    console.log(
      `      measured: SIGTERM a to Prometheus scraping b as leader ${Date.now() - first} ms`,
    );
    await delay(3000);

    const second = Date.now();
    expect((await pool.member('b').stop()).code).to.equal(0);
    expect(await pool.agreedLeader(5000, { except: 'b' })).to.equal('c');
    await scrapedLeader('c', 1);
    console.log(
      `      measured: SIGTERM b to Prometheus scraping c as leader ${Date.now() - second} ms`,
    );
    await delay(3000);
    await load.stop();
    end = Math.ceil(seconds());
    console.log(
      `      measured: pool and scrapes ready for queries ${Date.now() - began} ms after start`,
    );
  });

  after(async () => {
    await prometheus?.close();
    await pool?.close();
    await etcd?.close();
  });

  afterEach(function () {
    const output = prometheus?.recentOutput() ?? '';
    if (this.currentTest?.state === 'failed' && output !== '') {
      console.log(`--- prometheus ---\n${output}`);
    }
  });

  it('every panel query and annotation returns data over the test window', async () => {
    const empty: string[] = [];
    const zero: string[] = [];
    const queries = dashboardQueries(dashboard);
    // Every "expr" in the file is among them: an extraction that found none would pass below.
    const inFile = readFileSync(DASHBOARD_FILE, 'utf8').match(/"expr":/g)?.length ?? 0;
    expect(queries).to.have.length(inFile);
    expect(inFile).to.be.above(10);
    for (const { where, expr } of queries) {
      const series = await prometheus!.queryRange(fillVariables(expr, VARIABLES), start, end);
      const values = finiteValues(series);
      if (values.length === 0) empty.push(`${where}: ${fillVariables(expr, VARIABLES)}`);
      else if (values.every((v) => v === 0)) zero.push(where);
    }
    // Keep-alive failures, watch resyncs and forward retries do not happen in a healthy pool:
    // those panels draw their per-pool zero.
    console.log(`      measured: zero throughout: ${zero.join('; ') || 'none'}`);
    expect(empty, 'queries without data').to.deep.equal([]);
  });

  /** The values a `label_values(<selector>, <label>)` variable lists over the test window. */
  const variableValues = async (name: string) => {
    const variable = dashboard.templating.list.find((v) => v.name === name)!;
    const [, selector, label] = /^label_values\((.*),\s*(\w+)\)$/.exec(variableQuery(variable))!;
    const series = (await prometheus!.api('series', {
      'match[]': fillVariables(selector!, VARIABLES),
      start: String(start),
      end: String(end),
    })) as Record<string, string>[];
    return [...new Set(series.map((s) => s[label!]))];
  };

  it('the pool variable lists the pool', async () => {
    expect(await variableValues('pool')).to.deep.equal(['default']);
  });

  it('the etcd job variable lists the etcd scrape job', async () => {
    expect(await variableValues('etcd_job')).to.deep.equal([ETCD_JOB]);
  });

  it('etcd 3.4 exports every etcd metric the dashboard reads, on its --listen-metrics-urls', async () => {
    const exposition = await (await fetch(etcdMetricsUrl)).text();
    const read = new Set(
      dashboardQueries(dashboard).flatMap(({ expr }) =>
        [...expr.matchAll(/(?<![\w$])etcd_\w+/g)].map(([name]) => name),
      ),
    );
    expect(read.size).to.be.above(0);
    for (const name of read) {
      expect(exposition, name).to.match(new RegExp(`^${name}[{ ]`, 'm'));
    }
  });

  it('the leader timeline shows a, then b, then c', async () => {
    const series = await panelQuery('Current leader');
    expect(labelValues(series, 'leader_id', 1)).to.deep.equal(['a', 'b', 'c']);
    const firstAt = (id: string) =>
      Math.min(...series.filter((s) => s.metric.leader_id === id).map((s) => s.values[0]![0]));
    expect(firstAt('a')).to.be.below(firstAt('b'));
    expect(firstAt('b')).to.be.below(firstAt('c'));
  });

  it('a follower that crashed and restarted moves neither the leader-change panels nor "Since last leader change"', async () => {
    const fill = (expr: string) => fillVariables(expr, VARIABLES);
    const changes = panelQueryExpr('Leader changes');
    const perStep = finiteValues(await prometheus!.queryRange(fill(changes), start, quietUntil));
    expect(perStep, 'leader changes per interval').to.have.length.above(0);
    expect(Math.max(...perStep), 'leader changes per interval').to.equal(0);
    const annotation = dashboard.annotations.list.find((a) => a.name === 'Leader changes')!;
    const marks = await prometheus!.queryRange(fill(annotation.expr!), start, quietUntil);
    expect(finiteValues(marks), 'leader-change marks').to.deep.equal([]);
    // a claimed before aLeading; c's restart came seconds later.
    const since = await prometheus!.query(
      fill(panelQueryExpr('Since last leader change')),
      quietUntil,
    );
    expect(finiteValues(since)).to.have.length(1);
    expect(finiteValues(since)[0]).to.be.at.least(quietUntil - aLeading);
  });

  it('the leader-change panels and annotation show the failovers', async () => {
    const changes = finiteValues(await panelQuery('Leader changes'));
    expect(Math.max(...changes), 'leader changes per interval').to.be.at.least(1);
    const annotation = dashboard.annotations.list.find((a) => a.name === 'Leader changes')!;
    const marks = await prometheus!.queryRange(
      fillVariables(annotation.expr!, VARIABLES),
      start,
      end,
    );
    expect(finiteValues(marks)).to.have.length.above(0);
    const terms = finiteValues(await panelQuery('Term'));
    expect(new Set(terms).size, 'terms seen').to.be.at.least(3);
    const members = finiteValues(await panelQuery('Members'));
    expect([Math.max(...members), Math.min(...members)]).to.deep.equal([3, 1]);
    const claims = finiteValues(await panelQuery('Pods claiming leadership'));
    console.log(
      `      measured: pods claiming leadership per scrape, min ${Math.min(...claims)} max ${Math.max(...claims)}`,
    );
  });

  it('the failover panel shows the second failover, in milliseconds', async () => {
    const p99 = finiteValues(await panelQuery('Failover outage', 'B'));
    expect(p99, 'p99 samples').to.have.length.above(0);
    console.log(`      measured: failover p99 as the panel draws it, up to ${Math.max(...p99)} s`);
    expect(Math.max(...p99)).to.be.below(1);
  });

  it('the alert rules load and evaluate without error, and none fires', async () => {
    const { groups } = (await prometheus!.api('rules')) as {
      groups: {
        name: string;
        rules: { name: string; health: string; lastError?: string; state: string }[];
      }[];
    };
    const rules = groups.flatMap((group) => group.rules);
    expect(rules).to.have.length.at.least(6);
    for (const rule of rules) {
      expect(rule.health, `${rule.name}: ${rule.lastError ?? ''}`).to.equal('ok');
      expect(rule.state, rule.name).to.not.equal('firing');
    }
  });
});
