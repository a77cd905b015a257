/**
 * `make demo`: the Elixir demo's three `iex` terminals, on loopback, as a playground. A
 * 3-member etcd cluster, members a, b, c on ports 8081-8083, and a prompt to send work and to
 * crash, stop, freeze, restart or demote members while leader changes are printed as they
 * happen (demoCommands.ts lists the commands).
 *
 * Every child runs in its own process group, so the terminal's Ctrl-C reaches only this
 * process, which stops the members first (each releases its claim and revokes its lease while
 * etcd is still up) and etcd last. `quit`, the end of the input (Ctrl-D, a pipe), Ctrl-C and
 * SIGTERM all end it that way; a second Ctrl-C or SIGTERM gives up on that and kills
 * everything.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { PoolDescription } from '../client/answers.js';
import { table } from '../client/format.js';
import { PoolWatch } from '../client/poolWatch.js';
import { fetchPools } from '../client/service.js';
import { loadConfig, type Config } from '../config/config.js';
import { describeExit, LocalProcessError, pollUntil, type ExitStatus } from './childProcesses.js';
import { DemoConsole } from './demoConsole.js';
import { runDemoCommand, type DemoSession, type Tone } from './demoCommands.js';
import { DemoMembers } from './demoMembers.js';
import { LocalEtcd } from './localEtcd.js';
import { assertCliBuilt } from './memberProcess.js';
import { PoolChangeReporter } from './poolChanges.js';
import { isPortFree } from './ports.js';

export interface DemoOptions {
  /** Member i listens on basePort + i. Default 8081. */
  basePort?: number;
  /** Default ['a', 'b', 'c']. */
  ids?: string[];
  /** LEASE_TTL_SECONDS of every member; default: the service's own default (5 s). */
  leaseTtlSeconds?: number;
  /** Where commands come from. Default process.stdin; a terminal gets a prompt. */
  input?: NodeJS.ReadableStream;
  /** Where progress, answers and changes go. Default process.stdout. */
  out?: NodeJS.WritableStream;
}

/** What the demo left behind: nothing, which a test checks. */
export interface DemoSummary {
  /** The temporary directory (etcd data, logs); removed by the time runDemo resolves. */
  root: string;
  /** Every process the demo started: etcd members and each incarnation of a pool member. */
  pids: number[];
}

/** Once every member is ready, the election has usually finished; give it this long if not. */
const LEADER_WAIT_MS = 5000;
/** The shell's convention for "ended by SIGINT". */
const EXIT_INTERRUPTED = 130;

