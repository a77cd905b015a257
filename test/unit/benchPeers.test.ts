/**
 * What the benchmark puts beside our figures (issue 16): the handover table with the peers'
 * figures, ratios to Go's and etcd3's and the crash trials' kill phases
 * (bench/handoverComparison.ts), the handover targets stated as those ratios, the kill phase
 * columns of the failover and peer tables, and the nginx and HAProxy configurations of the
 * reference hops (bench/proxyHop.ts). Pure functions on figures and options the test chooses.
 */
import { expect } from 'chai';
import { PHASE_HEADER, phaseCell } from '../../bench/failoverLayout.js';
import { failoverSection, type ScenarioReport } from '../../bench/failoverReport.js';
import type { TrialResult } from '../../bench/failoverTrial.js';
import { handoverTable, handoverTargets } from '../../bench/handoverComparison.js';
import { haproxyConfig, nginxConfig } from '../../bench/proxyHop.js';
import { peerSection, type PeerScenarioReport } from '../../bench/peerReport.js';
import type { PeerTrialResult } from '../../bench/peerTrial.js';
import type { Summary } from '../../bench/stats.js';

const summary = (p50: number, p99: number): Summary => ({
  n: 10,
  median: p50,
  p50,
  p90: (p50 + p99) / 2,
  p99,
  max: p99,
});

/** Crash trials killed at `phases` (ms after a renewal), as our pool's trials record them. */
const ourTrials = (phases: number[]): TrialResult[] =>
  phases.map((phaseMs) => ({
    kind: 'crash',
    ttlSeconds: 2,
    leader: 'a',
    observer: 'c',
    servedBy: 'b',
    servedMs: 1800,
    claimedBy: 'b',
    claimedMs: 1790,
    failed: 1,
    calls: 2,
    phaseMs,
  }));

/** The same for a peer's candidates. */
const peerTrials = (phases: number[]): PeerTrialResult[] =>
  phases.map((phaseMs) => ({
    kind: 'crash',
    ttlSeconds: 2,
    leader: 'a.0',
    deletedMs: 1760,
    observedLeader: 'b.1',
    observedMs: 1765,
    electedLeader: 'b.1',
    electedMs: 1770,
    resignMs: undefined,
    exit: 'signal SIGKILL',
    phaseMs,
  }));

const ours = (
  kind: 'graceful' | 'crash',
  served: Summary,
  failed = 0,
  results: TrialResult[] = [],
): ScenarioReport => ({
  name: kind === 'graceful' ? 'graceful (SIGTERM)' : 'crash (SIGKILL), TTL 2 s',
  kind,
  ttlSeconds: kind === 'graceful' ? 5 : 2,
  trials: 10,
  servedMs: served,
  claimedMs: summary(served.p50 / 2, served.p99 / 2),
  failed,
  calls: 40,
  missed: 0,
  results,
});

const peer = (
  systemKey: 'etcd3' | 'go',
  kind: 'graceful' | 'crash',
  elected: Summary,
  results: PeerTrialResult[] = [],
): PeerScenarioReport => ({
  name: kind,
  kind,
  ttlSeconds: kind === 'graceful' ? 5 : 2,
  trials: 10,
  systemKey,
  system: systemKey === 'go' ? 'Go concurrency.Election' : 'etcd3 Election',
  deletedMs: summary(1, 2),
  observedMs: summary(3, 4),
  electedMs: elected,
  missed: 0,
  campaignErrors: [],
  unelected: [],
  results,
});

