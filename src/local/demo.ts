/**
 * `make demo`: the Elixir demo's three `iex` terminals, on loopback. A 3-member etcd cluster and
 * members a, b, c on ports 8081-8083, a guide to poke at them, and a clean stop on Ctrl-C.
 *
 * Every child runs in its own process group, so the terminal's Ctrl-C reaches only this
 * process, which stops the members first (each releases its claim and revokes its lease while
 * etcd is still up) and etcd last. A second Ctrl-C gives up on that and kills everything.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../config/config.js';
import { describeExit, httpGet, LocalProcessError, pollUntil } from './childProcesses.js';
import { EtcdCluster } from './etcdCluster.js';
import { assertCliBuilt, MemberProcess } from './memberProcess.js';
import { isPortFree } from './ports.js';

export interface DemoOptions {
  /** Member i listens on basePort + i. Default 8081. */
  basePort?: number;
  /** Default ['a', 'b', 'c']. */
  ids?: string[];
  /** LEASE_TTL_SECONDS of every member; default: the service's own default. */
  leaseTtlSeconds?: number;
  /** Where progress and the guide go. Default process.stdout. */
  out?: NodeJS.WritableStream;
}

/** Once every member is ready, the election has usually finished; give it this long if not. */
const LEADER_WAIT_MS = 5000;
/** The shell's convention for "ended by SIGINT". */
const EXIT_INTERRUPTED = 130;

/** The part of GET /pool that the demo reads. */
interface PoolView {
  leader: { id: string } | null;
  term: number | null;
}

interface Leadership {
  id: string;
  term: number | null;
}

/** Runs until SIGINT or SIGTERM, then stops everything and removes its temporary data. */
export async function runDemo(options: DemoOptions = {}): Promise<void> {
  const out = options.out ?? process.stdout;
  const say = (line: string) => out.write(`${line}\n`);
  const ids = options.ids ?? ['a', 'b', 'c'];
  const basePort = options.basePort ?? 8081;
  if (ids.length === 0)
    throw new LocalProcessError('DEMO_CANNOT_START', 'the demo needs at least one member id');

  assertCliBuilt();
  const env: Record<string, string> = { LOG_FORMAT: 'pretty' };
  if (options.leaseTtlSeconds !== undefined) {
    env.LEASE_TTL_SECONDS = String(options.leaseTtlSeconds);
  }
  // The members parse the same variables: a bad value fails here, before anything starts.
  const config = loadConfig({ ...env, MEMBER_ID: ids[0] });
  for (const port of ids.map((_, i) => basePort + i)) {
    if (!(await isPortFree(port))) {
      throw new LocalProcessError(
        'DEMO_CANNOT_START',
        `port ${port} on 127.0.0.1 is already in use (is another demo running?); free it or choose another base port`,
      );
    }
  }

  const root = await mkdtemp(path.join(os.tmpdir(), 'spl-demo-'));
  const stop = stopSignals((signal) => say(`${signal} again: killing everything, leaving ${root}`));
  const logDir = path.join(root, 'logs');
  const members: MemberProcess[] = [];
  let cluster: EtcdCluster | undefined;
  let stopping = false;
  try {
    say('starting etcd (3 members)…');
    cluster = await EtcdCluster.start({
      dataDir: path.join(root, 'etcd'),
      logDir,
      ownProcessGroup: true,
    });
    const endpoints = cluster.endpoints.join(',');
    say(`etcd ready at ${endpoints}`);

    // One after another, so that a is the oldest member and, with the default strategy, leads.
    for (const [i, id] of ids.entries()) {
      if (stop.requested) break;
      say(`starting member ${id}…`);
      const logFile = path.join(logDir, `${id}.log`);
      const member = MemberProcess.start({
        id,
        port: basePort + i,
        env: { ...env, ETCD_ENDPOINTS: endpoints },
        logFile,
        ownProcessGroup: true,
      });
      members.push(member);
      void member.exited.then((status) => {
        if (!stopping) {
          say(
            `member ${id} (pid ${member.pid}) exited (${describeExit(status)}); its log: ${logFile}`,
          );
        }
      });
      await member.waitReady();
      say(`member ${id} ready at ${member.url}`);
    }
    if (!stop.requested && members[0] !== undefined) {
      const leader = await waitForLeader(members[0].url);
      say(
        leader === undefined
          ? `no leader after ${LEADER_WAIT_MS} ms: see the logs`
          : `leader: ${leader.id} (term ${leader.term})`,
      );
      say(guide({ endpoints, logDir, members, leaderId: leader?.id, config, root }));
    }
    await stop.whenRequested;
  } finally {
    stopping = true;
    say(`stopping members${stop.requested ? ' (Ctrl-C again to kill everything)' : ''}…`);
    await Promise.all(members.map((member) => member.stop()));
    say('stopping etcd…');
    await cluster?.close();
    await rm(root, { recursive: true, force: true });
    stop.dispose();
    say('stopped, temp data removed');
  }
}

