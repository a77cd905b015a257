/**
 * scripts/: shellcheck (Debian's package) finds nothing in any of them, and every script meant
 * to be run is executable.
 */
import { accessSync, constants, readdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT, run } from './support/tools.js';

const SCRIPTS = path.join(REPO_ROOT, 'scripts');
const runnable = readdirSync(SCRIPTS).filter((name) => name.endsWith('.sh'));
const sourced = readdirSync(path.join(SCRIPTS, 'lib')).map((name) => path.join('lib', name));

describe('the shell scripts', function () {
  this.timeout(30_000);

  it(`shellcheck finds nothing in scripts/*.sh and scripts/lib/* (${runnable.length + sourced.length} files)`, async () => {
    const result = await run('shellcheck', ['--external-sources', ...runnable, ...sourced], {
      cwd: SCRIPTS,
    }).catch((error: NodeJS.ErrnoException) => {
      throw new Error(
        error.code === 'ENOENT'
          ? "shellcheck is not installed: run scripts/install-system-deps.sh (Debian's shellcheck)"
          : error.message,
      );
    });
    expect(result.code, result.stdout + result.stderr).to.equal(0);
  });

  it('every script in scripts/ is executable', () => {
    for (const name of runnable) {
      expect(() => accessSync(path.join(SCRIPTS, name), constants.X_OK), name).not.to.throw();
    }
  });
});
