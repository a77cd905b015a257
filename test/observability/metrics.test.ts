/**
 * The app's own metrics, as a real member serves them on /metrics: `promtool check metrics`
 * accepts every `service_pool_*` family, and they are the ones docs/operations.md lists.
 *
 * /metrics also carries prom-client's Node defaults, three of which promtool rejects
 * (`nodejs_active_handles_total`, `nodejs_active_requests_total` and
 * `nodejs_active_resources_total` are gauges named like counters). They are not ours to
 * rename, so the lint takes the `service_pool_*` families only; the last test pins down that
 * those three are promtool's only complaints about the whole output.
 */
import { expect } from 'chai';
import { EtcdCluster } from '../support/etcdCluster.js';
import { TestPool } from '../support/pool.js';
import { documentedMetrics } from './catalog.js';
import { promtool } from './promtool.js';

const NODE_DEFAULTS_PROMTOOL_REJECTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** The families of a text exposition whose names start with `prefix`, HELP and TYPE included. */
function familiesWithPrefix(exposition: string, prefix: string): string {
  let keep = false;
  const kept: string[] = [];
  for (const line of exposition.split('\n')) {
    const family = /^# (?:HELP|TYPE) (\S+)/.exec(line)?.[1];
    if (family !== undefined) keep = family.startsWith(prefix);
    else if (line !== '' && !line.startsWith('#')) keep = line.startsWith(prefix);
    if (keep) kept.push(line);
  }
  return `${kept.join('\n')}\n`;
}

describe('the metrics a member serves', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster | undefined;
  let pool: TestPool | undefined;
  let exposition = '';

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '2' });
    await pool.start(['a', 'b']);
    expect(await pool.agreedLeader()).to.equal('a');
    // Forwarded work and a failover fill the histograms and the labelled counters of b.
    expect((await pool.work('b')).status).to.equal(200);
    await pool.member('a').stop();
    expect(await pool.agreedLeader(10_000, { except: 'a' })).to.equal('b');
    expect((await pool.work('b')).status).to.equal(200);
    const response = await fetch(`${pool.member('b').url}/metrics`);
    exposition = await response.text();
  });

  after(async () => {
    await pool?.close();
    await etcd?.close();
  });

  it('pass promtool check metrics: every service_pool_* family', () => {
    const ours = familiesWithPrefix(exposition, 'service_pool_');
    expect(ours).to.include('service_pool_failover_duration_seconds_bucket{');
    const run = promtool(['check', 'metrics'], ours);
    expect(run.output.trim(), 'promtool check metrics').to.equal('');
    expect(run.status).to.equal(0);
  });

  it('are the families docs/operations.md lists, with their types and labels', () => {
    const served = [...exposition.matchAll(/^# TYPE (service_pool_\w+) (\w+)$/gm)].map(
      ([, name, type]) => ({ name: name!, type: type! }),
    );
    const documented = documentedMetrics();
    expect(served.map((m) => `${m.name} ${m.type}`).sort()).to.deep.equal(
      documented.map((m) => `${m.name} ${m.type}`).sort(),
    );
    for (const metric of documented) {
      for (const [, labels] of exposition.matchAll(
        new RegExp(`^${metric.name}(?:_bucket|_sum|_count)?\\{([^}]*)\\}`, 'gm'),
      )) {
        const names = [...labels!.matchAll(/(\w+)="/g)]
          .map(([, label]) => label)
          .filter((l) => l !== 'le');
        expect(names, metric.name).to.have.members(metric.labels);
      }
    }
  });

  it("draw promtool's complaints only about prom-client's Node defaults", () => {
    const run = promtool(['check', 'metrics'], exposition);
    const complaints = run.output
      .trim()
      .split('\n')
      .filter((line) => line !== '');
    const named = complaints.map((line) => line.split(' ')[0]);
    expect([...new Set(named)].sort(), run.output).to.deep.equal(NODE_DEFAULTS_PROMTOOL_REJECTS);
  });
});
