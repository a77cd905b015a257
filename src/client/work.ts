/**
 * `service-pool-leader work [payload]`: sends work to a running member, which executes it if
 * it leads or forwards it to the leader, and prints who did it:
 * `ticket 17 by a (term 3) via b → a`.
 */
import { formatWork } from './format.js';
import { memberUrl, runCommand, type CommandIo } from './invocation.js';
import { sendWork } from './service.js';

export interface WorkOptions {
  /** The member to ask; see `memberUrl`. */
  url?: string;
  /** Address this pool by name: POST /pools/<pool>/work. */
  pool?: string;
  /** Print the answer's JSON as the member sent it. */
  json?: boolean;
  /** POST /simple-work, the naive path that reads the members from etcd on every call. */
  simple?: boolean;
}

/** Sends `payload` (a string; null when absent) and resolves to the process exit code. */
export function work(
  payload: string | undefined,
  options: WorkOptions,
  io: CommandIo,
): Promise<number> {
  return runCommand(io, options.json ?? false, async () => {
    const answer = await sendWork(memberUrl(options.url, io.env), {
      payload: payload ?? null,
      route: options.simple ? 'simple-work' : 'work',
      ...(options.pool !== undefined ? { pool: options.pool } : {}),
    });
    // A custom work handler answers its own JSON: shown as it is.
    const line =
      options.json || answer.work === undefined ? answer.body.trimEnd() : formatWork(answer.work);
    io.stdout.write(`${line}\n`);
  });
}
