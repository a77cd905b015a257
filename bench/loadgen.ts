/**
 * The load generator of the throughput benchmark (bench/throughput.ts), forked as a child
 * process and driven over IPC: one autocannon run per message, answered with its figures.
 *
 * Why a process of its own: every target (the bare Express ceiling, /work on the leader, /work
 * and /simple-work through a follower) is loaded by this one process, with the same autocannon
 * settings and the same warmed-up JIT, and nothing else runs on its event loop — the benchmark
 * process's own work (scraping /metrics, bookkeeping) cannot slow one target's load and not
 * another's.
 *
 * Latency comes from autocannon's `response` event (a float in ms from `process.hrtime`), not
 * from its result histogram, which records whole milliseconds: on loopback the figures that
 * matter (a sub-millisecond hop) would round away.
 */
import autocannon from 'autocannon';
import { summarize } from './stats.js';

export interface LoadRequest {
  id: number;
  url: string;
  connections: number;
  durationSeconds: number;
}

export interface LoadFigures {
  url: string;
  connections: number;
  /** Measured run only, as autocannon timed it. */
  durationSeconds: number;
  /** Completed requests (any status) in the measured run. */
  requests: number;
  ok: number;
  non2xx: number;
  /** Connection errors and timeouts. */
  errors: number;
  timeouts: number;
  requestsPerSecond: number;
  /** Over every response of the measured run, in ms (float). */
  latencyMs: { mean: number; p50: number; p99: number; max: number };
}

export type LoadAnswer = { id: number; figures: LoadFigures } | { id: number; error: string };

/** Responses times of the current run; grown by doubling, so recording stays O(1). */
class Samples {
  private values = new Float64Array(1 << 16);
  length = 0;

  push(value: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = value;
  }

  toArray(): number[] {
    return Array.from(this.values.subarray(0, this.length));
  }
}

function cannon(options: autocannon.Options, samples: Samples): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(options, (error: Error | null, result: autocannon.Result) =>
      error ? reject(error) : resolve(result),
    );
    instance.on('response', (_client, _status, _bytes, ms) => samples.push(ms));
  });
}

async function load(request: LoadRequest): Promise<LoadFigures> {
  const samples = new Samples();
  const result = await cannon(
    {
      url: request.url,
      connections: request.connections,
      duration: request.durationSeconds,
      pipelining: 1,
      timeout: 10,
      // autocannon stops on its first sample tick after the duration: every 100 ms rather
      // than every second, so that a run lasts what it was asked to (its figures use the
      // elapsed time either way).
      sampleInt: 100,
    },
    samples,
  );
  const times = samples.toArray();
  const latency = summarize(times);
  const mean = times.length === 0 ? 0 : times.reduce((a, b) => a + b, 0) / times.length;
  return {
    url: request.url,
    connections: request.connections,
    durationSeconds: result.duration,
    requests: result.requests.total,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    requestsPerSecond: result.duration > 0 ? result.requests.total / result.duration : 0,
    latencyMs: {
      mean,
      p50: latency?.p50 ?? 0,
      p99: latency?.p99 ?? 0,
      max: latency?.max ?? 0,
    },
  };
}

// One run at a time: the parent awaits each answer before it sends the next request.
process.on('message', (message: LoadRequest) => {
  load(message).then(
    (figures) => process.send?.({ id: message.id, figures } satisfies LoadAnswer),
    (error: unknown) =>
      process.send?.({
        id: message.id,
        error: error instanceof Error ? error.message : String(error),
      } satisfies LoadAnswer),
  );
});
process.on('disconnect', () => process.exit(0));
