/**
 * A pool of real member processes on a real etcd cluster, for the integration tests. Each
 * test pool gets its own etcd prefix, so tests can share one etcd cluster without seeing
 * each other's members.
 */
import { expect } from 'chai';
import type { EtcdCluster } from './etcdCluster.js';
import type { LeaderChange } from '../../src/election/leaderLog.js';
import { pollUntil } from '../../src/demo/childProcesses.js';
import { startPoolMember, type MemberProcess } from '../../src/demo/memberProcess.js';
import { freePorts } from '../../src/demo/ports.js';

export interface PoolView {
  pool: string;
  service: string | null;
  strategy: string | null;
  self: {
    id: string;
    memberKey: string | null;
    isLeader: boolean;
    ready: boolean;
    leaseTimeLeftMs: number;
    strategy: string | null;
    strategyDiffers: boolean;
    candidate: boolean;
  };
  leader: { id: string; url: string; memberKey: string; term: number } | null;
  term: number | null;
  noLeaderReason: string | null;
  revision: number;
  timeline: LeaderChange[];
  members: {
    id: string;
    memberKey: string;
    createRevision: number;
    isLeader: boolean;
    service: string | null;
    strategy: string | null;
    strategyDiffers: boolean;
    candidate: boolean;
  }[];
}

export interface WorkAnswer {
  status: number;
  body: {
    payload?: unknown;
    ticket?: number;
    performedBy?: string;
    leader?: string;
    term?: number;
    via?: string[];
    error?: { code: string; message: string; details?: Record<string, unknown> };
  };
}

let prefixCounter = 0;

export class TestPool {
  readonly members = new Map<string, MemberProcess>();
  readonly prefix: string;

  constructor(
    readonly etcd: EtcdCluster,
    private readonly env: Record<string, string> = {},
  ) {
    this.prefix = `/spl-test-${process.pid}-${++prefixCounter}`;
  }

  /** Starts members one after the other, each ready before the next: the first is oldest. */
  async start(ids: string[]): Promise<void> {
    for (const id of ids) await this.startMember(id);
  }

  async startMember(id: string, port?: number): Promise<MemberProcess> {
    return this.spawn(id, port ?? (await freePorts(1))[0]!);
  }

  /** Starts member `id` with `env` over the pool's (its own strategy settings, say). */
  async startWith(id: string, env: Record<string, string>): Promise<MemberProcess> {
    return this.spawn(id, (await freePorts(1))[0]!, env);
  }

  /** Starts member `id` on `port` with `env` over the pool's, and waits until it is ready. */
  protected async spawn(
    id: string,
    port: number,
    env: Record<string, string> = {},
    logFile?: string,
  ): Promise<MemberProcess> {
    const member = startPoolMember({
      endpoints: this.etcd.endpoints,
      prefix: this.prefix,
      id,
      port,
      env: { LOG_LEVEL: 'info', ...this.env, ...env },
      ...(logFile ? { logFile } : {}),
    });
    this.members.set(id, member);
    await member.waitReady();
    return member;
  }

  member(id: string): MemberProcess {
    const member = this.members.get(id);
    if (!member) throw new Error(`no member ${id}`);
    return member;
  }

  running(): MemberProcess[] {
    return [...this.members.values()].filter((m) => m.running);
  }

  /**
   * Waits until every running member's view has reached the newest write under this pool's
   * prefix: the highest mod revision of its keys, so call it after puts (a delete leaves no
   * key to read). Not the cluster's revision: a write elsewhere in a shared etcd — another
   * test's lease expiring — never reaches a view, which follows this pool's prefix only.
   */
  async seenByAll(pool = 'default'): Promise<void> {
    const read = await this.etcd.etcdctl([
      'get',
      `${this.prefix}/pools/${pool}/`,
      '--prefix',
      '-w',
      'json',
    ]);
    expect(read.code, read.stderr).to.equal(0);
    const { kvs = [] } = JSON.parse(read.stdout) as { kvs?: { mod_revision: number }[] };
    const revision = Math.max(...kvs.map((kv) => kv.mod_revision));
    for (const member of this.running()) {
      await eventually(
        `${member.id} has seen revision ${revision}`,
        async () => (await this.view(member.id)).revision >= revision,
      );
    }
  }

  async view(id: string): Promise<PoolView> {
    // Bounded: a SIGSTOPped member accepts the connection but never answers.
    const res = await fetch(`${this.member(id).url}/pool`, { signal: AbortSignal.timeout(1000) });
    return (await res.json()) as PoolView;
  }

