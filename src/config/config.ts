/**
 * Configuration comes from environment variables only (12-factor). One zod schema parses
 * them all; every variable is described once, in `VARIABLES` (variables.ts), and `serve --help`
 * prints that table. A bad value never reaches the rest of the program: `loadConfig` throws a
 * `ConfigError` that lists one line per bad variable, and the CLI exits with code 2.
 */
import os from 'node:os';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LOG_FORMATS = ['json', 'pretty'] as const;

/** A whole-number variable: inclusive bounds, the default, and what the number counts. */
export interface WholeNumber {
  min: number;
  max: number;
  default: number;
  /** Names the expected value in messages, e.g. "a whole number of seconds". */
  what: string;
}

const MS = 'a whole number of milliseconds';

/**
 * The whole-number variables. The parser below and the Helm chart's values.schema.json
 * (jsonSchema.ts, written by scripts/chart-config-schema.ts) both take their bounds from here.
 */
export const WHOLE_NUMBERS = {
  PORT: { min: 0, max: 65535, default: 8080, what: 'a port number' },
  ETCD_CALL_TIMEOUT_MS: { min: 100, max: 60_000, default: 1500, what: MS },
  ETCD_MEMBERSHIP_CHECK_MS: { min: 1000, max: 3_600_000, default: 30_000, what: MS },
  LEASE_TTL_SECONDS: { min: 2, max: 3600, default: 5, what: 'a whole number of seconds' },
  LEASE_SAFETY_MARGIN_MS: { min: 0, max: 10_000, default: 500, what: MS },
  RECONCILE_INTERVAL_MS: { min: 200, max: 600_000, default: 3000, what: MS },
  LEADERLESS_WAIT_MS: { min: 0, max: 120_000, default: 5000, what: MS },
  FORWARD_TIMEOUT_MS: { min: 50, max: 120_000, default: 5000, what: MS },
  FORWARD_MAX_HOPS: { min: 1, max: 10, default: 3, what: 'a whole number of hops' },
  MAX_PENDING_WORK: { min: 1, max: 1_000_000, default: 1000, what: 'a whole number of requests' },
  SHUTDOWN_TIMEOUT_MS: { min: 100, max: 600_000, default: 10_000, what: MS },
  SHUTDOWN_LINGER_MS: { min: 0, max: 60_000, default: 300, what: MS },
  TICKET_BLOCK_SIZE: {
    min: 1,
    max: 1_000_000_000,
    default: 1000,
    what: 'a whole number of tickets',
  },
  PREEMPT_AFTER_MS: { min: 0, max: 3_600_000, default: 5000, what: MS },
} as const satisfies Record<string, WholeNumber>;

/** A decimal whole number within the variable's bounds, or its default when unset. */
const wholeNumber = (name: keyof typeof WHOLE_NUMBERS) => {
  const { min, max, what } = WHOLE_NUMBERS[name];
  const expected = `expected ${what} from ${min} to ${max}`;
  return z
    .string()
    .trim()
    .regex(/^\d+$/, expected)
    .transform(Number)
    .pipe(z.number().int(expected).min(min, expected).max(max, expected))
    .default(WHOLE_NUMBERS[name].default);
};

/** `true` or `false`, or its default when unset. */
const flag = (defaultValue: boolean) =>
  z
    .string()
    .trim()
    .pipe(z.enum(['true', 'false'], { error: 'expected true or false' }))
    .transform((value) => value === 'true')
    .default(defaultValue);

/**
 * Patterns of single values (no anchors), shared with jsonSchema.ts. A pool name appears in
 * etcd keys and URL paths, so it keeps to a safe alphabet.
 */
export const PATTERNS = {
  poolName: '[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?',
  labelKey: '[A-Za-z0-9._/-]{1,63}',
  labelValue: '[A-Za-z0-9._-]{0,63}',
  weight: '[0-9]+(\\.[0-9]+)?',
  serviceName: '[A-Za-z0-9@]([A-Za-z0-9@/._-]{0,126}[A-Za-z0-9])?',
} as const;

const anchored = (pattern: string) => new RegExp(`^(?:${pattern})$`);

