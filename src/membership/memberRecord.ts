/**
 * The member record: the JSON value of a member key. Validated when we write it and when we
 * read it, because anything under our prefix may have been written by someone else.
 *
 * Reading is tolerant of what a later version may add: unknown fields are ignored (dropped),
 * so during a rolling update the members of this version still count the newer members'
 * records as members. Fields added after the first release are optional on reading, with the
 * meaning an older member's record had.
 */
import { z } from 'zod';
import { memberId, poolName, serviceName } from '../config/schemas.js';

export const memberRecordSchema = z.object({
  id: memberId,
  pool: poolName,
  url: z.url({ protocol: /^https?$/ }),
  startedAt: z.iso.datetime(),
  pid: z.number().int().nonnegative(),
  version: z.string().min(1).max(64),
  weight: z.number().finite().nonnegative(),
  labels: z.record(z.string().max(253), z.string().max(253)),
  leads: z.array(poolName),
  /** The service the member runs (SERVICE_NAME). Absent (an earlier version): unknown. */
  service: serviceName.optional(),
  /** Its strategy and settings (`describeStrategy`). Absent (an earlier version): unknown. */
  strategy: z.string().min(1).max(512).optional(),
  /** False: the member never leads (CANDIDATE=false). Absent (an earlier version): true. */
  candidate: z.boolean().default(true),
});

/** What a member registers about itself: the JSON value of its member key in etcd. */
export type MemberRecord = z.infer<typeof memberRecordSchema>;

/**
 * The leader claim: the value of `P/pools/<pool>/leader`. Tolerant like the member record: a
 * claim that a later version wrote with more fields is still the pool's claim, not a value
 * to replace.
 */
export const leaderClaimSchema = z.object({
  memberKey: z.string().min(1),
  id: memberId,
  url: z.url({ protocol: /^https?$/ }),
  claimedAt: z.iso.datetime(),
  /**
   * The MEMBER_ID of the leader that handed this claim over in one transaction (a graceful
   * handoff, election/claimPursuit.ts). Absent: the holder claimed it itself.
   */
  handedBy: memberId.optional(),
  /**
   * The ticket block reserved for the holder in the handoff's own transaction (decimal, first
   * and last number inclusive): its first tickets need no write. Absent: none was reserved.
   */
  tickets: z
    .object({ first: z.string().regex(/^\d{1,30}$/), last: z.string().regex(/^\d{1,30}$/) })
    .optional(),
});

export type LeaderClaim = z.infer<typeof leaderClaimSchema>;

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

/** What `decodeShared` remembers per schema: distinct values, and their text in all. */
const SHARED_ENTRIES = 4096;
const SHARED_CHARS = 4 * 1024 * 1024;
/** A longer value (foreign, or hostile) is decoded every time rather than held on to. */
const SHARED_MAX_CHARS = 64 * 1024;

interface SharedDecodes {
  entries: Map<string, Decoded<unknown>>;
  chars: number;
}

const shared = new WeakMap<z.ZodType, SharedDecodes>();

/**
 * Parses and validates a stored value (never throws), the answers shared by every pool view
 * of the process. A member sees each record again on
 * every resync, and a process hosting many members (several pools, a benchmark) sees every
 * watch event once per member. Validation is a pure function of the bytes, so each distinct
 * value is parsed and validated once and the answer reused; it is deep-frozen, since every
 * caller gets the same object. Bounded in entries and in text; the oldest entries go first.
 */
export function decodeShared<T>(schema: z.ZodType<T>, raw: Buffer | string): Decoded<T> {
  const text = raw.toString();
  if (text.length > SHARED_MAX_CHARS) return decodeText(schema, text);
  let cache = shared.get(schema);
  if (!cache) shared.set(schema, (cache = { entries: new Map(), chars: 0 }));
  const known = cache.entries.get(text) as Decoded<T> | undefined;
  if (known) return known;
  const decoded = deepFreeze(decodeText(schema, text));
  cache.entries.set(text, decoded);
  cache.chars += text.length;
  while (cache.entries.size > SHARED_ENTRIES || cache.chars > SHARED_CHARS) {
    const oldest = cache.entries.keys().next().value!;
    cache.entries.delete(oldest);
    cache.chars -= oldest.length;
  }
  return decoded;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

function decodeText<T>(schema: z.ZodType<T>, raw: string): Decoded<T> {
  let json: unknown;
  try {
    json = JSON.parse(raw);
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
