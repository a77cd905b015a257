/**
 * The peer in the same run (issue 6, measurement 3): etcd3's own `Election` — campaign, resign,
 * observe — on the same etcd cluster as our failover trials, so the docs can put the library's
 * handover times beside ours.
 *
 * Three candidates are child processes (bench/peerCandidate.ts), so a crash is a real SIGKILL
 * and a graceful stop is what a careful user writes: SIGTERM → `resign()` (a lease revoke) →
 * exit. This process observes the election with the library's own `election.observe()` and
 * times, on its monotonic clock (`performance.now()`), from the signal to the leader until:
 * - `deletedMs`: a plain watch on the election prefix sees the old leader's key deleted — the
 *   handover as etcd sees it, since the successor's key is already there (what the library
 *   adds on top shows in the next two);
 * - `observedMs`: the observer reports a new leader (what our trials call "new claim in etcd":
 *   a watcher learns who leads);
 * - `electedMs`: the new leader's campaign emits `elected` (its stdout line, read here).
 *
 * After each trial the signalled candidate is started again under the same name, and the next
 * trial waits until its campaign key is in etcd (seen by a watch), so every trial starts from
 * three candidates: the leader and two in line behind it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Etcd3, type Election, type ElectionObserver, type Watcher } from 'etcd3';
import {
  describeExit,
  inheritedEnv,
  supervise,
  type ExitStatus,
} from '../src/demo/childProcesses.js';
import type { LocalEtcd } from '../src/demo/localEtcd.js';
import { FAILOVER_SLACK_MS, scenarios as failoverScenarios } from './failover.js';
import { ms, type Benchmark, type Plot, type Section, type Table } from './section.js';
import { summarize, type Summary } from './stats.js';

export type PeerTrialKind = 'graceful' | 'crash';

export interface PeerTrialResult {
  kind: PeerTrialKind;
  ttlSeconds: number;
  /** Campaign values (`<id>.<incarnation>`): the leader that was signalled, and its successor. */
  leader: string;
  deletedMs: number | undefined;
  observedLeader: string | undefined;
  observedMs: number | undefined;
  electedLeader: string | undefined;
  electedMs: number | undefined;
  /** Graceful only: how long `resign()` took inside the old leader, by its own clock. */
  resignMs: number | undefined;
  /** How the signalled candidate ended, e.g. `exit code 0` or `signal SIGKILL`. */
  exit: string;
}

interface Scenario {
  name: string;
  kind: PeerTrialKind;
  ttlSeconds: number;
  trials: number;
}

interface ScenarioReport extends Scenario {
  deletedMs: Summary | undefined;
  observedMs: Summary | undefined;
  electedMs: Summary | undefined;
  missed: number;
  /** Campaign `error` lines from any candidate: none is expected. */
  campaignErrors: string[];
  /** Leaders named by observe() whose campaign never emitted `elected`. */
  unelected: string[];
  results: PeerTrialResult[];
}

const CANDIDATE_IDS = ['a', 'b', 'c'];
const CANDIDATE_SCRIPT = fileURLToPath(new URL('./peerCandidate.ts', import.meta.url));
/** The candidates are TypeScript, loaded the way bench/run.ts and the tests are: with tsx. */
const TSX_LOADER = import.meta.resolve('tsx');
const ETCD3_VERSION = (
  JSON.parse(readFileSync(fileURLToPath(import.meta.resolve('etcd3/package.json')), 'utf8')) as {
    version: string;
  }
).version;
/** A candidate process starts, grants its lease and puts its key within this bound. */
const CAMPAIGN_TIMEOUT_MS = 20_000;

/** Our graceful and crash scenarios, same TTLs and trial counts, so the tables line up. */
function scenarios(smoke: boolean): Scenario[] {
  return failoverScenarios(smoke).flatMap((s): Scenario[] => {
    if (s.kind === 'restart') return [];
    if (s.kind === 'graceful') return [{ ...s, kind: s.kind, name: 'graceful (SIGTERM → resign)' }];
    return [{ ...s, kind: s.kind }];
  });
}