/**
 * The first SIGINT or SIGTERM asks for an orderly stop; a second one exits at once, and the
 * exit handler of the local tooling SIGKILLs the children.
 */
function stopSignals(onForce: (signal: NodeJS.Signals) => void) {
  let requested = false;
  let resolveRequested: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => (resolveRequested = resolve));
  const onSignal = (signal: NodeJS.Signals) => {
    if (requested) {
      onForce(signal);
      process.exit(EXIT_INTERRUPTED);
    }
    requested = true;
    resolveRequested();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    get requested() {
      return requested;
    },
    whenRequested: promise,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

async function waitForLeader(url: string): Promise<Leadership | undefined> {
  let leader: Leadership | undefined;
  await pollUntil(
    async () => {
      const answer = await httpGet(`${url}/pool`);
      if (answer?.status !== 200) return false;
      try {
        const view = JSON.parse(answer.body) as PoolView;
        leader = view.leader === null ? undefined : { id: view.leader.id, term: view.term };
      } catch {
        return false;
      }
      return leader !== undefined;
    },
    { timeoutMs: LEADER_WAIT_MS, intervalMs: 100 },
  );
  return leader;
}

function guide(facts: {
  endpoints: string;
  logDir: string;
  root: string;
  members: MemberProcess[];
  leaderId: string | undefined;
  config: Config;
}): string {
  const { members, config } = facts;
  const port = (i: number) => members[i % members.length]?.options.port;
  const leader = members.find((member) => member.id === facts.leaderId);
  const electionName = `${config.etcd.prefix}/pools/${config.pool}/members`;
  return [
    '',
    `etcd endpoints  ${facts.endpoints}`,
    `logs            ${facts.logDir}/ (<member>.log, etcd<n>.log)`,
    ...members.map(
      (member, i) =>
        `${(i === 0 ? 'members' : '').padEnd(16)}${member.id}  ${member.url}  pid ${member.pid}`,
    ),
    '',
    'try:',
    `  curl -s localhost:${port(0)}/work?payload=hello`,
    `  curl -s -XPOST localhost:${port(1)}/work -H 'content-type: application/json' -d '{"payload":{"n":1}}'`,
    `  curl -s localhost:${port(2)}/pool`,
    `  etcdctl --endpoints=${facts.endpoints} elect -l ${electionName}`,
    leader === undefined
      ? '  kill <pid>      # stop a member gracefully (kill -9: crash, kill -STOP / -CONT: freeze)'
      : `  kill ${leader.pid}      # stop the leader ${leader.id} gracefully (kill -9: crash, kill -STOP / -CONT: freeze)`,
    `  tail -f ${path.join(facts.logDir, `${members[0]?.id}.log`)}`,
    '',
    `Ctrl-C stops everything and removes ${facts.root}.`,
  ].join('\n');
}
