/**
 * What the client commands (`status`, `work`) share: where they write, which member they ask,
 * their exit codes, and how a failed call is reported.
 */
import { PoolError } from '../errors.js';
import { formatFailure } from './format.js';
import { isServiceCallError } from './service.js';

export const EXIT_OK = 0;
/** The member answered with an error, or could not be reached. */
export const EXIT_FAILED = 1;
/** The command line itself is wrong (as for `serve`'s bad configuration). */
export const EXIT_USAGE = 2;

/** The demo's member a. */
export const DEFAULT_MEMBER_URL = 'http://127.0.0.1:8081';
export const MEMBER_URL_VARIABLE = 'SERVICE_POOL_URL';

export interface CommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

/** The command line is wrong: the message goes to stderr, the exit code is EXIT_USAGE. */
export class UsageError extends PoolError {
  declare readonly code: 'USAGE';
  constructor(message: string) {
    super('USAGE', message);
    this.name = 'UsageError';
  }
}

/** `--url`, else $SERVICE_POOL_URL, else the demo's member a; an http(s) URL or a UsageError. */
export function memberUrl(option: string | undefined, env: NodeJS.ProcessEnv): string {
  const chosen = option ?? env[MEMBER_URL_VARIABLE] ?? DEFAULT_MEMBER_URL;
  const from = option !== undefined ? '--url' : MEMBER_URL_VARIABLE;
  let url: URL;
  try {
    url = new URL(chosen);
  } catch {
    throw new UsageError(`${from} ${JSON.stringify(chosen)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${from} ${JSON.stringify(chosen)} is not an http:// or https:// URL`);
  }
  return chosen;
}

/**
 * Runs a command body and turns its failures into one line on stderr and an exit code. A
 * member's error answer goes to stdout as it came when `json` is set, for scripts.
 */
export async function runCommand(
  io: CommandIo,
  json: boolean,
  body: () => Promise<void>,
): Promise<number> {
  try {
    await body();
    return EXIT_OK;
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`service-pool-leader: ${error.message}\n`);
      return EXIT_USAGE;
    }
    if (!isServiceCallError(error)) throw error;
    if (json && error.answer !== undefined) io.stdout.write(`${error.answer.body.trimEnd()}\n`);
    const hint =
      error.kind === 'UNREACHABLE'
        ? ` (is a member running there? set --url or ${MEMBER_URL_VARIABLE})`
        : '';
    io.stderr.write(`${formatFailure(error)}${hint}\n`);
    return EXIT_FAILED;
  }
}
