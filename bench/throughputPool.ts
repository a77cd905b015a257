/**
 * The pool under test of the throughput benchmark (bench/throughput.ts): three member
 * processes running the built CLI under their own prefix on the shared etcd, and what the
 * benchmark reads from them — who leads, their counters, the leader's tickets.
 *
 * The counters are the members' own count of their etcd traffic
 * (`service_pool_etcd_requests_total`, by operation) and of the ticket blocks the leader
 * reserved (`service_pool_ticket_blocks_total`), from each member's /metrics.
 *
 * What blocks: `startPool` until the three are ready; `settledLeader` until they agree
 * (≤ POOL_SETTLE_MS); each read ≤ 2 s (/pool, the probe) or 5 s (/metrics).
 */
import { pollUntil } from '../src/demo/childProcesses.js';
import { startPoolMember, type MemberProcess } from '../src/demo/memberProcess.js';
import { freePorts } from '../src/demo/ports.js';
import type { BenchContext } from './section.js';

export const MEMBER_IDS = ['a', 'b', 'c'];

/** The pool names one leader within this bound (ms). */
const POOL_SETTLE_MS = 20_000;

/** Counter values of one member: etcd requests by operation, and ticket blocks reserved. */
export interface Counters {
  etcd: Record<string, number>;
  ticketBlocks: number;
}

interface PoolAnswer {
  self: { id: string; isLeader: boolean };
  leader: { id: string } | null;
  members: unknown[];
}

/** The JSON of a 200 answer within 2 s; undefined for anything else. */
async function getJson<T>(url: string): Promise<T | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.status === 200 ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A pool of three under its own prefix: `a` first (the oldest, so the leader), then b and c
 * together. Members are pushed to `started` as they are spawned, for the caller to stop.
 */
export async function startPool(context: BenchContext, started: MemberProcess[]): Promise<void> {
  const prefix = `/spl-bench-throughput-${process.pid}-${Date.now()}`;
  const ports = await freePorts(MEMBER_IDS.length);
  const start = (i: number) => {
    const member = startPoolMember({
      endpoints: context.etcd.endpoints,
      prefix,
      id: MEMBER_IDS[i]!,
      port: ports[i]!,
      env: { LOG_LEVEL: 'warn' },
    });
    started.push(member);
    return member.waitReady();
  };
  await start(0);
  await Promise.all(MEMBER_IDS.slice(1).map((_, i) => start(i + 1)));
}

/** Waits until every member names the same leader, which says it leads three members. */
export async function settledLeader(members: MemberProcess[]): Promise<string> {
  let leader: string | undefined;
  const outcome = await pollUntil(
    async () => {
      const views = await Promise.all(members.map((m) => getJson<PoolAnswer>(`${m.url}/pool`)));
      const ids = new Set(views.map((view) => view?.leader?.id));
      const [id] = [...ids];
      const own = views.find((view) => view?.self.id === id);
      if (ids.size !== 1 || id === undefined || !own?.self.isLeader) return false;
      if (own.members.length !== members.length) return false;
      leader = id;
      return true;
    },
    { timeoutMs: POOL_SETTLE_MS, intervalMs: 20 },
  );
  if (outcome !== 'satisfied' || leader === undefined) {
    throw new Error(`the pool did not settle on one leader within ${POOL_SETTLE_MS} ms`);
  }
  return leader;
}

const ETCD_LINE = /^service_pool_etcd_requests_total\{operation="([^"]+)"\} (\S+)$/;
const BLOCKS_LINE = /^service_pool_ticket_blocks_total\{[^}]*\} (\S+)$/;

/** One member's counters, from its /metrics. */
export async function readCounters(member: MemberProcess): Promise<Counters> {
  const res = await fetch(`${member.url}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`${member.id}: /metrics answered ${res.status}`);
  const counters: Counters = { etcd: {}, ticketBlocks: 0 };
  for (const line of (await res.text()).split('\n')) {
    const etcd = ETCD_LINE.exec(line);
    if (etcd) counters.etcd[etcd[1]!] = Number(etcd[2]);
    const blocks = BLOCKS_LINE.exec(line);
    if (blocks) counters.ticketBlocks += Number(blocks[1]);
  }
  return counters;
}

/** What each counter grew by between two reads; counters that did not grow are left out. */
export function minus(
  after: Record<string, number>,
  before: Record<string, number>,
): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [operation, value] of Object.entries(after)) {
    const d = value - (before[operation] ?? 0);
    if (d !== 0) delta[operation] = d;
  }
  return delta;
}

/** The ticket of one /work on the leader: the probes that bracket a run's tickets. */
export async function probeTicket(leader: MemberProcess): Promise<number> {
  const answer = await getJson<{ ticket: number }>(`${leader.url}/work?payload=probe`);
  if (answer === undefined) throw new Error(`${leader.id}: the ticket probe failed`);
  return answer.ticket;
}
