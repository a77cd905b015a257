/**
 * The answers of a member's HTTP surface, as a client reads them: only the fields the client
 * shows, so a member that adds fields (strategies, more pools) still parses. The shapes are
 * those of `describePool` and the echo work handler; docs/operations.md lists them.
 */
import { z } from 'zod';

const poolMember = z.object({
  id: z.string(),
  url: z.string(),
  memberKey: z.string(),
  createRevision: z.number(),
  isLeader: z.boolean(),
});

export const poolDescription = z.object({
  pool: z.string(),
  self: z.object({ id: z.string() }).optional(),
  leader: z.object({ id: z.string(), url: z.string(), memberKey: z.string() }).nullable(),
  term: z.number().nullable(),
  revision: z.number(),
  members: z.array(poolMember),
});

export type PoolDescription = z.infer<typeof poolDescription>;

/** The JSON in `text`, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * GET /pools answers an array; GET /pool one pool; a `status` event of GET /events carries a
 * snapshot `{pools: [...]}`. All three give the list of pools; anything else is undefined.
 */
export function poolsOf(json: unknown): PoolDescription[] | undefined {
  const candidates =
    typeof json === 'object' && json !== null && 'pools' in json ? json.pools : json;
  const list = z.array(poolDescription).safeParse(candidates);
  if (list.success) return list.data;
  const single = poolDescription.safeParse(json);
  return single.success ? [single.data] : undefined;
}

/** What the echo handler answers on /work and /simple-work. */
export const workAnswer = z.object({
  payload: z.unknown(),
  ticket: z.number(),
  performedBy: z.string(),
  term: z.number(),
  via: z.array(z.string()),
});

export type WorkAnswer = z.infer<typeof workAnswer>;

/** `{"error": {"code", "message", "details"?}}`, every member error. */
export const errorAnswer = z.object({
  error: z.object({ code: z.string(), message: z.string() }),
});

export type ErrorAnswer = z.infer<typeof errorAnswer>;

/** POST /resign and POST /pools/<pool>/resign. */
export const resignAnswer = z.object({
  pool: z.string(),
  resigned: z.boolean(),
  previousLeader: z.string().nullable(),
  reason: z.string().optional(),
});

export type ResignAnswer = z.infer<typeof resignAnswer>;
