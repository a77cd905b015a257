/**
 * The Dockerfile, checked without a Docker engine: its build steps are the ones `make test`
 * runs; replaying its COPY instructions into an empty folder gives a context in which that
 * build works and produces the file its CMD starts; the runtime stage copies only what exists
 * and needs only production dependencies; it runs as a numeric non-root user, the one the
 * chart declares; .dockerignore keeps local artefacts out of the context.
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import {
  execForm,
  isIgnored,
  parseCopy,
  parseDockerfile,
  type Stage,
} from './support/dockerfile.js';
import { REPO_ROOT, TOOLSETS, ensureTools, find, renderChart, run } from './support/tools.js';

const dockerfile = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
const dockerignore = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8');
const packageJson = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
};

function instructions(stage: Stage, keyword: string) {
  return stage.instructions.filter((instruction) => instruction.keyword === keyword);
}

/** The one WORKDIR of a stage: every path below is relative to it. */
function workdir(stage: Stage): string {
  const found = instructions(stage, 'WORKDIR');
  expect(found, 'one WORKDIR per stage').to.have.length(1);
  return found[0]!.args;
}

/** The commands of a Makefile target's recipe (tab-indented lines). */
function recipe(makefile: string, target: string): string[] {
  const lines = makefile.split('\n');
  const start = lines.findIndex((line) => line.startsWith(`${target}:`));
  expect(start, `Makefile target ${target}`).to.be.greaterThan(-1);
  const commands: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith('\t')) break;
    commands.push(line.trim());
  }
  return commands;
}

describe('the Dockerfile, without a Docker engine', function () {
  this.timeout(60_000);
  const stages = parseDockerfile(dockerfile);
  const build = stages[0]!;
  const runtime = stages.at(-1)!;
  /** The build stage's WORKDIR, replayed on this machine. */
  let context: string;
  /** Sources of the build stage's COPY instructions that .dockerignore would leave out. */
  const ignoredSources: string[] = [];
  let built: Awaited<ReturnType<typeof run>>;

  // Replays the build stage here: its COPY instructions into an empty folder, then its build.
  before(async () => {
    context = mkdtempSync(path.join(os.tmpdir(), 'spl-image-'));
    const appDir = workdir(build);
    for (const instruction of instructions(build, 'COPY')) {
      const copy = parseCopy(instruction);
      expect(copy.from, 'the build stage copies from the context').to.equal(undefined);
      for (const source of copy.sources) {
        if (isIgnored(dockerignore, source)) ignoredSources.push(source);
        const target = path.join(
          context,
          path.posix.relative(appDir, path.posix.resolve(appDir, copy.destination)),
        );
        const into = copy.destination.endsWith('/')
          ? path.join(target, path.basename(source))
          : target;
        mkdirSync(path.dirname(into), { recursive: true });
        cpSync(path.join(REPO_ROOT, source), into, { recursive: true });
      }
    }
    // `npm ci` stands here as the installed node_modules; the build itself runs for real.
    symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(context, 'node_modules'));
    built = await run('npm', ['run', 'build'], { cwd: context, timeoutMs: 60_000 });
  });
  after(() => rmSync(context, { recursive: true, force: true }));

  it('is multi-stage, on a current Node.js LTS slim image', () => {
    expect(stages.length).to.be.at.least(2);
    for (const stage of stages) expect(stage.base).to.match(/^node:(22|24)-slim$/);
    expect(build.name).to.be.a('string');
    expect(runtime.name, 'the runtime stage is not the build stage').to.equal(undefined);
  });

  it('runs the build steps of `make test` (npm ci, npm run build), then prunes the dev dependencies', () => {
    const makefile = readFileSync(path.join(REPO_ROOT, 'Makefile'), 'utf8');
    const [npmCi] = recipe(makefile, '$(NPM_STAMP)');
    const [npmBuild] = recipe(makefile, 'build');
    expect(instructions(build, 'RUN').map((i) => i.args)).to.deep.equal([
      npmCi,
      npmBuild,
      'npm prune --omit=dev',
    ]);
    expect(instructions(runtime, 'RUN'), 'the runtime stage builds nothing').to.deep.equal([]);
  });

  it("builds from what its COPY instructions bring in, and the build produces the CMD's entry file", async () => {
    expect(ignoredSources, 'COPY sources that .dockerignore leaves out').to.deep.equal([]);
    expect(built.code, built.stdout + built.stderr).to.equal(0);

    const appDir = workdir(build);
    const runtimeDir = workdir(runtime);
    for (const instruction of instructions(runtime, 'COPY')) {
      const copy = parseCopy(instruction);
      expect(copy.from).to.equal(build.name);
      for (const source of copy.sources) {
        const inBuild = path.join(context, path.posix.relative(appDir, source));
        expect(existsSync(inBuild), `${source} exists after the build`).to.equal(true);
      }
      expect(path.posix.resolve(runtimeDir, copy.destination).startsWith(runtimeDir)).to.equal(
        true,
      );
    }
    const cmd = execForm(instructions(runtime, 'CMD').at(-1)!)!;
    expect(cmd[0]).to.equal('node');
    expect(existsSync(path.join(context, cmd[1]!)), `${cmd[1]} after npm run build`).to.equal(true);
    const version = await run(process.execPath, [cmd[1]!, '--version'], { cwd: context });
    expect(version.stdout.trim(), 'dist/src finds ../../package.json').to.equal(
      packageJson.version,
    );
  });

  it('the built code imports only production dependencies (npm prune --omit=dev keeps them)', () => {
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
    walk(path.join(context, 'dist', 'src'));
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
    for (const kept of ['package.json', 'package-lock.json', 'src/cli.ts', 'tsconfig.build.json']) {
      expect(isIgnored(dockerignore, kept), kept).to.equal(false);
    }
  });
});
