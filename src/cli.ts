#!/usr/bin/env node
/**
 * The process entry: `service-pool-leader serve` starts one pool member configured from the
 * environment; `service-pool-leader demo` runs the local playground.
 */
import { Command } from 'commander';
import { ConfigError, describeVariables, loadConfig } from './config/config.js';
import { PoolMember } from './member.js';
import { VERSION } from './version.js';

/** Exit code for bad configuration, distinct from crashes (1). */
const EXIT_BAD_CONFIG = 2;

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
  const member = await PoolMember.start({ config });
  const stop = (signal: NodeJS.Signals) => {
    member.logger.info({ signal }, 'signal received');
    void member.shutdown().then((clean) => process.exit(clean ? 0 : 1));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

const program = new Command()
  .name('service-pool-leader')
  .description(
    'A pool of service instances on etcd that agrees on one leader and routes work to it.',
  )
  .version(VERSION);

program
  .command('serve', { isDefault: true })
  .description('Start one pool member, configured by environment variables.')
  .addHelpText('after', `\nEnvironment variables:\n${describeVariables()}\n`)
  .action(serve);

program
  .command('demo')
  .description('Start a local 3-member etcd cluster and members a, b, c on ports 8081-8083.')
  .action(async () => {
    const { runDemo } = await import('./local/demo.js');
    await runDemo({});
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(
    `service-pool-leader: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
