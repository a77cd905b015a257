/**
 * scripts/: shellcheck (Debian's package) finds nothing in any of them, every script meant
 * to be run is executable, and the image is built in one place (build-image.sh) with the flags
 * `kind load docker-image` needs.
 */
import {
  accessSync,
  chmodSync,
  constants,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
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
          ? "shellcheck is not installed: run scripts/install-system-deps.sh chart (Debian's shellcheck)"
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

  /**
   * Runs build-image.sh against a `docker` that records its arguments: an engine that answers
   * `docker info`, whose `docker build --help` does or does not list --provenance.
   */
  async function buildWithDocker(knowsProvenance: boolean): Promise<string[][]> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-fake-docker-'));
    const calls = path.join(dir, 'calls');
    const docker = path.join(dir, 'docker');
    writeFileSync(
      docker,
      [
        '#!/bin/sh',
        `printf '%s\\n' "$*" >> '${calls}'`,
        'case "$1 $2" in',
        `  "build --help") ${knowsProvenance ? "echo '      --provenance string   Shorthand for --attest=type=provenance'" : "echo '  -t, --tag list'"} ;;`,
        '  "image inspect") echo 1000 ;;',
        'esac',
        'exit 0',
        '',
      ].join('\n'),
    );
    chmodSync(docker, 0o755);
    try {
      const result = await run(
        path.join(SCRIPTS, 'build-image.sh'),
        ['spl-test:provenance', 'spl-test:0.1.0'],
        {
          env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, CONTAINER_ENGINE: 'docker' },
        },
      );
      expect(result.code, result.stdout + result.stderr).to.equal(0);
      return readFileSync(calls, 'utf8')
        .trim()
        .split('\n')
        .map((line) => line.split(' '));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('builds with --provenance=false where the builder knows the flag (kind load fails on attestations), and without it where not', async () => {
    const builds = (calls: string[][]) =>
      calls.filter((argv) => argv[0] === 'build' && argv[1] !== '--help');
    const [withFlag] = builds(await buildWithDocker(true));
    expect(withFlag).to.include('--provenance=false');
    expect(withFlag).to.include.members(['-t', 'spl-test:provenance', 'spl-test:0.1.0']);
    expect(withFlag!.filter((arg) => arg === '-t')).to.have.length(2);
    const [withoutFlag] = builds(await buildWithDocker(false));
    expect(withoutFlag).not.to.include('--provenance=false');
  });

  it('make grafana prints commands that run as pasted: with no helm on PATH, the one make tools extracts', async () => {
    const result = await run(path.join(SCRIPTS, 'grafana.sh'), [], {
      env: { PATH: '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' },
    });
    expect(result.code, result.stderr).to.equal(0);
    const helm = path.join(REPO_ROOT, '.tools/helm4/helm');
    expect(result.stdout).to.include(`${helm} upgrade --install kube-prometheus-stack`);
    expect(result.stdout).to.not.match(/^ {2}helm /m);
  });

  it("make image also tags the chart's appVersion, the tag a plain helm install pulls", async () => {
    const chart = readFileSync(path.join(REPO_ROOT, 'helm/service-pool-leader/Chart.yaml'), 'utf8');
    const appVersion = /^appVersion: '([^']+)'$/m.exec(chart)?.[1];
    expect(appVersion).to.be.a('string');
    const dry = await run('make', ['-n', 'image'], { cwd: REPO_ROOT });
    expect(dry.code, dry.stderr).to.equal(0);
    expect(dry.stdout).to.include(
      `./scripts/build-image.sh "service-pool-leader:dev" "service-pool-leader:${appVersion}"`,
    );
    const values = readFileSync(
      path.join(REPO_ROOT, 'helm/service-pool-leader/values.yaml'),
      'utf8',
    );
    expect(values).to.match(/^ {2}repository: service-pool-leader$/m);
    expect(values).to.match(/^ {2}tag: ''$/m);
  });

  it('every image build goes through build-image.sh: no other script runs `docker build`', () => {
    for (const name of [...runnable, ...sourced].filter((n) => n !== 'build-image.sh')) {
      const text = readFileSync(path.join(SCRIPTS, name), 'utf8');
      expect(text, name).not.to.match(/docker\s+build\b/);
    }
  });

  /**
   * What macOS's bash 3.2 (what kind users on a Mac run) lacks or does differently, found in the
   * code (comments left out): builtins and expansions added in bash 4, and "${a[@]}" of an
   * empty array, which bash before 4.4 calls unbound under `set -u`.
   */
  const BASH4_ONLY: [RegExp, string][] = [
    [/\b(mapfile|readarray)\b/, 'mapfile/readarray (bash 4)'],
    [/\b(declare|local|typeset)\s+-[a-zA-Z]*A/, 'associative arrays (bash 4)'],
    [/\$\{?(EPOCHREALTIME|EPOCHSECONDS)\b/, 'EPOCHREALTIME/EPOCHSECONDS (bash 5)'],
    [/\$\{\w+(,,?|\^\^?)\}/, 'case-changing expansions (bash 4)'],
    [/&>>|\|&/, '&>> and |& (bash 4)'],
    [/\bwait\s+-n\b/, 'wait -n (bash 4.3)'],
    // `${a: -3}` (a space before the minus; `${a:-3}` is a default value, fine in 3.2).
    [/\$\{\w+:\s+-\d+\}/, 'negative substring offsets (bash 4.2)'],
  ];

  it("every script runs under macOS's bash 3.2: no bash-4 constructs, and empty arrays expanded only through a guard", () => {
    const found: string[] = [];
    for (const name of [...runnable, ...sourced]) {
      const text = readFileSync(path.join(SCRIPTS, name), 'utf8');
      const code = text
        .split('\n')
        .map((line) => line.replace(/^\s*#.*$/, ''))
        .join('\n');
      for (const [pattern, what] of BASH4_ONLY) {
        if (pattern.test(code)) found.push(`${name}: ${what}`);
      }
      // "${a[@]}" unguarded: allowed only for an array initialised with at least one element.
      for (const match of code.matchAll(/(.)"\$\{(\w+)\[@\]\}"/g)) {
        const guarded = match[1] === '+';
        const nonEmpty = new RegExp(`\\b${match[2]}=\\(\\s*[^)\\s]`).test(code);
        if (!guarded && !nonEmpty) {
          found.push(
            `${name}: "\${${match[2]}[@]}" may be empty: write \${${match[2]}[@]+"\${${match[2]}[@]}"}`,
          );
        }
      }
    }
    expect(found).to.deep.equal([]);
  });
});
