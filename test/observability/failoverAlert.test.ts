/**
 * ServicePoolSlowFailover on a real crash failover: three members on a real etcd at lease TTL
 * 2 s, scraped every second by a real Prometheus that evaluates the shipped rule file. The
 * rule is rendered as the chart renders it (the number before `# LEASE_TTL_SECONDS` set to the
 * TTL), here 0.75 s, so that its threshold, twice that, lies under what a crash costs at TTL
 * 2 s; and `for` is 0 s, so the test need not wait minutes. The leader is first stopped
 * gracefully: the outage callers felt is milliseconds and the alert stays quiet. Then its
 * successor is SIGKILLed: callers wait about one TTL, and the alert must fire for cause
 * "expired" — it could not when the figure was the gap without a claim (milliseconds).
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { EtcdCluster } from '../support/etcdCluster.js';
import { freePorts } from '../../src/demo/ports.js';
import { eventually, TestPool } from '../support/pool.js';
import { RULES_FILE } from './catalog.js';
import { PrometheusServer } from './prometheusServer.js';

const MEMBERS = ['a', 'b', 'c'];
const JOB = 'service-pool-leader';
const TTL_SECONDS = 2;
/** What the rule is rendered with: its threshold is twice this, 1.5 s. */
const RULE_TTL_SECONDS = 0.75;
const ALERT = 'ServicePoolSlowFailover';

interface RuleFile {
  groups: { name: string; rules: { alert?: string; for?: string }[] }[];
}

/** The shipped rules as the chart renders them for `ttl`, with `for: 0s` on the alert. */
function renderedRules(ttl: number): RuleFile {
  const text = readFileSync(RULES_FILE, 'utf8');
  const rendered = text.replace(/[0-9.]+( # LEASE_TTL_SECONDS)/, `${ttl}$1`);
  expect(rendered, 'the rule file has a TTL-marked threshold').to.not.equal(text);
  const rules = parse(rendered) as RuleFile;
  const rule = rules.groups.flatMap((group) => group.rules).find((r) => r.alert === ALERT);
  if (!rule) throw new Error(`no ${ALERT} in ${RULES_FILE}`);
  rule.for = '0s';
  return rules;
}

describe('the slow-failover alert on a real crash failover', function () {
  this.timeout(120_000);
  let etcd: EtcdCluster | undefined;
  let pool: TestPool | undefined;
  let prometheus: PrometheusServer | undefined;
  let dir: string | undefined;

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
    dir = await mkdtemp(path.join(os.tmpdir(), 'spl-failover-alert-'));
  });

  after(async () => {
    await prometheus?.close();
    await pool?.close();
    await etcd?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state !== 'failed') return;
    for (const member of pool?.members.values() ?? []) {
      console.log(
        `--- ${member.id} ---\n${member.recentOutput().split('\n').slice(-20).join('\n')}`,
      );
    }
  });

  /** The alert's series in Prometheus' ALERTS, as `cause/state` strings. */
  const alerts = async () =>
    (await prometheus!.query(`ALERTS{alertname="${ALERT}"}`)).map(
      (series) => `${series.metric.cause}/${series.metric.alertstate}`,
    );

  /** When (ms since the epoch) Prometheus last evaluated the alert's rule. */
  const lastEvaluation = async () => {
    const { groups } = (await prometheus!.api('rules')) as {
      groups: { rules: { name: string; lastEvaluation: string }[] }[];
    };
    const rule = groups.flatMap((group) => group.rules).find((r) => r.name === ALERT);
    return Date.parse(rule?.lastEvaluation ?? '') || 0;
  };

  /** The failovers of `cause` Prometheus has scraped, summed over the members. */
  const scrapedFailovers = async (cause: string) => {
    const series = await prometheus!.query(
      `sum(service_pool_failover_duration_seconds_count{job="${JOB}", cause="${cause}"})`,
    );
    return Number(series[0]?.values[0]?.[1] ?? 0);
  };

  it('stays quiet for a graceful stop and fires for cause "expired" after a SIGKILL', async () => {
    const rulesFile = path.join(dir!, 'rules.yml');
    await writeFile(rulesFile, JSON.stringify(renderedRules(RULE_TTL_SECONDS)));
    const ports = await freePorts(MEMBERS.length);
    // Prometheus takes ~5 s to its first scrape: start it while the members start.
    const starting = PrometheusServer.start({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: [rulesFile],
      scrape_configs: [
        {
          job_name: JOB,
          static_configs: MEMBERS.map((id, i) => ({
            targets: [`127.0.0.1:${ports[i]}`],
            labels: { pod: id },
          })),
        },
      ],
    });
    pool = new TestPool(etcd!, { LEASE_TTL_SECONDS: String(TTL_SECONDS) });
    for (const [i, id] of MEMBERS.entries()) await pool.startMember(id, ports[i]);
    prometheus = await starting;
    expect(await pool.agreedLeader()).to.equal('a');
    // Every member scraped once with its zero series, so rate() sees the failovers to come.
    await eventually(
      'Prometheus scraped every member',
      async () => {
        const up = await prometheus!.query(`count(up{job="${JOB}"} == 1)`);
        return Number(up[0]?.values[0]?.[1] ?? 0) === MEMBERS.length;
      },
      20_000,
    );

    expect((await pool.member('a').stop()).code).to.equal(0);
    expect(await pool.agreedLeader(5000, { except: 'a' })).to.equal('b');
    await eventually(
      'Prometheus scraped the graceful failover',
      async () => (await scrapedFailovers('stop')) >= 2,
      15_000,
    );
    // The rule evaluated for 3 s with the graceful failover in its window: it did not fire.
    const scrapedAt = Date.now();
    await eventually(
      'the rule evaluated 3 s after the graceful failover was scraped',
      async () => (await lastEvaluation()) > scrapedAt + 3000,
      10_000,
    );
    expect(await alerts(), 'alerts after a graceful stop').to.deep.equal([]);

    const killedAt = Date.now();
    await pool.member('b').kill();
    expect(await pool.agreedLeader(TTL_SECONDS * 1000 + 5000, { except: 'b' })).to.equal('c');
    await eventually(
      `${ALERT} fires for cause "expired"`,
      async () => (await alerts()).includes('expired/firing'),
      20_000,
    );
    console.log(`      measured: ${ALERT} firing ${Date.now() - killedAt} ms after SIGKILL`);
    expect((await alerts()).filter((alert) => !alert.startsWith('expired/'))).to.deep.equal([]);
  });
});
