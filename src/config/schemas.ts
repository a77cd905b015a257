/**
 * The kinds of value a variable holds — names, URLs, lists, whole numbers, flags, files,
 * secrets — as zod schemas from the trimmed text of one variable to what the program keeps.
 * Each refuses a bad value with a message that says what was expected; the variables table
 * (variables.ts) picks one per variable. Pool names and member ids are also checked where they
 * arrive from etcd or HTTP, with the same schemas.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * Patterns of single values (no anchors), shared with the chart's JSON Schema (variables.ts).
 * A pool name appears in etcd keys and URL paths, so it keeps to a safe alphabet.
 */
export const PATTERNS = {
  poolName: '[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?',
  labelKey: '[A-Za-z0-9._/-]{1,63}',
  labelValue: '[A-Za-z0-9._-]{0,63}',
  weight: '[0-9]+(\\.[0-9]+)?',
  serviceName: '[A-Za-z0-9@]([A-Za-z0-9@/._-]{0,126}[A-Za-z0-9])?',
} as const;

const anchored = (pattern: string) => new RegExp(`^(?:${pattern})$`);

/** A whole-number variable: inclusive bounds, the default, and what the number counts. */
export interface WholeNumber {
  min: number;
  max: number;
  default: number;
  /** Names the expected value in messages, e.g. "a whole number of seconds". */
  what: string;
}

/** The bounds of each whole-number schema, for what is derived from them (the chart's schema). */
export const WHOLE_NUMBER_BOUNDS = z.registry<WholeNumber>();

/** A decimal whole number within `bounds`, or their default when unset. */
export const wholeNumber = (bounds: WholeNumber) => {
  const { min, max, what } = bounds;
  const expected = `expected ${what} from ${min} to ${max}`;
  return z
    .string()
    .trim()
    .regex(/^\d+$/, expected)
    .transform(Number)
    .pipe(z.number().int(expected).min(min, expected).max(max, expected))
    .default(bounds.default)
    .register(WHOLE_NUMBER_BOUNDS, bounds);
};

/** A duration: a whole number of milliseconds from `min` to `max`, `defaultMs` when unset. */
export const milliseconds = (min: number, max: number, defaultMs: number) =>
  wholeNumber({ min, max, default: defaultMs, what: 'a whole number of milliseconds' });

/** `true` or `false`, or its default when unset. */
export const flag = (defaultValue: boolean) =>
  z
    .string()
    .trim()
    .pipe(z.enum(['true', 'false'], { error: 'expected true or false' }))
    .transform((value) => value === 'true')
    .default(defaultValue);

/** One of `choices`, exactly as written. */
export const choice = <const T extends readonly [string, ...string[]]>(choices: T) =>
  z.enum(choices, { error: `expected one of ${choices.join(', ')}` });

export const poolName = z
  .string()
  .trim()
  .regex(
    anchored(PATTERNS.poolName),
    'expected a pool name of 1-63 lowercase letters, digits, "-" or "_", starting and ending with a letter or digit',
  );

/** A member id, trimmed: what `memberId` takes, for checks on every request (no zod). */
export const MEMBER_ID_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$/;

export const memberId = z
  .string()
  .trim()
  .regex(
    MEMBER_ID_PATTERN,
    'expected 1-253 letters, digits, ".", "-" or "_", starting and ending with a letter or digit',
  );

/** What a member runs, such as `orders` or `@acme/orders`: every member of a pool the same. */
export const serviceName = z
  .string()
  .trim()
  .regex(
    anchored(PATTERNS.serviceName),
    'expected a service name of 1-128 letters, digits, "@", "/", ".", "-" or "_", such as orders',
  );

/** A decimal number of at least 0, such as 2.5. */
export const weight = z
  .string()
  .trim()
  .regex(anchored(PATTERNS.weight), 'expected a number of at least 0, such as 1 or 2.5')
  .transform(Number);

export const ipAddress = z
  .string()
  .trim()
  .refine((value) => isIP(value) !== 0, 'expected an IPv4 or IPv6 address');

export const httpUrl = z
  .string()
  .trim()
  .refine((value) => {
    try {
      const url = new URL(value);
      // A hostname of letters, digits, dots and dashes, or a bracketed IPv6 address: this
      // refuses an unexpanded `$(POD_IP)` that Kubernetes left as text.
      const host = /^[A-Za-z0-9.-]+$|^\[[0-9A-Fa-f:.]+\]$/;
      return (url.protocol === 'http:' || url.protocol === 'https:') && host.test(url.hostname);
    } catch {
      return false;
    }
  }, 'expected an http:// or https:// URL such as http://10.0.0.7:8080')
  .transform((value) => value.replace(/\/+$/, ''));

/** A comma-separated list, blanks dropped: `a, b,,` is `[a, b]`. */
const commaList = z
  .string()
  .trim()
  .transform((value) =>
    value
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part !== ''),
  );

/** At least one http(s) URL, comma-separated; `expected` says which URLs, with an example. */
export const httpUrlList = (expected: string) => commaList.pipe(z.array(httpUrl).min(1, expected));

/** At least one pool name, comma-separated, each once. */
export const poolList = commaList
  .pipe(z.array(poolName).min(1, 'expected a comma-separated list of pool names'))
  .refine((pools) => new Set(pools).size === pools.length, 'expected each pool name once');

/** `k=v,k2=v2`; where `bareKeys`, a bare `k` matches any value (kept as an empty string). */
const labelPart = new RegExp(`^(${PATTERNS.labelKey})(?:=(${PATTERNS.labelValue}))?$`);

export const labelList = (bareKeys: boolean) =>
  commaList.transform((parts, ctx) => {
    const labels: Record<string, string> = {};
    for (const part of parts) {
      const match = labelPart.exec(part);
      if (!match || (!bareKeys && match[2] === undefined)) {
        ctx.addIssue({
          code: 'custom',
          message: `expected k=v pairs separated by commas, not "${part}"`,
        });
        return z.NEVER;
      }
      labels[match[1]!] = match[2] ?? '';
    }
    return labels;
  });

export const etcdPrefix = z
  .string()
  .trim()
  .regex(
    /^\/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$/,
    'expected a key prefix that starts with "/" and does not end with "/", such as /service-pool-leader',
  );

/** A file read at start-up; its contents are what the config keeps. */
export const readableFile = z
  .string()
  .trim()
  .transform((path, ctx) => {
    try {
      return { path, contents: readFileSync(path) };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      ctx.addIssue({ code: 'custom', message: `expected a readable file (${code})` });
      return z.NEVER;
    }
  });

/** Shared secrets: long enough that guessing is hopeless; never logged. */
export const secretToken = z
  .string()
  .trim()
  .min(16, 'expected a secret of at least 16 characters')
  .max(4096, 'expected a secret of at most 4096 characters')
  // It travels as an HTTP header value (x-pool-token, Authorization: Bearer).
  .regex(/^[\x20-\x7e\t]*$/, 'expected printable ASCII characters: it is sent as a header value');