const httpUrl = z
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

export const poolName = z
  .string()
  .trim()
  .regex(
    anchored(PATTERNS.poolName),
    'expected a pool name of 1-63 lowercase letters, digits, "-" or "_", starting and ending with a letter or digit',
  );

export const memberId = z
  .string()
  .trim()
  .regex(
    /^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$/,
    'expected 1-253 letters, digits, ".", "-" or "_", starting and ending with a letter or digit',
  );

/** The service a member runs when SERVICE_NAME is unset: the echo service of `serve`. */
export const DEFAULT_SERVICE_NAME = 'service-pool-leader';

/** What a member runs, such as `orders` or `@acme/orders`: every member of a pool the same. */
export const serviceName = z
  .string()
  .trim()
  .regex(
    anchored(PATTERNS.serviceName),
    'expected a service name of 1-128 letters, digits, "@", "/", ".", "-" or "_", such as orders',
  );

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

const etcdEndpoints = commaList.pipe(
  z
    .array(httpUrl)
    .min(1, 'expected a comma-separated list of etcd client URLs such as http://127.0.0.1:2379'),
);

const etcdPrefix = z
  .string()
  .trim()
  .regex(
    /^\/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$/,
    'expected a key prefix that starts with "/" and does not end with "/", such as /service-pool-leader',
  );

/** A file read at start-up; its contents are what the config keeps. */
const readableFile = z
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
const secretToken = z
  .string()
  .trim()
  .min(16, 'expected a secret of at least 16 characters')
  .max(4096, 'expected a secret of at most 4096 characters');

export const STRATEGIES = ['oldest', 'weighted', 'avoid', 'module'] as const;
export type StrategyName = (typeof STRATEGIES)[number];

const poolList = commaList
  .pipe(z.array(poolName).min(1, 'expected a comma-separated list of pool names'))
  .refine((pools) => new Set(pools).size === pools.length, 'expected each pool name once');

/** `k=v,k2=v2`; where `bareKeys`, a bare `k` matches any value (kept as an empty string). */
const labelPart = new RegExp(`^(${PATTERNS.labelKey})(?:=(${PATTERNS.labelValue}))?$`);

const labelList = (bareKeys: boolean) =>
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

