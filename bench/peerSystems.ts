/**
 * The peers of the handover benchmark (bench/failover.ts, bench/peer.ts): other election
 * libraries, each run as candidate processes on the same etcd, beside our pool.
 *
 * - etcd3's `Election` (TypeScript, the client this project uses): bench/peerCandidate.ts, a
 *   careful user's program — SIGTERM → `resign()` → exit — that also reports each renewal of
 *   its lease, for the crash trials' kill phase (bench/crashPhase.ts);
 * - Go's `concurrency.Election`, as Debian's etcd-client ships it: `etcdctl elect <name>
 *   <proposal>` campaigns, prints the leader key and its proposal once elected, and on SIGINT or
 *   SIGTERM resigns (one delete) and exits. Its session TTL is fixed: etcdctl 3.4 has no flag
 *   for it, so its lease lives 60 s (concurrency's default) and a crash hands over only after
 *   that; it takes part in the graceful scenario only.
 *
 * Both keep their keys under `election/<name>/` (etcdctl gets the name `election/<name>`), so
 * one etcd3 observer and one watch on that prefix serve either (bench/peerPool.ts). Units: TTLs
 * in seconds. Nothing here blocks but running `etcdctl version` once.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TrialKind } from './failoverScenarios.js';

/** What a candidate's stdout line says, if anything the benchmark waits for. */
export type CandidateLine =
  | { said: 'elected' }
  | { said: 'resigned'; ms: number }
  /** Its lease was renewed: the answered keep-alive was sent `ms` before the line. */
  | { said: 'renewed'; ms: number }
  | { said: 'error'; message: string };

/** Where the candidates campaign: the pool's etcd, election and TTL. */
export interface Campaign {
  endpoints: readonly string[];
  /** etcd3's election name: keys under `election/<name>/`. */
  electionName: string;
  ttlSeconds: number;
}

export interface PeerSystem {
  /** Short, for logs and the JSON record: `etcd3`, `go`. */
  key: 'etcd3' | 'go';
  /** For tables and plots, with the version: `etcd3 1.1.2 Election`. */
  name: string;
  /** The program and arguments of one candidate campaigning with `value`. */
  command(campaign: Campaign, value: string): { file: string; args: string[] };
  /** What one of its stdout lines says; undefined for lines of no interest. */
  read(line: string, value: string): CandidateLine | undefined;
  /** Whether it can take part in a scenario of `kind` with a lease of `ttlSeconds`. */
  runs(kind: Exclude<TrialKind, 'restart'>, ttlSeconds: number): boolean;
  /** Why it sits out the scenarios `runs` refuses, for the tables. */
  limits?: string;
}

const CANDIDATE_SCRIPT = fileURLToPath(new URL('./peerCandidate.ts', import.meta.url));
/** The etcd3 candidate is TypeScript, loaded the way bench/run.ts and the tests are: with tsx. */
const TSX_LOADER = import.meta.resolve('tsx');

const ETCD3_VERSION = (
  JSON.parse(readFileSync(fileURLToPath(import.meta.resolve('etcd3/package.json')), 'utf8')) as {
    version: string;
  }
).version;

export const etcd3Election: PeerSystem = {
  key: 'etcd3',
  name: `etcd3 ${ETCD3_VERSION} Election`,
  command: (campaign, value) => ({
    file: process.execPath,
    args: [
      '--import',
      TSX_LOADER,
      CANDIDATE_SCRIPT,
      campaign.endpoints.join(','),
      campaign.electionName,
      String(campaign.ttlSeconds),
      value,
    ],
  }),
  read(line) {
    const [word, ...rest] = line.split(' ');
    if (word === 'elected') return { said: 'elected' };
    if (word === 'resigned') return { said: 'resigned', ms: Number(rest[0]) };
    if (word === 'renewed') {
      const ms = Number(rest[0]);
      return rest.length === 1 && Number.isFinite(ms) && ms >= 0
        ? { said: 'renewed', ms }
        : undefined;
    }
    if (word === 'error') return { said: 'error', message: rest.join(' ') };
    return undefined;
  },
  runs: () => true,
};

/** etcdctl elect's session TTL: concurrency.NewSession's default, with no flag to change it. */
export const ETCDCTL_SESSION_TTL_SECONDS = 60;

let etcdctlVersion: string | undefined;
/** `3.4.23`, from `etcdctl version`, read once; `not installed` when it cannot run. */
function etcdctlVersionOnce(): string {
  if (etcdctlVersion === undefined) {
    try {
      const said = execFileSync('etcdctl', ['version'], { encoding: 'utf8' });
      etcdctlVersion = /etcdctl version: (\S+)/.exec(said)?.[1] ?? 'unknown';
    } catch {
      etcdctlVersion = 'not installed';
    }
  }
  return etcdctlVersion;
}

export const goElection: PeerSystem = {
  key: 'go',
  get name() {
    return `Go concurrency.Election (etcdctl ${etcdctlVersionOnce()} elect)`;
  },
  command: (campaign, value) => ({
    file: 'etcdctl',
    args: [
      `--endpoints=${campaign.endpoints.join(',')}`,
      'elect',
      `election/${campaign.electionName}`,
      value,
    ],
  }),
  // Elected, it prints the leader key (`election/<name>/<lease hex>`), then its proposal alone.
  read: (line, value) => (line === value ? { said: 'elected' } : undefined),
  runs: (kind, ttlSeconds) => kind === 'graceful' || ttlSeconds === ETCDCTL_SESSION_TTL_SECONDS,
  limits: `etcdctl elect has no TTL flag: its session lease lives ${ETCDCTL_SESSION_TTL_SECONDS} s`,
};

export const PEER_SYSTEMS: readonly PeerSystem[] = [etcd3Election, goElection];