describe('bench: the peers beside our figures', () => {
  const graceful = ours('graceful', summary(6, 16));
  const crash = ours('crash', summary(1800, 2300));
  const peers = [
    peer('etcd3', 'graceful', summary(20, 30)),
    peer('go', 'graceful', summary(4, 8)),
    peer('etcd3', 'crash', summary(1750, 2300)),
  ];

  it("the handover table shows every system per scenario with ratios to Go's and etcd3's successor elected", () => {
    const table = handoverTable([graceful, crash], peers);
    expect(table.header).to.deep.equal([
      'scenario',
      'system: measure',
      'trials',
      'p50',
      'p90',
      'p99',
      '× Go',
      '× etcd3',
      'killed after a renewal',
    ]);
    const first = table.rows[0]!;
    expect(first.slice(0, 2)).to.deep.equal([
      'graceful (SIGTERM)',
      'this project: first /work by the new leader (client on a follower)',
    ]);
    // 6 / 4 and 16 / 8 against Go; 6 / 20 and 16 / 30 against etcd3.
    expect(first.slice(3)).to.deep.equal([
      '6.0 ms',
      '11.0 ms',
      '16.0 ms',
      '1.50× / 2.00×',
      '0.30× / 0.53×',
      '',
    ]);
    const goElected = table.rows.find((row) => /Go .*successor elected/.exec(row[1]!))!;
    expect(goElected.slice(6, 8)).to.deep.equal(['1.00× / 1.00×', '0.20× / 0.27×']);
    for (const row of table.rows) expect(row).to.have.length(9);
  });

  it("the crash rows show the kill phases of ours and etcd3's trials on each system's first row", () => {
    const phases = [33.3, 633.3, 333.4];
    const crashWithPhases = ours('crash', summary(1800, 2300), 0, ourTrials(phases));
    const etcd3Crash = peer('etcd3', 'crash', summary(1750, 2300), peerTrials(phases));
    const rows = handoverTable([crashWithPhases], [etcd3Crash]).rows;
    const phaseOf = (measure: RegExp) => rows.find((row) => measure.exec(row[1]!))![8];
    expect(phaseOf(/this project: first \/work/)).to.equal('33–633 ms, mean 333 ms');
    expect(phaseOf(/etcd3 .*successor elected/)).to.equal('33–633 ms, mean 333 ms');
    expect(phaseOf(/this project: new claim/)).to.equal('');
    expect(phaseOf(/etcd3 .*new leader observed/)).to.equal('');
    const [target] = handoverTargets([crashWithPhases], [etcd3Crash]);
    expect(target!.target).to.include('same kill phases');
    expect(target!.measured).to.equal(
      'p50 1800.0 ms against 1750.0 ms: 1.03×; killed after a renewal: ' +
        "ours 33–633 ms, mean 333 ms, etcd3's 33–633 ms, mean 333 ms",
    );
  });

  it('the failover and peer tables end with the kill phase column, empty but for crashes', () => {
    const crashWithPhases = ours('crash', summary(1800, 2300), 0, ourTrials([100, 500]));
    const etcd3Crash = peer('etcd3', 'crash', summary(1750, 2300), peerTrials([100, 500]));
    const failoverTable = failoverSection([graceful, crashWithPhases], [etcd3Crash]).tables[1]!;
    expect(failoverTable.header.slice(-2)).to.deep.equal(['failed calls', PHASE_HEADER]);
    const crashRow = failoverTable.rows.find((row) => row[0] === crashWithPhases.name)!;
    expect(crashRow.at(-1)).to.equal('100–500 ms, mean 300 ms');
    const gracefulRow = failoverTable.rows.find((row) => row[0] === graceful.name)!;
    expect(gracefulRow.at(-1)).to.equal('');
    const [peerTable] = peerSection([etcd3Crash]).tables;
    expect(peerTable!.header.at(-1)).to.equal(PHASE_HEADER);
    expect(peerTable!.rows[0]!.at(-1)).to.equal('100–500 ms, mean 300 ms');
    // Every row as wide as the header, the phase on a scenario's first row only.
    for (const table of [failoverTable, peerTable!]) {
      for (const row of table.rows) expect(row).to.have.length(table.header.length);
    }
    expect(peerTable!.rows[1]!.at(-1)).to.equal('');
  });

  it('a phase cell: range and mean, one phase alone, or nothing when no trial had one', () => {
    expect(phaseCell([])).to.equal('');
    expect(phaseCell([{ phaseMs: undefined }])).to.equal('');
    expect(phaseCell([{ phaseMs: 333.3 }, { phaseMs: 333.4 }])).to.equal('333 ms');
    expect(phaseCell([{ phaseMs: 20.8 }, { phaseMs: undefined }, { phaseMs: 645.9 }])).to.equal(
      '21–646 ms, mean 333 ms',
    );
  });

  it('a peer that cannot run a scenario has a row saying why, not figures', () => {
    const rows = handoverTable([crash], peers).rows;
    const goRow = rows.find((row) => row[1]!.includes('etcdctl') || row[1]!.includes('Go'))!;
    expect(goRow[1]).to.match(
      /not run — etcdctl elect has no TTL flag: its session lease lives 60 s/,
    );
    expect(goRow.slice(3)).to.deep.equal(['', '', '', '', '', '']);
  });

  it("the graceful target is met at p50 ≤ 1.5× and p99 ≤ 2× Go's with no failed call, and missed past either", () => {
    const [met] = handoverTargets([graceful], peers);
    expect(met!.met).to.equal(true);
    expect(met!.measured).to.include('p50 6.0 ms (1.50×), p99 16.0 ms (2.00×)');
    expect(handoverTargets([ours('graceful', summary(6.1, 16))], peers)[0]!.met).to.equal(false);
    expect(handoverTargets([ours('graceful', summary(6, 16.1))], peers)[0]!.met).to.equal(false);
    expect(handoverTargets([ours('graceful', summary(6, 16), 1)], peers)[0]!.met).to.equal(false);
    // No Go figures (its trials failed): not met, rather than met by default.
    expect(handoverTargets([graceful], peers.slice(0, 1))[0]!.met).to.equal(false);
  });

  it("the crash target compares with etcd3's Election at the same TTL: within 10 % at p50", () => {
    expect(handoverTargets([crash], peers)[0]!.met).to.equal(true);
    expect(handoverTargets([ours('crash', summary(1950, 2300))], peers)[0]!.met).to.equal(false);
  });

  it('nginx: its pid file, log and temp paths in the directory, loopback only, keep-alive that never closes a run', () => {
    const conf = nginxConfig({
      dir: '/tmp/x',
      port: 4242,
      upstream: '127.0.0.1:5000',
      user: undefined,
    });
    expect(conf).to.include('pid /tmp/x/nginx.pid;');
    expect(conf).to.include('error_log /tmp/x/error.log warn;');
    expect(conf).to.include('proxy_temp_path /tmp/x/proxy_temp;');
    expect(conf).to.include('listen 127.0.0.1:4242;');
    expect(conf).to.include('server 127.0.0.1:5000;');
    expect(conf).to.include('proxy_set_header Connection "";');
    // Both sides: the client's connections (server) and the upstream's (upstream block).
    const limits = [...conf.matchAll(/keepalive_requests (\d+);/g)].map((m) => Number(m[1]));
    expect(limits).to.have.length(2);
    for (const limit of limits) expect(limit).to.be.at.least(10_000_000);
    expect(conf).not.to.match(/^user /m);
    expect(nginxConfig({ dir: '/d', port: 1, upstream: 'h:2', user: 'root' })).to.match(
      /^user root;$/m,
    );
  });

  it('HAProxy: one thread, loopback only, HTTP keep-alive both ways, upstream connections reused', () => {
    const conf = haproxyConfig({
      dir: '/tmp/x',
      port: 4242,
      upstream: '127.0.0.1:5000',
      user: undefined,
    });
    expect(conf).to.match(/^ {2}nbthread 1$/m);
    expect(conf).to.match(/^ {2}bind 127\.0\.0\.1:4242$/m);
    expect(conf).to.match(/^ {2}server leader 127\.0\.0\.1:5000$/m);
    expect(conf).to.match(/^ {2}mode http$/m);
    expect(conf).to.match(/^ {2}option http-keep-alive$/m);
    expect(conf).to.match(/^ {2}http-reuse always$/m);
    expect(conf).not.to.match(/^ {2}user /m);
  });
});
