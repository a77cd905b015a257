/**
 * The member's variables as JSON Schema (draft-07): what the Helm chart's values.schema.json
 * says of `config`, derived from the table of variables.ts — the bounds of whole numbers, the
 * patterns and choices of the rest, defaults and descriptions — so that a value the chart
 * accepts is one the member accepts.
 *
 * Whole numbers are integers within their bounds (never strings, whose size a schema cannot
 * bound). What a schema cannot say — a pool named twice in a list, comparisons between
 * variables, whether a file exists — the caller must check some other way.
 */
import { WHOLE_NUMBER_BOUNDS } from './schemas.js';
import { defaultOf, helpOf, VARIABLE_SCHEMAS, type JsonSchema } from './variables.js';

export type { JsonSchema } from './variables.js';

/** A default that JSON can state as a value: a string, a number or a boolean. */
const isScalar = (value: unknown) => ['string', 'number', 'boolean'].includes(typeof value);

/**
 * The schema of one variable. Throws for a variable with no schema for the chart (an
 * address, a file of secrets: what a chart sets itself).
 */
export function variableSchema(name: string): JsonSchema {
  const { description, chart } = helpOf(name);
  const bounds = WHOLE_NUMBER_BOUNDS.get(VARIABLE_SCHEMAS[name]!);
  const values: JsonSchema | undefined =
    bounds === undefined ? chart : { type: 'integer', minimum: bounds.min, maximum: bounds.max };
  if (values === undefined) throw new Error(`no JSON Schema for ${name}`);
  const fallback = defaultOf(name);
  return { ...values, ...(isScalar(fallback) ? { default: fallback } : {}), description };
}