/**
 * Runs until `quit`, the end of the input, SIGINT or SIGTERM; then stops everything and
 * removes its temporary data.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoSummary> {
  const ids = options.ids ?? ['a', 'b', 'c'];
  const basePort = options.basePort ?? 8081;
  if (ids.length === 0)
    throw new LocalProcessError('DEMO_CANNOT_START', 'the demo needs at least one member id');
  if (!Number.isInteger(basePort) || basePort < 1 || basePort + ids.length - 1 > 65535) {
    throw new LocalProcessError(
      'DEMO_CANNOT_START',
      `base port ${basePort}: expected a port such that ${basePort}..${basePort + ids.length - 1} are all ports`,
    );
  }

  assertCliBuilt();
  const adminToken = randomBytes(24).toString('hex');
  const env: Record<string, string> = { LOG_FORMAT: 'pretty', ADMIN_TOKEN: adminToken };
  if (options.leaseTtlSeconds !== undefined) {
    env.LEASE_TTL_SECONDS = String(options.leaseTtlSeconds);
  }
  // The members parse the same variables: a bad value fails here, before anything starts.
  const config = loadConfig({ ...env, MEMBER_ID: ids[0] });
  for (const port of ids.map((_, i) => basePort + i)) {
    if (!(await isPortFree(port))) {
      const other = basePort + 1000 + ids.length <= 65535 ? basePort + 1000 : 18081;
      throw new LocalProcessError(
        'DEMO_CANNOT_START',
        `port ${port} on 127.0.0.1 is already in use (is another demo running?); free it, or use ports from ${other}: make demo BASE_PORT=${other} (or demo --base-port ${other})`,
      );
    }
  }

  const root = await mkdtemp(path.join(os.tmpdir(), 'spl-demo-'));
  const logDir = path.join(root, 'logs');
  const stop = stopRequests((reason) =>
    say(`${reason} again: killing everything, leaving ${root}`),
  );
  // Opened now: on a terminal it owns Ctrl-C from here on, and commands typed during start-up wait.
  const demoConsole = new DemoConsole(
    options.input ?? process.stdin,
    options.out ?? process.stdout,
    () => stop.request('Ctrl-C'),
  );
  const say = (line: string, tone?: Tone) => demoConsole.say(line, tone);
  const pids: number[] = [];
  let stopping = false;
  /** Times the pool's next changes from an exit nobody typed here (set once the prompt runs). */
  let noteExit: (action: string, id: string) => void = () => undefined;
  let cluster: LocalEtcd | undefined;
  let members: DemoMembers | undefined;
  try {
    say('starting etcd (3 members)…');
    cluster = await LocalEtcd.start({
      dataDir: path.join(root, 'etcd'),
      logDir,
      ownProcessGroup: true,
    });
    pids.push(...cluster.members.flatMap((member) => member.pid ?? []));
    const endpoints = cluster.endpoints.join(',');
    say(`etcd ready at ${endpoints}`);

    members = new DemoMembers(
      ids.map((id, i) => ({
        id,
        port: basePort + i,
        env: { ...env, ETCD_ENDPOINTS: endpoints },
        logFile: path.join(logDir, `${id}.log`),
        ownProcessGroup: true,
      })),
      (id, status, logFile) => {
        if (stopping) return;
        // Ended from another shell (SIGTERM, kill -9, ...) or crashed: said as it is, and what
        // the pool does next is timed from it, not from the last command typed here.
        const outside = describeOutsideExit(id, status);
        if (outside) {
          say(outside.line, 'news');
          noteExit(outside.action, id);
        } else {
          say(`${id} exited unexpectedly (${describeExit(status)}); its log: ${logFile}`, 'error');
          noteExit(`${id} exited`, id);
        }
      },
    );

    // One after another, so that a is the oldest member and, with the default strategy, leads.
    for (const id of ids) {
      if (stop.requested) break;
      say(`starting member ${id}…`);
      const member = await members.start(id);
      say(`member ${id} ready at ${member.url}`);
    }
    if (!stop.requested) {
      const pools = await waitForLeader(members.answering()[0]!);
      say(
        pools[0]?.leader
          ? `leader: ${pools[0].leader.id} (term ${pools[0].term})`
          : `no leader after ${LEADER_WAIT_MS} ms: see the logs`,
      );
      say(guide({ endpoints, logDir, members, config }));
      await prompt(demoConsole, stop, {
        members,
        adminToken,
        leaseTtlSeconds: config.lease.ttlSeconds,
        initialPools: pools,
        onReporter: (changes) => (noteExit = (action, id) => changes.noteAction(action, id)),
      });
    }
  } finally {
    stopping = true;
    demoConsole.close();
    say(`stopping members${stop.requested ? ' (Ctrl-C again to kill everything)' : ''}…`);
    await members?.stopAll();
    say('stopping etcd…');
    await cluster?.close();
    await rm(root, { recursive: true, force: true });
    stop.dispose();
    say('stopped, temp data removed');
  }
  return { root, pids: [...pids, ...(members?.pids ?? [])] };
}