/**
 * Timestamped events of one kind, and a wait for the first that matches: trials wait on events
 * (a watch, an observer, a stdout line) with a bound, never on a sleep.
 */
class Timeline<T extends { at: number }> {
  private readonly entries: T[] = [];
  private readonly listeners = new Set<() => void>();

  push(entry: T): void {
    this.entries.push(entry);
    for (const listener of [...this.listeners]) listener();
  }

  find(match: (entry: T) => boolean): T | undefined {
    return this.entries.find(match);
  }

  /** The first entry that matches, as soon as there is one; undefined after `timeoutMs`. */
  waitFor(
    match: (entry: T) => boolean,
    timeoutMs: number,
    abandon?: Promise<unknown>,
  ): Promise<T | undefined> {
    return new Promise((resolve) => {
      const finish = (entry: T | undefined) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve(entry);
      };
      const check = () => {
        const entry = this.find(match);
        if (entry !== undefined) finish(entry);
      };
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      this.listeners.add(check);
      // A candidate that exits before its event will never send it.
      void abandon?.then(() => finish(this.find(match)));
      check();
    });
  }
}

interface ValueEvent {
  at: number;
  value: string | undefined;
}

/** One candidate process; its stdout lines go to the pool's timelines as they arrive. */
class Candidate {
  readonly exited: Promise<ExitStatus>;
  /** Set once it has exited, for error messages. */
  exitStatus: ExitStatus | undefined;
  private readonly child: ChildProcess;

  constructor(
    readonly id: string,
    readonly value: string,
    pool: PeerPool,
  ) {
    this.child = spawn(
      process.execPath,
      [
        '--import',
        TSX_LOADER,
        CANDIDATE_SCRIPT,
        pool.endpoints.join(','),
        pool.electionName,
        String(pool.ttlSeconds),
        value,
      ],
      { env: inheritedEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // Registered with the local tooling, so no candidate outlives a crashed benchmark.
    this.exited = supervise(this.child).then((status) => (this.exitStatus = status));
    let partial = '';
    this.child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      // Stamped on arrival: a pipe write and read cost microseconds next to a handover.
      const at = performance.now();
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) pool.candidateSaid(this, line, at);
    });
    this.child.stderr?.setEncoding('utf8').on('data', (text: string) => pool.stderr(this, text));
  }

  signal(signal: 'SIGTERM' | 'SIGKILL'): void {
    this.child.kill(signal);
  }
}

/**
 * Three candidates in one etcd3 election (its own name per scenario, so scenarios never meet),
 * the library's observer on it, and a watch on the election prefix that sees every campaign
 * key arrive.
 */
class PeerPool {
  readonly candidates = new Map<string, Candidate>();
  /** The library observer's `change` events. */
  readonly observed = new Timeline<ValueEvent>();
  /** Candidates' `elected` lines. */
  readonly elected = new Timeline<ValueEvent>();
  /** Campaign keys put under the election prefix, and deleted (value: the deleted key's). */
  readonly campaigning = new Timeline<ValueEvent>();
  readonly deleted = new Timeline<ValueEvent>();
  readonly resigned = new Timeline<ValueEvent & { ms: number }>();
  readonly campaignErrors: string[] = [];
  /** Leaders (by value) whose campaign never emitted `elected` (see settledLeader). */
  readonly unelected = new Set<string>();
  private incarnation = 0;

  private constructor(
    readonly endpoints: string[],
    readonly electionName: string,
    readonly ttlSeconds: number,
    private readonly client: Etcd3,
    private readonly observer: ElectionObserver,
    private readonly watcher: Watcher,
    private readonly log: (line: string) => void,
  ) {
    observer.on('change', (value) => this.observed.push({ at: performance.now(), value }));
    observer.on('error', (error) => log(`observer error: ${error.message}`));
    // A delete event carries only the key: remember which value each campaign key held.
    const values = new Map<string, string>();
    watcher.on('put', (kv) => {
      values.set(kv.key.toString(), kv.value.toString());
      this.campaigning.push({ at: performance.now(), value: kv.value.toString() });
    });
    watcher.on('delete', (kv) =>
      this.deleted.push({ at: performance.now(), value: values.get(kv.key.toString()) }),
    );
  }

