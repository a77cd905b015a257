/**
 * The chaos harness: a real etcd cluster, pool members as child processes, each member
 * reaching every etcd member through its own cuttable TCP proxy, a bounded client load on
 * every member, and an invariant checker over everything the clients received.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { EtcdCluster } from '../support/etcdCluster.js';
import type { MemberProcess } from '../../src/demo/memberProcess.js';
import { freePorts } from '../../src/demo/ports.js';
import { TcpProxy } from '../support/tcpProxy.js';
import { duplicateKeys } from '../support/jsonKeys.js';
import { TestPool, type WorkAnswer } from '../support/pool.js';

export interface CallRecord {
  asked: string;
  startedAt: number;
  endedAt: number;
  status: number;
  body: WorkAnswer['body'];
}

/** A pool whose members talk to etcd through proxies, one per (member, etcd member). */
export class ChaosPool extends TestPool {
  private readonly proxies = new Map<string, TcpProxy[]>();
  private readonly ports = new Map<string, number>();

  constructor(
    etcd: EtcdCluster,
    env: Record<string, string>,
    /** Every member's output, across restarts, goes to `<logDir>/<id>.log`. */
    readonly logDir: string,
  ) {
    super(etcd, env);
  }

  /** `env` goes over the pool's, for this member only. */
  override async startMember(
    id: string,
    port?: number,
    env: Record<string, string> = {},
  ): Promise<MemberProcess> {
    let proxies = this.proxies.get(id);
    if (!proxies) {
      proxies = await Promise.all(this.etcd.endpoints.map((endpoint) => TcpProxy.start(endpoint)));
      this.proxies.set(id, proxies);
    }
    const memberPort = port ?? this.ports.get(id) ?? (await freePorts(1))[0]!;
    this.ports.set(id, memberPort);
    return this.spawn(
      id,
      memberPort,
      { ETCD_ENDPOINTS: proxies.map((p) => p.url).join(','), ...env },
      path.join(this.logDir, `${id}.log`),
    );
  }

  /** Cuts one member off from every etcd member (a partition), or heals it. */
  cutFromEtcd(id: string, mode: 'blackhole' | 'refuse' = 'blackhole'): void {
    for (const proxy of this.proxies.get(id) ?? []) proxy.cut(mode);
  }

  healToEtcd(id: string): void {
    for (const proxy of this.proxies.get(id) ?? []) proxy.heal();
  }

  override async close(): Promise<void> {
    await super.close();
    await Promise.all([...this.proxies.values()].flat().map((p) => p.close()));
  }
}

/**
 * A member's wall clock under our control: libfaketime (Debian's faketime) preloaded, reading
 * its offset from `file` on every call (FAKETIME_NO_CACHE), the monotonic clock left real.
 * `env` goes to the member; `step('-1h')` moves its wall clock. Throws when libfaketime is
 * missing (scripts/install-system-deps.sh chaos installs it; make chaos runs that).
 */
export function fakeWallClock(file: string): {
  env: Record<string, string>;
  step: (offset: string) => void;
} {
  const library = readdirSync('/usr/lib')
    .map((dir) => path.join('/usr/lib', dir, 'faketime', 'libfaketime.so.1'))
    .find((candidate) => existsSync(candidate));
  if (!library) {
    throw new Error(
      'libfaketime.so.1 not found under /usr/lib/*/faketime: apt-get install faketime',
    );
  }
  writeFileSync(file, '+0\n');
  return {
    env: {
      LD_PRELOAD: library,
      FAKETIME_TIMESTAMP_FILE: file,
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    },
    step: (offset) => writeFileSync(file, `${offset}\n`),
  };
}

/**
 * Client load: `concurrency` loops, each calling /work round-robin on the members that are
 * ready — as a Kubernetes Service routes only to ready endpoints; readiness is polled every
 * 100 ms — at most `ratePerSecond` calls in all, until stopped or `maxDurationMs` has passed.
 * Every call has a timeout; one that hits it is recorded as a hang, an invariant violation.
 */
export class Load {
  readonly records: CallRecord[] = [];
  private running = true;
  private readonly loops: Promise<void>[];
  private ready = new Set<string>();

  constructor(
    private readonly pool: TestPool,
    private readonly options: {
      targets: () => string[];
      concurrency?: number;
      ratePerSecond?: number;
      maxDurationMs?: number;
      callTimeoutMs?: number;
    },
  ) {
    const concurrency = options.concurrency ?? 3;
    const pauseMs = (1000 * concurrency) / (options.ratePerSecond ?? 60);
    const stopAt = Date.now() + (options.maxDurationMs ?? 120_000);
    this.loops = [
      this.trackReadiness(stopAt),
      ...Array.from({ length: concurrency }, (_, loop) => this.run(loop, pauseMs, stopAt)),
    ];
  }

