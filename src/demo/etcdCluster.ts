/**
 * A real N-member etcd cluster on loopback, for the integration tests and `make demo`.
 *
 * Members are plain `etcd` processes (Debian's etcd-server, 3.4) named etcd0..etcdN-1, each on
 * its own free client and peer port, with its data in `<dataDir>/<name>` and its output
 * appended to `<logDir>/<name>.log`. A stopped member restarts from its data dir with the same
 * flags: etcd ignores the --initial-cluster* flags once a WAL exists, so it rejoins as itself.
 *
 * Timing: with `fast` (the default) members heartbeat every 20 ms and elect a new etcd leader
 * after 200 ms of silence instead of 1 s, so a test that kills etcd's leader waits on the
 * service, not on raft. Every wait here is bounded and fails with the tail of the member logs.
 *
 * Security, for the tests of the service's TLS and auth support: with `tls` members serve
 * clients over TLS only and require a client certificate; `enableAuth` turns on etcd's user
 * and password authentication, after which the harness's own etcdctl calls run as root.
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
import {
  assertEtcdInstalled,
  parseEtcdJson,
  runCommand,
  type EtcdctlOptions,
  type EtcdctlResult,
} from './etcdctl.js';
import {
  hasActivePeers,
  httpsGet,
  isHealthy,
  readClientTls,
  type ClientTls,
  type HttpAnswer,
} from './etcdHealth.js';
import { freePorts } from './ports.js';

export type { EtcdctlOptions, EtcdctlResult } from './etcdctl.js';

export interface EtcdClusterOptions {
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
  /** Default 'etcdctl', looked up on PATH. */
  etcdctlBinary?: string;
  /** Where `<name>.log` files go. Default: `dataDir`. */
  logDir?: string;
  /** Appended to every member's flags. */
  extraArgs?: string[];
  /**
   * Start members in their own process group, so the terminal's Ctrl-C reaches only this
   * process, which then stops them in order (the demo). Default false: a test run that is
   * interrupted takes its members down with it.
   */
  ownProcessGroup?: boolean;
  /** Bound on the start-up wait for every member to be healthy. Default 20 s. */
  startTimeoutMs?: number;
  /**
   * Serve clients over TLS only (`--cert-file`, `--key-file`) and accept only client
   * certificates signed by `caFile` (`--trusted-ca-file`, `--client-cert-auth`). Client URLs,
   * and so `endpoints`, become https://127.0.0.1:<port>. The harness's own requests (health
   * checks, etcdctl) present `certFile` and `keyFile`, so that certificate must allow client
   * authentication too (extendedKeyUsage clientAuth). Peers still talk plain HTTP on loopback.
   */
  tls?: EtcdClusterTls;
  /**
   * Client ports, one per member. Default: free ports. For a test that points a service at a
   * port before etcd listens there.
   */
  clientPorts?: number[];
}

export interface EtcdClusterTls {
  certFile: string;
  keyFile: string;
  caFile: string;
}

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly pid: number | undefined;
  readonly running: boolean;
}

const DEFAULT_TIMEOUT_MS = 20_000;
const HEALTH_POLL_MS = 50;
const LOG_TAIL_LINES = 25;
/** A member notices a stopped peer within milliseconds (its TCP streams close). */
const PEERS_GONE_TIMEOUT_MS = 2000;
/**
 * The service keeps a few small keys per member. A small quota makes a runaway writer in a test
 * hit etcd's NOSPACE alarm early rather than fill the disk.
 */
const QUOTA_BACKEND_BYTES = 128 * 1024 * 1024;

interface MemberSlot {
  name: string;
  clientUrl: string;
  peerUrl: string;
  logFile: string;
  args: string[];
  child?: ChildProcess;
  exited: Promise<ExitStatus>;
}

const NOT_STARTED: ExitStatus = { code: null, signal: null };

export class EtcdCluster {
  private closing: Promise<void> | undefined;
  /** Set by `enableAuth`: etcdctl calls then run as root. */
  private rootUser: string | undefined;