  static async start(
    etcd: LocalEtcd,
    ttlSeconds: number,
    log: (line: string) => void,
  ): Promise<PeerPool> {
    const electionName = `spl-peer-${process.pid}-ttl${ttlSeconds}-${Date.now()}`;
    const client = new Etcd3({ hosts: etcd.endpoints });
    // The observer's TTL is unused (it never campaigns); the candidates pass theirs.
    const election: Election = client.election(electionName);
    // etcd3 keeps an election's keys under `election/<name>/<lease id>`.
    const watcher = await client.watch().prefix(`election/${electionName}/`).create();
    const observer = await election.observe();
    const pool = new PeerPool(
      [...etcd.endpoints],
      electionName,
      ttlSeconds,
      client,
      observer,
      watcher,
      log,
    );
    // All at once: who ends up oldest, and so leader, does not matter (trials ask the
    // observer), and three Node start-ups in parallel take a third of the time.
    await Promise.all(CANDIDATE_IDS.map((id) => pool.startCandidate(id)));
    return pool;
  }

  /** Starts candidate `id` (again) and resolves once its campaign key is in etcd. */
  async startCandidate(id: string): Promise<Candidate> {
    const candidate = new Candidate(id, `${id}.${this.incarnation++}`, this);
    this.candidates.set(id, candidate);
    const put = await this.campaigning.waitFor(
      (event) => event.value === candidate.value,
      CAMPAIGN_TIMEOUT_MS,
      candidate.exited,
    );
    if (put === undefined) {
      const status = candidate.exitStatus;
      throw new Error(
        `peer candidate ${candidate.value} was not campaigning within ${CAMPAIGN_TIMEOUT_MS} ms` +
          (status === undefined ? '' : ` (it ended: ${describeExit(status)})`),
      );
    }
    return candidate;
  }

  candidateSaid(candidate: Candidate, line: string, at: number): void {
    const [word, ...rest] = line.split(' ');
    if (word === 'elected') this.elected.push({ at, value: candidate.value });
    else if (word === 'resigned') {
      this.resigned.push({ at, value: candidate.value, ms: Number(rest[0]) });
    } else if (word === 'error') {
      this.campaignErrors.push(`${candidate.value}: ${rest.join(' ')}`);
      this.log(`candidate ${candidate.value}: campaign error: ${rest.join(' ')}`);
    }
  }

  stderr(candidate: Candidate, text: string): void {
    for (const line of text.split('\n').filter((l) => l.trim() !== '')) {
      this.log(`candidate ${candidate.value} stderr: ${line}`);
    }
  }

  /**
   * The leader as the observer names it, once that is a running candidate, and whether its
   * own campaign has said `elected` (which may lag the observer by a round trip). The observer
   * may lag our own watch, which saw the candidates' keys: it is waited for. A leader whose
   * campaign never says `elected` within the bound is a finding about the library, counted in
   * `unelected`, not a failure of the run: its trial still measures the successor.
   */
  async settledLeader(): Promise<Candidate> {
    const running = () =>
      [...this.candidates.values()].find((c) => c.value === this.observer.leader());
    // Re-checked at each observer change; the first check runs at once.
    await this.observed.waitFor(() => running() !== undefined, CAMPAIGN_TIMEOUT_MS);
    const leader = running();
    if (leader === undefined) {
      throw new Error(
        `peer observer named no running candidate within ${CAMPAIGN_TIMEOUT_MS} ms: ${this.observer.leader()}`,
      );
    }
    const elected = await this.elected.waitFor(
      (event) => event.value === leader.value,
      CAMPAIGN_TIMEOUT_MS,
      leader.exited,
    );
    if (elected === undefined) {
      this.unelected.add(leader.value);
      this.log(
        `candidate ${leader.value}: observe() names it leader, but its campaign did not emit elected within ${CAMPAIGN_TIMEOUT_MS} ms` +
          (leader.exitStatus === undefined
            ? ''
            : ` (it ended: ${describeExit(leader.exitStatus)})`),
      );
    }
    return leader;
  }