/** Reads and runs commands until `quit`, the end of the input, or a stop request. */
async function prompt(
  demoConsole: DemoConsole,
  stop: ReturnType<typeof stopRequests>,
  facts: {
    members: DemoMembers;
    adminToken: string;
    leaseTtlSeconds: number;
    initialPools: PoolDescription[];
    /** Hands out the reporter, so that exits seen elsewhere can time what follows them. */
    onReporter: (changes: PoolChangeReporter) => void;
  },
): Promise<void> {
  const changes = new PoolChangeReporter(facts.initialPools, (change) =>
    demoConsole.say(change.line, change.leader ? 'news' : 'plain'),
  );
  facts.onReporter(changes);
  const watch = new PoolWatch({
    sources: () => facts.members.answering(),
    onSnapshot: (pools) => changes.observe(pools),
  });
  const session: DemoSession = {
    members: facts.members,
    adminToken: facts.adminToken,
    leaseTtlSeconds: facts.leaseTtlSeconds,
    watch,
    changes,
    say: (line, tone) => demoConsole.say(line, tone),
    quit: () => stop.request('quit'),
  };
  const stopped = stop.whenRequested.then(() => undefined);
  try {
    while (!stop.requested) {
      const line = await Promise.race([demoConsole.nextCommand(), stopped]);
      if (line === undefined) break;
      await runDemoCommand(line, session);
    }
  } finally {
    await watch.stop();
  }
}

/**
 * The first request (quit, SIGINT, SIGTERM, Ctrl-C at the prompt) asks for an orderly stop; a
 * second one exits at once, and the exit handler of the local tooling SIGKILLs the children.
 */
function stopRequests(onForce: (reason: string) => void) {
  let requested = false;
  let resolveRequested: () => void = () => undefined;
  const whenRequested = new Promise<void>((resolve) => (resolveRequested = resolve));
  const request = (reason: string) => {
    if (requested) {
      onForce(reason);
      process.exit(EXIT_INTERRUPTED);
    }
    requested = true;
    resolveRequested();
  };
  const onSignal = (signal: NodeJS.Signals) => request(signal);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    get requested() {
      return requested;
    },
    whenRequested,
    request,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** The pools as `url` sees them once it names a leader, or after LEADER_WAIT_MS regardless. */
async function waitForLeader(url: string): Promise<PoolDescription[]> {
  let pools: PoolDescription[] = [];
  await pollUntil(
    async () => {
      pools = await fetchPools(url, { timeoutMs: 1000 }).then(
        (answer) => answer.pools,
        () => pools,
      );
      return pools[0]?.leader != null;
    },
    { timeoutMs: LEADER_WAIT_MS, intervalMs: 100 },
  );
  return pools;
}

function guide(facts: {
  endpoints: string;
  logDir: string;
  members: DemoMembers;
  config: Config;
}): string {
  const { members, config } = facts;
  const list = members.list();
  const electionName = `${config.etcd.prefix}/pools/${config.pool}/members`;
  const rows = [
    ['etcd', facts.endpoints],
    ['logs', `${facts.logDir}/ (<member>.log, etcd<n>.log)`],
    ...list.map((m, i) => [i === 0 ? 'members' : '', `${m.id}  ${m.url}  pid ${m.pid}`]),
    // A follower's page: it stays live while the leader, the first member, is killed.
    ['status page', `${list[1 % list.length]!.url}/  (live; open it, then kill ${list[0]!.id})`],
    [
      'also try',
      `curl -s localhost:${new URL(list[1 % list.length]!.url).port}/work?payload=hello`,
    ],
    ['', `node dist/src/cli.js status --url ${list[list.length - 1]!.url}`],
    ['', `etcdctl --endpoints=${facts.endpoints} elect -l ${electionName}  (Ctrl-C ends it)`],
  ];
  return [
    '',
    ...table(rows),
    '',
    'type help for the commands: work, simple-work, status, kill, stop, start, pause, resume, resign, quit',
  ].join('\n');
}

/**
 * A member that ended from outside the demo without failing: a clean shutdown (exit code 0,
 * e.g. SIGTERM from another shell) or a signal. Undefined for a failure (another exit code).
 */
function describeOutsideExit(
  id: string,
  status: ExitStatus,
): { line: string; action: string } | undefined {
  if (status.error === undefined && status.signal === null && status.code === 0) {
    return {
      line: `${id} stopped from outside the demo (a clean shutdown, exit code 0); start ${id} brings it back`,
      action: `${id} stopped outside the demo`,
    };
  }
  if (status.error === undefined && status.signal !== null) {
    return {
      line: `${id} was ended from outside the demo (signal ${status.signal}); start ${id} brings it back`,
      action: `${id} got ${status.signal} outside the demo`,
    };
  }
  return undefined;
}
