/**
 * Debian's `promtool` (package `prometheus`, installed by `make test-observability`), run
 * synchronously: every call lints or unit-tests files in well under a second.
 */
import { spawnSync } from 'node:child_process';

export interface ToolRun {
  status: number | null;
  /** stdout and stderr together, in the order a terminal would show them only roughly. */
  output: string;
}

export function promtool(args: string[], input?: string): ToolRun {
  const run = spawnSync('promtool', args, {
    encoding: 'utf8',
    timeout: 30_000,
    ...(input === undefined ? {} : { input }),
  });
  if (run.error) {
    throw new Error(
      `promtool ${args[0] ?? ''} could not run (${run.error.message}): ` +
        'install Debian\'s "prometheus" package (scripts/install-system-deps.sh observability)',
    );
  }
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}