  async close(): Promise<void> {
    // SIGKILL: the leases expire by themselves within a TTL, under a name nobody uses again.
    await Promise.all(
      [...this.candidates.values()].map((candidate) => {
        candidate.signal('SIGKILL');
        return candidate.exited;
      }),
    );
    await this.observer.cancel();
    await this.watcher.cancel();
    this.client.close();
  }
}

/**
 * One handover: signal the settled leader (SIGTERM for `graceful`, SIGKILL for `crash`), wait
 * until the observer and the successor's campaign both name someone else, then, with
 * `restart`, start the signalled candidate again so the pool is back to three.
 */
async function peerTrial(
  pool: PeerPool,
  kind: PeerTrialKind,
  restart: boolean,
): Promise<PeerTrialResult> {
  const leader = await pool.settledLeader();
  const isNew = (since: number) => (event: ValueEvent) =>
    event.at >= since && event.value !== undefined && event.value !== leader.value;
  const bound = pool.ttlSeconds * 1000 + FAILOVER_SLACK_MS;

  const since = performance.now();
  leader.signal(kind === 'graceful' ? 'SIGTERM' : 'SIGKILL');
  const [deleted, observed, elected, status] = await Promise.all([
    pool.deleted.waitFor((event) => event.at >= since && event.value === leader.value, bound),
    pool.observed.waitFor(isNew(since), bound),
    pool.elected.waitFor(isNew(since), bound),
    leader.exited,
  ]);
  const resigned = pool.resigned.find((event) => event.value === leader.value);
  if (restart) await pool.startCandidate(leader.id);
  return {
    kind,
    ttlSeconds: pool.ttlSeconds,
    leader: leader.value,
    deletedMs: deleted === undefined ? undefined : deleted.at - since,
    observedLeader: observed?.value,
    observedMs: observed === undefined ? undefined : observed.at - since,
    electedLeader: elected?.value,
    electedMs: elected === undefined ? undefined : elected.at - since,
    resignMs: resigned?.ms,
    exit: describeExit(status),
  };
}

async function runScenario(
  etcd: LocalEtcd,
  scenario: Scenario,
  log: (line: string) => void,
): Promise<ScenarioReport> {
  const pool = await PeerPool.start(etcd, scenario.ttlSeconds, log);
  const results: PeerTrialResult[] = [];
  try {
    for (let i = 1; i <= scenario.trials; i++) {
      // No restart after the last trial: the pool closes next.
      const r = await peerTrial(pool, scenario.kind, i < scenario.trials);
      results.push(r);
      // Observed, but its campaign silent: the same finding as in settledLeader.
      if (r.observedLeader !== undefined && r.electedMs === undefined) {
        pool.unelected.add(r.observedLeader);
      }
      log(
        `[${scenario.name} ${i}/${scenario.trials}] ${r.leader} → ${r.observedLeader ?? '?'}: ` +
          `key deleted ${ms(r.deletedMs)}, observed ${ms(r.observedMs)}, elected ${ms(r.electedMs)}` +
          (r.resignMs === undefined ? '' : `, resign() ${ms(r.resignMs)}`) +
          ` (${r.exit})`,
      );
    }
  } finally {
    await pool.close();
  }
  return {
    ...scenario,
    deletedMs: summarize(results.map((r) => r.deletedMs)),
    observedMs: summarize(results.map((r) => r.observedMs)),
    electedMs: summarize(results.map((r) => r.electedMs)),
    // A trial without the old key's delete or a new leader observed measured nothing; one
    // whose new leader's campaign stayed silent is counted in `unelected` instead.
    missed: results.filter((r) => r.deletedMs === undefined || r.observedMs === undefined).length,
    campaignErrors: pool.campaignErrors,
    unelected: [...pool.unelected],
    results,
  };
}

