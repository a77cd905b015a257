/**
 * One service instance as a real child process (`node dist/src/cli.js serve`), for the
 * integration tests and `make demo`: the thing a test SIGKILLs, SIGSTOPs or restarts.
 *
 * It always runs the compiled CLI, even when this file runs from source under tsx: a member
 * then starts in a few hundred milliseconds and behaves exactly as the shipped one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, openSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  describeExit,
  httpGet,
  inheritedEnv,
  isRunning,
  pollUntil,
  supervise,
  LocalProcessError,
  type ExitStatus,
} from './childProcesses.js';

export interface MemberProcessOptions {
  /** MEMBER_ID: the instance's stable name, `a`, `b`, `c` locally. */
  id: string;
  /** PORT; the member binds 127.0.0.1 and advertises http://127.0.0.1:<port>. */
  port: number;
  /** Over the defaults above: ETCD_ENDPOINTS, LEASE_TTL_SECONDS, LOG_FORMAT, ... */
  env: Record<string, string>;
  /** Default: `<package root>/dist/src/cli.js`. */
  cliPath?: string;
  /** stdout and stderr are appended here too. */
  logFile?: string;
  /** Default ['serve']. */
  args?: string[];
  /** See `LocalEtcdOptions.ownProcessGroup`: the demo stops its members itself. */
  ownProcessGroup?: boolean;
}

/** The package root is the nearest folder with a package.json, from src/demo or dist/src/demo. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) {
    dir = path.dirname(dir);
  }
  return dir;
}

export const DEFAULT_CLI_PATH = path.join(packageRoot(), 'dist', 'src', 'cli.js');

export function assertCliBuilt(cliPath: string = DEFAULT_CLI_PATH): void {
  if (!existsSync(cliPath)) {
    throw new LocalProcessError(
      'CLI_NOT_BUILT',
      `${cliPath} does not exist: run \`npm run build\` first`,
    );
  }
}

function loopbackUrl(port: number): string {
  return `http://127.0.0.1:${port}`;
}

const READY_POLL_MS = 50;
const RECENT_LINES = 200;
/** Beyond the service's own SHUTDOWN_TIMEOUT_MS (10 s by default), so a slow drain still ends. */
const STOP_GRACE_MS = 15_000;

/** The last lines a member wrote, stdout and stderr together, for error messages. */
class RecentOutput {
  private readonly lines: string[] = [];
  private partial = '';

  append(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    this.lines.push(...parts);
    if (this.lines.length > RECENT_LINES) this.lines.splice(0, this.lines.length - RECENT_LINES);
  }

  toString(): string {
    return [...this.lines, ...(this.partial === '' ? [] : [this.partial])].join('\n');
  }
}

export class MemberProcess {
  readonly url: string;
  /** Resolves once the process has exited and its output is written to the log file. */
  readonly exited: Promise<ExitStatus>;
  private readonly output = new RecentOutput();
  private paused = false;

  private constructor(
    readonly options: MemberProcessOptions,
    private readonly child: ChildProcess,
    log: WriteStream | undefined,
  ) {
    this.url = loopbackUrl(options.port);
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8').on('data', (text: string) => {
        this.output.append(text);
        log?.write(text);
      });
    }
    this.exited = supervise(child).then(
      (status) =>
        new Promise<ExitStatus>((resolve) =>
          log === undefined ? resolve(status) : log.end(() => resolve(status)),
        ),
    );
  }

  /** Spawns the member; it is not ready yet (see `waitReady`). */
  static start(options: MemberProcessOptions): MemberProcess {
    const cliPath = options.cliPath ?? DEFAULT_CLI_PATH;
    assertCliBuilt(cliPath);
    // Opened before the spawn, so a bad log path fails here and leaves no child behind.
    let log: WriteStream | undefined;
    if (options.logFile !== undefined) {
      mkdirSync(path.dirname(options.logFile), { recursive: true });
      log = createWriteStream(options.logFile, { fd: openSync(options.logFile, 'a') });
    }
    const child = spawn(process.execPath, [cliPath, ...(options.args ?? ['serve'])], {
      env: {
        ...inheritedEnv(),
        MEMBER_ID: options.id,
        PORT: String(options.port),
        HOST: '127.0.0.1',
        ADVERTISE_URL: loopbackUrl(options.port),
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.ownProcessGroup ?? false,
    });
    return new MemberProcess(options, child, log);
  }

  get id(): string {
    return this.options.id;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return isRunning(this.child);
  }

  /** The last ~200 lines of stdout and stderr. */
  recentOutput(): string {
    return this.output.toString();
  }

  /** Resolves once GET /readyz answers 200; rejects on timeout or if the process exits first. */
  async waitReady(timeoutMs = 20_000): Promise<void> {
    const outcome = await pollUntil(
      async () => (await httpGet(`${this.url}/readyz`))?.status === 200,
      { timeoutMs, intervalMs: READY_POLL_MS, abandonIf: () => !this.running },
    );
    if (outcome === 'satisfied') return;
    if (outcome === 'abandoned') {
      const status = await this.exited;
      throw new LocalProcessError(
        'EXITED',
        `member ${this.id} exited (${describeExit(status)}) before it was ready; its output:\n${this.recentOutput()}`,
      );
    }
    throw new LocalProcessError(
      'NOT_READY',
      `member ${this.id} at ${this.url} was not ready within ${timeoutMs} ms; its output:\n${this.recentOutput()}`,
    );
  }

  /** SIGSTOP freezes the member (a long GC pause, a stalled VM) until SIGCONT. */
  signal(signal: 'SIGTERM' | 'SIGINT' | 'SIGKILL' | 'SIGSTOP' | 'SIGCONT'): void {
    if (!this.running) return;
    this.child.kill(signal);
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') this.paused = signal === 'SIGSTOP';
  }

  /**
   * Graceful stop, as `kubectl delete pod` does it: SIGTERM, then SIGKILL if the member is
   * still running after `graceMs`. The exit status tells which one ended it.
   */
  async stop(graceMs = STOP_GRACE_MS): Promise<ExitStatus> {
    this.signal('SIGTERM');
    // A stopped process only acts on SIGTERM once it is continued.
    if (this.paused) this.signal('SIGCONT');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    const status = await this.exited;
    clearTimeout(timer);
    return status;
  }

  kill(): Promise<ExitStatus> {
    this.signal('SIGKILL');
    return this.exited;
  }

  /** Stops this member if it still runs, then starts a new one with the same id, port and env. */
  async restart(): Promise<MemberProcess> {
    await this.stop();
    return MemberProcess.start(this.options);
  }
}

/**
 * Starts member `id` of the pool under `prefix` on the etcd at `endpoints` (`env` over
 * those): how tests and benchmarks add a member to a pool. Not ready yet (see `waitReady`).
 */
export function startPoolMember(options: {
  endpoints: readonly string[];
  prefix: string;
  id: string;
  port: number;
  env?: Record<string, string>;
  logFile?: string;
}): MemberProcess {
  return MemberProcess.start({
    id: options.id,
    port: options.port,
    env: {
      ETCD_ENDPOINTS: options.endpoints.join(','),
      ETCD_PREFIX: options.prefix,
      ...options.env,
    },
    ...(options.logFile ? { logFile: options.logFile } : {}),
  });
}
