/**
 * Terms, tickets and revisions are bigints, exact however large they grow. JSON has no
 * bigint: `JSON.stringify` throws on one, and pino writes it as a bare number that a
 * JavaScript reader rounds beyond 2^53. These turn each into its decimal string, which
 * `BigInt(text)` reads back exactly.
 */

/**
 * A replacer for `JSON.stringify(value, jsonReplacer)` (and Express's `json replacer`
 * setting): a bigint becomes its decimal string, anything else stays.
 */
export function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/**
 * `value` with every bigint, at any depth of its arrays and plain objects, replaced by its
 * decimal string: for a serializer that takes no replacer, such as pino's
 * `formatters: { log: toJsonSafe }`. Other objects (errors, dates, buffers, class instances)
 * are kept as they are; the input is not changed.
 */
export function toJsonSafe<T>(value: T): JsonSafe<T> {
  return convert(value) as JsonSafe<T>;
}

/** `T` as `toJsonSafe` returns it: bigints turned into strings. */
export type JsonSafe<T> = T extends bigint
  ? string
  : T extends readonly unknown[]
    ? { [K in keyof T]: JsonSafe<T[K]> }
    : T extends object
      ? { [K in keyof T]: JsonSafe<T[K]> }
      : T;

function convert(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(convert);
  if (value === null || typeof value !== 'object') return value;
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== Object.prototype && prototype !== null) return value;
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, convert(item)]));
}
