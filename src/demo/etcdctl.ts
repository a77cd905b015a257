/**
 * Running etcd's own binaries for the local cluster: `etcd --version` before anything starts,
 * and etcdctl with a deadline, an optional early stop and stdin, its JSON read with uint64 ids
 * kept exact.
 */
import { spawn } from 'node:child_process';
import { inheritedEnv, supervise, LocalProcessError } from './childProcesses.js';

export interface EtcdctlResult {
  stdout: string;
  stderr: string;
  /** null when etcdctl was stopped by `until` or by the timeout. */
  code: number | null;
  timedOut: boolean;
}

export interface EtcdctlOptions {
  /** Kill etcdctl after this long (it does not end by itself for `elect -l` or `watch`). Default 10 s. */
  timeoutMs?: number;
  /** Stop etcdctl as soon as its output so far satisfies this, e.g. two lines of `elect -l`. */
  until?: (stdout: string) => boolean;
  /** Written to stdin, e.g. the requests of `txn`. */
  input?: string;
  /**
   * `name:password` to run as. Default: root once `enableAuth` has run, else no user; `null`
   * runs without a user even then (a client certificate's common name is the user).
   */
  user?: string | null;
  /** The endpoints to talk to. Default: every running member (one, for `snapshot save`). */
  endpoints?: string[];
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

interface CommandResult extends EtcdctlResult {
  startError?: Error;
}

export async function runCommand(
  binary: string,
  args: string[],
  options: EtcdctlOptions & { env: Record<string, string> },
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

/**
 * etcdctl's JSON carries uint64 ids (cluster_id, member_id, leader) that a double cannot hold:
 * they are read as strings. Undefined when the output is not JSON (etcdctl failed).
 */
export function parseEtcdJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text.replace(/:(\d{16,})/g, ':"$1"')) as T;
  } catch {
    return undefined;
  }
}