  private constructor(
    readonly dataDir: string,
    private readonly slots: MemberSlot[],
    private readonly binaries: { etcd: string; etcdctl: string },
    private readonly removeDataOnClose: boolean,
    private readonly ownProcessGroup: boolean,
    private readonly tls: ClientTls | undefined,
    /** What `etcd --version` says, e.g. `3.4.23`. */
    readonly version: string,
  ) {}

  /** Starts every member and resolves once all of them answer /health with `true`. */
  static async start(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    const size = options.size ?? 3;
    if (!Number.isInteger(size) || size < 1) {
      throw new LocalProcessError(
        'INVALID_SIZE',
        `expected a cluster size of 1 or more, got ${size}`,
      );
    }
    const etcd = options.etcdBinary ?? 'etcd';
    const version = await assertEtcdInstalled(etcd);
    const { clientPorts } = options;
    if (clientPorts !== undefined && clientPorts.length !== size) {
      throw new LocalProcessError(
        'INVALID_SIZE',
        `expected ${size} client ports, one per member, got ${clientPorts.length}`,
      );
    }
    const tls = options.tls === undefined ? undefined : await readClientTls(options.tls);

    const dataDir = options.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'spl-etcd-')));
    const logDir = options.logDir ?? dataDir;
    await mkdir(dataDir, { recursive: true });
    await mkdir(logDir, { recursive: true });

    // A given client port is free too, so it may come back here: never use it twice.
    const ports = (await freePorts(size * 2 + (clientPorts?.length ?? 0))).filter(
      (port) => !clientPorts?.includes(port),
    );
    const scheme = tls === undefined ? 'http' : 'https';
    const token = `spl-${randomBytes(6).toString('hex')}`;
    const named = Array.from({ length: size }, (_, i) => ({
      name: `etcd${i}`,
      clientUrl: `${scheme}://127.0.0.1:${clientPorts?.[i] ?? ports[2 * i]}`,
      peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
    }));
    const security =
      tls === undefined
        ? []
        : [
            `--cert-file=${tls.files.certFile}`,
            `--key-file=${tls.files.keyFile}`,
            `--trusted-ca-file=${tls.files.caFile}`,
            '--client-cert-auth',
          ];
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
        ...security,
        `--quota-backend-bytes=${QUOTA_BACKEND_BYTES}`,
        // Small snapshot and WAL retention: test clusters write little and live briefly.
        '--snapshot-count=10000',
        '--max-snapshots=2',
        '--max-wals=2',
        '--logger=zap',
        '--log-outputs=stderr',
        ...(options.extraArgs ?? []),
      ],
    }));

    const cluster = new EtcdCluster(
      dataDir,
      slots,
      { etcd, etcdctl: options.etcdctlBinary ?? 'etcdctl' },
      options.dataDir === undefined || options.keepData !== true,
      options.ownProcessGroup ?? false,
      tls,
      version,
    );
    try {
      slots.forEach((_, i) => cluster.spawnMember(i));
      await cluster.waitHealthy(options.startTimeoutMs ?? DEFAULT_TIMEOUT_MS);
      return cluster;
    } catch (error) {
      await cluster.close();
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

  /**
   * Sends `signal` to member `i` and resolves once it has exited. If it was etcd's raft leader,
   * the others notice only after the election timeout, and a write they accept meanwhile may
   * be lost with etcd's own "request timed out" ~5 s later: wait for `raftLeader()` to name
   * another member before relying on writes.
   */
  async stopMember(
    i: number,
    signal: 'SIGTERM' | 'SIGINT' | 'SIGKILL' = 'SIGTERM',
  ): Promise<ExitStatus> {
    const slot = this.slot(i);
    if (isRunning(slot.child)) slot.child?.kill(signal);
    return slot.exited;
  }

  killMember(i: number): Promise<ExitStatus> {
    return this.stopMember(i, 'SIGKILL');
  }

  /**
   * Restarts stopped member `i` from its data dir. By default resolves once it is healthy; pass
   * `waitHealthy: false` when it cannot be: a lone member of a cluster without quorum answers
   * /health with false until enough of its peers are back.
   */
  async startMember(
    i: number,
    options: { waitHealthy?: boolean; timeoutMs?: number } = {},
  ): Promise<void> {
    this.spawnMember(i);
    if (options.waitHealthy ?? true) {
      await this.waitUntilHealthy([i], options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    }
  }

  /** Resolves once every running member answers /health with true. */
  waitHealthy(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    const running = this.slots.flatMap((slot, i) => (isRunning(slot.child) ? [i] : []));
    return this.waitUntilHealthy(running, timeoutMs);
  }

  /**
   * Stops every member, the raft leader last. A leader stopped with SIGTERM first hands its
   * leadership to a peer it sees as connected; if that peer is stopping too, it waits etcd's
   * full request timeout (~5 s) for a transfer that cannot happen. So the leader is signalled
   * only once it has seen its peers go (its etcd_network_active_peers gauges read 0).
   */
  async stopAll(signal: 'SIGTERM' | 'SIGINT' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const leader = signal === 'SIGKILL' ? undefined : await this.raftLeader();
    await Promise.all(
      this.slots.map((_, i) => (i === leader ? undefined : this.stopMember(i, signal))),
    );
    if (leader === undefined) return;
    const clientUrl = this.slot(leader).clientUrl;
    await pollUntil(async () => !hasActivePeers(await this.get(`${clientUrl}/metrics`)), {
      timeoutMs: PEERS_GONE_TIMEOUT_MS,
      intervalMs: HEALTH_POLL_MS,
    });
    await this.stopMember(leader, signal);
  }

  /**
   * Restarts every stopped member at once: a restarted cluster only regains quorum when enough
   * members are back, so waiting for each in turn would never finish.
   */
  async startAll(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    this.slots.forEach((slot, i) => {
      if (!isRunning(slot.child)) this.spawnMember(i);
    });
    await this.waitHealthy(timeoutMs);
  }

  /** The value of `--<name>=` among member `i`'s flags (its data dir, the cluster token...). */
  memberFlag(i: number, name: string): string {
    const prefix = `--${name}=`;
    const flag = this.slot(i).args.find((arg) => arg.startsWith(prefix));
    if (flag === undefined) throw new Error(`member ${i} has no flag --${name}`);
    return flag.slice(prefix.length);
  }

  /** Kills every member and removes the data. Safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // SIGKILL is safe here: etcd fsyncs its WAL, and kept data stays consistent.
      await this.stopAll('SIGKILL');
      if (this.removeDataOnClose) await rm(this.dataDir, { recursive: true, force: true });
    })();
    return this.closing;
  }

  /**
   * Runs etcdctl (v3 API) against the running members. A non-zero exit is a result, not an
   * error: tests assert on etcdctl refusing things too.
   */
  async etcdctl(args: string[], options: EtcdctlOptions = {}): Promise<EtcdctlResult> {
    const running = this.slots.filter((slot) => isRunning(slot.child));
    const endpoints =
      options.endpoints ??
      (running.length > 0 ? running : this.slots).map((slot) => slot.clientUrl);
    const tls = this.tls?.files;
    const user = options.user === undefined ? this.rootUser : (options.user ?? undefined);
    const result = await runCommand(
      this.binaries.etcdctl,
      [
        `--endpoints=${endpoints.join(',')}`,
        '--dial-timeout=2s',
        '--command-timeout=5s',
        ...(tls
          ? [`--cacert=${tls.caFile}`, `--cert=${tls.certFile}`, `--key=${tls.keyFile}`]
          : []),
        ...(user === undefined ? [] : [`--user=${user}`]),
        ...args,
      ],
      { ...options, env: { ...inheritedEnv(), ETCDCTL_API: '3' } },
    );
    if (result.startError !== undefined) {
      throw new LocalProcessError(
        'ETCDCTL_FAILED',
        `could not run ${this.binaries.etcdctl}: ${result.startError.message} (install Debian's etcd-client package)`,
      );
    }
    return result;
  }

  /**
   * Turns on etcd's authentication: user root with `rootPassword` and the root role, then
   * `auth enable`. From then on every etcdctl call of this harness runs as root.
   */
  async enableAuth(rootPassword: string): Promise<void> {
    await this.mustEtcdctl(
      ['user', 'add', 'root', `--new-user-password=${rootPassword}`, '--interactive=false'],
      'adding user root',
    );
    await this.mustEtcdctl(['role', 'add', 'root'], 'adding role root');
    await this.mustEtcdctl(['user', 'grant-role', 'root', 'root'], 'granting role root');
    await this.mustEtcdctl(['auth', 'enable'], 'enabling authentication');
    this.rootUser = `root:${rootPassword}`;
  }

  /**
   * Adds user `name` with a role of the same name that may read and write every key under
   * `prefix` — what a pool member needs, and no more.
   */
  async addUser(name: string, password: string, prefix: string): Promise<void> {
    await this.mustEtcdctl(
      ['user', 'add', name, `--new-user-password=${password}`, '--interactive=false'],
      `adding user ${name}`,
    );
    await this.mustEtcdctl(['role', 'add', name], `adding role ${name}`);
    await this.mustEtcdctl(
      ['role', 'grant-permission', name, 'readwrite', prefix, '--prefix=true'],
      `granting readwrite on ${prefix} to role ${name}`,
    );
    await this.mustEtcdctl(['user', 'grant-role', name, name], `granting role ${name}`);
  }

  /** Compacts the key-value history up to the current revision, physically; returns it. */
  async compact(): Promise<number> {
    const read = await this.etcdctl(['get', '/', '-w', 'json']);
    const revision = parseEtcdJson<{ header?: { revision?: number } }>(read.stdout)?.header
      ?.revision;
    if (read.code !== 0 || revision === undefined) {
      throw new LocalProcessError('ETCDCTL_FAILED', `could not read the revision: ${read.stderr}`);
    }
    await this.mustEtcdctl(['compaction', '--physical', String(revision)], 'compaction');
    return revision;
  }

  /** etcdctl that must succeed; `what` names the step in the error. */
  private async mustEtcdctl(args: string[], what: string): Promise<EtcdctlResult> {
    const result = await this.etcdctl(args);
    if (result.code !== 0) {
      throw new LocalProcessError('ETCDCTL_FAILED', `${what} failed: ${result.stderr}`);
    }
    return result;
  }

  /**
   * Index of the member that is etcd's raft leader, as the running members see it; undefined
   * while they have none. For tests that take etcd's own leader away.
   */
  async raftLeader(): Promise<number | undefined> {
    if (!this.slots.some((slot) => isRunning(slot.child))) return undefined;
    const result = await this.etcdctl(['endpoint', 'status', '-w', 'json']);
    type Status = { Endpoint: string; Status: { header: { member_id: string }; leader: string } };
    const statuses = parseEtcdJson<Status[]>(result.stdout) ?? [];
    const leader = statuses.find((s) => s.Status.header.member_id === s.Status.leader);
    const index = this.slots.findIndex((slot) => slot.clientUrl === leader?.Endpoint);
    return index === -1 ? undefined : index;
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

  private slot(i: number): MemberSlot {
    const slot = this.slots[i];
    if (slot === undefined) {
      throw new LocalProcessError(
        'NO_SUCH_MEMBER',
        `no etcd member ${i}: the cluster has members 0..${this.slots.length - 1}`,
      );
    }
    return slot;
  }

  private spawnMember(i: number): void {
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
      slot.child = spawn(this.binaries.etcd, slot.args, {
        stdio: ['ignore', log, log],
        env: inheritedEnv(),
        detached: this.ownProcessGroup,
      });
    } finally {
      closeSync(log);
    }
    slot.exited = supervise(slot.child);
  }

  private async waitUntilHealthy(indexes: number[], timeoutMs: number): Promise<void> {
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

  /** GET on a member's client URL; over TLS, with the harness's client certificate. */
  private get(url: string): Promise<HttpAnswer | undefined> {
    return this.tls === undefined ? httpGet(url) : httpsGet(url, this.tls);
  }

  private async describeExited(i: number): Promise<string> {
    const slot = this.slot(i);
    return `${slot.name} exited (${describeExit(await slot.exited)})`;
  }
}
