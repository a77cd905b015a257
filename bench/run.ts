/**
 * `make bench` / `make bench-smoke`: runs the failover trials on a fresh 3-member etcd cluster,
 * prints a progress line per trial and a table at the end, and writes
 * bench/results/<ISO date>.json with the machine and the exact command.
 *
 * `--smoke` runs one or two trials of each kind in seconds, so the suite cannot rot; its
 * numbers mean nothing.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EtcdCluster } from '../src/local/etcdCluster.js';
import { assertCliBuilt } from '../src/local/memberProcess.js';
import { BenchPool, failoverTrial, type TrialKind, type TrialResult } from './failover.js';
import { summarize, type Summary } from './stats.js';

interface Scenario {
  name: string;
  kind: TrialKind;
  ttlSeconds: number;
  trials: number;
}

const POOL_SIZE = 3;
const MEMBER_IDS = ['a', 'b', 'c'];

function scenarios(smoke: boolean): Scenario[] {
  return smoke
    ? [
        { name: 'graceful (SIGTERM)', kind: 'graceful', ttlSeconds: 2, trials: 2 },
        { name: 'crash (SIGKILL), TTL 2 s', kind: 'crash', ttlSeconds: 2, trials: 1 },
        { name: 'restart takeover, TTL 2 s', kind: 'restart', ttlSeconds: 2, trials: 1 },
      ]
    : [
        { name: 'graceful (SIGTERM)', kind: 'graceful', ttlSeconds: 5, trials: 30 },
        { name: 'crash (SIGKILL), TTL 2 s', kind: 'crash', ttlSeconds: 2, trials: 10 },
        { name: 'crash (SIGKILL), TTL 5 s', kind: 'crash', ttlSeconds: 5, trials: 10 },
        { name: 'restart takeover, TTL 5 s', kind: 'restart', ttlSeconds: 5, trials: 10 },
      ];
}

interface ScenarioReport extends Scenario {
  servedMs: Summary | undefined;
  claimedMs: Summary | undefined;
  failed: number;
  calls: number;
  missed: number;
  results: TrialResult[];
}

async function runScenario(etcd: EtcdCluster, scenario: Scenario): Promise<ScenarioReport> {
  const pool = await BenchPool.start(etcd, scenario.ttlSeconds, MEMBER_IDS);
  const results: TrialResult[] = [];
  try {
    for (let i = 1; i <= scenario.trials; i++) {
      const result = await failoverTrial(pool, scenario.kind, POOL_SIZE);
      results.push(result);
      console.log(
        `[${scenario.name} ${i}/${scenario.trials}] ${result.leader} → ${result.servedBy ?? '?'}: ` +
          `served ${ms(result.servedMs)}, claimed ${ms(result.claimedMs)}, ` +
          `failed ${result.failed}/${result.calls} calls`,
      );
    }
  } finally {
    await pool.close();
  }
  const values = (pick: (r: TrialResult) => number | undefined) =>
    results.flatMap((r) => (pick(r) === undefined ? [] : [pick(r)!]));
  return {
    ...scenario,
    servedMs: summarize(values((r) => r.servedMs)),
    claimedMs: summarize(values((r) => r.claimedMs)),
    failed: results.reduce((sum, r) => sum + r.failed, 0),
    calls: results.reduce((sum, r) => sum + r.calls, 0),
    missed: results.filter((r) => r.servedMs === undefined || r.claimedMs === undefined).length,
    results,
  };
}

function ms(value: number | undefined): string {
  return value === undefined ? '—' : `${value.toFixed(1)} ms`;
}

function table(reports: ScenarioReport[]): string {
  const header = ['scenario', 'trials', 'measure', 'p50', 'p99', 'max', 'failed calls'];
  const rows = reports.flatMap((r) =>
    (
      [
        ['first /work by new leader', r.servedMs],
        ['new claim in etcd', r.claimedMs],
      ] as const
    ).map(([measure, summary], i) => [
      i === 0 ? r.name : '',
      i === 0 ? `${r.trials}${r.missed > 0 ? ` (${r.missed} missed)` : ''}` : '',
      measure,
      ms(summary?.p50),
      ms(summary?.p99),
      ms(summary?.max),
      i === 0 ? `${r.failed} of ${r.calls}` : '',
    ]),
  );
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  const line = (cells: string[]) => cells.map((cell, c) => cell.padEnd(widths[c]!)).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function etcdVersion(): string {
  const out = execFileSync('etcd', ['--version'], { encoding: 'utf8' });
  return /etcd Version: (\S+)/.exec(out)?.[1] ?? out.trim();
}

async function main(): Promise<void> {
  const smoke = process.argv.includes('--smoke');
  assertCliBuilt();
  const startedAt = new Date();
  const machine = {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memoryBytes: os.totalmem(),
    node: process.version,
    etcd: etcdVersion(),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
  };
  const command = [process.execPath, ...process.execArgv, ...process.argv.slice(1)].join(' ');
  console.log(`bench${smoke ? ' --smoke' : ''}: starting etcd (3 members, fast raft timing)…`);
  const etcd = await EtcdCluster.start({ size: 3, fast: true });
  const reports: ScenarioReport[] = [];
  try {
    for (const scenario of scenarios(smoke)) {
      console.log(`${scenario.name}: ${scenario.trials} trials, pool of ${POOL_SIZE}`);
      reports.push(await runScenario(etcd, scenario));
    }
  } finally {
    await etcd.close();
  }
  const durationMs = Date.now() - startedAt.getTime();
  console.log(`\n${table(reports)}\n`);

  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${startedAt.toISOString().replace(/:/g, '-')}.json`);
  const record = { startedAt, durationMs, smoke, command, machine, scenarios: reports };
  await writeFile(file, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), file)} (${(durationMs / 1000).toFixed(1)} s)`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
