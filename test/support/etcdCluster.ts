/**
 * The integration tests' etcd cluster: the demo's local cluster (src/demo/localEtcd.ts) plus
 * what only tests do with it — stop, kill and restart single members, find etcd's raft leader,
 * run etcdctl, compact, and serve clients over TLS with user and password authentication.
 *
 * Security, for the tests of the service's TLS and auth support: with `tls` members serve
 * clients over TLS only and require a client certificate; `enableAuth` turns on etcd's user
 * and password authentication, after which the harness's own etcdctl calls run as root.
 */
import {
  inheritedEnv,
  isRunning,
  LocalProcessError,
  pollUntil,
  type ExitStatus,
} from '../../src/demo/childProcesses.js';
import { runCommand, type CommandOptions, type CommandResult } from '../../src/demo/etcdctl.js';
import type { HttpAnswer } from '../../src/demo/etcdHealth.js';
import {
  DEFAULT_TIMEOUT_MS,
  HEALTH_POLL_MS,
  LocalEtcd,
  type LaunchPlan,
  type LocalEtcdOptions,
} from '../../src/demo/localEtcd.js';
import { httpsGet, readClientTls, type ClientTls, type EtcdClusterTls } from './etcdTls.js';

export type { EtcdMember } from '../../src/demo/localEtcd.js';
export type { EtcdClusterTls } from './etcdTls.js';

export interface EtcdClusterOptions extends LocalEtcdOptions {
  /** Default 'etcdctl', looked up on PATH. */
  etcdctlBinary?: string;
  /** Appended to every member's flags. */
  extraArgs?: string[];
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

export type EtcdctlResult = Omit<CommandResult, 'startError'>;

export interface EtcdctlOptions extends CommandOptions {
  /**
   * `name:password` to run as. Default: root once `enableAuth` has run, else no user; `null`
   * runs without a user even then (a client certificate's common name is the user).
   */
  user?: string | null;
  /** The endpoints to talk to. Default: every running member (one, for `snapshot save`). */
  endpoints?: string[];
}

/** A member notices a stopped peer within milliseconds (its TCP streams close). */
const PEERS_GONE_TIMEOUT_MS = 2000;

export class EtcdCluster extends LocalEtcd {
  /** Set by `enableAuth`: etcdctl calls then run as root. */
  private rootUser: string | undefined;

  private constructor(
    plan: LaunchPlan,
    private readonly etcdctlBinary: string,
    private readonly tls: ClientTls | undefined,
  ) {
    super(plan);
  }

  /** Starts every member and resolves once all of them answer /health with `true`. */
  static override async start(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    const tls = options.tls === undefined ? undefined : await readClientTls(options.tls);
    const security =
      tls === undefined
        ? []
        : [
            `--cert-file=${tls.files.certFile}`,
            `--key-file=${tls.files.keyFile}`,
            `--trusted-ca-file=${tls.files.caFile}`,
            '--client-cert-auth',
          ];
    const plan = await EtcdCluster.plan(options, {
      scheme: tls === undefined ? 'http' : 'https',
      ...(options.clientPorts === undefined ? {} : { ports: options.clientPorts }),
      extraArgs: [...security, ...(options.extraArgs ?? [])],
    });
    return new EtcdCluster(plan, options.etcdctlBinary ?? 'etcdctl', tls).launch(
      options.startTimeoutMs,
    );
  }

  /**
   * Sends `signal` to member `i` and resolves once it has exited. If it was etcd's raft leader,
   * the others notice only after the election timeout, and a write they accept meanwhile may
   * be lost with etcd's own "request timed out" ~5 s later: wait for `raftLeader()` to name
   * another member before relying on writes.
   */
  stopMember(i: number, signal: 'SIGTERM' | 'SIGINT' | 'SIGKILL' = 'SIGTERM'): Promise<ExitStatus> {
    return this.signalMember(i, signal);
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
    return this.waitUntilHealthy(this.runningIndexes(), timeoutMs);
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
      this.slots.flatMap((_, i) => (i === leader ? [] : [this.stopMember(i, signal)])),
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
      this.etcdctlBinary,
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
        `could not run ${this.etcdctlBinary}: ${result.startError.message} (install Debian's etcd-client package)`,
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

  /** GET on a member's client URL; over TLS, with the harness's client certificate. */
  protected override get(url: string): Promise<HttpAnswer | undefined> {
    return this.tls === undefined ? super.get(url) : httpsGet(url, this.tls);
  }

  /** etcdctl that must succeed; `what` names the step in the error. */
  private async mustEtcdctl(args: string[], what: string): Promise<EtcdctlResult> {
    const result = await this.etcdctl(args);
    if (result.code !== 0) {
      throw new LocalProcessError('ETCDCTL_FAILED', `${what} failed: ${result.stderr}`);
    }
    return result;
  }

  private runningIndexes(): number[] {
    return this.slots.flatMap((slot, i) => (isRunning(slot.child) ? [i] : []));
  }
}

/** A member that does not answer (its /metrics) has no peers worth waiting for. */
function hasActivePeers(answer: HttpAnswer | undefined): boolean {
  return answer !== undefined && /^etcd_network_active_peers\{[^}]*\} [1-9]/m.test(answer.body);
}

/**
 * etcdctl's JSON carries uint64 ids (cluster_id, member_id, leader) that a double cannot hold:
 * they are read as strings. Undefined when the output is not JSON (etcdctl failed).
 */
function parseEtcdJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text.replace(/:(\d{16,})/g, ':"$1"')) as T;
  } catch {
    return undefined;
  }
}
