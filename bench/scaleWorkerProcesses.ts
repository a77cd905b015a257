/**
 * The worker processes of the scale benchmark, as the parent (bench/scale.ts) sees them: it
 * forks them (bench/scaleWorker.ts, the child's side), keeps the last state each reported over
 * IPC, and waits on their messages rather than on timers.
 *
 * Owns: the processes, from fork to exit, and what they wrote to stderr (the first and the last
 * lines and counts by message, for the error of a failed wait).
 *
 * What blocks: `waitFor` until its condition holds, a worker fails or its timeout (ms) passes;
 * `profiled` for its phase plus the profilers' start and stop (≤ 30 s each); `close` until
 * every worker has exited — ≤ 10 s to quiesce, then ≤ 20 s before the rest are SIGKILLed.
 * Times are on this process's monotonic clock (`performance.now()`, ms).
 *
 * `SCALE_DEBUG_DIR=<dir>` keeps each worker's whole log there (w<i>.log), for diagnosis.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { supervise, type ExitStatus } from '../src/demo/childProcesses.js';
import type { FromWorker, LeaderState, ToWorker, WorkerSample } from './scaleWorker.js';

const STDERR_LINES = 10;

/** A worker process and the last state it reported. */
export class WorkerHandle {
  readonly exited: Promise<ExitStatus>;
  members = 0;
  leader: LeaderState = { key: undefined, id: undefined, holds: false, at: 0, firstAt: undefined };
  /** When the last `leader` message arrived (this process's clock). */
  leaderArrivedAt = 0;
  settledKey: string | undefined;
  added = false;
  sample: WorkerSample | undefined;
  quiesced = false;
  profiled = false;
  failure: string | undefined;
  /** The first and the last lines the worker wrote (warnings and errors), and counts by message. */
  private readonly firstLines: string[] = [];
  private readonly lastLines: string[] = [];
  readonly warnings: Record<string, number> = {};
  private readonly debugLog = process.env.SCALE_DEBUG_DIR;

  constructor(
    readonly index: number,
    readonly child: ChildProcess,
    bus: EventEmitter,
  ) {
    this.exited = supervise(child);
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      if (this.debugLog) appendFileSync(`${this.debugLog}/w${index}.log`, text);
      for (const line of text.split('\n')) {
        if (line.length === 0) continue;
        if (this.firstLines.length < STDERR_LINES) this.firstLines.push(line);
        else this.lastLines.push(line);
        this.lastLines.splice(0, Math.max(0, this.lastLines.length - STDERR_LINES));
        const msg = parseMessage(line);
        this.warnings[msg] = (this.warnings[msg] ?? 0) + 1;
      }
    });
    child.on('message', (message: FromWorker) => {
      this.receive(message);
      bus.emit('message');
    });
    child.once('exit', (code, signal) => {
      this.failure ??= `worker ${index} exited (${signal ?? `code ${code}`})`;
      bus.emit('message');
    });
  }

  private receive(message: FromWorker): void {
    switch (message.type) {
      case 'added':
        this.members = message.members;
        this.added = true;
        return;
      case 'leader': {
        const { key, id, holds, at, firstAt } = message;
        this.leader = { key, id, holds, at, firstAt };
        this.leaderArrivedAt = performance.now();
        return;
      }
      case 'settled':
        this.settledKey = message.key;
        return;
      case 'sample': {
        const { type, ...sample } = message;
        void type;
        this.sample = sample;
        return;
      }
      case 'quiesced':
        this.quiesced = true;
        return;
      case 'profiled':
        this.profiled = true;
        return;
      case 'error':
        this.failure = `worker ${this.index}: ${message.message}`;
        return;
      case 'ready':
        return;
    }
  }

  send(message: ToWorker): void {
    this.child.send(message);
  }

  /** For an error: what the worker wrote first and last, and how often it wrote what. */
  stderrSummary(): string {
    const counts = Object.entries(this.warnings).map(([msg, n]) => `  ${n} × ${msg}`);
    return [...this.firstLines, '…', ...this.lastLines, 'counts:', ...counts].join('\n');
  }
}

