/**
 * The whole environment as one zod schema: every variable of the table (variables.ts), then
 * the checks between variables — timing that would break the lease safety model, settings
 * that only work in pairs. Those run only once every variable is right on its own, so a start-up
 * reports either the variables that are wrong alone or the combinations that are wrong.
 */
import { z } from 'zod';
import { WHOLE_NUMBER_BOUNDS, type WholeNumber } from './schemas.js';
import { LEADERSHIP_VARIABLES, MEMBER_VARIABLES, POOL_VARIABLES } from './variables.js';

/**
 * The message of a check between variables names the variable to change. When that one is
 * unset, `effective` is the value it had (its default) for the message to show.
 */
export interface CrossCheckParams {
  effective?: string;
}

/**
 * Parses the environment's non-blank variables. The who-leads variables come last here,
 * though `--help` lists them after POOL: a start-up with several wrong variables reports
 * them in this order, one line each.
 */
export const environment = z
  .object({ ...POOL_VARIABLES, ...MEMBER_VARIABLES, ...LEADERSHIP_VARIABLES })
  .superRefine((env, ctx) => {
    if (ctx.issues.length > 0) return;
    const refuse = (variable: keyof typeof env, expected: string, effective?: number | string) => {
      const params: CrossCheckParams =
        effective === undefined ? {} : { effective: String(effective) };
      ctx.addIssue({ code: 'custom', path: [variable], message: expected, params });
    };

    const ttlMs = env.LEASE_TTL_SECONDS * 1000;
    if (env.LEASE_SAFETY_MARGIN_MS >= ttlMs / 2) {
      refuse(
        'LEASE_SAFETY_MARGIN_MS',
        `expected less than half the lease TTL (${ttlMs / 2} ms)`,
        env.LEASE_SAFETY_MARGIN_MS,
      );
    }
    if (env.ETCD_CALL_TIMEOUT_MS >= ttlMs) {
      refuse(
        'ETCD_CALL_TIMEOUT_MS',
        `expected less than the lease TTL (${ttlMs} ms)`,
        env.ETCD_CALL_TIMEOUT_MS,
      );
    }
    const pairs = [
      ['ETCD_CERT_FILE', 'ETCD_KEY_FILE'],
      ['ETCD_USERNAME', 'ETCD_PASSWORD'],
    ] as const;
    for (const [a, b] of pairs) {
      if ((env[a] === undefined) !== (env[b] === undefined)) {
        const [missing, given] = env[a] === undefined ? [a, b] : [b, a];
        refuse(missing, `expected a value, because ${given} is set`);
      }
    }
    if (env.ETCD_CERT_FILE && !env.ETCD_CA_FILE) {
      refuse(
        'ETCD_CA_FILE',
        'expected a CA file, because ETCD_CERT_FILE is set (client certificates need TLS)',
      );
    }
    if (env.ETCD_CA_FILE && env.ETCD_ENDPOINTS.some((url) => url.startsWith('http://'))) {
      refuse('ETCD_ENDPOINTS', 'expected https:// endpoints, because ETCD_CA_FILE is set');
    }
    if ((env.ELECTION_STRATEGY === 'module') !== (env.STRATEGY_MODULE !== undefined)) {
      if (env.STRATEGY_MODULE === undefined) {
        refuse('STRATEGY_MODULE', 'expected a file, because ELECTION_STRATEGY=module');
      } else {
        refuse(
          'ELECTION_STRATEGY',
          'expected module, because STRATEGY_MODULE is set',
          env.ELECTION_STRATEGY,
        );
      }
    }
    if (env.SHUTDOWN_LINGER_MS >= env.SHUTDOWN_TIMEOUT_MS) {
      refuse(
        'SHUTDOWN_LINGER_MS',
        `expected less than SHUTDOWN_TIMEOUT_MS (${env.SHUTDOWN_TIMEOUT_MS} ms)`,
        env.SHUTDOWN_LINGER_MS,
      );
    }
  });

export type Environment = z.output<typeof environment>;

/** Every variable the member reads. */
export const PARSED_VARIABLES: readonly string[] = Object.keys(environment.shape);

/**
 * The whole-number variables and their bounds, in the parser's order: what the chart's
 * files/member-defaults.json lists (scripts/chart-config-schema.ts).
 */
export const WHOLE_NUMBERS: Readonly<Record<string, WholeNumber>> = Object.fromEntries(
  Object.entries(environment.shape).flatMap(([name, schema]) => {
    const bounds = WHOLE_NUMBER_BOUNDS.get(schema);
    return bounds === undefined ? [] : [[name, bounds]];
  }),
);
