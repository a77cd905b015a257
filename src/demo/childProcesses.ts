/**
 * What the local tooling (etcd members, service instances, etcdctl) shares about its children.
 *
 * No child may outlive the process that started it: a crashed test run would otherwise leave
 * etcd holding its ports and members renewing their leases, and the next run would meet them
 * as a live pool. Every child is registered here until it exits, and one 'exit' handler
 * SIGKILLs whatever is left. 'exit' does not run when this process dies from a signal; children
 * in its process group then get the terminal's Ctrl-C themselves.
 */
import type { ChildProcess } from 'node:child_process';
import { open } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { PoolError, type LocalProcessErrorCode } from '../errors.js';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the child could not be started at all (e.g. ENOENT). */
  error?: Error;
}

const liveChildren = new Set<ChildProcess>();
let exitHandlerInstalled = false;

function killLeftovers(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
}

/**
 * Registers `child` to be SIGKILLed if this process exits first. Resolves once the child has
 * exited and its stdio is closed, so every line it wrote has been seen.
 */
export function supervise(child: ChildProcess): Promise<ExitStatus> {
  if (!exitHandlerInstalled) {
    process.once('exit', killLeftovers);
    exitHandlerInstalled = true;
  }
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  let spawnError: Error | undefined;
  // A failed spawn emits 'error' and then 'close'; the listener also keeps 'error' from throwing.
  child.once('error', (error) => {
    spawnError = error;
    liveChildren.delete(child);
  });
  return new Promise((resolve) => {
    child.once('close', (code, signal) =>
      resolve(spawnError === undefined ? { code, signal } : { code, signal, error: spawnError }),
    );
  });
}

/** Node sets exitCode or signalCode before it emits 'exit'. */
export function isRunning(child: ChildProcess | undefined): boolean {
  return (
    child !== undefined &&
    child.pid !== undefined &&
    child.exitCode === null &&
    child.signalCode === null
  );
}

export function describeExit(status: ExitStatus): string {
  if (status.error !== undefined) return `failed to start: ${status.error.message}`;
  return status.signal === null ? `exit code ${status.code}` : `signal ${status.signal}`;
}

/** Children get PATH and HOME only, so a developer's ETCD_* or ETCDCTL_* settings stay out. */
export function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ['PATH', 'HOME'] as const) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

export type PollOutcome = 'satisfied' | 'timed-out' | 'abandoned';

/**
 * Calls `probe` every `intervalMs` until it returns true, `timeoutMs` has passed, or
 * `abandonIf` returns true (the process being waited for has exited, say).
 */
export async function pollUntil(
  probe: () => boolean | Promise<boolean>,
  options: { timeoutMs: number; intervalMs: number; abandonIf?: () => boolean },
): Promise<PollOutcome> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (options.abandonIf?.()) return 'abandoned';
    if (await probe()) return 'satisfied';
    if (Date.now() >= deadline) return 'timed-out';
    await delay(options.intervalMs);
  }
}

/**
 * GET `url` with a short deadline; undefined when nothing answered. The bound matters: a
 * SIGSTOPped process accepts connections but never replies.
 */
export async function httpGet(
  url: string,
  timeoutMs = 1000,
): Promise<{ status: number; body: string } | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: response.status, body: await response.text() };
  } catch {
    return undefined;
  }
}

/** What went wrong with a local process: etcd members, pool members, the demo. */
export class LocalProcessError extends PoolError {
  declare readonly code: LocalProcessErrorCode;
  constructor(code: LocalProcessErrorCode, message: string) {
    super(code, message);
    this.name = 'LocalProcessError';
  }
}

/** The last `lines` lines of a log file. Reads at most the last 64 KiB: enough for a few dozen log lines, cheap for long runs. */
export async function readTail(file: string, lines: number): Promise<string> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return '(no log)';
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return buffer.toString('utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } finally {
    await handle.close();
  }
}
