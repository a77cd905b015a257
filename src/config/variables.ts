/**
 * The member's environment variables, each described once: its zod schema says what it
 * accepts and its default, and carries its help as zod 4 metadata (the `VARIABLE_HELP`
 * registry): what it means, and what the Helm chart's JSON Schema offers. `serve --help`
 * (`describeVariables`), the chart's schema (jsonSchema.ts) and the parser (environment.ts)
 * all read this table.
 */
import { z } from 'zod';
import { list, optionalList, single } from './jsonPatterns.js';
import {
  choice,
  etcdPrefix,
  flag,
  httpUrl,
  httpUrlList,
  ipAddress,
  labelList,
  memberId,
  milliseconds,
  PATTERNS,
  poolList,
  poolName,
  readableFile,
  secretToken,
  serviceName,
  weight,
  wholeNumber,
} from './schemas.js';

export type JsonSchema = Record<string, unknown>;

export type VariableHelp = {
  /** What the variable means, as `--help` prints it. */
  description: string;
  /**
   * How `--help` shows the default when the schema's own cannot say it: one derived from
   * other variables, or what being unset means. Otherwise the schema's default is shown
   * ("none" when empty, "unset" when there is none).
   */
  defaultText?: string;
  /**
   * The values the chart's `config` offers (JSON Schema, draft-07, without default and
   * description); absent for a variable the chart sets itself, and for whole numbers, whose
   * bounds say it.
   */
  chart?: JsonSchema;
  /** A secret: its value never appears in messages or logs, only its length. */
  secret?: true;
};

export const VARIABLE_HELP = z.registry<VariableHelp>();

