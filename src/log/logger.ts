import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/config.js';

export type { Logger };

/**
 * The `pretty` transport's module (prettyLines.ts): compiled JavaScript beside this file as
 * shipped; from source (the tests, under tsx, whose loader does not reach pino's worker
 * thread) the compiled one under dist/ (`make build` first).
 */
const PRETTY_LINES = new URL(
  import.meta.url.endsWith('.ts') ? '../../dist/src/log/prettyLines.js' : './prettyLines.js',
  import.meta.url,
).href;

/**
 * JSON to stdout in production; `pretty` (the local demo, a terminal) goes through
 * prettyLines.ts in pino's worker thread, so the event loop never formats log lines itself.
 */
export function createLogger(options: {
  level: LogLevel;
  format: 'json' | 'pretty';
  base?: Record<string, unknown>;
}): Logger {
  const common = {
    level: options.level,
    base: options.base ?? null,
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.format === 'pretty') {
    return pino({
      ...common,
      transport: { target: PRETTY_LINES, options: { colorize: process.stdout.isTTY === true } },
    });
  }
  return pino(common);
}
