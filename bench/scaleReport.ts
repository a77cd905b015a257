/**
 * The scale benchmark's section of the report (bench/scale.ts measures, this renders): what
 * each pool size measured, the tables, plots and targets made of it, and the raw figures kept
 * in the record, with the hand-kept measurements of bench/scaleSrcChanges.json beside them.
 *
 * Units: times in ms, memory in bytes (shown in MB of 2^20 bytes), CPU in % of one core,
 * etcd requests per second. Nothing here blocks but `readSrcChanges`, one small file read.
 */
import { readFile } from 'node:fs/promises';
import type { Plot, Section, Table, TargetCheck } from './section.js';
import { ms } from './section.js';
import type { Summary } from './stats.js';
import type { RestFigures } from './scaleAtRest.js';
import { TTL_SECONDS, type Plan } from './scalePlan.js';

/** One convergence trial: times in ms from just before the leader's lease was revoked. */
export interface TrialResult {
  /** Member ids. */
  oldLeader: string;
  newLeader: string | undefined;
  /** Until every member names the new leader and it holds the claim (workers' clocks). */
  agreedMs: number | undefined;
  /** Until the first member names the new leader. */
  firstSeenMs: number | undefined;
  /** When the last worker's message saying so arrived here. */
  arrivedMs: number | undefined;
}

/** What one pool size measured. */
export interface SizeResult {
  members: number;
  processes: number;
  registerMs: number;
  trials: TrialResult[];
  agreedMs: Summary | undefined;
  firstSeenMs: Summary | undefined;
  rest: RestFigures;
  /** RSS added per member since the previous size; undefined for the first size. */
  rssPerExtraMemberBytes: number | undefined;
}

/** A size that did not complete, and why (with what the workers wrote). */
export interface Failure {
  members: number;
  /** Members registered when it failed. */
  reached: number;
  error: string;
}

const SRC_CHANGES_FILE = new URL('./scaleSrcChanges.json', import.meta.url);

/**
 * What this benchmark led to change in src/election, as measured then (see the file's
 * `about`): read at the start of a run, so that a missing file fails it before it measures.
 */
export async function readSrcChanges(): Promise<unknown> {
  const file = JSON.parse(await readFile(SRC_CHANGES_FILE, 'utf8')) as { srcChanges: unknown };
  return file.srcChanges;
}

