/**
 * The demo's prompt commands: the Elixir demo's experiments — work from any member, simple
 * versus tracked work, crash, kind shutdown, freeze, rejoin, resign — one line each.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { formatFailure, formatPools, formatWork } from '../client/format.js';
import type { PoolWatch } from '../client/poolWatch.js';
import { fetchPools, isServiceCallError, resign, sendWork } from '../client/service.js';
import { DemoCommandError, type DemoMember, type DemoMembers } from './demoMembers.js';
import type { PoolChangeReporter } from './poolChanges.js';

/** How a line is shown on a terminal: news (a leader change) stands out, errors are red. */
export type Tone = 'plain' | 'news' | 'error';

export interface DemoSession {
  members: DemoMembers;
  /** ADMIN_TOKEN of every member, for `resign`. */
  adminToken: string;
  /** Seconds; named in the messages about crashes and freezes. */
  leaseTtlSeconds: number;
  watch: PoolWatch;
  changes: PoolChangeReporter;
  say: (line: string, tone?: Tone) => void;
  quit: () => void;
}

/**
 * Above the service's own bound on a request (LEADERLESS_WAIT_MS, 5 s, plus a forward), so a
 * request only times out here when the member asked is frozen.
 */
const WORK_TIMEOUT_MS = 15_000;
const ADMIN_TIMEOUT_MS = 5000;
const STATUS_TIMEOUT_MS = 2000;
const MAX_SLEEP_SECONDS = 600;

export const DEMO_HELP = [
  'commands:',
  '  work [payload] [--on a] [--pool p]   tracked work: any member forwards it to the leader',
  '  simple-work [payload] [--on a]       naive work: read the members from etcd, call the oldest',
  '  status                               the pool as a member sees it, and the processes',
  '  kill a                               SIGKILL, a crash: a new leader after the lease TTL',
  '  stop a                               SIGTERM, the kind shutdown: the leader hands over at once',
  '  start a                              start a stopped or killed member again (same id, port)',
  '  pause a / resume a                   SIGSTOP / SIGCONT: a frozen process',
  '  resign [pool]                        the leader steps down and rejoins as the youngest',
  '  sleep <seconds>                      wait (for scripts piped into the demo)',
  '  help, quit                           this list; stop everything (also Ctrl-D, Ctrl-C)',
].join('\n');

/** Runs one command line; problems with it are said, never thrown. */
export async function runDemoCommand(line: string, session: DemoSession): Promise<void> {
  const [name = '', ...args] = line.trim().split(/\s+/);
  try {
    await dispatch(name, args, session);
  } catch (error) {
    if (error instanceof DemoCommandError) session.say(error.message, 'error');
    else if (isServiceCallError(error)) session.say(formatFailure(error), 'error');
    else throw error;
  }
}

async function dispatch(name: string, args: string[], session: DemoSession): Promise<void> {
  const { members, say } = session;
  switch (name) {
    case 'work':
    case 'simple-work':
      return work(name, args, session);
    case 'status':
      return status(session);
    case 'kill': {
      const id = memberArgument(name, args);
      const ended = await lifecycle(session, `kill ${id}`, id, () => members.kill(id));
      say(
        `${id} killed (${ended}); the others notice when its lease runs out (TTL ${session.leaseTtlSeconds} s)`,
      );
      return;
    }
    case 'stop': {
      const id = memberArgument(name, args);
      const ended = await lifecycle(session, `stop ${id}`, id, () => members.stop(id));
      say(`${id} stopped (${ended})`);
      return;
    }
    case 'start': {
      const id = memberArgument(name, args);
      const member = await lifecycle(session, `start ${id}`, id, () => members.start(id));
      say(`${id} ready at ${member.url} (pid ${member.pid})`);
      return;
    }
    case 'pause': {
      const id = memberArgument(name, args);
      await lifecycle(session, `pause ${id}`, id, () => members.pause(id));
      say(
        `${id} paused (SIGSTOP): a leader stops acting as one before its lease (TTL ${session.leaseTtlSeconds} s) can run out`,
      );
      return;
    }
    case 'resume': {
      const id = memberArgument(name, args);
      await lifecycle(session, `resume ${id}`, id, () => members.resume(id));
      say(`${id} resumed (SIGCONT)`);
      return;
    }
    case 'resign':
      return resignLeader(args[0], session);
    case 'sleep': {
      const seconds = Number(args[0]);
      if (!(seconds >= 0 && seconds <= MAX_SLEEP_SECONDS)) {
        throw new DemoCommandError(`usage: sleep <seconds from 0 to ${MAX_SLEEP_SECONDS}>`);
      }
      await delay(seconds * 1000);
      return;
    }
    case 'help':
      say(DEMO_HELP);
      return;
    case 'quit':
    case 'exit':
      session.quit();
      return;
    default:
      throw new DemoCommandError(`unknown command ${JSON.stringify(name)}; type help`);
  }
}

