/**
 * What a forward's failure means, in a word a test can compare: `unreachable` (nothing was
 * sent: retryable), `not-leader` (421), a PoolError's code, or `answered`.
 */
import { NotLeaderError, PoolError } from '../../src/errors.js';
import { UpstreamUnreachableError } from '../../src/work/forwarder.js';

export async function failure(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof UpstreamUnreachableError) return 'unreachable';
    if (error instanceof NotLeaderError) return 'not-leader';
    if (error instanceof PoolError) return error.code;
    return `other: ${String(error)}`;
  }
  return 'answered';
}
