/**
 * Running etcd's own binaries for the local cluster: `etcd --version` before anything starts,
 * and etcdctl with a deadline, an optional early stop and stdin.
 */
import { spawn } from 'node:child_process';
import { inheritedEnv, supervise, LocalProcessError } from './childProcesses.js';

export interface CommandResult {
  stdout: string;
  stderr: string;
  /** null when the command was stopped by `until` or by the timeout. */
  code: number | null;
  timedOut: boolean;
  /** Set when the binary could not be started at all (e.g. ENOENT). */
  startError?: Error;
}

export interface CommandOptions {
  /** Kill the command after this long (etcdctl does not end by itself for `elect -l` or `watch`). Default 10 s. */
  timeoutMs?: number;
  /** Stop the command as soon as its output so far satisfies this, e.g. two lines of `elect -l`. */
  until?: (stdout: string) => boolean;
  /** Written to stdin, e.g. the requests of `etcdctl txn`. */
  input?: string;
}

/** Runs `etcd --version`; returns the version it names, or throws ETCD_MISSING. */
export async function assertEtcdInstalled(binary: string): Promise<string> {
  const result = await runCommand(binary, ['--version'], { env: inheritedEnv() });
  if (result.code !== 0) {
    throw new LocalProcessError(
      'ETCD_MISSING',
      `cannot run etcd ("${binary} --version" ${result.startError?.message ?? `failed: ${result.stderr.trim()}`}): ` +
        `install Debian's etcd-server package (apt-get install etcd-server) or pass etcdBinary`,
    );
  }
  return /etcd Version: (\S+)/.exec(result.stdout)?.[1] ?? result.stdout.trim();
}

/**
 * Runs `binary` and resolves once it has exited, SIGTERMed when `until` is satisfied or
 * SIGKILLed after `timeoutMs`. Never rejects: a non-zero exit or a failed start is in the result.
 */
export async function runCommand(
  binary: string,
  args: string[],
  options: CommandOptions & { env: Record<string, string> },
): Promise<CommandResult> {
  const child = spawn(binary, args, {
    env: options.env,
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const exited = supervise(child);
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
    if (options.until?.(stdout)) child.kill('SIGTERM');
  });
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  // etcdctl may exit without reading its input; the EPIPE that follows is not news.
  child.stdin?.on('error', () => undefined).end(options.input);
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 10_000);
  const status = await exited;
  clearTimeout(timer);
  return status.error === undefined
    ? { stdout, stderr, code: status.code, timedOut }
    : { stdout, stderr, code: status.code, timedOut, startError: status.error };
}