  async work(id: string, payload: unknown = 'x', timeoutMs = 15_000): Promise<WorkAnswer> {
    const res = await fetch(`${this.member(id).url}/work`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ payload }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: res.status, body: (await res.json()) as WorkAnswer['body'] };
  }

  /**
   * Waits until every running member names the same leader and that leader says it leads;
   * returns its id. Polls /pool (the processes expose no event stream to a test).
   */
  async agreedLeader(
    timeoutMs = 10_000,
    options: { except?: string; among?: string[] } = {},
  ): Promise<string> {
    const { except } = options;
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const asked = options.among ?? this.running().map((m) => m.id);
      const views = await Promise.all(asked.map((id) => this.view(id).catch(() => undefined)));
      const ids = new Set(views.map((v) => v?.leader?.id));
      const [only] = [...ids];
      if (ids.size === 1 && only !== undefined && only !== except) {
        const leaderView = views.find((v) => v?.self.id === only);
        if (leaderView?.self.isLeader) return only;
      }
      last = JSON.stringify(views.map((v) => [v?.self.id, v?.leader?.id ?? null]));
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`members did not agree on a leader within ${timeoutMs} ms: ${last}`);
  }

  /** Calls /work on `id` until the answer is performed by someone other than `previous`. */
  async firstWorkByNewLeader(id: string, previous: string, timeoutMs: number): Promise<WorkAnswer> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const answer = await this.work(id, 'probe').catch(() => undefined);
      if (answer?.status === 200 && answer.body.performedBy !== previous) return answer;
    }
    throw new Error(`no /work served by a new leader within ${timeoutMs} ms`);
  }

  async close(): Promise<void> {
    await Promise.all([...this.members.values()].map((m) => m.kill()));
  }
}

/** The value of the sample `name{labels}` in the /metrics of the member at `url` (0 if absent). */
export async function metricSample(url: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Asserts that no ticket appears twice among the answers. */
export function expectUniqueTickets(answers: WorkAnswer[]): void {
  const tickets = answers.filter((a) => a.status === 200).map((a) => a.body.ticket);
  expect(tickets.every((t) => typeof t === 'number')).to.equal(true);
  expect(new Set(tickets).size, 'a ticket was issued twice').to.equal(tickets.length);
}

/**
 * Calls /work round-robin on the given members, one call at a time, until `stop()`; collects
 * every answer (network errors become status 0).
 */
export function workLoop(pool: TestPool, ids: string[]) {
  const answers: WorkAnswer[] = [];
  let running = true;
  const done = (async () => {
    for (let i = 0; running; i++) {
      const id = ids[i % ids.length]!;
      answers.push(
        await pool.work(id, i).catch((error: unknown) => ({
          status: 0,
          body: { error: { code: 'NETWORK', message: String(error) } },
        })),
      );
    }
  })();
  return {
    answers,
    async stop(): Promise<WorkAnswer[]> {
      running = false;
      await done;
      return answers;
    },
  };
}

/**
 * Polls `probe` every 20 ms until it holds; fails the test with `what` after `timeoutMs`. A
 * probe that throws or rejects has not held yet.
 */
export async function eventually(
  what: string,
  probe: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const holds = async () => {
    try {
      return await probe();
    } catch {
      return false;
    }
  };
  const outcome = await pollUntil(holds, { timeoutMs, intervalMs: 20 });
  if (outcome !== 'satisfied') throw new Error(`not within ${timeoutMs} ms: ${what}`);
}

/**
 * Grants a lease with etcdctl. `id` is etcdctl's form (zero-padded hex, what `--lease=`
 * takes); `keySuffix` is the election recipe's `%x` form that member keys use — they differ
 * whenever the id's top nibble is 0.
 */
export async function grantLease(
  etcd: EtcdCluster,
  ttlSeconds: number,
): Promise<{ id: string; keySuffix: string }> {
  const grant = await etcd.etcdctl(['lease', 'grant', String(ttlSeconds)]);
  const id = /lease ([0-9a-f]+) granted/.exec(grant.stdout)?.[1];
  if (!id) throw new Error(`etcdctl lease grant failed: ${grant.stdout}${grant.stderr}`);
  return { id, keySuffix: BigInt(`0x${id}`).toString(16) };
}

/**
 * The id of the etcd member serving `endpoint`, in the hex form `etcdctl member remove` takes.
 * etcdctl's JSON carries ids as numbers too large for a double: they are read as text.
 */
export async function etcdMemberId(etcd: EtcdCluster, endpoint: string): Promise<string> {
  const list = await etcd.etcdctl(['member', 'list', '-w', 'json']);
  const { members } = JSON.parse(list.stdout.replace(/"ID":(\d+)/g, '"ID":"$1"')) as {
    members: { ID: string; clientURLs: string[] }[];
  };
  const member = members.find((m) => m.clientURLs.includes(endpoint));
  if (!member) throw new Error(`no etcd member serves ${endpoint}: ${list.stdout}`);
  return BigInt(member.ID).toString(16);
}

/**
 * Removes etcd member `index` from the cluster (`etcdctl member remove`), asking the members
 * that stay: the removed one stops at once, and an answer it owed would be lost (a retry then
 * finds no such member). etcd refuses a reconfiguration until its members have been connected
 * for 5 s, so a refusal is retried for up to `timeoutMs`. Resolves when etcd has removed it.
 */
export async function removeEtcdMember(
  etcd: EtcdCluster,
  index: number,
  timeoutMs = 15_000,
): Promise<void> {
  const removed = await etcdMemberId(etcd, etcd.endpoints[index]!);
  const staying = etcd.endpoints.filter((_, i) => i !== index);
  let refusal = '';
  await eventually(
    `etcd removes member ${index}`,
    async () => {
      const remove = await etcd.etcdctl(['member', 'remove', removed], { endpoints: staying });
      refusal = remove.stderr.trim();
      return remove.code === 0;
    },
    timeoutMs,
  ).catch((error: Error) => {
    throw new Error(`${error.message}; etcdctl said: ${refusal}`);
  });
}
