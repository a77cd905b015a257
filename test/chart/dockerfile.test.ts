/**
 * The Dockerfile, checked without a Docker engine: its base is an ARG whose default is the
 * official Node.js image; replaying its build stage here (a temporary folder laid out like the
 * stage's filesystem, its COPY and RUN instructions in order, npm from the local cache) proves
 * that the locked compiler set in image/compiler alone compiles src/, that nothing but that set
 * and the production dependencies is ever fetched, and that the production set runs the file
 * the CMD starts; the runtime stage copies only what exists; it runs as a numeric non-root
 * user, the one the chart declares; .dockerignore keeps local artefacts out of the context.
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import {
  execForm,
  globalArgs,
  isIgnored,
  parseCopy,
  parseDockerfile,
  type Stage,
} from './support/dockerfile.js';
import {
  REPO_ROOT,
  TOOLSETS,
  ensureTools,
  find,
  renderChart,
  run,
  type CommandResult,
} from './support/tools.js';

interface PackageJson {
  version: string;
  private?: boolean;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

interface PackageLock {
  packages: Record<
    string,
    {
      version?: string;
      integrity?: string;
      dev?: boolean;
      devDependencies?: Record<string, string>;
    }
  >;
}

const readJson = <T>(...segments: string[]) =>
  JSON.parse(readFileSync(path.join(REPO_ROOT, ...segments), 'utf8')) as T;

const dockerfile = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
const dockerignore = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8');
const packageJson = readJson<PackageJson>('package.json');
const packageLock = readJson<PackageLock>('package-lock.json');
const COMPILER_DIR = path.join('image', 'compiler');

function instructions(stage: Stage, keyword: string) {
  return stage.instructions.filter((instruction) => instruction.keyword === keyword);
}

/** The one WORKDIR of a stage: every path below is relative to it. */
function workdir(stage: Stage): string {
  const found = instructions(stage, 'WORKDIR');
  expect(found, 'one WORKDIR per stage').to.have.length(1);
  return found[0]!.args;
}

/**
 * The commands of a Makefile target's recipe (tab-indented lines, `@` dropped); a target with
 * none, such as `build: $(BUILD_STAMP)`, gives the recipe of its first prerequisite.
 */
function recipe(makefile: string, target: string): string[] {
  const lines = makefile.split('\n');
  const start = lines.findIndex((line) => line.startsWith(`${target}:`));
  expect(start, `Makefile target ${target}`).to.be.greaterThan(-1);
  const commands: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith('\t')) break;
    commands.push(line.trim().replace(/^@/, ''));
  }
  if (commands.length > 0) return commands;
  const prerequisite = /^[^:]+:\s*(\S+)/.exec(lines[start]!)?.[1];
  expect(
    prerequisite,
    `Makefile target ${target} has neither a recipe nor a prerequisite`,
  ).to.not.equal(undefined);
  return recipe(makefile, prerequisite!);
}

/** The packages installed at the top of `dir`/node_modules (`name` or `@scope/name`). */
function installedPackages(dir: string): string[] {
  const modules = path.join(dir, 'node_modules');
  if (!existsSync(modules)) return [];
  return readdirSync(modules)
    .filter((name) => !name.startsWith('.'))
    .flatMap((name) =>
      name.startsWith('@')
        ? readdirSync(path.join(modules, name)).map((inner) => `${name}/${inner}`)
        : [name],
    )
    .sort();
}

/** The packages a lockfile puts at the top of node_modules, those `keep` accepts. */
function lockedPackages(lock: PackageLock, keep: (entry: { dev?: boolean }) => boolean): string[] {
  return Object.entries(lock.packages)
    .filter(([key, entry]) => key.startsWith('node_modules/') && keep(entry))
    .map(([key]) => key.slice('node_modules/'.length))
    .filter((name) => !name.includes('/node_modules/'))
    .sort();
}

