/**
 * The pool under test of the failover benchmark (bench/failover.ts): member processes running
 * the built CLI under their own etcd prefix on the shared cluster, with a watch on the pool's
 * claim key that timestamps every new claim as it arrives (this process's monotonic clock,
 * `performance.now()`, in ms).
 *
 * It also tells when a member last renewed its lease (`leaseRenewals`), for the crash trials'
 * kill phase (bench/crashPhase.ts).
 *
 * What blocks: `start` until every member is ready, one after the other; `restart` until the
 * old process has exited and the new one is ready; `settled` until the members agree on one
 * leader (≤ AGREE_TIMEOUT_MS), each /pool read ≤ 1 s; `leaseRenewals(…).next` until the next
 * renewal shows or its timeout passes; `close` until every member has exited.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Etcd3, type Watcher } from 'etcd3';
import { poolKeys } from '../src/etcd/keys.js';
import { pollUntil } from '../src/demo/childProcesses.js';
import type { LocalEtcd } from '../src/demo/localEtcd.js';
import { startPoolMember, type MemberProcess } from '../src/demo/memberProcess.js';
import { freePorts } from '../src/demo/ports.js';
import { sleep } from '../src/util/time.js';
import { renewalIntervalMs, sleepUntil, type RenewalClock } from './crashPhase.js';

interface ClaimEvent {
  at: number;
  id: string | undefined;
}

interface PoolAnswer {
  self: {
    id: string;
    isLeader: boolean;
    /**
     * ms from the answer to the member's lease deadline: the send of its last answered
     * keep-alive + TTL (src/membership/lease.ts); 0 when it has no lease.
     */
    leaseTimeLeftMs: number;
  };
  leader: { id: string } | null;
  members: { id: string; createRevision: number }[];
}

const POOL = 'default';
/**
 * BENCH_LOG_DIR=<dir>: members log at debug level into <dir>/<id>.log, to trace where a slow
 * failover spends its time (pino's `time` is epoch ms on every process of the machine).
 */
const TRACE_DIR = process.env.BENCH_LOG_DIR;
const AGREE_TIMEOUT_MS = 20_000;
/** Around an expected renewal, /pool is read this often (ms), from this long before it (ms). */
const RENEWAL_POLL_MS = 5;
const RENEWAL_POLL_EARLY_MS = 20;
/**
 * Two reads of one renewal differ by the reads' own timing (a few ms, see `leaseRenewals`); a
 * renewal this much later (ms) than the last one known is a new one.
 */
const SAME_RENEWAL_MS = 50;

/**
 * A pool of member processes under its own etcd prefix, with a watch on its claim key that
 * records every new claim as it arrives.
 */
export class BenchPool {
  readonly members = new Map<string, MemberProcess>();
  private readonly claims: ClaimEvent[] = [];

  private constructor(
    private readonly etcd: LocalEtcd,
    readonly ttlSeconds: number,
    private readonly prefix: string,
    private readonly client: Etcd3,
    private readonly watcher: Watcher,
  ) {
    watcher.on('put', (kv) => {
      this.claims.push({ at: performance.now(), id: claimId(kv.value.toString()) });
    });
  }

  static async start(etcd: LocalEtcd, ttlSeconds: number, ids: string[]): Promise<BenchPool> {
    const prefix = `/spl-bench-${process.pid}-ttl${ttlSeconds}-${Date.now()}`;
    const client = new Etcd3({ hosts: etcd.endpoints });
    const watcher = await client.watch().key(poolKeys(prefix, POOL).leader).create();
    const pool = new BenchPool(etcd, ttlSeconds, prefix, client, watcher);
    const ports = await freePorts(ids.length);
    // One after the other, each ready before the next: the first is the oldest and leads.
    for (const [i, id] of ids.entries()) await pool.startMember(id, ports[i]!);
    return pool;
  }

  private async startMember(id: string, port: number): Promise<MemberProcess> {
    const member = startPoolMember({
      endpoints: this.etcd.endpoints,
      prefix: this.prefix,
      id,
      port,
      env: { LEASE_TTL_SECONDS: String(this.ttlSeconds), LOG_LEVEL: TRACE_DIR ? 'debug' : 'warn' },
      ...(TRACE_DIR ? { logFile: path.join(TRACE_DIR, `${id}.log`) } : {}),
    });
    this.members.set(id, member);
    await member.waitReady();
    return member;
  }

