/**
 * Writes what the Helm chart knows of the member's configuration from src/config, the one
 * source: values.schema.json's `config` (bounds, patterns and choices of every variable the
 * chart offers) and files/member-defaults.json (the member's defaults, which the templates
 * need to check what a schema cannot: comparisons between variables).
 *
 *   npx tsx scripts/chart-config-schema.ts           rewrite both files
 *   npx tsx scripts/chart-config-schema.ts --check   exit 1 if either is out of date
 *
 * Runs in well under a second; nothing else is touched.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import prettier from 'prettier';
import { WHOLE_NUMBERS } from '../src/config/environment.js';
import { variableSchema, type JsonSchema } from '../src/config/jsonSchema.js';
import { VARIABLES } from '../src/config/variables.js';

const CHART_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../helm/service-pool-leader',
);
export const SCHEMA_FILE = path.join(CHART_DIR, 'values.schema.json');
export const DEFAULTS_FILE = path.join(CHART_DIR, 'files', 'member-defaults.json');

/** Variables the chart sets itself, so `config` does not offer them; why, for each. */
export const CHART_MANAGED_VARIABLES: Readonly<Record<string, string>> = {
  MEMBER_ID: 'POD_NAME is the member id',
  POD_NAME: 'downward API',
  POD_IP: 'downward API',
  HOST: 'unset: the member binds every address of its pod',
  PORT: 'containerPort',
  ADVERTISE_URL: 'advertiseUrl',
  ETCD_ENDPOINTS: 'etcd.enabled or etcd.endpoints',
  ETCD_PREFIX: 'etcd.prefix',
  ETCD_CA_FILE: 'etcd.tls: files mounted from a Secret',
  ETCD_CERT_FILE: 'etcd.tls',
  ETCD_KEY_FILE: 'etcd.tls',
  ETCD_USERNAME: 'etcd.auth: from a Secret',
  ETCD_PASSWORD: 'etcd.auth',
  FORWARD_TOKEN: 'tokens.existingSecret',
  ADMIN_TOKEN: 'tokens.existingSecret',
};

/** Where the chart narrows a variable or adds to its description. */
const CHART_OVERRIDES: Readonly<Record<string, JsonSchema>> = {
  LOG_FORMAT: {
    description:
      'Log format: json for a log collector; pretty (one readable line per entry) for reading kubectl logs.',
  },
  STRATEGY_MODULE: {
    description:
      'module strategy: path in the pod of a JavaScript file exporting selectLeader(members, context); mount it with extraVolumes.',
  },
  SHUTDOWN_TIMEOUT_MS: {
    description:
      'Upper bound of graceful shutdown on SIGTERM; terminationGracePeriodSeconds follows it (see shutdown).',
  },
  POOLS: {
    description:
      'Comma-separated pools this member joins, each with its own leader and each named once; /work means the first. Overrides POOL.',
  },
};

/** The chart's `config`: every variable of the member that the chart does not set itself. */
export function chartConfigSchema(): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const { name } of VARIABLES) {
    if (name in CHART_MANAGED_VARIABLES) continue;
    properties[name] = { ...variableSchema(name), ...CHART_OVERRIDES[name] };
  }
  return {
    type: 'object',
    additionalProperties: false,
    description:
      'Environment of the member (docs/operations.md); the chart sets the others. Written by scripts/chart-config-schema.ts from src/config: do not edit.',
    properties,
  };
}

/** The member's defaults of the whole-number variables the templates compare. */
export function memberDefaults(): Record<string, number> {
  return Object.fromEntries(
    Object.entries(WHOLE_NUMBERS).map(([name, bounds]) => [name, bounds.default]),
  );
}

async function formatted(file: string, value: unknown): Promise<string> {
  const options = await prettier.resolveConfig(file);
  return prettier.format(JSON.stringify(value, null, 2), { ...options, filepath: file });
}

/** Both files as they should be, by path. */
export async function expectedFiles(): Promise<Map<string, string>> {
  const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as {
    properties: Record<string, unknown>;
  };
  schema.properties.config = chartConfigSchema();
  return new Map([
    [SCHEMA_FILE, await formatted(SCHEMA_FILE, schema)],
    [DEFAULTS_FILE, await formatted(DEFAULTS_FILE, memberDefaults())],
  ]);
}

async function main(check: boolean): Promise<number> {
  let stale = 0;
  for (const [file, text] of await expectedFiles()) {
    let current = '';
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      // missing: written below, or stale under --check
    }
    if (current === text) continue;
    stale++;
    if (check) console.error(`${path.relative(process.cwd(), file)} is out of date`);
    else {
      writeFileSync(file, text);
      console.log(`wrote ${path.relative(process.cwd(), file)}`);
    }
  }
  if (check && stale > 0) console.error('run: npx tsx scripts/chart-config-schema.ts');
  return check && stale > 0 ? 1 : 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.includes('--check'));
}
