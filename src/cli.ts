#!/usr/bin/env node
/**
 * The process entry: `service-pool-leader serve` starts one pool member configured from the
 * environment; `service-pool-leader demo` runs the local playground; `status` and `work` talk
 * to a running pool.
 */
import module from 'node:module';
import v8 from 'node:v8';
import { Command, InvalidArgumentError, type CommanderError } from 'commander';
import {
  DEFAULT_MEMBER_URL,
  EXIT_USAGE,
  MEMBER_URL_VARIABLE,
  type CommandIo,
} from './client/invocation.js';
import { ConfigError, loadConfig } from './config/config.js';
import { describeVariables } from './config/variables.js';
import { VERSION } from './version.js';

/**
 * Node 22.1+ (the container image runs 24) can keep V8's compiled code of every module on disk
 * (os.tmpdir()): a restarted member then loads etcd3, gRPC and Express in a fraction of the
 * time, which is most of a restart takeover. Older Node has no such call; nothing happens.
 */
function enableCompileCache(): void {
  const api = module as { enableCompileCache?: () => unknown };
  api.enableCompileCache?.();
}

/**
 * Has V8 compile every function of the modules loaded from now on when it loads them (its
 * `--no-lazy`), not on its first call. A graceful handover runs code a member has never run —
 * the leaver's shutdown runs once per process, a successor may lead for the first time — and
 * on a small machine that first run is what the handover waits for: in the benchmark's
 * handovers between 1–3 s old members, the members' CPU was parsing, compiling and cold
 * inline caches, not optimized code, and compiling at start-up made the first answer by the
 * new leader ~1.3 ms sooner at p50 (docs/benchmarks.md). The price is paid once, at start-up:
 * ~50 ms more CPU before the member is ready and 3–10 MB more memory.
 */
function compileEagerly(): void {
  v8.setFlagsFromString('--no-lazy');
}

/** Exit code for bad configuration, distinct from crashes (1). */
const EXIT_BAD_CONFIG = 2;
/** Exit code when another process with our MEMBER_ID took over our registration. */
const EXIT_SUPERSEDED = 3;

async function serve(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(EXIT_BAD_CONFIG);
    }
    throw error;
  }
  enableCompileCache();
  compileEagerly();
  // Loaded here, not at the top: `status` and `work` need none of it and start faster.
  const { PoolMember } = await import('./member.js');
  const member = await PoolMember.start({
    config,
    onSuperseded: () => void member.shutdown().then(() => process.exit(EXIT_SUPERSEDED)),
    // As when start-up finds the pool taken (PoolMember.start rejects, exit 1 below).
    onRefused: (error) =>
      void member.shutdown().then(() => {
        process.stderr.write(`service-pool-leader: ${error.message}\n`);
        process.exit(1);
      }),
  });
  const stop = (signal: NodeJS.Signals) => {
    member.logger.info({ signal }, 'signal received');
    void member.shutdown().then((clean) => process.exit(clean ? 0 : 1));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** Usage errors exit 2, like bad configuration; --help and --version still exit 0. */
const usageExit = (error: CommanderError) => process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE);

// No command prints the help (exit 2) rather than starting a member: `serve` is named, as the
// image's CMD and the chart do. An unknown command is named, with the closest known one.
const program = new Command()
  .name('service-pool-leader')
  .description(
    'A pool of service instances on etcd that agrees on one leader and routes work to it.',
  )
  .version(VERSION)
  .exitOverride(usageExit);

program
  .command('serve')
  .description('Start one pool member, configured by environment variables.')
  .addHelpText('after', `\nEnvironment variables:\n${describeVariables()}\n`)
  .action(serve);

program
  .command('demo')
  .description(
    'Start a local 3-member etcd cluster and members a, b, c on ports 8081-8083, with a prompt to send work and kill, stop, pause or restart members.',
  )
  .option('--base-port <port>', 'member i listens on this port + i', portNumber, 8081)
  .exitOverride(usageExit)
  .action(async (options: { basePort: number }) => {
    const { runDemo } = await import('./demo/demo.js');
    await runDemo({ basePort: options.basePort });
  });

const clientIo: CommandIo = { stdout: process.stdout, stderr: process.stderr, env: process.env };
const urlHelp = `member to ask (default: $${MEMBER_URL_VARIABLE}, else ${DEFAULT_MEMBER_URL})`;

program
  .command('status')
  .description('Show the pools of a running member: members, create revisions, leader, term.')
  .option('--url <url>', urlHelp)
  .option('--json', 'print the JSON of GET /pools as it came')
  .exitOverride(usageExit)
  .action(async (options: { url?: string; json?: boolean }) => {
    const { status } = await import('./client/status.js');
    process.exitCode = await status(options, clientIo);
  });

program
  .command('work')
  .description('Send work to a running member; print who did it: ticket, leader, term, route.')
  .argument('[payload]', 'a string the echo handler returns (default: null)')
  .option('--url <url>', urlHelp)
  .option('--pool <name>', 'address this pool: POST /pools/<name>/work')
  .option('--simple', 'POST /simple-work: the naive path that reads etcd on every call')
  .option('--json', 'print the JSON answer as it came')
  .exitOverride(usageExit)
  .action(
    async (
      payload: string | undefined,
      options: { url?: string; pool?: string; json?: boolean; simple?: boolean },
    ) => {
      const { work } = await import('./client/work.js');
      process.exitCode = await work(payload, options, clientIo);
    },
  );

function portNumber(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port < 1 || port > 65535) {
    throw new InvalidArgumentError('expected a port number from 1 to 65535');
  }
  return port;
}

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(
    `service-pool-leader: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
