/**
 * The chaos harness: a real etcd cluster, pool members as child processes, each member
 * reaching every etcd member through its own cuttable TCP proxy, a bounded client load on
 * every member, and an invariant checker over everything the clients received.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { EtcdCluster } from '../../src/local/etcdCluster.js';
import type { MemberProcess } from '../../src/local/memberProcess.js';
import { freePorts } from '../../src/local/ports.js';
import { TcpProxy } from '../../src/local/tcpProxy.js';
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

  override async startMember(id: string, port?: number): Promise<MemberProcess> {
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
      { ETCD_ENDPOINTS: proxies.map((p) => p.url).join(',') },
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

/** Reads the "claimed leadership" log lines of every member: who claimed which term, when. */
export async function claims(logDir: string): Promise<Claim[]> {
  const found: Claim[] = [];
  const files = (await readdir(logDir)).filter((name) => name.endsWith('.log'));
  const texts = await Promise.all(files.map((name) => readFile(path.join(logDir, name), 'utf8')));
  for (const line of texts.join('\n').split('\n')) {
    if (!line.includes('"claimed leadership"')) continue;
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

/** The errors a client may see, each documented in docs/operations.md. */
const DOCUMENTED_ERRORS = new Map([
  [503, 'NO_LEADER'],
  [502, 'UPSTREAM_FAILED'],
  [504, 'UPSTREAM_TIMEOUT'],
]);

/**
 * Checks every answer the clients received:
 * - no ticket was issued twice, and tickets increase with term;
 * - every answer was produced under a term its performer had claimed, and no member answered
 *   under an old term after an answer under a newer term had already reached a client;
 * - every call ended in a 2xx or a documented error — never a hang, never a 500.
 */
export function checkInvariants(
  records: CallRecord[],
  claims: Map<number, string>,
  /** Members the scenario killed or stopped: a client's connection to them may die. */
  disrupted: ReadonlySet<string>,
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
    const documented = DOCUMENTED_ERRORS.get(record.status);
    // A connection refused or reset by a member the scenario killed is the client's own
    // connection dying, not an answer; only a call that hung until its timeout is a fault.
    if (
      record.status === 0 &&
      record.body.error?.code === 'CONNECTION_LOST' &&
      disrupted.has(record.asked)
    ) {
      continue;
    }
    if (record.status === 0 || documented !== record.body.error?.code) {
      violations.push({
        invariant: 'every call ends in a 2xx or a documented error',
        detail: `call to ${record.asked} ended ${record.status || 'without an answer'} ${JSON.stringify(record.body).slice(0, 160)}`,
      });
    }
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
