/**
 * A real Prometheus (Debian's `prometheus` 2.x) for one test: its own free loopback port, a
 * temporary storage directory and a config written by the test. The Debian package may also
 * run a system Prometheus on :9090; this one never touches it.
 *
 * Prometheus applies a new target set at most every 5 s, so the first scrape comes about 5 s
 * after start-up whatever the scrape interval: start it early, in parallel with the targets.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  describeExit,
  httpGet,
  isRunning,
  pollUntil,
  supervise,
  type ExitStatus,
} from '../../src/demo/childProcesses.js';
import { freePort } from '../../src/demo/ports.js';

/** One series of a query answer: its labels and its [unix seconds, value] samples. */
export interface Series {
  metric: Record<string, string>;
  values: [number, string][];
}

interface ApiAnswer {
  status: 'success' | 'error';
  error?: string;
  data?: { resultType: string; result: unknown };
}

const STOP_GRACE_MS = 5000;

export class PrometheusServer {
  private output = '';

  private constructor(
    readonly url: string,
    private readonly dir: string,
    private readonly child: ChildProcess,
    private readonly exited: Promise<ExitStatus>,
  ) {
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8').on('data', (text: string) => {
        this.output = (this.output + text).slice(-20_000);
      });
    }
  }

  /**
   * Starts Prometheus with `config` (an object; JSON is YAML, so it is written as is) and
   * waits until /-/ready answers.
   */
  static async start(config: object, timeoutMs = 15_000): Promise<PrometheusServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'spl-prometheus-'));
    const configFile = path.join(dir, 'prometheus.yml');
    await writeFile(configFile, JSON.stringify(config, null, 2));
    const port = await freePort();
    const child = spawn(
      'prometheus',
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const server = new PrometheusServer(`http://127.0.0.1:${port}`, dir, child, supervise(child));
    const outcome = await pollUntil(
      async () => (await httpGet(`${server.url}/-/ready`))?.status === 200,
      { timeoutMs, intervalMs: 100, abandonIf: () => !isRunning(child) },
    );
    if (outcome !== 'satisfied') {
      const why =
        outcome === 'abandoned'
          ? `exited (${describeExit(await server.exited)})`
          : `was not ready within ${timeoutMs} ms`;
      await server.close();
      throw new Error(`prometheus ${why}; its output:\n${server.output}`);
    }
    return server;
  }

  /** An instant query at `time` (unix seconds; default now). */
  async query(expr: string, time?: number): Promise<Series[]> {
    const params: Record<string, string> = { query: expr };
    if (time !== undefined) params.time = String(time);
    const result = (await this.api('query', params)) as {
      metric: Record<string, string>;
      value: [number, string];
    }[];
    return result.map(({ metric, value }) => ({ metric, values: [value] }));
  }

  /** A range query from `start` to `end` (unix seconds), one sample per `stepSeconds`. */
  async queryRange(expr: string, start: number, end: number, stepSeconds = 1): Promise<Series[]> {
    return (await this.api('query_range', {
      query: expr,
      start: String(start),
      end: String(end),
      step: String(stepSeconds),
    })) as Series[];
  }

  /** GET /api/v1/<endpoint>; throws with Prometheus' own error text (a PromQL syntax error). */
  async api(endpoint: string, params: Record<string, string> = {}): Promise<unknown> {
    const response = await fetch(
      `${this.url}/api/v1/${endpoint}?${new URLSearchParams(params).toString()}`,
      {
        signal: AbortSignal.timeout(10_000),
      },
    );
    const answer = (await response.json()) as ApiAnswer;
    if (answer.status !== 'success') {
      throw new Error(`prometheus /api/v1/${endpoint} ${JSON.stringify(params)}: ${answer.error}`);
    }
    return answer.data?.result ?? answer.data;
  }

  /** SIGTERM, SIGKILL after 5 s; removes the temporary config and storage. */
  async close(): Promise<void> {
    if (isRunning(this.child)) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
    await rm(this.dir, { recursive: true, force: true });
  }

  /** The last lines Prometheus logged (warnings and errors only). */
  recentOutput(): string {
    return this.output;
  }
}

/** Whether a sample value is a number Grafana would draw (not NaN, not ±Inf). */
export function isFiniteSample([, value]: [number, string]): boolean {
  return Number.isFinite(Number(value));
}
