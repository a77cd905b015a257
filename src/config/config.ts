/**
 * Configuration comes from environment variables (12-factor), or for a library user from the
 * same settings as typed fields (configOptions.ts). Each variable is described once, in the
 * table of variables.ts; environment.ts parses them all, with the checks between them. A bad
 * value never reaches the rest of the program: `loadConfig` throws a `ConfigError` that lists
 * one line per bad variable, and the CLI exits with code 2.
 */
import os from 'node:os';
import { isIP } from 'node:net';
import { PoolError } from '../errors.js';
import { environment, PARSED_VARIABLES, type CrossCheckParams } from './environment.js';
import { memberId } from './schemas.js';
import { helpOf, LOG_FORMATS, LOG_LEVELS, STRATEGIES } from './variables.js';

export type LogLevel = (typeof LOG_LEVELS)[number];
export type StrategyName = (typeof STRATEGIES)[number];

/**
 * The member's settings, as `loadConfig` (environment variables) or `configFrom` (typed
 * fields) make them; durations in milliseconds unless the name says seconds.
 */
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
  /** Whether to serve the status page `/` and `/events` (STATUS_PAGE). */
  statusPage: boolean;
  /** Whether to serve the teaching path /simple-work (SIMPLE_WORK). */
  simpleWork: boolean;
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

/** One bad setting, as `ConfigError` lists it. */
export interface ConfigIssue {
  /** The environment variable; with `configFrom`, the variable of the field. */
  variable: string;
  /** With `configFrom`: the field of its options (the camelCase of `variable`). */
  field?: string;
  /**
   * The value given: the variable's text, or the field's value (`configFrom`); when the
   * setting was left out and its default is what is wrong, the default.
   */
  value: unknown;
  /** What was expected instead, as a sentence. */
  expected: string;
}

/**
 * A configuration refused: `issues` lists every bad setting, and the message has one line
 * per issue (`invalid LEASE_TTL_SECONDS="1": expected ...`), secrets shown only by length.
 * Thrown by `loadConfig` and `configFrom`; the CLI prints it and exits 2.
 */
export class ConfigError extends PoolError {
  declare readonly code: 'CONFIG_INVALID';
  constructor(readonly issues: ConfigIssue[]) {
    super('CONFIG_INVALID', issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
  }
}

/** Whether `error` is a ConfigError (code `CONFIG_INVALID`): fix the environment, not retry. */
export function isConfigError(error: unknown): error is ConfigError {
  return error instanceof ConfigError;
}

const SECRET_VARIABLES = new Set(PARSED_VARIABLES.filter((name) => helpOf(name).secret));

export function formatIssue(issue: ConfigIssue): string {
  const shown =
    issue.value === undefined
      ? '(unset)'
      : SECRET_VARIABLES.has(issue.variable)
        ? `(hidden, ${(issue.value as string).length} characters)`
        : JSON.stringify(issue.value);
  return `invalid ${issue.field ?? issue.variable}=${shown}: ${issue.expected}`;
}

/** Empty strings count as unset, as `FOO= cmd` usually means "no value". */
function presentValues(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const known = new Set(PARSED_VARIABLES);
  const values: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (known.has(name) && value !== undefined && value.trim() !== '') values[name] = value;
  }
  return values;
}

/** Where a config is made: the host's name and process id make the default MEMBER_ID. */
export interface ConfigHost {
  hostname: string;
  pid: number;
}

const THIS_HOST: ConfigHost = { hostname: os.hostname(), pid: process.pid };

/**
 * Parses environment variables into a `Config`, with the defaults and checks that
 * `service-pool-leader serve --help` lists. `env` is any record of variable names to text
 * (default: `process.env`); names the member does not read are ignored, and empty or blank
 * values count as unset. Throws a `ConfigError` listing every bad variable. Never blocks,
 * except to read the files that ETCD_CA_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE and
 * STRATEGY_MODULE name (synchronously). `host` makes the default MEMBER_ID
 * (`<hostname>-<pid>`); a parameter so that the defaults can be tested.
 */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
  host: ConfigHost = THIS_HOST,
): Config {
  return parseVariables(presentValues(env), (issue) => issue, host);
}

/**
 * The config of the variables' `values` (present ones only); throws a `ConfigError` of the
 * issues found, each as `describe` tells it (loadConfig: as is; configFrom: by field).
 */
export function parseVariables(
  values: Readonly<Record<string, string>>,
  describe: (issue: ConfigIssue) => ConfigIssue,
  host: ConfigHost = THIS_HOST,
): Config {
  const parsed = environment.safeParse(values);
  if (!parsed.success) {
    const byVariable = new Map<string, ConfigIssue>();
    for (const issue of parsed.error.issues) {
      const variable = String(issue.path[0]);
      if (byVariable.has(variable)) continue;
      const effective =
        issue.code === 'custom'
          ? (issue.params as CrossCheckParams | undefined)?.effective
          : undefined;
      byVariable.set(
        variable,
        describe({ variable, value: values[variable] ?? effective, expected: issue.message }),
      );
    }
    throw new ConfigError([...byVariable.values()]);
  }
  const raw = parsed.data;
  const memberIdValue =
    raw.MEMBER_ID ?? raw.POD_NAME ?? memberId.parse(`${sanitize(host.hostname)}-${host.pid}`);

  return {
    service: raw.SERVICE_NAME,
    pool: (raw.POOLS ?? [raw.POOL])[0]!,
    pools: raw.POOLS ?? [raw.POOL],
    weight: raw.WEIGHT,
    labels: raw.LABELS,
    candidate: raw.CANDIDATE,
    statusPage: raw.STATUS_PAGE,
    simpleWork: raw.SIMPLE_WORK,
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
