/** Turning what a `catch` caught into an `Error`. Never blocks. */

/** `error` itself when it is an `Error`, else an `Error` whose message is its string form. */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
