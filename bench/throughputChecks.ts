/**
 * The checks that keep a throughput row from mis-timing (issue 16). autocannon 9 mis-times
 * every response after a server closes a keep-alive connection: a run once showed p50 2.6 ms
 * at 6,700 req/s on one connection, which cannot be. Two checks catch that kind of row:
 *
 * - Little's law: with `connections` connections each keeping one request in flight (no
 *   pipelining, no pause), req/s × mean latency = the mean number of requests in flight ≈
 *   `connections`. The ratio may sit a little under 1 (the client's own time between a
 *   response and the next request is in neither figure) but never far from it: outside
 *   LITTLE_BOUNDS the latencies or the rate are not the ones the run had.
 * - Counts: the server side counts what it served (the leader's tickets, the bare server's own
 *   counter), which must be the client's count, plus at most one request per connection that
 *   was still in flight when the load generator stopped (it drops those, the server finishes
 *   them).
 *
 * Units: req/s, ms, whole requests. Pure functions: nothing here blocks.
 */

/** req/s × mean latency ÷ connections must fall in [low, high]. */
export const LITTLE_BOUNDS = { low: 0.8, high: 1.25 } as const;

/** What one measured run of one row says, from the client and from the server side. */
export interface RowTiming {
  /** The row's name as the tables print it, e.g. `/work via nginx, 10 conn., round 2`. */
  row: string;
  connections: number;
  requestsPerSecond: number;
  meanLatencyMs: number;
  /** Completed responses, as the load generator counted them. */
  clientRequests: number;
  /** Requests the server side served over the same run; undefined: nothing counted them. */
  serverRequests: number | undefined;
}

/** req/s × mean latency (s) ÷ connections: 1 when every connection always had one in flight. */
export function littlesRatio(timing: RowTiming): number {
  return (timing.requestsPerSecond * (timing.meanLatencyMs / 1000)) / timing.connections;
}

/**
 * What is wrong with a run, one sentence each naming the row and the figures; empty when both
 * checks pass.
 */
export function rowProblems(timing: RowTiming): string[] {
  const problems: string[] = [];
  const ratio = littlesRatio(timing);
  if (!(ratio >= LITTLE_BOUNDS.low && ratio <= LITTLE_BOUNDS.high)) {
    problems.push(
      `${timing.row}: Little's law fails: ${timing.requestsPerSecond.toFixed(0)} req/s × ` +
        `mean ${timing.meanLatencyMs.toFixed(3)} ms ÷ ${timing.connections} connection(s) = ` +
        `${ratio.toFixed(2)}, outside ${LITTLE_BOUNDS.low}–${LITTLE_BOUNDS.high}: ` +
        'the latencies or the rate are mis-timed',
    );
  }
  const served = timing.serverRequests;
  if (served === undefined) {
    problems.push(`${timing.row}: no server-side count to check the client's against`);
  } else {
    const extra = served - timing.clientRequests;
    if (extra < 0 || extra > timing.connections) {
      problems.push(
        `${timing.row}: the server served ${served} requests, the client counted ` +
          `${timing.clientRequests} (the server may have up to ${timing.connections} more, ` +
          'left in flight when the load stopped)',
      );
    }
  }
  return problems;
}