  private async trackReadiness(stopAt: number): Promise<void> {
    while (this.running && Date.now() < stopAt) {
      const checks = await Promise.all(
        this.pool.running().map(async (member) => {
          const res = await fetch(`${member.url}/readyz`, {
            signal: AbortSignal.timeout(500),
          }).catch(() => undefined);
          return [member.id, res?.status === 200] as const;
        }),
      );
      this.ready = new Set(checks.filter(([, ready]) => ready).map(([id]) => id));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  private async run(loop: number, pauseMs: number, stopAt: number): Promise<void> {
    for (let i = loop; this.running && Date.now() < stopAt; i++) {
      const targets = this.options.targets().filter((id) => this.ready.has(id));
      const asked = targets[i % targets.length];
      if (asked === undefined) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      const startedAt = Date.now();
      const answer = await this.pool
        .work(asked, { loop, i }, this.options.callTimeoutMs ?? 15_000)
        .catch((error: unknown) => ({
          status: 0,
          body: {
            error: {
              code: isTimeout(error) ? 'CLIENT_TIMEOUT' : 'CONNECTION_LOST',
              message: String(error),
            },
          },
        }));
      this.records.push({ asked, startedAt, endedAt: Date.now(), ...answer });
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }

  async stop(): Promise<CallRecord[]> {
    this.running = false;
    await Promise.all(this.loops);
    return this.records;
  }
}

export interface Claim {
  member: string;
  term: number;
  /** Wall-clock time of the log line, ms since the epoch. */
  at: number;
}

/**
 * The log lines of a member starting a term: its own claim, or the claim the leader before it
 * handed over to it in one write (src/election/campaign.ts).
 */
const TERM_STARTS = ['"claimed leadership"', '"took over the leadership handed to us"'];

/** Reads the members' log lines of terms they started: who claimed which term, when. */
export async function claims(logDir: string): Promise<Claim[]> {
  const found: Claim[] = [];
  const files = (await readdir(logDir)).filter((name) => name.endsWith('.log'));
  const texts = await Promise.all(files.map((name) => readFile(path.join(logDir, name), 'utf8')));
  for (const line of texts.join('\n').split('\n')) {
    if (!TERM_STARTS.some((start) => line.includes(start))) continue;
    try {
      const entry = JSON.parse(line) as { member?: string; term?: string; time?: string };
      if (entry.member && entry.term && entry.time) {
        found.push({ member: entry.member, term: Number(entry.term), at: Date.parse(entry.time) });
      }
    } catch {
      // a line cut short by a SIGKILL
    }
  }
  return found.sort((a, b) => a.term - b.term);
}

/** Who claimed which term. */
export async function claimedTerms(logDir: string): Promise<Map<number, string>> {
  return new Map((await claims(logDir)).map((claim) => [claim.term, claim.member]));
}

/** Milliseconds from `since` to the first claim after it, from the members' logs. */
export async function claimedAfter(logDir: string, since: number): Promise<number | undefined> {
  const next = (await claims(logDir)).find((claim) => claim.at >= since);
  return next ? next.at - since : undefined;
}

export interface Violation {
  invariant: string;
  detail: string;
}

/**
 * The members' logs: every JSON line names each key once (a parser keeps only the last of
 * two), and failed requests are summarised, not logged one line each — at most four
 * "work failed" lines per member, error code and 10 s (a first line and a summary per window,
 * windows straddling the bucket). Lines cut short by a SIGKILL are skipped.
 */
export async function checkLogs(logDir: string): Promise<Violation[]> {
  const violations: Violation[] = [];
  const failures = new Map<string, number>();
  for (const name of (await readdir(logDir)).filter((file) => file.endsWith('.log'))) {
    const member = name.replace(/\.log$/, '');
    for (const line of (await readFile(path.join(logDir, name), 'utf8')).split('\n')) {
      if (!line.startsWith('{')) continue;
      let entry: { msg?: string; code?: string; time?: string };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        continue;
      }
      const twice = duplicateKeys(line);
      if (twice.length > 0) {
        violations.push({
          invariant: 'every log line is JSON with each key once',
          detail: `${member}: ${twice.join(', ')} twice in ${line.slice(0, 200)}`,
        });
      }
      if (entry.msg?.startsWith('work failed') && entry.time) {
        const bucket = `${member} ${entry.code} ${Math.floor(Date.parse(entry.time) / 10_000)}`;
        failures.set(bucket, (failures.get(bucket) ?? 0) + 1);
      }
    }
  }
  for (const [bucket, count] of failures) {
    if (count > 4) {
      violations.push({
        invariant: 'failed requests are summarised in the log',
        detail: `${count} "work failed" lines within 10 s (member, code, bucket: ${bucket})`,
      });
    }
  }
  return violations;
}

/** The errors a client may see under these faults, each documented in docs/operations.md. */
const DOCUMENTED_ERRORS = new Set([
  '503 NO_LEADER',
  '503 LEADER_UNREACHABLE',
  '503 ETCD_UNAVAILABLE',
  '503 SHUTTING_DOWN',
  '503 OVERLOADED',
  '502 UPSTREAM_FAILED',
  '504 UPSTREAM_TIMEOUT',
]);

/** Answers that say no leader could take the call: they come only after the leaderless wait. */
const LEADERLESS_ERRORS = new Set(['NO_LEADER', 'LEADER_UNREACHABLE']);

export interface InvariantOptions {
  /** LEADERLESS_WAIT_MS of the members: a leaderless answer before it is a member giving up early. */
  leaderlessWaitMs?: number;
}

/**
 * Checks every answer the clients received:
 * - no ticket was issued twice, and tickets increase with term;
 * - every answer was produced under a term its performer had claimed, and no member answered
 *   under an old term after an answer under a newer term had already reached a client;
 * - every call ended in a 2xx or a documented error — never a hang, never a 500;
 * - a member said "no leader" only after holding the call LEADERLESS_WAIT_MS.
 */
export function checkInvariants(
  records: CallRecord[],
  claims: Map<number, string>,
  /** Members the scenario killed or stopped: a client's connection to them may die. */
  disrupted: ReadonlySet<string>,
  options: InvariantOptions = {},
): Violation[] {
  const violations: Violation[] = [];
  const ok = records.filter((r) => r.status === 200);

  const seen = new Map<number, CallRecord>();
  for (const record of ok) {
    const ticket = record.body.ticket!;
    const earlier = seen.get(ticket);
    if (earlier) {
      violations.push({
        invariant: 'unique tickets',
        detail: `ticket ${ticket} issued twice: by ${earlier.body.performedBy} (term ${earlier.body.term}) and ${record.body.performedBy} (term ${record.body.term})`,
      });
    }
    seen.set(ticket, record);
  }

  const byTerm = new Map<number, { min: number; max: number; performers: Set<string> }>();
  for (const record of ok) {
    const term = record.body.term!;
    const entry = byTerm.get(term) ?? { min: Infinity, max: -Infinity, performers: new Set() };
    entry.min = Math.min(entry.min, record.body.ticket!);
    entry.max = Math.max(entry.max, record.body.ticket!);
    entry.performers.add(record.body.performedBy!);
    byTerm.set(term, entry);
  }
  const terms = [...byTerm.keys()].sort((a, b) => a - b);
  for (let i = 1; i < terms.length; i++) {
    const before = byTerm.get(terms[i - 1]!)!;
    const after = byTerm.get(terms[i]!)!;
    if (after.min <= before.max) {
      violations.push({
        invariant: 'tickets increase with term',
        detail: `term ${terms[i]} issued ticket ${after.min} ≤ ${before.max} of term ${terms[i - 1]}`,
      });
    }
  }
  for (const [term, entry] of byTerm) {
    const claimant = claims.get(term);
    if (entry.performers.size !== 1 || claimant === undefined || !entry.performers.has(claimant)) {
      violations.push({
        invariant: 'only the leader of a term performs work under it',
        detail: `term ${term} performed by ${[...entry.performers].join(', ')}; claimed by ${claimant ?? 'nobody in the logs'}`,
      });
    }
  }
  // A stale leader: an answer under term T that started after an answer under a newer term
  // had already been received by some client.
  const sortedByEnd = [...ok].sort((a, b) => a.endedAt - b.endedAt);
  let newestTermSeen = -1;
  let newestSeenAt = -Infinity;
  const answersByStart = [...ok].sort((a, b) => a.startedAt - b.startedAt);
  let cursor = 0;
  for (const record of answersByStart) {
    while (cursor < sortedByEnd.length && sortedByEnd[cursor]!.endedAt < record.startedAt) {
      const done = sortedByEnd[cursor]!;
      if (done.body.term! > newestTermSeen) {
        newestTermSeen = done.body.term!;
        newestSeenAt = done.endedAt;
      }
      cursor++;
    }
    if (record.body.term! < newestTermSeen) {
      violations.push({
        invariant: 'no stale leader',
        detail: `${record.body.performedBy} answered under term ${record.body.term} for a call started ${record.startedAt - newestSeenAt} ms after term ${newestTermSeen} had answered`,
      });
    }
  }

  for (const record of records) {
    if (record.status === 200) continue;
    const code = record.body.error?.code ?? '';
    const waitedMs = record.body.error?.details?.waitedMs;
    if (
      options.leaderlessWaitMs !== undefined &&
      LEADERLESS_ERRORS.has(code) &&
      (typeof waitedMs !== 'number' ||
        waitedMs < options.leaderlessWaitMs ||
        // as the client measured it, with a little slack for its own clock reads
        record.endedAt - record.startedAt < options.leaderlessWaitMs - 5)
    ) {
      violations.push({
        invariant: 'a leaderless answer only after LEADERLESS_WAIT_MS',
        detail: `${record.asked} answered ${code} after ${String(waitedMs)} ms of ${options.leaderlessWaitMs}: ${record.body.error?.message}`,
      });
    }
    // A connection refused or reset by a member the scenario killed is the client's own
    // connection dying, not an answer; only a call that hung until its timeout is a fault.
    if (
      record.status === 0 &&
      record.body.error?.code === 'CONNECTION_LOST' &&
      disrupted.has(record.asked)
    ) {
      continue;
    }
    if (record.status === 0 || !DOCUMENTED_ERRORS.has(`${record.status} ${code}`)) {
      violations.push({
        invariant: 'every call ends in a 2xx or a documented error',
        detail: `call to ${record.asked} ended ${record.status || 'without an answer'} ${JSON.stringify(record.body).slice(0, 160)}`,
      });
    }
  }
  return violations;
}

/**
 * `checkInvariants` across a restore of etcd from an older backup at `restoredAt`. Terms are
 * claim revisions, and a restore without `--bump-revision` sets etcd's revision back, so term
 * numbers start again lower: the term checks hold within each side of the restore. Tickets
 * hold across it: none repeats, and every ticket after the restore is above every ticket
 * before it. An answer belongs to the side of the claim it was performed under.
 */
export function checkAcrossRestore(
  records: CallRecord[],
  allClaims: Claim[],
  restoredAt: number,
  disrupted: ReadonlySet<string>,
  options: InvariantOptions = {},
): Violation[] {
  const later = allClaims.filter((claim) => claim.at >= restoredAt);
  const afterRestore = (record: CallRecord) =>
    record.status === 200
      ? later.some(
          (claim) =>
            claim.term === record.body.term &&
            claim.member === record.body.performedBy &&
            record.endedAt >= claim.at,
        )
      : record.startedAt >= restoredAt;
  const sides = [false, true].map((after) => ({
    records: records.filter((record) => afterRestore(record) === after),
    claims: new Map(
      allClaims
        .filter((claim) => claim.at >= restoredAt === after)
        .map((claim) => [claim.term, claim.member]),
    ),
  }));
  const violations = sides.flatMap((side) =>
    checkInvariants(side.records, side.claims, disrupted, options),
  );
  const tickets = (side: (typeof sides)[number]) =>
    side.records.filter((r) => r.status === 200).map((r) => r.body.ticket!);
  const before = tickets(sides[0]!);
  const after = tickets(sides[1]!);
  const issuedBefore = new Set(before);
  const twice = after.filter((ticket) => issuedBefore.has(ticket));
  if (twice.length > 0) {
    violations.push({
      invariant: 'unique tickets',
      detail: `${twice.length} tickets issued both before and after the restore, e.g. ${twice.slice(0, 5).join(', ')}`,
    });
  }
  const highestBefore = Math.max(...before);
  const repeated = after.filter((ticket) => ticket <= highestBefore);
  if (repeated.length > 0) {
    violations.push({
      invariant: 'tickets after a restore are above every ticket before it',
      detail: `${repeated.length} tickets after the restore at or below ${highestBefore}, e.g. ${repeated.slice(0, 5).join(', ')}`,
    });
  }
  return violations;
}

/** Outcome counts for the reliability table: `200: 812, 503 NO_LEADER: 3`. */
export function outcomes(records: CallRecord[]): string {
  const counts = new Map<string, number>();
  for (const record of records) {
    const key =
      record.status === 200 ? '200' : `${record.status} ${record.body.error?.code ?? ''}`.trim();
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, count]) => `${key}: ${count}`).join(', ');
}

/** Time from `since` to the first 200 performed by someone other than `previous`. */
export function firstServedAfter(
  records: CallRecord[],
  since: number,
  previous: string | undefined,
): number | undefined {
  const first = records
    .filter((r) => r.status === 200 && r.startedAt >= since && r.body.performedBy !== previous)
    .sort((a, b) => a.endedAt - b.endedAt)[0];
  return first ? first.endedAt - since : undefined;
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
}