/**
 * Changes seen from now on are timed from `label`; afterwards the watcher leaves a member
 * that no longer answers (a paused one still accepts connections).
 */
async function lifecycle<T>(
  session: DemoSession,
  label: string,
  id: string,
  action: () => T | Promise<T>,
): Promise<T> {
  session.changes.noteAction(label, id);
  try {
    return await action();
  } finally {
    session.watch.reconsider();
  }
}

function memberArgument(command: string, args: string[]): string {
  const [id, ...rest] = args;
  if (id === undefined || rest.length > 0) {
    throw new DemoCommandError(`usage: ${command} <member>, e.g. ${command} a`);
  }
  return id;
}

/** `work [payload] [--on a] [--pool p]`: the words that are not options are the payload. */
function workArguments(command: string, args: string[]) {
  const words: string[] = [];
  let on: string | undefined;
  let pool: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--on' || arg === '--pool') {
      const value = args[++i];
      if (value === undefined) {
        throw new DemoCommandError(`usage: ${command} [payload] [--on <member>] [--pool <pool>]`);
      }
      if (arg === '--on') on = value;
      else pool = value;
    } else {
      words.push(arg);
    }
  }
  return { payload: words.length === 0 ? null : words.join(' '), on, pool };
}

async function work(
  command: 'work' | 'simple-work',
  args: string[],
  session: DemoSession,
): Promise<void> {
  const { payload, on, pool } = workArguments(command, args);
  const target: DemoMember =
    on === undefined ? session.members.nextForWork() : session.members.get(on);
  if (target.state !== 'running' && target.state !== 'paused') {
    throw new DemoCommandError(`${target.id} is not running (start ${target.id})`);
  }
  try {
    const answer = await sendWork(
      target.url,
      { payload, route: command, ...(pool !== undefined ? { pool } : {}) },
      { timeoutMs: WORK_TIMEOUT_MS },
    );
    session.say(answer.work === undefined ? answer.body.trimEnd() : formatWork(answer.work));
  } catch (error) {
    if (isServiceCallError(error) && target.state === 'paused') {
      throw new DemoCommandError(
        `${formatFailure(error)} (${target.id} is paused: resume ${target.id})`,
      );
    }
    throw error;
  }
}

/** The pools as the first answering member sees them, then every process's state. */
async function status(session: DemoSession): Promise<void> {
  const source = session.members.answering()[0];
  if (source !== undefined) {
    try {
      const { pools } = await fetchPools(source, { timeoutMs: STATUS_TIMEOUT_MS });
      session.say(formatPools(pools));
    } catch (error) {
      // The processes are worth showing all the same.
      if (!isServiceCallError(error)) throw error;
      session.say(formatFailure(error), 'error');
    }
  }
  const processes = session.members
    .list()
    .map((m) => (m.pid === undefined ? `${m.id} ${m.state}` : `${m.id} ${m.state} (pid ${m.pid})`));
  session.say(`processes: ${processes.join(', ')}`);
}

/**
 * Asks the leader of `pool` (default: the first pool of the first answering member) to step
 * down: POST /resign, or /pools/<pool>/resign, with the admin token.
 */
async function resignLeader(poolName: string | undefined, session: DemoSession): Promise<void> {
  const source = session.members.answering()[0];
  if (source === undefined) throw new DemoCommandError('no member is running: start one');
  const { pools } = await fetchPools(source, { timeoutMs: STATUS_TIMEOUT_MS });
  const pool = poolName === undefined ? pools[0] : pools.find((p) => p.pool === poolName);
  if (pool === undefined) {
    throw new DemoCommandError(
      `no pool ${JSON.stringify(poolName)}; the pools are ${pools.map((p) => p.pool).join(', ')}`,
    );
  }
  if (pool.leader === null) throw new DemoCommandError(`pool ${pool.pool} has no leader right now`);
  // The leader leaves and rejoins: that is the resign, not a departure of its own.
  session.changes.noteAction('resign', pool.leader.id);
  const answer = await resign(
    pool.leader.url,
    { adminToken: session.adminToken, ...(poolName !== undefined ? { pool: poolName } : {}) },
    { timeoutMs: ADMIN_TIMEOUT_MS },
  );
  session.say(
    answer.resigned
      ? `${answer.previousLeader} resigned as leader of ${answer.pool}; it rejoins as the youngest member`
      : `not resigned: ${answer.reason ?? 'the member asked is not the leader'}`,
  );
}
