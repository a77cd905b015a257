/**
 * Every error code a client can get is documented: a row of docs/operations.md's table with
 * its status, and a mention in the README's API section.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { STATUS_BY_CODE } from '../../src/http/errors.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

describe('error codes', () => {
  for (const [code, status] of Object.entries(STATUS_BY_CODE)) {
    it(`${status} ${code} is in docs/operations.md's table and in the README`, () => {
      expect(read('docs/operations.md')).to.match(
        new RegExp(`^\\| ${status}\\s+\\| \`${code}\`\\s+\\| \\S`, 'm'),
      );
      expect(read('README.md')).to.include(`\`${code}\``);
    });
  }
});
