/**
 * Clients of the rehearsal: a loop of /work calls (incontainer/client.mjs) from a container of
 * its own on the pod network, through a Service's name, or from inside a pod through
 * `podman exec` (its own loopback, which a pod cut off the network still has). Every answer is
 * kept as a CallRecord, the shape the chaos suite's invariant checker reads.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CallRecord } from '../../chaos/harness.js';
import type { Cluster } from './cluster.js';
import { containerFlags, type ContainerPod } from './containerPod.js';
import { podman, podmanStream } from './podman.js';

const SCRIPT = fileURLToPath(new URL('./incontainer/client.mjs', import.meta.url));

export interface ClientOptions {
  url: string;
  /** Recorded as CallRecord.asked: who the client asked (a Service, a pod). */
  asked: string;
  intervalMs?: number;
  maxCalls?: number;
  maxMs?: number;
  timeoutMs?: number;
}

export class ClientLoop {
  readonly records: CallRecord[] = [];
  private listeners = new Set<() => void>();
  private stopped = false;

  private constructor(
    private readonly stopCommand: (() => Promise<unknown>) | undefined,
    readonly exited: Promise<unknown>,
  ) {}

  private static env(options: ClientOptions): string[] {
    return Object.entries({
      URL: options.url,
      INTERVAL_MS: options.intervalMs ?? 20,
      MAX_CALLS: options.maxCalls ?? 10_000,
      MAX_MS: options.maxMs ?? 60_000,
      TIMEOUT_MS: options.timeoutMs ?? 10_000,
    }).flatMap(([name, value]) => ['--env', `${name}=${value}`]);
  }

  private static start(args: string[], options: ClientOptions, stop?: () => Promise<unknown>) {
    const lines: string[] = [];
    const listener = {
      take: (line: string): void => void lines.push(line),
    };
    const { exited } = podmanStream(args, (line) => {
      if (line.startsWith('{')) listener.take(line);
    });
    const loop = new ClientLoop(stop, exited);
    for (const line of lines) loop.take(line, options.asked);
    listener.take = (line) => loop.take(line, options.asked);
    return loop;
  }

  /** A client container on the cluster's network, from `image` (any image with `node`). */
  static inContainer(cluster: Cluster, image: string, name: string, options: ClientOptions) {
    const containerName = `${cluster.node.runId}-client-${name}`;
    return ClientLoop.start(
      [
        'run',
        '--rm',
        ...containerFlags(cluster.node, containerName),
        '--volume',
        `${SCRIPT}:/client.mjs:ro`,
        ...ClientLoop.env(options),
        '--entrypoint',
        '["node"]',
        image,
        '/client.mjs',
      ],
      options,
      () => podman(['stop', '--time', '5', containerName], { allowFailure: true }),
    );
  }

  /** The same loop inside `pod`'s container (`kubectl exec`); it ends by its own bounds. */
  static insidePod(pod: ContainerPod, options: ClientOptions) {
    return ClientLoop.start(
      [
        'exec',
        ...ClientLoop.env(options),
        pod.currentContainer,
        'node',
        '--input-type=module',
        '--eval',
        readFileSync(SCRIPT, 'utf8'),
      ],
      options,
    );
  }

  private take(line: string, asked: string): void {
    try {
      const record = JSON.parse(line) as Omit<CallRecord, 'asked'>;
      this.records.push({ asked, ...record });
    } catch {
      return;
    }
    for (const listener of this.listeners) listener();
  }

  /** Resolves once `condition` holds over the records; rejects after `timeoutMs`. */
  until(what: string, condition: (records: CallRecord[]) => boolean, timeoutMs: number) {
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!condition(this.records)) return;
        finish();
        resolve();
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Stops the loop after its call in flight and waits for its last line. */
  async stop(): Promise<CallRecord[]> {
    if (!this.stopped) {
      this.stopped = true;
      await this.stopCommand?.();
    }
    await this.exited;
    return this.records;
  }
}