/** The worker processes, and waits that end on their messages rather than on a timer. */
export class Workers {
  private readonly bus = new EventEmitter();
  readonly handles: WorkerHandle[] = [];

  constructor(
    count: number,
    private readonly cpuProfileDir: string | undefined,
  ) {
    this.bus.setMaxListeners(0);
    const source = import.meta.url.endsWith('.ts');
    const file = new URL(`./scaleWorker.${source ? 'ts' : 'js'}`, import.meta.url);
    // From source (npx tsx) the workers load TypeScript through tsx's loader, resolved from
    // here so that it does not depend on the working directory.
    const execArgv = [
      ...(source ? ['--import', import.meta.resolve('tsx')] : []),
      // For a full collection before memory is read at rest (see `samples`).
      '--expose-gc',
    ];
    for (let i = 0; i < count; i++) {
      const child = fork(file, [], { execArgv, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
      this.handles.push(new WorkerHandle(i, child, this.bus));
    }
  }

  /**
   * Resolves with `condition()`'s first defined value, re-checked on every worker message;
   * rejects when a worker fails or after `timeoutMs`.
   */
  waitFor<T>(what: string, timeoutMs: number, condition: () => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const failed = this.handles.find((h) => h.failure !== undefined);
        if (failed) {
          done();
          reject(new Error(`${failed.failure}\n${failed.stderrSummary()}`));
          return;
        }
        const value = condition();
        if (value === undefined) return;
        done();
        resolve(value);
      };
      const timer = setTimeout(() => {
        done();
        const tails = this.handles.map((h) => `--- worker ${h.index} ---\n${h.stderrSummary()}`);
        reject(
          new Error(`scale: ${what} did not happen within ${timeoutMs} ms\n${tails.join('\n')}`),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.bus.off('message', check);
      };
      this.bus.on('message', check);
      check();
    });
  }

  /** The id (`w2-m17`: worker 2, its member 17) of the member a worker last named leader. */
  idOf(key: string): string {
    return this.handles.find((h) => h.leader.key === key)?.leader.id ?? key;
  }

  /**
   * Runs `phase` under the CPU profiler of every worker when profiling; the profiler's own
   * start and stop stay outside the phase.
   */
  async profiled<T>(name: string, phase: () => Promise<T>): Promise<T> {
    const dir = this.cpuProfileDir;
    if (dir === undefined) return phase();
    const all = async (file: (h: WorkerHandle) => string | undefined) => {
      for (const h of this.handles) {
        h.profiled = false;
        h.send({ type: 'profile', file: file(h) });
      }
      await this.waitFor('profiler', 30_000, () =>
        this.handles.every((h) => h.profiled) ? true : undefined,
      );
    };
    await all(() => undefined);
    const result = await phase();
    await all((h) => `${dir}/${name}-w${h.index}.cpuprofile`);
    return result;
  }

  get members(): number {
    return this.handles.reduce((sum, h) => sum + h.members, 0);
  }

  async close(): Promise<void> {
    const running = this.handles.filter((h) => h.child.connected);
    // First every member stops watching, then the leases go: otherwise each of a thousand
    // revokes would wake every member still watching.
    for (const h of running) h.send({ type: 'quiesce' });
    await this.waitFor('quiesce', 10_000, () =>
      running.every((h) => h.quiesced) ? true : undefined,
    ).catch(() => undefined);
    for (const h of running) h.send({ type: 'close' });
    // A worker that does not finish within the bound is killed; its leases expire by TTL.
    const bound = setTimeout(() => {
      for (const h of this.handles) h.child.kill('SIGKILL');
    }, 20_000);
    await Promise.all(this.handles.map((h) => h.exited));
    clearTimeout(bound);
  }
}

/** The `msg` of a pino line (with its `err`, for keep-alive failures and such), or the line. */
function parseMessage(line: string): string {
  try {
    const { msg, reason } = JSON.parse(line) as { msg?: string; reason?: string };
    return reason === undefined ? String(msg) : `${msg} (${reason})`;
  } catch {
    return line.slice(0, 120);
  }
}
