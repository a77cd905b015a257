/**
 * The container engine of the rehearsal: podman, with the repository's own engine settings
 * (containers.conf beside this file: runc, netavark) and explicit ulimits, since this engine's
 * defaults are refused on some hosts. Every call has a deadline; a failed call is an error that
 * quotes podman's own words.
 *
 * Nothing here starts or stops anything by name that this run did not create: callers pass the
 * names and IDs they made.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { supervise, type ExitStatus } from '../../../src/demo/childProcesses.js';

export const CONTAINERS_CONF = fileURLToPath(new URL('./containers.conf', import.meta.url));

/** Open files and processes per container: explicit, because the engine's defaults can be refused. */
export const ULIMITS = ['--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=4096:4096'];

const DEFAULT_TIMEOUT_MS = 60_000;

/** podman's environment: the given engine settings file (the repository's by default). */
export function podmanEnv(conf = CONTAINERS_CONF): NodeJS.ProcessEnv {
  return { ...process.env, CONTAINERS_CONF: conf };
}

export class PodmanError extends Error {
  constructor(
    readonly args: string[],
    readonly code: number | string | null,
    readonly stderr: string,
  ) {
    super(`podman ${args.slice(0, 3).join(' ')}… failed (${code}): ${stderr.trim().slice(-2000)}`);
    this.name = 'PodmanError';
  }
}

export interface PodmanResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `podman args…` to completion within `timeoutMs` and returns its output. Rejects with a
 * PodmanError on a non-zero exit unless `allowFailure` is set.
 */
export function podman(
  args: string[],
  options: { timeoutMs?: number; allowFailure?: boolean; input?: string; conf?: string } = {},
): Promise<PodmanResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'podman',
      args,
      {
        env: podmanEnv(options.conf),
        timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        if (error && (typeof error.code !== 'number' || !options.allowFailure)) {
          const reason = error.killed
            ? `timed out after ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`
            : (error.code ?? null);
          reject(new PodmanError(args, reason, stderr || error.message));
          return;
        }
        resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/**
 * Starts `podman args…` as a long-running child (a build with progress, `podman logs -f`),
 * its output passed to `onLine` line by line. Resolves with how it ended.
 */
export function podmanStream(
  args: string[],
  onLine: (line: string) => void,
): { child: ChildProcess; exited: Promise<ExitStatus> } {
  return streamLines('podman', args, { env: podmanEnv() }, onLine);
}

/** Starts `file args…` with its output passed to `onLine` line by line; resolves with how it ended. */
export function streamLines(
  file: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv },
  onLine: (line: string) => void,
): { child: ChildProcess; exited: Promise<ExitStatus> } {
  const child = spawn(file, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  forwardLines(child, onLine);
  return { child, exited: supervise(child) };
}

/**
 * Passes a child's stdout and stderr to `onLine`, line by line as they arrive (a last line
 * without a newline when the stream ends). For children spawned with both piped.
 */
function forwardLines(child: ChildProcess, onLine: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null) continue;
    let pending = '';
    stream.setEncoding('utf8').on('data', (text: string) => {
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) onLine(line);
    });
    stream.on('end', () => pending && onLine(pending));
  }
}

/**
 * Checks that containers can run here: podman installed, the configured runtime present, a
 * trivial container started from `image`, and one on a network of its own (as every pod and
 * etcd member of the rehearsal is) — so that an engine without networks fails the run at once
 * with its reason, not each test later with a timeout. Throws with the reason otherwise;
 * never skips. Blocks ≤ 60 s per podman call.
 */
export async function assertContainersWork(image: string, conf = CONTAINERS_CONF): Promise<void> {
  const version = await podman(['version', '--format', '{{.Client.Version}}'], { conf }).catch(
    (error: Error) => {
      throw new Error(
        `containers cannot run here: podman is not usable (${error.message}); ` +
          'install podman, runc and debootstrap (scripts/install-system-deps.sh containers does, as root)',
      );
    },
  );
  const probe = await podman(
    ['run', '--rm', '--pull=never', ...ULIMITS, '--network=none', image, 'true'],
    { allowFailure: true, timeoutMs: 60_000, conf },
  );
  if (probe.code !== 0) {
    throw new Error(
      `containers cannot run here (podman ${version.stdout.trim()}, ${conf}): ` +
        probe.stderr.trim(),
    );
  }
  const network = `spl-probe-${process.pid}-${Date.now()}`;
  try {
    let onNetwork = await podman(['network', 'create', network], { allowFailure: true, conf });
    if (onNetwork.code === 0) {
      const run = [
        'run',
        '--rm',
        '--pull=never',
        ...ULIMITS,
        `--network=${network}`,
        image,
        'true',
      ];
      onNetwork = await podman(run, { allowFailure: true, timeoutMs: 60_000, conf });
    }
    if (onNetwork.code !== 0) {
      throw new Error(
        `containers cannot use a network here (podman ${version.stdout.trim()}, ${conf}): ` +
          `${onNetwork.stderr.trim()}; netavark sets up networks with iptables ` +
          '(scripts/install-system-deps.sh containers installs both, as root)',
      );
    }
  } finally {
    await podman(['network', 'rm', '--force', network], { allowFailure: true, conf });
  }
}
