/**
 * The member's variables as JSON Schema (draft-07): what the Helm chart's values.schema.json
 * says of `config`, derived from the bounds, patterns and choices config.ts parses with, so
 * that a value the chart accepts is one the member accepts.
 *
 * The patterns are written in the common subset of ECMAScript and Go (RE2) regular
 * expressions, since Helm validates with Go. They match the whole value: surrounding blanks
 * (which the member trims) are allowed, and a blank value is accepted because the member
 * treats it as unset. What a pattern cannot say — a pool named twice in a list, comparisons
 * between variables, whether a file exists — the caller must check some other way.
 */
import {
  DEFAULT_SERVICE_NAME,
  LOG_FORMATS,
  LOG_LEVELS,
  PATTERNS,
  STRATEGIES,
  WHOLE_NUMBERS,
  type WholeNumber,
} from './config.js';
import { VARIABLES } from './variables.js';

export type JsonSchema = Record<string, unknown>;

const BLANK = '\\s*';

/** One value, or blanks. */
const single = (pattern: string) => `^${BLANK}(?:${pattern})?${BLANK}$`;

/** Comma-separated values, blank parts ignored; at least one value unless the whole is blank. */
const list = (pattern: string) => {
  const part = `${BLANK}(?:${pattern})${BLANK}`;
  return `^${BLANK}$|^(?:${BLANK},)*${part}(?:,(?:${part})?${BLANK})*$`;
};

/** Comma-separated values, blank parts ignored; none at all is fine. */
const optionalList = (pattern: string) => {
  const part = `${BLANK}(?:${pattern})?${BLANK}`;
  return `^${part}(?:,${part})*$`;
};

const describe = (name: string) => {
  const doc = VARIABLES.find((variable) => variable.name === name);
  if (doc === undefined) throw new Error(`${name} is not a variable of the member`);
  return doc.description;
};

const wholeNumbers: Record<string, WholeNumber> = WHOLE_NUMBERS;

/** Schemas of the variables that are not whole numbers, by name. */
const OTHERS: Record<string, JsonSchema> = {
  SERVICE_NAME: {
    type: 'string',
    pattern: single(PATTERNS.serviceName),
    default: DEFAULT_SERVICE_NAME,
  },
  POOL: { type: 'string', pattern: single(PATTERNS.poolName), default: 'default' },
  POOLS: { type: 'string', pattern: list(PATTERNS.poolName) },
  AVOID_POOLS: { type: 'string', pattern: list(PATTERNS.poolName) },
  ELECTION_STRATEGY: { enum: [...STRATEGIES], default: 'oldest' },
  WEIGHT: {
    type: ['integer', 'string'],
    minimum: 0,
    pattern: single(PATTERNS.weight),
    default: 1,
  },
  LABELS: {
    type: 'string',
    pattern: optionalList(`${PATTERNS.labelKey}=${PATTERNS.labelValue}`),
  },
  AVOID_LABELS: {
    type: 'string',
    pattern: optionalList(`${PATTERNS.labelKey}(?:=${PATTERNS.labelValue})?`),
  },
  STRATEGY_MODULE: { type: 'string', minLength: 1 },
  CANDIDATE: { type: ['boolean', 'string'], pattern: single('true|false'), default: true },
  LOG_LEVEL: { enum: [...LOG_LEVELS], default: 'info' },
  LOG_FORMAT: { enum: [...LOG_FORMATS], default: 'json' },
};

/**
 * The schema of one variable: whole numbers as integers within their bounds (never strings,
 * whose size a schema cannot bound), the rest as in config.ts. Throws for a variable with no
 * schema here (an address, a file of secrets: what a chart sets itself).
 */
export function variableSchema(name: string): JsonSchema {
  const bounds = wholeNumbers[name];
  const schema: JsonSchema | undefined =
    bounds === undefined
      ? OTHERS[name]
      : { type: 'integer', minimum: bounds.min, maximum: bounds.max, default: bounds.default };
  if (schema === undefined) throw new Error(`no JSON Schema for ${name}`);
  return { ...schema, description: describe(name) };
}
