/**
 * Patterns of whole values as the chart's JSON Schema writes them, from the single-value
 * patterns of schemas.ts. They are written in the common subset of ECMAScript and Go (RE2)
 * regular expressions, since Helm validates with Go. They match the whole value: surrounding
 * blanks (which the member trims) are allowed, and a blank value is accepted because the
 * member treats it as unset.
 */

const BLANK = '\\s*';

/** One value, or blanks. */
export const single = (pattern: string) => `^${BLANK}(?:${pattern})?${BLANK}$`;

/** Comma-separated values, blank parts ignored; at least one value unless the whole is blank. */
export const list = (pattern: string) => {
  const part = `${BLANK}(?:${pattern})${BLANK}`;
  return `^${BLANK}$|^(?:${BLANK},)*${part}(?:,(?:${part})?${BLANK})*$`;
};

/** Comma-separated values, blank parts ignored; none at all is fine. */
export const optionalList = (pattern: string) => {
  const part = `${BLANK}(?:${pattern})?${BLANK}`;
  return `^${part}(?:,${part})*$`;
};
