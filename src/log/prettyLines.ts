/**
 * `LOG_FORMAT=pretty`: each pino JSON line as one line a person reads —
 * `12:00:05.123 INFO  leader changed leader=b term=9` — for a terminal and the demo's log
 * files. It is a pino transport target: pino loads it in a worker thread of its own, so the
 * event loop that serves requests never formats a line, and writes to stdout's descriptor
 * from there. It ships with the package (pino-pretty, which did this before, is a
 * development tool and was missing wherever the package was installed).
 */
import { writeSync } from 'node:fs';
import { Writable } from 'node:stream';

const LEVELS: Record<number, { name: string; colour: number }> = {
  10: { name: 'TRACE', colour: 90 },
  20: { name: 'DEBUG', colour: 36 },
  30: { name: 'INFO ', colour: 32 },
  40: { name: 'WARN ', colour: 33 },
  50: { name: 'ERROR', colour: 31 },
  60: { name: 'FATAL', colour: 35 },
};

/** What pino puts in every line, shown in the line's head rather than as fields. */
const HEAD = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

/**
 * One JSON log line as text, ending in a newline. A line that is not a JSON object is passed
 * on as it is. `err` (pino's serialised error) is shown as its message, its stack below.
 */
export function formatLine(line: string, colorize = false): string {
  let entry: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return `${line}\n`;
    }
    entry = parsed as Record<string, unknown>;
  } catch {
    return `${line}\n`;
  }
  const level = LEVELS[Number(entry.level)] ?? { name: String(entry.level), colour: 0 };
  const paint = (text: string, colour: number) =>
    colorize && colour ? `\u001b[${colour}m${text}\u001b[39m` : text;
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 23) : String(entry.time);
  let stack = '';
  const fields = Object.entries(entry)
    .filter(([key]) => !HEAD.has(key))
    .map(([key, value]) => {
      if (key === 'err' && typeof value === 'object' && value !== null) {
        const error = value as { message?: unknown; stack?: unknown };
        if (typeof error.stack === 'string')
          stack = `\n    ${error.stack.split('\n').join('\n    ')}`;
        return `err=${JSON.stringify(error.message ?? value)}`;
      }
      return `${key}=${typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`;
    });
  const message = typeof entry.msg === 'string' ? entry.msg : '';
  return `${time} ${paint(level.name, level.colour)} ${[message, ...fields].filter(Boolean).join(' ')}${stack}\n`;
}

/** Writes all of `text` to stdout's descriptor, waiting out a full non-blocking pipe. */
function writeOut(text: string): void {
  let rest = Buffer.from(text);
  while (rest.length > 0) {
    try {
      rest = rest.subarray(writeSync(1, rest));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      // This thread only formats logs: waiting 1 ms here blocks nothing else.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

/** The transport: pino's worker calls it with the `options` given in createLogger. */
export default function prettyLines(options: { colorize?: boolean } = {}): Writable {
  let partial = '';
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop()!;
      const text = lines
        .filter((line) => line.length > 0)
        .map((line) => formatLine(line, options.colorize))
        .join('');
      try {
        if (text) writeOut(text);
        done();
      } catch (error) {
        done(error as Error);
      }
    },
    final(done) {
      try {
        if (partial) writeOut(formatLine(partial, options.colorize));
        done();
      } catch (error) {
        done(error as Error);
      }
    },
  });
}
