/**
 * Duplicate keys in a JSON text, which JSON.parse silently resolves (the last one wins): the
 * paths of every key an object names twice, e.g. `$.msg`. Throws on text that is not JSON.
 */
export function duplicateKeys(text: string): string[] {
  const found: string[] = [];
  let at = 0;
  const space = () => {
    while (/\s/.test(text[at] ?? '')) at++;
  };
  const fail = (what: string): never => {
    throw new Error(`not JSON at ${at}: expected ${what}`);
  };
  const string = (): string => {
    const start = at;
    if (text[at++] !== '"') fail('"');
    while (text[at] !== '"') {
      if (at >= text.length) fail('closing "');
      at += text[at] === '\\' ? 2 : 1;
    }
    at++;
    return JSON.parse(text.slice(start, at)) as string;
  };
  const value = (path: string): void => {
    space();
    const c = text[at];
    if (c === '{') {
      at++;
      const keys = new Set<string>();
      space();
      if (text[at] === '}') return void at++;
      for (;;) {
        space();
        const key = string();
        if (keys.has(key)) found.push(`${path}.${key}`);
        keys.add(key);
        space();
        if (text[at++] !== ':') fail(':');
        value(`${path}.${key}`);
        space();
        const next = text[at++];
        if (next === '}') return;
        if (next !== ',') fail(', or }');
      }
    }
    if (c === '[') {
      at++;
      space();
      if (text[at] === ']') return void at++;
      for (let i = 0; ; i++) {
        value(`${path}[${i}]`);
        space();
        const next = text[at++];
        if (next === ']') return;
        if (next !== ',') fail(', or ]');
      }
    }
    if (c === '"') return void string();
    const literal = /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(text.slice(at));
    if (!literal) fail('a value');
    at += literal![0].length;
  };
  value('$');
  space();
  if (at !== text.length) fail('the end');
  return found;
}