function table(reports: ScenarioReport[]): Table {
  return {
    caption:
      `etcd3 ${ETCD3_VERSION} Election, ${CANDIDATE_IDS.length} candidate processes: ` +
      'from the signal to the leader until its key is gone, and until a new leader is observed / elected',
    // The same layout as our failover table (a measure column), so the two read side by side.
    header: ['scenario', 'trials', 'measure', 'p50', 'p99', 'max'],
    rows: reports.flatMap((r) =>
      (
        [
          ["old leader's key deleted (watch)", r.deletedMs],
          ['new leader seen by observe()', r.observedMs],
          ["new leader's campaign elected", r.electedMs],
        ] as const
      ).map(([measure, summary], i) => [
        i === 0 ? r.name : '',
        i === 0
          ? `${r.trials}${r.missed > 0 ? ` (${r.missed} missed)` : ''}` +
            (r.unelected.length > 0 ? ` (${r.unelected.length} never elected)` : '')
          : '',
        measure,
        ms(summary?.p50),
        ms(summary?.p99),
        ms(summary?.max),
      ]),
    ),
  };
}

/** Signal → new leader seen by `observe()`, one series per scenario. */
function observedPlot(reports: ScenarioReport[], file: string, title: string): Plot {
  return {
    file,
    title,
    xLabel: 'share of trials',
    yLabel: 'ms',
    kind: 'cdf',
    series: reports.map((r) => ({
      name: r.name,
      points: r.results.flatMap((t): [number, number][] =>
        t.observedMs === undefined ? [] : [[0, t.observedMs]],
      ),
    })),
  };
}

export const peerElection: Benchmark = async (context): Promise<Section> => {
  const reports: ScenarioReport[] = [];
  for (const scenario of scenarios(context.smoke)) {
    context.log(
      `${scenario.name}: ${scenario.trials} trials, ${CANDIDATE_IDS.length} etcd3 Election candidates`,
    );
    reports.push(await runScenario(context.etcd, scenario, context.log));
  }
  return {
    id: 'peer',
    title: `Peer: etcd3 ${ETCD3_VERSION}'s own Election on the same etcd`,
    method:
      `Three child processes campaign in one etcd3 ${ETCD3_VERSION} \`Election\` with the ` +
      'given lease TTL; on SIGTERM a candidate calls `resign()` (a lease revoke) and exits, on ' +
      'SIGKILL its lease expires. The benchmark process watches with `election.observe()` and ' +
      'times from the signal to the leader until a watch on the election prefix sees the old ' +
      "leader's key deleted, until the observer names a new leader, and until the new " +
      "leader's campaign emits `elected`. The signalled candidate is started again " +
      'before the next trial.',
    tables: [table(reports)],
    plots: [
      observedPlot(
        reports,
        'peer-failover.svg',
        `etcd3 ${ETCD3_VERSION} Election: signal → new leader observed`,
      ),
      // On one linear axis with the crashes (seconds) the graceful handovers (tens of ms) are a
      // flat line at the bottom: they get a plot of their own too.
      observedPlot(
        reports.filter((r) => r.kind === 'graceful'),
        'peer-graceful.svg',
        `etcd3 ${ETCD3_VERSION} Election, graceful: SIGTERM → new leader observed`,
      ),
    ],
    targets: [],
    data: {
      library: `etcd3 ${ETCD3_VERSION}`,
      candidates: CANDIDATE_IDS.length,
      scenarios: reports,
    },
    errors: reports.flatMap((r) => [
      ...(r.missed > 0
        ? [
            `${r.name}: ${r.missed} of ${r.trials} trials saw no old key deleted or no new leader observed`,
          ]
        : []),
      // A campaign that failed mid-run (its lease lost) would make the handover times meaningless.
      ...r.campaignErrors.map((error) => `${r.name}: campaign error from ${error}`),
    ]),
  };
};