  /** Starts member `id` again, same id, port and environment, once its old process is gone. */
  async restart(id: string): Promise<MemberProcess> {
    const old = this.member(id);
    await old.exited;
    return this.startMember(id, old.options.port);
  }

  member(id: string): MemberProcess {
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`no member ${id}`);
    return member;
  }

  /** The first claim the watch saw at or after `since`, by anyone but `except`. */
  claimAfter(since: number, except?: string): ClaimEvent | undefined {
    return this.claims.find((claim) => claim.at >= since && claim.id !== except);
  }

  /**
   * Waits until every running member answers /pool naming the same leader, the leader says it
   * leads, and all `size` members are registered; returns the leader and the youngest other
   * member (the client's observer: a follower that will not be next in line).
   */
  async settled(size: number): Promise<{ leader: string; observer: string }> {
    let found: { leader: string; observer: string } | undefined;
    const outcome = await pollUntil(
      async () => {
        const running = [...this.members.values()].filter((m) => m.running);
        const views = await Promise.all(running.map((m) => poolView(m.url)));
        const leaders = new Set(views.map((view) => view?.leader?.id));
        const [leader] = [...leaders];
        if (leaders.size !== 1 || leader === undefined) return false;
        const leaderView = views.find((view) => view?.self.id === leader);
        if (!leaderView?.self.isLeader || leaderView.members.length !== size) return false;
        const youngestFirst = [...leaderView.members].sort(
          (a, b) => b.createRevision - a.createRevision,
        );
        const observer = youngestFirst.find((m) => m.id !== leader)?.id;
        if (observer === undefined) return false;
        found = { leader, observer };
        return true;
      },
      { timeoutMs: AGREE_TIMEOUT_MS, intervalMs: 10 },
    );
    if (outcome !== 'satisfied' || found === undefined) {
      throw new Error(
        `pool did not settle on one leader of ${size} members within ${AGREE_TIMEOUT_MS} ms`,
      );
    }
    return found;
  }

  /**
   * Member `id`'s lease renewals, as its GET /pool tells them: `leaseTimeLeftMs` counts to the
   * send of its last answered keep-alive + TTL, so that send was TTL − timeLeft before the
   * member answered, taken as the middle of the request (± half a loopback round trip, about
   * a millisecond). `next` sleeps until shortly before the next keep-alive is due (TTL/3 after
   * the last), then reads every RENEWAL_POLL_MS until a new renewal shows.
   */
  leaseRenewals(id: string): RenewalClock {
    const url = this.member(id).url;
    const ttlMs = this.ttlSeconds * 1000;
    const read = async (): Promise<number | undefined> => {
      const sentAt = performance.now();
      const left = (await poolView(url))?.self.leaseTimeLeftMs;
      const answeredAt = performance.now();
      return left === undefined || left <= 0 ? undefined : (sentAt + answeredAt) / 2 - ttlMs + left;
    };
    const intervalMs = renewalIntervalMs(this.ttlSeconds);
    return {
      latest: read,
      next: async (after, timeoutMs) => {
        const deadline = performance.now() + timeoutMs;
        if (after !== undefined) {
          await sleepUntil(Math.min(deadline, after + intervalMs - RENEWAL_POLL_EARLY_MS));
        }
        for (;;) {
          const renewedAt = await read();
          if (
            renewedAt !== undefined &&
            (after === undefined || renewedAt > after + SAME_RENEWAL_MS)
          ) {
            return renewedAt;
          }
          if (performance.now() >= deadline) return undefined;
          await sleep(RENEWAL_POLL_MS);
        }
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.members.values()].map((m) => m.kill()));
    await this.watcher.cancel();
    this.client.close();
  }
}

function claimId(value: string): string | undefined {
  try {
    return (JSON.parse(value) as { id?: string }).id;
  } catch {
    return undefined;
  }
}

async function poolView(url: string): Promise<PoolAnswer | undefined> {
  try {
    const res = await fetch(`${url}/pool`, { signal: AbortSignal.timeout(1000) });
    return res.status === 200 ? ((await res.json()) as PoolAnswer) : undefined;
  } catch {
    return undefined;
  }
}
