/**
 * The member record: the JSON value of a member key. Validated when we write it and when we
 * read it, because anything under our prefix may have been written by someone else.
 */
import { z } from 'zod';
import { memberId, poolName } from '../config/config.js';

export const memberRecordSchema = z.strictObject({
  id: memberId,
  pool: poolName,
  url: z.url({ protocol: /^https?$/ }),
  startedAt: z.iso.datetime(),
  pid: z.number().int().nonnegative(),
  version: z.string().min(1).max(64),
  weight: z.number().finite().nonnegative(),
  labels: z.record(z.string().max(253), z.string().max(253)),
  leads: z.array(poolName),
});

export type MemberRecord = z.infer<typeof memberRecordSchema>;

/** The leader claim: the value of `P/pools/<pool>/leader`. */
export const leaderClaimSchema = z.strictObject({
  memberKey: z.string().min(1),
  id: memberId,
  url: z.url({ protocol: /^https?$/ }),
  claimedAt: z.iso.datetime(),
});

export type LeaderClaim = z.infer<typeof leaderClaimSchema>;

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Parses and validates a stored value; never throws. */
export function decode<T>(schema: z.ZodType<T>, raw: Buffer | string): Decoded<T> {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString());
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first && first.path.length > 0 ? `${first.path.join('.')}: ` : '';
    return { ok: false, reason: `${where}${first?.message ?? 'invalid'}` };
  }
  return { ok: true, value: parsed.data };
}