const rawSchema = z.object({
  SERVICE_NAME: serviceName.default(DEFAULT_SERVICE_NAME),
  POOL: poolName.default('default'),
  MEMBER_ID: memberId.optional(),
  POD_NAME: memberId.optional(),
  POD_IP: z
    .string()
    .trim()
    .refine((value) => isIP(value) !== 0, 'expected an IPv4 or IPv6 address')
    .optional(),
  HOST: z.string().trim().min(1).default('0.0.0.0'),
  PORT: wholeNumber('PORT'),
  ADVERTISE_URL: httpUrl.optional(),
  ETCD_ENDPOINTS: etcdEndpoints.default(['http://127.0.0.1:2379']),
  ETCD_PREFIX: etcdPrefix.default('/service-pool-leader'),
  ETCD_CALL_TIMEOUT_MS: wholeNumber('ETCD_CALL_TIMEOUT_MS'),
  ETCD_MEMBERSHIP_CHECK_MS: wholeNumber('ETCD_MEMBERSHIP_CHECK_MS'),
  ETCD_CA_FILE: readableFile.optional(),
  ETCD_CERT_FILE: readableFile.optional(),
  ETCD_KEY_FILE: readableFile.optional(),
  ETCD_USERNAME: z.string().max(256, 'expected a user name of at most 256 characters').optional(),
  ETCD_PASSWORD: z.string().max(1024, 'expected a password of at most 1024 characters').optional(),
  FORWARD_TOKEN: secretToken.optional(),
  ADMIN_TOKEN: secretToken.optional(),
  LEASE_TTL_SECONDS: wholeNumber('LEASE_TTL_SECONDS'),
  LEASE_SAFETY_MARGIN_MS: wholeNumber('LEASE_SAFETY_MARGIN_MS'),
  RECONCILE_INTERVAL_MS: wholeNumber('RECONCILE_INTERVAL_MS'),
  LEADERLESS_WAIT_MS: wholeNumber('LEADERLESS_WAIT_MS'),
  FORWARD_TIMEOUT_MS: wholeNumber('FORWARD_TIMEOUT_MS'),
  FORWARD_MAX_HOPS: wholeNumber('FORWARD_MAX_HOPS'),
  MAX_PENDING_WORK: wholeNumber('MAX_PENDING_WORK'),
  SHUTDOWN_TIMEOUT_MS: wholeNumber('SHUTDOWN_TIMEOUT_MS'),
  SHUTDOWN_LINGER_MS: wholeNumber('SHUTDOWN_LINGER_MS'),
  TICKET_BLOCK_SIZE: wholeNumber('TICKET_BLOCK_SIZE'),
  LOG_LEVEL: z
    .enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` })
    .default('info'),
  LOG_FORMAT: z
    .enum(LOG_FORMATS, { error: `expected one of ${LOG_FORMATS.join(', ')}` })
    .default('json'),
  POOLS: poolList.optional(),
  ELECTION_STRATEGY: z
    .enum(STRATEGIES, { error: `expected one of ${STRATEGIES.join(', ')}` })
    .default('oldest'),
  WEIGHT: z
    .string()
    .trim()
    .regex(anchored(PATTERNS.weight), 'expected a number of at least 0, such as 1 or 2.5')
    .transform(Number)
    .default(1),
  LABELS: labelList(false).default({}),
  AVOID_LABELS: labelList(true).default({}),
  AVOID_POOLS: poolList.default([]),
  STRATEGY_MODULE: readableFile.optional(),
  PREEMPT_AFTER_MS: wholeNumber('PREEMPT_AFTER_MS'),
  CANDIDATE: flag(true),
});

/** Every variable the schema reads; each must be documented in `VARIABLES` (variables.ts). */
export const PARSED_VARIABLES: readonly string[] = Object.keys(rawSchema.shape);

export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  /** The service this member runs (SERVICE_NAME); a pool admits members of one service. */
  service: string;
  /** The first of `pools`: the pool of /work. */
  pool: string;
  pools: string[];
  weight: number;
  labels: Record<string, string>;
  /** Whether this member may lead; a non-candidate (CANDIDATE=false) only routes. */
  candidate: boolean;
  strategy: {
    name: StrategyName;
    avoidLabels: Record<string, string>;
    avoidPools: string[];
    /** Path of the module of the `module` strategy. */
    modulePath?: string;
    preemptAfterMs: number;
  };
  memberId: string;
  host: string;
  port: number;
  advertiseUrl: string;
  etcd: {
    endpoints: string[];
    prefix: string;
    callTimeoutMs: number;
    /** Period of the check of ETCD_ENDPOINTS against etcd's member list. */
    membershipCheckMs: number;
    /** TLS material, read at start-up; undefined for plain HTTP. */
    tls?: { ca: Buffer; cert?: Buffer; key?: Buffer };
    auth?: { username: string; password: string };
  };
  /** Shared secret that forwards between members carry. */
  forwardToken?: string;
  /** Bearer token of the admin routes; they are disabled without it. */
  adminToken?: string;
  lease: {
    ttlSeconds: number;
    safetyMarginMs: number;
  };
  reconcileIntervalMs: number;
  leaderlessWaitMs: number;
  forwardTimeoutMs: number;
  forwardMaxHops: number;
  /** Work requests held or in flight at once; beyond, 503 OVERLOADED. */
  maxPendingWork: number;
  shutdownTimeoutMs: number;
  shutdownLingerMs: number;
  ticketBlockSize: number;
  log: { level: LogLevel; format: (typeof LOG_FORMATS)[number] };
}

export interface ConfigIssue {
  variable: string;
  value: string | undefined;
  expected: string;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(readonly issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
  }
}

/** Variables whose values never appear in messages or logs. */
const SECRET_VARIABLES = new Set(['ETCD_PASSWORD', 'FORWARD_TOKEN', 'ADMIN_TOKEN']);

export function formatIssue(issue: ConfigIssue): string {
  const shown =
    issue.value === undefined
      ? '(unset)'
      : SECRET_VARIABLES.has(issue.variable)
        ? `(hidden, ${issue.value.length} characters)`
        : JSON.stringify(issue.value);
  return `invalid ${issue.variable}=${shown}: ${issue.expected}`;
}

/** Empty strings count as unset, as `FOO= cmd` usually means "no value". */
function presentValues(env: NodeJS.ProcessEnv): Record<string, string> {
  const known = new Set(PARSED_VARIABLES);
  const values: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (known.has(name) && value !== undefined && value.trim() !== '') values[name] = value;
  }
  return values;
}

/**
 * Parses the environment into a `Config`. Throws `ConfigError` listing every bad variable.
 * `hostname` and `pid` are parameters so that the defaults can be tested.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  host: { hostname: string; pid: number } = { hostname: os.hostname(), pid: process.pid },
): Config {
  const values = presentValues(env);
  const parsed = rawSchema.safeParse(values);
  if (!parsed.success) {
    const byVariable = new Map<string, ConfigIssue>();
    for (const issue of parsed.error.issues) {
      const variable = String(issue.path[0]);
      if (!byVariable.has(variable)) {
        byVariable.set(variable, { variable, value: values[variable], expected: issue.message });
      }
    }
    throw new ConfigError([...byVariable.values()]);
  }
  const raw = parsed.data;
  const memberIdValue =
    raw.MEMBER_ID ?? raw.POD_NAME ?? memberId.parse(`${sanitize(host.hostname)}-${host.pid}`);
  const issues: ConfigIssue[] = [];
  const ttlMs = raw.LEASE_TTL_SECONDS * 1000;
  if (raw.LEASE_SAFETY_MARGIN_MS >= ttlMs / 2) {
    issues.push({
      variable: 'LEASE_SAFETY_MARGIN_MS',
      value: values.LEASE_SAFETY_MARGIN_MS ?? String(raw.LEASE_SAFETY_MARGIN_MS),
      expected: `expected less than half the lease TTL (${ttlMs / 2} ms)`,
    });
  }
  if (raw.ETCD_CALL_TIMEOUT_MS >= ttlMs) {
    issues.push({
      variable: 'ETCD_CALL_TIMEOUT_MS',
      value: values.ETCD_CALL_TIMEOUT_MS ?? String(raw.ETCD_CALL_TIMEOUT_MS),
      expected: `expected less than the lease TTL (${ttlMs} ms)`,
    });
  }
  const pairs: [string, unknown, string, unknown][] = [
    ['ETCD_CERT_FILE', raw.ETCD_CERT_FILE, 'ETCD_KEY_FILE', raw.ETCD_KEY_FILE],
    ['ETCD_USERNAME', raw.ETCD_USERNAME, 'ETCD_PASSWORD', raw.ETCD_PASSWORD],
  ];
  for (const [a, aValue, b, bValue] of pairs) {
    if ((aValue === undefined) !== (bValue === undefined)) {
      const [missing, given] = aValue === undefined ? [a, b] : [b, a];
      issues.push({
        variable: missing,
        value: undefined,
        expected: `expected a value, because ${given} is set`,
      });
    }
  }
  if (raw.ETCD_CERT_FILE && !raw.ETCD_CA_FILE) {
    issues.push({
      variable: 'ETCD_CA_FILE',
      value: undefined,
      expected: 'expected a CA file, because ETCD_CERT_FILE is set (client certificates need TLS)',
    });
  }
  const plainEndpoints = raw.ETCD_ENDPOINTS.filter((url) => url.startsWith('http://'));
  if (raw.ETCD_CA_FILE && plainEndpoints.length > 0) {
    issues.push({
      variable: 'ETCD_ENDPOINTS',
      value: values.ETCD_ENDPOINTS,
      expected: 'expected https:// endpoints, because ETCD_CA_FILE is set',
    });
  }
  if ((raw.ELECTION_STRATEGY === 'module') !== (raw.STRATEGY_MODULE !== undefined)) {
    issues.push(
      raw.STRATEGY_MODULE === undefined
        ? {
            variable: 'STRATEGY_MODULE',
            value: undefined,
            expected: 'expected a file, because ELECTION_STRATEGY=module',
          }
        : {
            variable: 'ELECTION_STRATEGY',
            value: values.ELECTION_STRATEGY ?? raw.ELECTION_STRATEGY,
            expected: 'expected module, because STRATEGY_MODULE is set',
          },
    );
  }
  if (raw.SHUTDOWN_LINGER_MS >= raw.SHUTDOWN_TIMEOUT_MS) {
    issues.push({
      variable: 'SHUTDOWN_LINGER_MS',
      value: values.SHUTDOWN_LINGER_MS ?? String(raw.SHUTDOWN_LINGER_MS),
      expected: `expected less than SHUTDOWN_TIMEOUT_MS (${raw.SHUTDOWN_TIMEOUT_MS} ms)`,
    });
  }
  if (issues.length > 0) throw new ConfigError(issues);

  return {
    service: raw.SERVICE_NAME,
    pool: (raw.POOLS ?? [raw.POOL])[0]!,
    pools: raw.POOLS ?? [raw.POOL],
    weight: raw.WEIGHT,
    labels: raw.LABELS,
    candidate: raw.CANDIDATE,
    strategy: {
      name: raw.ELECTION_STRATEGY,
      avoidLabels: raw.AVOID_LABELS,
      avoidPools: raw.AVOID_POOLS,
      ...(raw.STRATEGY_MODULE ? { modulePath: raw.STRATEGY_MODULE.path } : {}),
      preemptAfterMs: raw.PREEMPT_AFTER_MS,
    },
    memberId: memberIdValue,
    host: raw.HOST,
    port: raw.PORT,
    advertiseUrl: raw.ADVERTISE_URL ?? `http://${urlHost(raw.POD_IP ?? '127.0.0.1')}:${raw.PORT}`,
    etcd: {
      endpoints: raw.ETCD_ENDPOINTS,
      prefix: raw.ETCD_PREFIX,
      callTimeoutMs: raw.ETCD_CALL_TIMEOUT_MS,
      membershipCheckMs: raw.ETCD_MEMBERSHIP_CHECK_MS,
      ...(raw.ETCD_CA_FILE
        ? {
            tls: {
              ca: raw.ETCD_CA_FILE.contents,
              ...(raw.ETCD_CERT_FILE && raw.ETCD_KEY_FILE
                ? { cert: raw.ETCD_CERT_FILE.contents, key: raw.ETCD_KEY_FILE.contents }
                : {}),
            },
          }
        : {}),
      ...(raw.ETCD_USERNAME && raw.ETCD_PASSWORD
        ? { auth: { username: raw.ETCD_USERNAME, password: raw.ETCD_PASSWORD } }
        : {}),
    },
    lease: { ttlSeconds: raw.LEASE_TTL_SECONDS, safetyMarginMs: raw.LEASE_SAFETY_MARGIN_MS },
    reconcileIntervalMs: raw.RECONCILE_INTERVAL_MS,
    leaderlessWaitMs: raw.LEADERLESS_WAIT_MS,
    forwardTimeoutMs: raw.FORWARD_TIMEOUT_MS,
    forwardMaxHops: raw.FORWARD_MAX_HOPS,
    maxPendingWork: raw.MAX_PENDING_WORK,
    shutdownTimeoutMs: raw.SHUTDOWN_TIMEOUT_MS,
    shutdownLingerMs: raw.SHUTDOWN_LINGER_MS,
    ticketBlockSize: raw.TICKET_BLOCK_SIZE,
    log: { level: raw.LOG_LEVEL, format: raw.LOG_FORMAT },
    ...(raw.FORWARD_TOKEN ? { forwardToken: raw.FORWARD_TOKEN } : {}),
    ...(raw.ADMIN_TOKEN ? { adminToken: raw.ADMIN_TOKEN } : {}),
  };
}

/** An IPv6 address goes in brackets inside a URL. */
function urlHost(ip: string): string {
  return isIP(ip) === 6 ? `[${ip}]` : ip;
}

function sanitize(hostname: string): string {
  const cleaned = hostname.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return cleaned === '' ? 'member' : cleaned.slice(0, 200);
}
