import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/config.js';

export type { Logger };

/**
 * JSON to stdout in production; `pretty` (the local demo) goes through pino-pretty in a
 * worker thread so the event loop never formats log lines itself.
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
      transport: {
        target: 'pino-pretty',
        options: {
          colorize: process.stdout.isTTY,
          translateTime: 'HH:MM:ss.l',
          ignore: 'pid,hostname',
        },
      },
    });
  }
  return pino(common);
}