describe('the Dockerfile, without a Docker engine', function () {
  // Two npm installs from the local cache and a compilation: about 15 s here.
  this.timeout(180_000);
  const stages = parseDockerfile(dockerfile);
  const build = stages[0]!;
  const runtime = stages.at(-1)!;
  const makefile = readFileSync(path.join(REPO_ROOT, 'Makefile'), 'utf8');
  const [buildCommand] = recipe(makefile, 'build');
  /** Stands for the build stage's filesystem root: stage path /x is `${root}/x`. */
  let root: string;
  const inStage = (stagePath: string) => path.join(root, stagePath);
  /** Sources of the build stage's COPY instructions that .dockerignore would leave out. */
  const ignoredSources: string[] = [];
  /** Each RUN of the build stage, as replayed, and the packages installed after it. */
  const steps: {
    command: string;
    result: CommandResult;
    /** node_modules of the WORKDIR and of the folder above it. */
    app: string[];
    above: string[];
  }[] = [];
  /** The packages installed when the build command ran. */
  let atBuild: { app: string[]; above: string[] } | undefined;

  // Replays the build stage in order: WORKDIR, COPY from the repository, RUN in a shell. npm
  // gets --prefer-offline, the one change: the packages come from the local cache.
  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'spl-image-'));
    let cwd = '/';
    for (const instruction of build.instructions) {
      if (instruction.keyword === 'WORKDIR') {
        cwd = path.posix.resolve(cwd, instruction.args);
        mkdirSync(inStage(cwd), { recursive: true });
      } else if (instruction.keyword === 'COPY') {
        const copy = parseCopy(instruction);
        expect(copy.from, 'the build stage copies from the context').to.equal(undefined);
        const destination = path.posix.resolve(cwd, copy.destination);
        for (const source of copy.sources) {
          if (isIgnored(dockerignore, source)) ignoredSources.push(source);
          const into = copy.destination.endsWith('/')
            ? path.posix.join(destination, path.posix.basename(source))
            : destination;
          mkdirSync(path.dirname(inStage(into)), { recursive: true });
          cpSync(path.join(REPO_ROOT, source), inStage(into), { recursive: true });
        }
      } else if (instruction.keyword === 'RUN') {
        const dir = inStage(cwd);
        if (instruction.args === buildCommand) {
          atBuild = {
            app: installedPackages(dir),
            above: installedPackages(path.dirname(dir)),
          };
        }
        const command = instruction.args.replace(/^npm (ci|install)\b/, '$& --prefer-offline');
        const result = await run('sh', ['-c', command], { cwd: dir, timeoutMs: 150_000 });
        steps.push({
          command: instruction.args,
          result,
          app: installedPackages(dir),
          above: installedPackages(path.dirname(dir)),
        });
        if (result.code !== 0) break;
      }
    }
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('is multi-stage, both stages on the base NODE_IMAGE, by default a current Node.js LTS slim image', () => {
    expect(stages.length).to.be.at.least(2);
    expect(globalArgs(dockerfile).get('NODE_IMAGE')).to.match(/^node:(22|24)-slim$/);
    for (const stage of stages) {
      expect(stage.baseAsWritten).to.equal('${NODE_IMAGE}');
      expect(stage.base).to.match(/^node:(22|24)-slim$/);
    }
    const standIn = 'localhost/spl-standin/node:24-test';
    const withStandIn = parseDockerfile(dockerfile, { NODE_IMAGE: standIn });
    expect(withStandIn.map((stage) => stage.base)).to.deep.equal(stages.map(() => standIn));
    expect(build.name).to.be.a('string');
    expect(runtime.name, 'the runtime stage is not the build stage').to.equal(undefined);
  });

  it('installs the compiler set above the app, then production dependencies only, then runs `make build`’s command', () => {
    expect(instructions(build, 'RUN').map((i) => i.args)).to.deep.equal([
      'npm ci --prefix .. --no-audit --no-fund',
      'npm ci --omit=dev --no-audit --no-fund',
      buildCommand,
    ]);
    expect(instructions(runtime, 'RUN'), 'the runtime stage builds nothing').to.deep.equal([]);
  });

  it('the replayed build: the compiler set alone compiles src/', () => {
    expect(ignoredSources, 'COPY sources that .dockerignore leaves out').to.deep.equal([]);
    for (const step of steps) {
      expect(
        step.result.code,
        `${step.command}\n${step.result.stdout}${step.result.stderr}`,
      ).to.equal(0);
    }
    expect(atBuild, `the build stage runs ${buildCommand}`).not.to.equal(undefined);
    const compilerLock = readJson<PackageLock>(COMPILER_DIR, 'package-lock.json');
    expect(atBuild!.above, 'installed above the app: the compiler set').to.deep.equal(
      lockedPackages(compilerLock, () => true),
    );
    // The app's own @types are those production dependencies bring (etcd3's protobufjs needs
    // @types/node): the same lock entries as the compiler set's, so tsc sees one version.
    expect(atBuild!.app, 'the app itself holds no compiler').not.to.include('typescript');
    expect(existsSync(inStage(path.posix.join(workdir(build), 'dist/src/cli.js')))).to.equal(true);
  });

  it('fetches the compiler set and the production dependencies, never the test tooling (helm layers, playwright, eslint)', () => {
    const production = lockedPackages(packageLock, (entry) => !entry.dev);
    const compiler = lockedPackages(
      readJson<PackageLock>(COMPILER_DIR, 'package-lock.json'),
      () => true,
    );
    expect(steps.length).to.be.greaterThan(0);
    for (const step of steps) {
      expect(
        step.app.filter((name) => !production.includes(name)),
        `in the app after ${step.command}`,
      ).to.deep.equal([]);
      expect(
        step.above.filter((name) => !compiler.includes(name)),
        `above the app after ${step.command}`,
      ).to.deep.equal([]);
    }
    expect(steps.at(-1)!.app, 'the production set, complete').to.deep.equal(production);
  });

  it("the runtime stage copies what the build made; the production set alone runs the CMD's entry file", async () => {
    const appDir = workdir(build);
    const runtimeDir = workdir(runtime);
    const copied: string[] = [];
    for (const instruction of instructions(runtime, 'COPY')) {
      const copy = parseCopy(instruction);
      expect(copy.from).to.equal(build.name);
      for (const source of copy.sources) {
        expect(existsSync(inStage(source)), `${source} exists after the build`).to.equal(true);
        copied.push(path.posix.relative(appDir, source));
      }
      expect(path.posix.resolve(runtimeDir, copy.destination).startsWith(runtimeDir)).to.equal(
        true,
      );
    }
    expect(copied.sort()).to.deep.equal(['dist/src', 'node_modules', 'package.json']);

    const cmd = execForm(instructions(runtime, 'CMD').at(-1)!)!;
    expect(cmd[0]).to.equal('node');
    // Without the compiler set: the runtime stage has only what it copies.
    rmSync(path.join(path.dirname(inStage(appDir)), 'node_modules'), {
      recursive: true,
      force: true,
    });
    const version = await run(process.execPath, [cmd[1]!, '--version'], {
      cwd: inStage(appDir),
      env: { ...process.env, NODE_ENV: 'production' },
    });
    expect(version.stdout.trim(), version.stderr).to.equal(packageJson.version);
  });

  it("image/compiler holds exactly what compiling needs, at the root devDependencies' versions", () => {
    const compiler = readJson<PackageJson>(COMPILER_DIR, 'package.json');
    const compilerLock = readJson<PackageLock>(COMPILER_DIR, 'package-lock.json');
    const devDependencies = packageJson.devDependencies!;
    const buildTypes = readJson<{ compilerOptions: { types: string[] } }>('tsconfig.build.json')
      .compilerOptions.types;
    // TypeScript, the types tsconfig.build.json names, and those of production dependencies
    // that ship none of their own.
    const needed = [
      'typescript',
      ...buildTypes.map((name) => `@types/${name}`),
      ...Object.keys(packageJson.dependencies!)
        .map((name) => `@types/${name}`)
        .filter((name) => name in devDependencies),
    ];
    const copied = instructions(build, 'COPY').flatMap((copy) => parseCopy(copy).sources);
    expect(copied, 'the build stage installs this set').to.include.members([
      `${COMPILER_DIR}/package.json`,
      `${COMPILER_DIR}/package-lock.json`,
    ]);
    expect(compiler.private).to.equal(true);
    expect(compiler.dependencies, 'nothing of the compiler set ships').to.equal(undefined);
    expect(compiler.devDependencies).to.deep.equal(
      Object.fromEntries(needed.sort().map((name) => [name, devDependencies[name]])),
    );
    expect(compilerLock.packages['']!.devDependencies, 'the lock is current').to.deep.equal(
      compiler.devDependencies,
    );
    // Every package of the set, also the transitive ones, is the one the tests compile with.
    for (const [key, entry] of Object.entries(compilerLock.packages)) {
      if (key === '') continue;
      const inRoot = packageLock.packages[key];
      expect([entry.version, entry.integrity], key).to.deep.equal([
        inRoot?.version,
        inRoot?.integrity,
      ]);
    }
  });

  it('the built code imports only production dependencies', () => {
    const imported = new Set<string>();
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(file);
        else if (entry.name.endsWith('.js')) {
          const code = readFileSync(file, 'utf8');
          for (const match of code.matchAll(/(?:from\s+|import\s*\(\s*)'([^'.][^']*)'/g)) {
            imported.add(match[1]!);
          }
        }
      }
    };
    walk(inStage(path.posix.join(workdir(build), 'dist/src')));
    expect(imported.size).to.be.greaterThan(0);
    const packages = [...imported]
      .filter((specifier) => !specifier.startsWith('node:') && !builtinModules.includes(specifier))
      .map((specifier) =>
        specifier
          .split('/')
          .slice(0, specifier.startsWith('@') ? 2 : 1)
          .join('/'),
      );
    for (const name of new Set(packages)) {
      expect(packageJson.dependencies, `${name} is imported by dist/src`).to.have.property(name);
    }
  });

  it('runs as a numeric non-root user, the one the chart declares; CMD in exec form; no ENTRYPOINT', async () => {
    const users = instructions(runtime, 'USER');
    expect(users).to.have.length(1);
    const [uid, gid] = users[0]!.args.split(':').map(Number);
    expect(uid, 'numeric, so the kubelet can verify runAsNonRoot').to.be.a('number').greaterThan(0);
    expect(instructions(runtime, 'ENTRYPOINT')).to.deep.equal([]);
    expect(execForm(instructions(runtime, 'CMD').at(-1)!)).to.deep.equal([
      'node',
      'dist/src/cli.js',
      'serve',
    ]);
    ensureTools();
    const deployment = find<IDeployment>(await renderChart(TOOLSETS[0]!, {}), 'Deployment');
    const podContext = deployment.spec!.template.spec!.securityContext!;
    expect([podContext.runAsUser, podContext.runAsGroup]).to.deep.equal([uid, gid]);
    const container = deployment.spec!.template.spec!.containers[0]!;
    expect(container.command, 'the chart runs the image CMD').to.equal(undefined);
    expect(container.args).to.equal(undefined);
    const exposed = instructions(runtime, 'EXPOSE').map((i) => Number(i.args));
    expect(exposed).to.deep.equal([container.ports![0]!.containerPort]);
  });

  it('.dockerignore keeps node_modules, dist, .git and test-artifacts out of the context', () => {
    for (const excluded of [
      'node_modules',
      'node_modules/x/index.js',
      'dist/src/cli.js',
      '.git/HEAD',
      'test-artifacts/x.png',
      '.tools/helm3/helm',
    ]) {
      expect(isIgnored(dockerignore, excluded), excluded).to.equal(true);
    }
    for (const kept of [
      'package.json',
      'package-lock.json',
      'src/cli.ts',
      'tsconfig.build.json',
      'image/compiler/package.json',
      'image/compiler/package-lock.json',
    ]) {
      expect(isIgnored(dockerignore, kept), kept).to.equal(false);
    }
  });
});
