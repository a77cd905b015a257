/**
 * A real N-member etcd cluster on loopback, for `make demo` and the benchmarks. The tests'
 * cluster (test/support/etcdCluster.ts) extends it with TLS, authentication, compaction and
 * stopping and starting single members.
 *
 * Members are plain `etcd` processes (Debian's etcd-server, 3.4) named etcd0..etcdN-1, each on
 * its own free client and peer port, with its data in `<dataDir>/<name>` and its output
 * appended to `<logDir>/<name>.log`. A stopped member restarts from its data dir with the same
 * flags: etcd ignores the --initial-cluster* flags once a WAL exists, so it rejoins as itself.
 *
 * Timing: with `fast` (the default) members heartbeat every 20 ms and elect a new etcd leader
 * after 200 ms of silence instead of 1 s, so a test that kills etcd's leader waits on the
 * service, not on raft. Every wait here is bounded and fails with the tail of the member logs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  describeExit,
  httpGet,
  inheritedEnv,
  isRunning,
  pollUntil,
  readTail,
  supervise,
  LocalProcessError,
  type ExitStatus,
} from './childProcesses.js';
import { assertEtcdInstalled } from './etcdctl.js';
import { isHealthy, type HttpAnswer } from './etcdHealth.js';
import { freePorts } from './ports.js';

export interface LocalEtcdOptions {
  /** Number of members. Default 3. */
  size?: number;
  /** Where member data lives. Default: a new temporary directory `spl-etcd-*`. */
  dataDir?: string;
  /** Keep a caller-provided `dataDir` on `close()`. A temporary one is always removed. */
  keepData?: boolean;
  /** Heartbeat 20 ms, election timeout 200 ms (etcd's defaults: 100 ms, 1 s). Default true. */
  fast?: boolean;
  /** Default 'etcd', looked up on PATH. */
  etcdBinary?: string;
  /** Where `<name>.log` files go. Default: `dataDir`. */
  logDir?: string;
  /**
   * Start members in their own process group, so the terminal's Ctrl-C reaches only this
   * process, which then stops them in order (the demo). Default false: a test run that is
   * interrupted takes its members down with it.
   */
  ownProcessGroup?: boolean;
  /** Bound on the start-up wait for every member to be healthy. Default 20 s. */
  startTimeoutMs?: number;
}

/** What a subclass changes in how members listen for clients, and the flags it adds. */
export interface ClientListeners {
  /** Default 'http'. */
  scheme?: 'http' | 'https';
  /** One per member. Default: free ports. */
  ports?: number[];
  /** Appended to every member's flags. */
  extraArgs?: string[];
}

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly pid: number | undefined;
  readonly running: boolean;
}

/** Everything a cluster is made of before any member runs. */
export interface LaunchPlan {
  dataDir: string;
  slots: MemberSlot[];
  etcdBinary: string;
  removeDataOnClose: boolean;
  ownProcessGroup: boolean;
  /** What `etcd --version` says, e.g. `3.4.23`. */
  version: string;
}

export interface MemberSlot {
  name: string;
  clientUrl: string;
  peerUrl: string;
  logFile: string;
  args: string[];
  child?: ChildProcess;
  exited: Promise<ExitStatus>;
}

export const DEFAULT_TIMEOUT_MS = 20_000;
export const HEALTH_POLL_MS = 50;
const LOG_TAIL_LINES = 25;
/**
 * The service keeps a few small keys per member. A small quota makes a runaway writer in a test
 * hit etcd's NOSPACE alarm early rather than fill the disk.
 */
const QUOTA_BACKEND_BYTES = 128 * 1024 * 1024;

const NOT_STARTED: ExitStatus = { code: null, signal: null };

export class LocalEtcd {
  readonly dataDir: string;
  /** What `etcd --version` says, e.g. `3.4.23`. */
  readonly version: string;
  protected readonly slots: MemberSlot[];
  private readonly etcdBinary: string;
  private readonly removeDataOnClose: boolean;
  private readonly ownProcessGroup: boolean;
  private closing: Promise<void> | undefined;

