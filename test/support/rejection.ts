/** What a promise that should fail failed with, for tests that assert on the error. */
import { PoolError } from '../../src/errors.js';

/** The reason `promise` rejected with; throws if it resolved. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail');
}

/** The `PoolError` `promise` rejected with; throws if it resolved or failed otherwise. */
export async function failureOf(promise: Promise<unknown>): Promise<PoolError> {
  const error = await rejectionOf(promise);
  if (error instanceof PoolError) return error;
  throw error;
}
