/**
 * A burst of /work calls sent all at once from a process of its own, so that sending them
 * costs the test's event loop nothing: the test goes on reading member logs and sampling
 * while the burst lasts (a busy test process stops draining its members' log pipes, and a
 * member blocked on a full pipe is the test's fault, not the member's).
 *
 *   node --import tsx test/support/flood.ts <url> <count> <timeoutMs> <asked>
 *
 * The process loads, opens its connections (one kept-alive GET /healthz each), prints `ready`
 * and sends nothing more until it reads `go` on stdin: what the burst must meet (a frozen
 * leader) is set up then, and the calls leave at once on open connections — not after a
 * start-up and thousands of connects that take seconds on a slow machine, long enough for a
 * pool of TTL 2 to have a new leader already.
 * Then it prints one JSON line per call when all are done: asked, startedAt, endedAt (wall
 * ms, for the invariants) status and body; status 0 with code CONNECTION_LOST when no answer
 * came.
 */
import { spawn } from 'node:child_process';
import { text } from 'node:stream/consumers';
import { fileURLToPath } from 'node:url';
import type { CallRecord } from '../chaos/harness.js';

interface FloodOptions {
  url: string;
  count: number;
  timeoutMs: number;
  /** The member id the calls go to, as the records name it. */
  asked: string;
  /**
   * Run once the flood process is loaded, just before the burst: what the burst must find in
   * place. The burst waits for it.
   */
  beforeBurst?: () => void | Promise<void>;
}

async function call(options: FloodOptions, i: number): Promise<CallRecord> {
  const startedAt = Date.now();
  try {
    const res = await fetch(`${options.url}/work`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ payload: { i } }),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    const body = (await res.json()) as CallRecord['body'];
    return { asked: options.asked, startedAt, endedAt: Date.now(), status: res.status, body };
  } catch (error) {
    return {
      asked: options.asked,
      startedAt,
      endedAt: Date.now(),
      status: 0,
      body: { error: { code: 'CONNECTION_LOST', message: String(error) } },
    };
  }
}

const READY = 'ready';
const GO = 'go';

/**
 * Runs the burst in a child process and resolves with its records. Blocks until the process
 * is loaded, `beforeBurst` is done and every call is answered or timed out.
 */
export function flood(options: FloodOptions): Promise<CallRecord[]> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      options.url,
      String(options.count),
      String(options.timeoutMs),
      options.asked,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let out = '';
  let started = false;
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      out += text;
      if (started || !out.startsWith(`${READY}\n`)) return;
      started = true;
      out = out.slice(READY.length + 1);
      Promise.resolve(options.beforeBurst?.()).then(
        () => child.stdin.end(`${GO}\n`),
        (error: unknown) => {
          child.kill();
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
    child.on('error', reject);
    // 'close', not 'exit': only then has all of its output been read.
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`the flood process exited with code ${code}`));
        return;
      }
      try {
        resolve(
          out
            .trim()
            .split('\n')
            .map((line) => JSON.parse(line) as CallRecord),
        );
      } catch (error) {
        reject(error);
      }
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [url, count, timeoutMs, asked] = process.argv.slice(2);
  const options = { url: url!, count: Number(count), timeoutMs: Number(timeoutMs), asked: asked! };
  // Every call's connection opened and kept alive now (fetch's pool reuses them), before the
  // burst: connecting thousands of sockets is what took seconds.
  await Promise.all(
    Array.from({ length: options.count }, () =>
      fetch(`${options.url}/healthz`).then((res) => res.arrayBuffer()),
    ),
  );
  process.stdout.write(`${READY}\n`);
  // The parent writes `go` and ends stdin; ended without it, the burst is called off.
  if ((await text(process.stdin)) !== `${GO}\n`) process.exit(0);
  const records = await Promise.all(
    Array.from({ length: options.count }, (_, i) => call(options, i)),
  );
  process.stdout.write(records.map((record) => JSON.stringify(record)).join('\n') + '\n');
}