  protected constructor(plan: LaunchPlan) {
    this.dataDir = plan.dataDir;
    this.version = plan.version;
    this.slots = plan.slots;
    this.etcdBinary = plan.etcdBinary;
    this.removeDataOnClose = plan.removeDataOnClose;
    this.ownProcessGroup = plan.ownProcessGroup;
  }

  /**
   * Starts every member and resolves once all of them answer /health with `true`, within
   * `startTimeoutMs`. On failure the members started so far are killed and the data removed.
   */
  static async start(options: LocalEtcdOptions = {}): Promise<LocalEtcd> {
    return new LocalEtcd(await LocalEtcd.plan(options)).launch(options.startTimeoutMs);
  }

  /**
   * Checks the options and that etcd runs, picks the ports and creates the data and log dirs;
   * starts nothing.
   */
  protected static async plan(
    options: LocalEtcdOptions,
    listeners: ClientListeners = {},
  ): Promise<LaunchPlan> {
    const size = options.size ?? 3;
    if (!Number.isInteger(size) || size < 1) {
      throw new LocalProcessError(
        'INVALID_SIZE',
        `expected a cluster size of 1 or more, got ${size}`,
      );
    }
    const etcdBinary = options.etcdBinary ?? 'etcd';
    const version = await assertEtcdInstalled(etcdBinary);
    const clientPorts = listeners.ports;
    if (clientPorts !== undefined && clientPorts.length !== size) {
      throw new LocalProcessError(
        'INVALID_SIZE',
        `expected ${size} client ports, one per member, got ${clientPorts.length}`,
      );
    }

    const dataDir = options.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'spl-etcd-')));
    const logDir = options.logDir ?? dataDir;
    await mkdir(dataDir, { recursive: true });
    await mkdir(logDir, { recursive: true });

    // A given client port is free too, so it may come back here: never use it twice.
    const ports = (await freePorts(size * 2 + (clientPorts?.length ?? 0))).filter(
      (port) => !clientPorts?.includes(port),
    );
    const scheme = listeners.scheme ?? 'http';
    const token = `spl-${randomBytes(6).toString('hex')}`;
    const named = Array.from({ length: size }, (_, i) => ({
      name: `etcd${i}`,
      clientUrl: `${scheme}://127.0.0.1:${clientPorts?.[i] ?? ports[2 * i]}`,
      peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
    }));
    const initialCluster = named.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    const timing =
      (options.fast ?? true) ? ['--heartbeat-interval=20', '--election-timeout=200'] : [];
    const slots = named.map((m) => ({
      ...m,
      exited: Promise.resolve(NOT_STARTED),
      logFile: path.join(logDir, `${m.name}.log`),
      args: [
        `--name=${m.name}`,
        `--data-dir=${path.join(dataDir, m.name)}`,
        `--listen-client-urls=${m.clientUrl}`,
        `--advertise-client-urls=${m.clientUrl}`,
        `--listen-peer-urls=${m.peerUrl}`,
        `--initial-advertise-peer-urls=${m.peerUrl}`,
        `--initial-cluster=${initialCluster}`,
        '--initial-cluster-state=new',
        `--initial-cluster-token=${token}`,
        ...timing,
        `--quota-backend-bytes=${QUOTA_BACKEND_BYTES}`,
        // Small snapshot and WAL retention: test clusters write little and live briefly.
        '--snapshot-count=10000',
        '--max-snapshots=2',
        '--max-wals=2',
        '--logger=zap',
        '--log-outputs=stderr',
        ...(listeners.extraArgs ?? []),
      ],
    }));
    return {
      dataDir,
      slots,
      etcdBinary,
      removeDataOnClose: options.dataDir === undefined || options.keepData !== true,
      ownProcessGroup: options.ownProcessGroup ?? false,
      version,
    };
  }

  /**
   * Spawns every member and resolves with this cluster once all are healthy, within
   * `timeoutMs`; closes it and rethrows if they are not.
   */
  protected async launch(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<this> {
    try {
      this.slots.forEach((_, i) => this.spawnMember(i));
      await this.waitUntilHealthy(
        this.slots.map((_, i) => i),
        timeoutMs,
      );
      return this;
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  /** Client URLs of all members, running or not. */
  get endpoints(): string[] {
    return this.slots.map((slot) => slot.clientUrl);
  }

  get members(): EtcdMember[] {
    return this.slots.map((slot) => ({
      name: slot.name,
      clientUrl: slot.clientUrl,
      peerUrl: slot.peerUrl,
      pid: isRunning(slot.child) ? slot.child?.pid : undefined,
      running: isRunning(slot.child),
    }));
  }

  /** Kills every member and removes the data. Safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // SIGKILL is safe here: etcd fsyncs its WAL, and kept data stays consistent.
      await Promise.all(this.slots.map((_, i) => this.signalMember(i, 'SIGKILL')));
      if (this.removeDataOnClose) await rm(this.dataDir, { recursive: true, force: true });
    })();
    return this.closing;
  }

  /** The last lines of every member's log, for a failing test to print. */
  async logTail(lines = LOG_TAIL_LINES): Promise<string> {
    const tails = await Promise.all(
      this.slots.map(
        async (slot) => `--- ${slot.logFile} ---\n${await readTail(slot.logFile, lines)}`,
      ),
    );
    return tails.join('\n');
  }

  /** Sends `signal` to member `i` if it runs; resolves once it has exited. */
  protected signalMember(i: number, signal: NodeJS.Signals): Promise<ExitStatus> {
    const slot = this.slot(i);
    if (isRunning(slot.child)) slot.child?.kill(signal);
    return slot.exited;
  }

  protected slot(i: number): MemberSlot {
    const slot = this.slots[i];
    if (slot === undefined) {
      throw new LocalProcessError(
        'NO_SUCH_MEMBER',
        `no etcd member ${i}: the cluster has members 0..${this.slots.length - 1}`,
      );
    }
    return slot;
  }

  protected spawnMember(i: number): void {
    const slot = this.slot(i);
    if (this.closing !== undefined) {
      throw new LocalProcessError('CLUSTER_CLOSED', 'the etcd cluster is closed');
    }
    if (isRunning(slot.child)) {
      throw new LocalProcessError('MEMBER_RUNNING', `${slot.name} is already running`);
    }
    // The child writes straight to the file, so its log survives even if this process dies.
    const log = openSync(slot.logFile, 'a');
    try {
      slot.child = spawn(this.etcdBinary, slot.args, {
        stdio: ['ignore', log, log],
        env: inheritedEnv(),
        detached: this.ownProcessGroup,
      });
    } finally {
      closeSync(log);
    }
    slot.exited = supervise(slot.child);
  }

  /**
   * Resolves once members `indexes` answer /health with true; fails with the log tails after
   * `timeoutMs`, or as soon as one of them exits.
   */
  protected async waitUntilHealthy(indexes: number[], timeoutMs: number): Promise<void> {
    const unhealthy = new Set(indexes);
    const outcome = await pollUntil(
      async () => {
        await Promise.all(
          [...unhealthy].map(async (i) => {
            if (isHealthy(await this.get(`${this.slot(i).clientUrl}/health`))) {
              unhealthy.delete(i);
            }
          }),
        );
        return unhealthy.size === 0;
      },
      {
        timeoutMs,
        intervalMs: HEALTH_POLL_MS,
        abandonIf: () => indexes.some((i) => !isRunning(this.slot(i).child)),
      },
    );
    if (outcome === 'satisfied') return;
    const names = [...unhealthy].map((i) => this.slot(i).name).join(', ');
    const exited = indexes.filter((i) => !isRunning(this.slot(i).child));
    const reason =
      outcome === 'abandoned'
        ? `${(await Promise.all(exited.map((i) => this.describeExited(i)))).join(', ')} before becoming healthy`
        : `not healthy within ${timeoutMs} ms: ${names}`;
    throw new LocalProcessError('ETCD_UNHEALTHY', `etcd ${reason}\n${await this.logTail()}`);
  }

  /** GET on a member's client URL, bounded by httpGet's timeout; undefined if none answered. */
  protected get(url: string): Promise<HttpAnswer | undefined> {
    return httpGet(url);
  }

  private async describeExited(i: number): Promise<string> {
    const slot = this.slot(i);
    return `${slot.name} exited (${describeExit(await slot.exited)})`;
  }
}