/** The section of a run: the sizes that completed, and the one that failed if any. */
export function section(
  plan: Plan,
  results: SizeResult[],
  failure: Failure | undefined,
  srcChanges: unknown,
): Section {
  const main: Table = {
    caption:
      `Pools of ${plan.sizes.join(', ')} members on ${plan.workers} processes, TTL ${TTL_SECONDS} s: ` +
      `convergence after the leader's lease is revoked (${plan.trials} trial${plan.trials === 1 ? '' : 's'} ` +
      `per size), and the cost at rest`,
    header: [
      'members',
      'processes',
      'converged p50',
      'converged max',
      'RSS / member',
      'RSS / extra member',
      'CPU % / member',
      'etcd req/s',
    ],
    rows: results.map((r) => [
      String(r.members),
      String(r.processes),
      ms(r.agreedMs?.p50),
      ms(r.agreedMs?.max),
      mb(r.rest.rssBytes / r.members, 2),
      r.rssPerExtraMemberBytes === undefined ? '—' : mb(r.rssPerExtraMemberBytes, 3),
      (r.rest.cpuPercent / r.members).toFixed(3),
      fixed(r.rest.etcdReceivedTotalPerSec),
    ]),
  };
  if (failure) {
    main.rows.push([
      String(failure.members),
      String(plan.workers),
      `failed at ${failure.reached} registered`,
      ...main.header.slice(3).map(() => '—'),
    ]);
  }
  const breakdown: Table = {
    caption:
      'At rest, in detail: etcd requests received per second by method (gRPC messages, so each ' +
      'keep-alive on its stream counts), what the members counted themselves, and the processes',
    header: [
      'members',
      'keep-alives/s',
      'reads (Txn)/s',
      'other/s',
      'members counted/s',
      'RSS total',
      'CPU total',
      'etcd CPU',
      'new leader first seen p50',
    ],
    rows: results.map((r) => {
      const received = r.rest.etcdReceivedPerSec;
      const keepAlives = received.LeaseKeepAlive ?? 0;
      const txn = received.Txn ?? 0;
      const counted = Object.values(r.rest.memberRequestsPerSec).reduce((a, b) => a + b, 0);
      return [
        String(r.members),
        keepAlives.toFixed(0),
        txn.toFixed(0),
        r.rest.etcdReceivedTotalPerSec === undefined
          ? '—'
          : Math.max(0, r.rest.etcdReceivedTotalPerSec - keepAlives - txn).toFixed(0),
        counted.toFixed(0),
        mb(r.rest.rssBytes),
        `${r.rest.cpuPercent.toFixed(1)} %`,
        r.rest.etcdCpuPercent === undefined ? '—' : `${r.rest.etcdCpuPercent.toFixed(1)} %`,
        ms(r.firstSeenMs?.p50),
      ];
    }),
  };
  const plots: Plot[] = [
    {
      file: 'scale-convergence.svg',
      title: 'Every member agrees on the new leader, after the leader’s lease is revoked',
      xLabel: 'members',
      yLabel: 'ms',
      kind: 'line',
      logX: true,
      series: [
        { name: 'p50', points: points(results, (r) => r.agreedMs?.p50) },
        { name: 'max', points: points(results, (r) => r.agreedMs?.max) },
        { name: 'first member, p50', points: points(results, (r) => r.firstSeenMs?.p50) },
      ],
    },
    {
      file: 'scale-rss.svg',
      title: `RSS of the ${plan.workers} member processes at rest`,
      xLabel: 'members',
      yLabel: 'MB',
      kind: 'line',
      series: [{ name: 'RSS total', points: points(results, (r) => r.rest.rssBytes / 2 ** 20) }],
    },
  ];
  const largest = results[results.length - 1];
  const previous = results[results.length - 2];
  const at1000 = largest !== undefined && largest.members >= 1000;
  // What the figures stand for when they are not of 1 000 members.
  const scope = failure
    ? `${failure.members} members failed (${failure.error.split('\n')[0]}); largest completed: `
    : at1000
      ? ''
      : 'smoke run, not 1 000 members: ';
  const targets: TargetCheck[] = [
    {
      target: '1 000 members converge under 1 s after leader loss',
      measured: largest
        ? `${scope}${largest.members} members: p50 ${ms(largest.agreedMs?.p50)}, ` +
          `max ${ms(largest.agreedMs?.max)} over ${largest.trials.length} trials` +
          (largest.trials.some((t) => t.agreedMs === undefined) ? ' (some did not converge)' : '')
        : `${scope}—`,
      met:
        at1000 &&
        !failure &&
        largest.trials.every((t) => t.agreedMs !== undefined && t.agreedMs < 1000),
    },
    {
      target: 'under 1 MB RSS per extra member at rest',
      measured:
        largest?.rssPerExtraMemberBytes === undefined || previous === undefined
          ? `${scope}—`
          : `${scope}${mb(largest.rssPerExtraMemberBytes, 3)} per member added from ` +
            `${previous.members} to ${largest.members} members`,
      met:
        at1000 &&
        !failure &&
        largest.rssPerExtraMemberBytes !== undefined &&
        largest.rssPerExtraMemberBytes < 2 ** 20,
    },
  ];
  return {
    id: 'scale',
    title: 'Scale: pools of up to 1 000 members',
    method:
      `Members are the real election (no HTTP server), ${plan.workers} worker processes with one ` +
      `etcd client each, on the shared 3-member etcd; the pool grows ${plan.sizes.join(' → ')}. ` +
      `Convergence: the leader's lease is revoked from another etcd client; time from just before ` +
      `the revoke until every member's leader() names the same new leader and it isLeader(), ` +
      `detected from election events in the workers. At rest: worker CPU and RSS over ` +
      `${plan.restMs / 1000} s, etcd requests from etcd's own /metrics (gRPC messages received).`,
    tables: [main, breakdown],
    plots,
    targets,
    data: {
      plan,
      ttlSeconds: TTL_SECONDS,
      timing:
        'agreedMs/firstSeenMs: worker monotonic clocks shifted onto the parent’s by the ' +
        'difference of performance.timeOrigin; arrivedMs: when the IPC message arrived in the parent',
      sizes: results,
      failure,
      srcChanges,
    },
  };
}

function points(
  results: SizeResult[],
  pick: (r: SizeResult) => number | undefined,
): [number, number][] {
  return results.flatMap((r) => {
    const y = pick(r);
    return y === undefined ? [] : [[r.members, y] as [number, number]];
  });
}

/** Bytes in MB (2^20 bytes). */
export function mb(bytes: number, digits = 1): string {
  return `${(bytes / 2 ** 20).toFixed(digits)} MB`;
}

/** No decimals, or `—` when there is no value. */
export function fixed(value: number | undefined): string {
  return value === undefined ? '—' : value.toFixed(0);
}
