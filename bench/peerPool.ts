/**
 * The candidates of the peer benchmark (bench/peer.ts): three child processes of one peer
 * system (bench/peerSystems.ts: etcd3's `Election` or Go's via `etcdctl elect`) campaigning in
 * one election, etcd3's observer on it, and a watch on the election prefix that sees every
 * campaign key arrive and go; what they do lands in timelines (bench/peerTimeline.ts) stamped
 * with `performance.now()` (ms), their lease renewals too, for the crash trials' kill phase
 * (`leaseRenewals`, bench/crashPhase.ts).
 *
 * What blocks: `start` and `startCandidate` until the candidates' campaign keys are in etcd
 * (≤ CAMPAIGN_TIMEOUT_MS); `settledLeader` until the observer names a running candidate and
 * its campaign says `elected` (≤ CAMPAIGN_TIMEOUT_MS each); `leaseRenewals(…).next` until the
 * candidate's next renewal line, its timeout, or its exit; `close` until every candidate has
 * exited (SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { Etcd3, type Election, type ElectionObserver, type Watcher } from 'etcd3';
import {
  describeExit,
  inheritedEnv,
  supervise,
  type ExitStatus,
} from '../src/demo/childProcesses.js';
import type { LocalEtcd } from '../src/demo/localEtcd.js';
import type { RenewalClock } from './crashPhase.js';
import type { PeerSystem } from './peerSystems.js';
import { Timeline, type RenewalEvent, type ValueEvent } from './peerTimeline.js';

export const CANDIDATE_IDS = ['a', 'b', 'c'];
/** A candidate process starts, grants its lease and puts its key within this bound. */
const CAMPAIGN_TIMEOUT_MS = 20_000;

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
    const { file, args } = pool.system.command(pool, value);
    this.child = spawn(file, args, { env: inheritedEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
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

  /** ` (it ended: exit code 1)` once it has exited, for error messages; empty before. */
  endedNote(): string {
    return this.exitStatus === undefined ? '' : ` (it ended: ${describeExit(this.exitStatus)})`;
  }

  signal(signal: 'SIGTERM' | 'SIGKILL'): void {
    this.child.kill(signal);
  }
}

/**
 * Three candidates of one system in one election (its own name per scenario and system, so
 * they never meet), etcd3's observer on it, and a watch on the election prefix that sees every
 * campaign key arrive.
 */
export class PeerPool {
  readonly candidates = new Map<string, Candidate>();
  /** The library observer's `change` events. */
  readonly observed = new Timeline<ValueEvent>();
  /** Candidates' `elected` lines. */
  readonly elected = new Timeline<ValueEvent>();
  /** Campaign keys put under the election prefix, and deleted (value: the deleted key's). */
  readonly campaigning = new Timeline<ValueEvent>();
  readonly deleted = new Timeline<ValueEvent>();
  readonly resigned = new Timeline<ValueEvent & { ms: number }>();
  /** Candidates' `renewed` lines: their leases' keep-alives answered. */
  readonly renewed = new Timeline<RenewalEvent>();
  readonly campaignErrors: string[] = [];
  /** Leaders (by value) whose campaign never emitted `elected` (see settledLeader). */
  readonly unelected = new Set<string>();
  private incarnation = 0;

  private constructor(
    readonly system: PeerSystem,
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
    system: PeerSystem,
    etcd: LocalEtcd,
    ttlSeconds: number,
    log: (line: string) => void,
  ): Promise<PeerPool> {
    const electionName = `spl-peer-${system.key}-${process.pid}-ttl${ttlSeconds}-${Date.now()}`;
    const client = new Etcd3({ hosts: etcd.endpoints });
    // The observer's TTL is unused (it never campaigns); the candidates pass theirs.
    const election: Election = client.election(electionName);
    // etcd3 keeps an election's keys under `election/<name>/<lease id>`.
    const watcher = await client.watch().prefix(`election/${electionName}/`).create();
    const observer = await election.observe();
    const pool = new PeerPool(
      system,
      [...etcd.endpoints],
      electionName,
      ttlSeconds,
      client,
      observer,
      watcher,
      log,
    );
    // The first alone, until the observer names it; then the others together. etcd3 1.1.2's
    // observer, started on an empty election, takes the last put of its first watch batch for
    // the leader: keys put before its watch is up arrive in one batch, and it would name the
    // youngest while the oldest is elected. Once it watches a leader's key it reads the
    // oldest key again, correctly, at each handover.
    const [first, ...others] = CANDIDATE_IDS;
    const leader = await pool.startCandidate(first!);
    const named = await pool.observed.waitFor((e) => e.value === leader.value, CAMPAIGN_TIMEOUT_MS);
    if (named === undefined) {
      throw new Error(
        `peer observer did not name ${leader.value} within ${CAMPAIGN_TIMEOUT_MS} ms`,
      );
    }
    await Promise.all(others.map((id) => pool.startCandidate(id)));
    return pool;
  }

  /** Starts candidate `id` (again) and resolves once its campaign key is in etcd. */
  async startCandidate(id: string): Promise<Candidate> {
    const candidate = new Candidate(id, `${id}.${this.incarnation++}`, this);
    this.candidates.set(id, candidate);
    const put = await this.firstFrom(candidate, this.campaigning);
    if (put === undefined) {
      throw new Error(
        `peer candidate ${candidate.value} was not campaigning within ${CAMPAIGN_TIMEOUT_MS} ms` +
          candidate.endedNote(),
      );
    }
    return candidate;
  }

  candidateSaid(candidate: Candidate, line: string, at: number): void {
    const said = this.system.read(line, candidate.value);
    if (said?.said === 'elected') this.elected.push({ at, value: candidate.value });
    else if (said?.said === 'renewed') {
      this.renewed.push({ at, value: candidate.value, renewedAt: at - said.ms });
    } else if (said?.said === 'resigned') {
      this.resigned.push({ at, value: candidate.value, ms: said.ms });
    } else if (said?.said === 'error') {
      this.campaignErrors.push(`${candidate.value}: ${said.message}`);
      this.log(`${this.system.key} candidate ${candidate.value}: campaign error: ${said.message}`);
    }
  }

  stderr(candidate: Candidate, text: string): void {
    for (const line of text.split('\n').filter((l) => l.trim() !== '')) {
      this.log(`${this.system.key} candidate ${candidate.value} stderr: ${line}`);
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
    const elected = await this.firstFrom(leader, this.elected);
    if (elected === undefined) {
      this.unelected.add(leader.value);
      this.log(
        `candidate ${leader.value}: observe() names it leader, but its campaign did not emit elected within ${CAMPAIGN_TIMEOUT_MS} ms` +
          leader.endedNote(),
      );
    }
    return leader;
  }

  /**
   * `candidate`'s lease renewals, from its `renewed` lines: each says how long before it the
   * answered keep-alive was sent, so the renewal is the line's arrival less that (a pipe write
   * and read later than the answer: microseconds).
   */
  leaseRenewals(candidate: Candidate): RenewalClock {
    const after = (time: number | undefined) => (event: RenewalEvent) =>
      event.value === candidate.value && (time === undefined || event.renewedAt > time);
    return {
      latest: () => Promise.resolve(this.renewed.findLast(after(undefined))?.renewedAt),
      next: async (time, timeoutMs) =>
        (await this.renewed.waitFor(after(time), timeoutMs, candidate.exited))?.renewedAt,
    };
  }

  /**
   * The first event of `candidate` in `timeline`, as soon as there is one; undefined after
   * CAMPAIGN_TIMEOUT_MS, or once the candidate has exited without it.
   */
  private firstFrom(
    candidate: Candidate,
    timeline: Timeline<ValueEvent>,
  ): Promise<ValueEvent | undefined> {
    return timeline.waitFor(
      (event) => event.value === candidate.value,
      CAMPAIGN_TIMEOUT_MS,
      candidate.exited,
    );
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
