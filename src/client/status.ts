/**
 * `service-pool-leader status`: the pools a running member belongs to, its members oldest
 * first with their create revisions, the leader and its term — GET /pools, as a table or raw.
 */
import { formatPools } from './format.js';
import { memberUrl, runCommand, type CommandIo } from './invocation.js';
import { fetchPools } from './service.js';

export interface StatusOptions {
  /** The member to ask; see `memberUrl`. */
  url?: string;
  /** Print GET /pools's JSON as the member sent it. */
  json?: boolean;
}

/** Resolves to the process exit code. */
export function status(options: StatusOptions, io: CommandIo): Promise<number> {
  return runCommand(io, options.json ?? false, async () => {
    const { pools, body } = await fetchPools(memberUrl(options.url, io.env));
    io.stdout.write(`${options.json ? body.trimEnd() : formatPools(pools)}\n`);
  });
}
