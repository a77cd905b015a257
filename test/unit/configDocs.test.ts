/**
 * docs/operations.md's table of variables says what `serve --help` says: every variable the
 * member reads is in it, and every variable it names is one the member reads, with the
 * default the help prints.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { VARIABLES } from '../../src/config/variables.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The rows of the table under "## Configuration": names and default, without backticks. */
function documentedVariables(): { names: string[]; defaultText: string }[] {
  const doc = readFileSync(path.join(ROOT, 'docs', 'operations.md'), 'utf8');
  const section = doc.split('\n## Configuration\n')[1]!.split('\n## ')[0]!;
  return section
    .split('\n')
    .filter((line) => /^\| `[A-Z_]+`/.test(line))
    .map((line) => {
      const [names, defaultText] = line
        .split('|')
        .slice(1, 3)
        .map((cell) => cell.trim());
      return {
        names: [...names!.matchAll(/`([A-Z_]+)`/g)].map((match) => match[1]!),
        defaultText: defaultText!.replaceAll('`', ''),
      };
    });
}

describe("docs/operations.md's table of variables", () => {
  it('lists every variable the member reads', () => {
    const documented = new Set(documentedVariables().flatMap((row) => row.names));
    expect(VARIABLES.map((v) => v.name).filter((name) => !documented.has(name))).to.deep.equal([]);
  });

  it('names variables the member reads, each with the default --help prints', () => {
    const rows = documentedVariables();
    expect(rows).to.have.length.greaterThan(0);
    for (const { names, defaultText } of rows) {
      for (const name of names) {
        const variable = VARIABLES.find((v) => v.name === name);
        expect(variable, `${name} is not a variable of the member`).not.to.equal(undefined);
        expect(defaultText, name).to.equal(variable!.defaultText);
      }
    }
  });
});
