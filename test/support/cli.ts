/**
 * Runs the built CLI (`node dist/src/cli.js ...`) as a child process with only the given
 * environment (and PATH), optionally feeding it standard input, and collects what it printed.
 */
import { spawn } from 'node:child_process';
import { DEFAULT_CLI_PATH } from '../../src/demo/memberProcess.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(
  args: string[],
  options: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DEFAULT_CLI_PATH, ...args], {
      env: { PATH: process.env.PATH ?? '', ...options.env },
      stdio: 'pipe',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    // Without input, standard input is at its end from the start.
    child.stdin.end(options.input);
    // SIGTERM first: the demo then still stops its own children.
    const timer = setTimeout(() => child.kill('SIGTERM'), options.timeoutMs ?? 10_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