/** `schema`, with its help in `VARIABLE_HELP`. */
function described<S extends z.ZodType>(schema: S, help: VariableHelp): S {
  VARIABLE_HELP.add(schema, help);
  return schema;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LOG_FORMATS = ['json', 'pretty'] as const;
export const STRATEGIES = ['oldest', 'weighted', 'avoid', 'module'] as const;

/** The service a member runs when SERVICE_NAME is unset: the echo service of `serve`. */
export const DEFAULT_SERVICE_NAME = 'service-pool-leader';

/** What the member runs and the pool it joins. */
export const POOL_VARIABLES = {
  SERVICE_NAME: described(serviceName.default(DEFAULT_SERVICE_NAME), {
    description:
      'The service this member runs. A pool admits members of one service: a member of another finds the pool taken, says so and exits 1 (give each service its own POOL or ETCD_PREFIX).',
    chart: { type: 'string', pattern: single(PATTERNS.serviceName) },
  }),
  POOL: described(poolName.default('default'), {
    description: 'Name of the pool this member joins.',
    chart: { type: 'string', pattern: single(PATTERNS.poolName) },
  }),
};

/** The pools a member joins beyond POOL, and how each chooses its leader. */
export const LEADERSHIP_VARIABLES = {
  POOLS: described(poolList.optional(), {
    description:
      'Comma-separated pools this member joins, each with its own leader; /work means the first. Overrides POOL.',
    defaultText: 'POOL',
    chart: { type: 'string', pattern: list(PATTERNS.poolName) },
  }),
  ELECTION_STRATEGY: described(choice(STRATEGIES).default('oldest'), {
    description: `Who leads: ${STRATEGIES.join(', ')}. All members of a pool must use the same.`,
    chart: { enum: [...STRATEGIES] },
  }),
  WEIGHT: described(weight.default(1), {
    description:
      'This member\'s weight; the weighted strategy prefers the biggest ("the big machine").',
    chart: { type: ['integer', 'string'], minimum: 0, pattern: single(PATTERNS.weight) },
  }),
  LABELS: described(labelList(false).default({}), {
    description: "This member's labels, k=v,k2=v2.",
    chart: {
      type: 'string',
      pattern: optionalList(`${PATTERNS.labelKey}=${PATTERNS.labelValue}`),
    },
  }),
  AVOID_LABELS: described(labelList(true).default({}), {
    description: 'avoid strategy: prefer members without these labels (k=v, or k for any value).',
    chart: {
      type: 'string',
      pattern: optionalList(`${PATTERNS.labelKey}(?:=${PATTERNS.labelValue})?`),
    },
  }),
  AVOID_POOLS: described(poolList.default([]), {
    description: 'avoid strategy: prefer members not already leading these pools.',
    chart: { type: 'string', pattern: list(PATTERNS.poolName) },
  }),
  STRATEGY_MODULE: described(readableFile.optional(), {
    description: 'module strategy: a JavaScript file exporting selectLeader(members, context).',
    chart: { type: 'string', minLength: 1 },
  }),
  PREEMPT_AFTER_MS: described(milliseconds(0, 3_600_000, 5000), {
    description:
      'weighted, avoid, module: a better member takes over once preferred this long (hold-down against flapping).',
  }),
  CANDIDATE: described(flag(true), {
    description:
      'false: this member never leads (an edge pod, a small machine); it registers, routes work to the leader and shows in /pool. Every strategy passes it over.',
    chart: { type: ['boolean', 'string'], pattern: single('true|false') },
  }),
};

/** This member: its name and address, its etcd, its timing and its logs. */
export const MEMBER_VARIABLES = {
  MEMBER_ID: described(memberId.optional(), {
    description: "This instance's stable name, shown as performedBy and used for restart takeover.",
    defaultText: 'POD_NAME, else <hostname>-<pid>',
  }),
  POD_NAME: described(memberId.optional(), {
    description: 'Set by Kubernetes (downward API); the default MEMBER_ID.',
  }),
  POD_IP: described(ipAddress.optional(), {
    description: 'Set by Kubernetes (downward API); the host of the default ADVERTISE_URL.',
  }),
  HOST: described(z.string().trim().min(1).default('0.0.0.0'), {
    description: 'Address the HTTP server binds to.',
  }),
  PORT: described(wholeNumber({ min: 0, max: 65535, default: 8080, what: 'a port number' }), {
    description: 'HTTP port.',
  }),
  ADVERTISE_URL: described(httpUrl.optional(), {
    description:
      'URL the other members use to forward work to this one: where its routes answer, with the prefix a library user mounted them under.',
    defaultText: 'http://<POD_IP or 127.0.0.1>:<PORT>',
  }),
  ETCD_ENDPOINTS: described(
    httpUrlList(
      'expected a comma-separated list of etcd client URLs such as http://127.0.0.1:2379',
    ).default(['http://127.0.0.1:2379']),
    { description: 'Comma-separated etcd client URLs.' },
  ),
  ETCD_PREFIX: described(etcdPrefix.default('/service-pool-leader'), {
    description: 'Key prefix under which all pools live.',
  }),
  ETCD_CALL_TIMEOUT_MS: described(milliseconds(100, 60_000, 1500), {
    description: 'Deadline of every etcd request; keep it well under the lease TTL.',
  }),
  ETCD_MEMBERSHIP_CHECK_MS: described(milliseconds(1000, 3_600_000, 30_000), {
    description:
      "How often members read etcd's member list: when ETCD_ENDPOINTS name etcd's members, they then dial the current members (one added later is used, a removed one dropped), and a difference from ETCD_ENDPOINTS is logged with the URLs to list.",
  }),
  ETCD_CA_FILE: described(readableFile.optional(), {
    description: 'PEM CA bundle that signs the etcd server certificates; enables TLS.',
    defaultText: 'unset (plain HTTP)',
  }),
  ETCD_CERT_FILE: described(readableFile.optional(), {
    description: 'PEM client certificate for etcd (with ETCD_KEY_FILE and ETCD_CA_FILE).',
  }),
  ETCD_KEY_FILE: described(readableFile.optional(), {
    description: 'PEM private key of the client certificate.',
  }),
  ETCD_USERNAME: described(
    z.string().max(256, 'expected a user name of at most 256 characters').optional(),
    { description: 'etcd user, when etcd has authentication enabled (with ETCD_PASSWORD).' },
  ),
  ETCD_PASSWORD: described(
    z.string().max(1024, 'expected a password of at most 1024 characters').optional(),
    { description: 'Password of ETCD_USERNAME; never logged.', secret: true },
  ),
  FORWARD_TOKEN: described(secretToken.optional(), {
    description:
      'Shared secret between members: forwards carry it and a forward without it is refused (401). At least 16 printable ASCII characters.',
    defaultText: 'unset (forwards are not authenticated)',
    secret: true,
  }),
  ADMIN_TOKEN: described(secretToken.optional(), {
    description:
      'Bearer token for the admin routes (resign). Without it they are disabled. At least 16 printable ASCII characters.',
    defaultText: 'unset (admin routes disabled)',
    secret: true,
  }),
  STATUS_PAGE: described(flag(true), {
    description:
      'false: no status page; / and /events answer 404. /pool and /pools still describe the pool.',
    chart: { type: ['boolean', 'string'], pattern: single('true|false') },
  }),
  SIMPLE_WORK: described(flag(true), {
    description:
      'false: no /simple-work, the teaching path that reads etcd on every call; it answers 404. /work is not affected.',
    chart: { type: ['boolean', 'string'], pattern: single('true|false') },
  }),
  LEASE_TTL_SECONDS: described(
    wholeNumber({ min: 2, max: 3600, default: 5, what: 'a whole number of seconds' }),
    { description: 'Lease TTL: how long a crashed member stays registered (etcd floor: 2).' },
  ),
  LEASE_SAFETY_MARGIN_MS: described(milliseconds(0, 10_000, 500), {
    description: 'The leader stops acting this long before its local lease deadline.',
  }),
  RECONCILE_INTERVAL_MS: described(milliseconds(200, 600_000, 3000), {
    description: 'Period of the reconciling read that catches a silently stalled watch.',
  }),
  LEADERLESS_WAIT_MS: described(milliseconds(0, 120_000, 5000), {
    description: 'How long /work waits for a leader before answering 503.',
  }),
  FORWARD_TIMEOUT_MS: described(milliseconds(50, 120_000, 5000), {
    description: 'Timeout of one forward from a follower to the leader.',
  }),
  FORWARD_MAX_HOPS: described(
    wholeNumber({ min: 1, max: 10, default: 3, what: 'a whole number of hops' }),
    { description: 'Most forwards one request may take before it is refused.' },
  ),
  MAX_PENDING_WORK: described(
    wholeNumber({ min: 1, max: 1_000_000, default: 1000, what: 'a whole number of requests' }),
    {
      description:
        'Work requests this member holds or has in flight at once (waiting for a leader, forwarded, executing); beyond it, 503 OVERLOADED at once. Keep it well under the open-file limit: each takes a client socket and may take one to the leader.',
    },
  ),
  SHUTDOWN_TIMEOUT_MS: described(milliseconds(100, 600_000, 10_000), {
    description: 'Upper bound of graceful shutdown on SIGTERM/SIGINT.',
  }),
  SHUTDOWN_LINGER_MS: described(milliseconds(0, 60_000, 300), {
    description:
      'After releasing leadership, keep serving this long (answering forwards "not leader") so peers stop using our connections before they close.',
  }),
  TICKET_BLOCK_SIZE: described(
    wholeNumber({ min: 1, max: 1_000_000_000, default: 1000, what: 'a whole number of tickets' }),
    { description: 'Tickets reserved in etcd per fenced write.' },
  ),
  LOG_LEVEL: described(choice(LOG_LEVELS).default('info'), {
    description: `Log level: ${LOG_LEVELS.join(', ')}.`,
    chart: { enum: [...LOG_LEVELS] },
  }),
  LOG_FORMAT: described(choice(LOG_FORMATS).default('json'), {
    description: 'json (one object per line) or pretty (readable, for a terminal).',
    chart: { enum: [...LOG_FORMATS] },
  }),
};

/** Every variable, in the order `--help` lists them. */
export const VARIABLE_SCHEMAS: Readonly<Record<string, z.ZodType>> = {
  ...POOL_VARIABLES,
  ...LEADERSHIP_VARIABLES,
  ...MEMBER_VARIABLES,
};

/** The help of `name`; throws for a name that is no variable of the member. */
export function helpOf(name: string): VariableHelp {
  const schema = VARIABLE_SCHEMAS[name];
  const help = schema && VARIABLE_HELP.get(schema);
  if (help === undefined) throw new Error(`${name} is not a variable of the member`);
  return help;
}

/** The value the member uses when `name` is unset: undefined for none. */
export function defaultOf(name: string): unknown {
  const parsed = VARIABLE_SCHEMAS[name]?.safeParse(undefined);
  return parsed?.success ? parsed.data : undefined;
}

/** A variable as a person reads it: its meaning and default. */
export interface VariableDoc {
  name: string;
  description: string;
  defaultText: string;
}

/** How `--help` shows a default: a list by its items, nothing as "none" or "unset". */
function shownDefault(value: unknown): string {
  if (value === undefined) return 'unset';
  if (Array.isArray(value)) return value.length === 0 ? 'none' : value.join(',');
  if (typeof value === 'object' && value !== null && Object.keys(value).length === 0) {
    return 'none';
  }
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return String(value);
  }
  return JSON.stringify(value);
}

export const VARIABLES: readonly VariableDoc[] = Object.keys(VARIABLE_SCHEMAS).map((name) => {
  const { description, defaultText } = helpOf(name);
  return { name, description, defaultText: defaultText ?? shownDefault(defaultOf(name)) };
});

/** The help text of `serve --help`: every variable with its default. */
export function describeVariables(): string {
  const width = Math.max(...VARIABLES.map((v) => v.name.length));
  return VARIABLES.map(
    (v) => `  ${v.name.padEnd(width)}  ${v.description} (default: ${v.defaultText})`,
  ).join('\n');
}
