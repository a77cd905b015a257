/**
 * The member's settings as typed fields, for a library user who keeps them in code rather
 * than in the environment: `configFrom({ pool: 'orders', leaseTtlSeconds: 5 })`. Each field is
 * one variable of variables.ts under its camelCase name, holding what the variable's schema
 * makes of its text (a number, a flag, a list, labels; a file's path). Nothing is described
 * twice: a field's value is written as the variable's text and parsed by the same schemas,
 * with the same defaults and the same checks between settings (environment.ts); an issue is
 * told by field, with the variables its message names renamed to their fields.
 */
import type { z } from 'zod';
import {
  ConfigError,
  parseVariables,
  type Config,
  type ConfigHost,
  type ConfigIssue,
} from './config.js';
import { PARSED_VARIABLES, type environment } from './environment.js';
import { defaultOf } from './variables.js';

type Variables = typeof environment.shape;

/** `ETCD_CA_FILE` → `etcdCaFile`. */
type CamelCase<Name extends string> = Name extends `${infer Head}_${infer Tail}`
  ? `${Lowercase<Head>}${Capitalize<CamelCase<Tail>>}`
  : Lowercase<Name>;

/** What a field holds: what its variable's schema makes, a file as its path, read-only. */
type FieldValue<Parsed> = Parsed extends { path: string; contents: Buffer }
  ? string
  : Parsed extends (infer Item)[]
    ? readonly Item[]
    : Parsed extends Record<string, string>
      ? Readonly<Record<string, string>>
      : Parsed;

/**
 * The options of `configFrom`: every variable of `service-pool-leader serve --help` as an
 * optional field named in camelCase (`LEASE_TTL_SECONDS` → `leaseTtlSeconds`,
 * `ETCD_ENDPOINTS` → `etcdEndpoints`) and typed as what it means: numbers (milliseconds
 * unless the name says seconds), booleans, arrays of strings, labels as a record, files as
 * paths. A field left out or undefined takes the variable's default; an empty array or
 * record means none, which is refused where the variable needs at least one.
 */
export type ConfigOptions = {
  readonly [Name in keyof Variables as CamelCase<Name & string>]?:
    | FieldValue<Exclude<z.output<Variables[Name]>, undefined>>
    | undefined;
};

const camelCase = (name: string) =>
  name.toLowerCase().replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());

const VARIABLE_OF_FIELD = new Map(PARSED_VARIABLES.map((name) => [camelCase(name), name]));
const FIELD_OF_VARIABLE = new Map(PARSED_VARIABLES.map((name) => [name, camelCase(name)]));

/**
 * A `Config` from typed fields, with the defaults and checks of `loadConfig`; the environment
 * is not read. Throws a `ConfigError` whose issues name the fields (`issue.field`), e.g.
 * `invalid leaseTtlSeconds=1: expected a whole number of seconds from 2 to 3600`. Never
 * blocks, except to read the files that `etcdCaFile`, `etcdCertFile`, `etcdKeyFile` and
 * `strategyModule` name (synchronously). `host` makes the default `memberId`
 * (`<hostname>-<pid>`, this process's by default).
 */
export function configFrom(options: ConfigOptions, host?: ConfigHost): Config {
  const given = options as Readonly<Record<string, unknown>>;
  const values: Record<string, string> = {};
  const refused: ConfigIssue[] = [];
  for (const [field, value] of Object.entries(given)) {
    const variable = VARIABLE_OF_FIELD.get(field);
    const text = variable === undefined ? undefined : variableText(value, defaultOf(variable));
    if (variable === undefined) {
      refused.push({
        variable: field,
        field,
        value,
        expected: 'expected a field of ConfigOptions',
      });
    } else if (text !== undefined && 'expected' in text) {
      refused.push({ variable, field, value, expected: text.expected });
    } else if (text !== undefined) {
      values[variable] = text.text;
    }
  }
  if (refused.length > 0) throw new ConfigError(refused);
  return parseVariables(
    values,
    (issue) => {
      const field = FIELD_OF_VARIABLE.get(issue.variable) ?? issue.variable;
      return {
        variable: issue.variable,
        field,
        // Left out, yet refused by a check between settings: its default was wrong.
        value:
          field in given
            ? given[field]
            : issue.value === undefined
              ? undefined
              : defaultOf(issue.variable),
        expected: issue.expected.replace(
          /\b[A-Z][A-Z0-9_]*[A-Z0-9]\b/g,
          (name) => FIELD_OF_VARIABLE.get(name) ?? name,
        ),
      };
    },
    host,
  );
}

/**
 * A field's value as its variable's text: lists comma-separated, labels as `k=v,k2=v2`.
 * Undefined for a value that means the default (undefined, or empty where the default is
 * empty); `expected` for an item that the text could not keep apart from its neighbours.
 */
function variableText(
  value: unknown,
  defaultValue: unknown,
): { text: string } | { expected: string } | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return { text: value };
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') {
    return { text: String(value) };
  }
  if (typeof value !== 'object' || value === null) {
    return { expected: 'expected a string, a number, a boolean, a list or labels' };
  }
  if (isEmpty(value) && isEmpty(defaultValue)) return undefined;
  const separate = (item: unknown, separators: RegExp): item is string =>
    typeof item === 'string' && !separators.test(item);
  if (Array.isArray(value)) {
    const items: unknown[] = value;
    if (!items.every((item) => separate(item, /,/))) {
      return { expected: 'expected a list of strings without commas in them' };
    }
    return { text: items.join(',') };
  }
  const pairs = Object.entries(value).flatMap(([key, item]) =>
    separate(key, /[,=]/) && separate(item, /[,=]/) ? [`${key}=${item}`] : [],
  );
  if (pairs.length !== Object.keys(value).length) {
    return { expected: 'expected labels of strings without "," or "=" in them' };
  }
  return { text: pairs.join(',') };
}

function isEmpty(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Object.keys(value).length === 0;
}
