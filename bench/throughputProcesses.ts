/**
 * The throughput benchmark's own child processes, beside the pool under test: the load
 * generator (bench/loadgen.ts), the two reference servers (bench/bareExpress.ts) and the bare
 * node:http hop in front of the leader (bench/nodeHop.ts), each a fork of a TypeScript file of
 * bench/ with IPC.
 *
 * What blocks: `LoadGenerator.run` for one autocannon run (its duration, in seconds, plus
 * start-up), one at a time; `startReferences` until both servers listen and `startNodeHop`
 * until the hop does (≤ CHILD_START_MS each); `answeredBy` until the reference tells its
 * count (≤ 2 s); `stopChild` until the child exits, SIGKILLed after 2 s.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadAnswer, LoadFigures, LoadRequest } from './loadgen.js';

/** A reference server listens within this bound (ms). */
const CHILD_START_MS = 20_000;

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * A TypeScript file of bench/ as a child process with IPC. It inherits this process's
 * execArgv, i.e. tsx's loader when the benchmark runs under tsx.
 */
function forkChild(file: string, args: string[] = []): ChildProcess {
  return fork(path.join(here, file), args, {
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** Disconnects `child` (each of ours exits on that) and waits until it has exited. */
export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.connected) child.disconnect();
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  return exited.finally(() => clearTimeout(timer));
}

/** The load generator process: one autocannon run per request, one at a time. */
export class LoadGenerator {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (figures: LoadFigures) => void; reject: (error: Error) => void }
  >();

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (answer: LoadAnswer) => {
      const waiter = this.pending.get(answer.id);
      if (!waiter) return;
      this.pending.delete(answer.id);
      if ('figures' in answer) waiter.resolve(answer.figures);
      else waiter.reject(new Error(`load generator: ${answer.error}`));
    });
    child.on('exit', (code, signal) => {
      for (const waiter of this.pending.values()) {
        waiter.reject(new Error(`load generator exited (${signal ?? code})`));
      }
      this.pending.clear();
    });
  }

  static start(): LoadGenerator {
    return new LoadGenerator(forkChild('loadgen.ts'));
  }

  run(request: Omit<LoadRequest, 'id'>): Promise<LoadFigures> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, ...request } satisfies LoadRequest);
    });
  }

  close(): Promise<void> {
    return stopChild(this.child);
  }
}

export interface Reference {
  url: string;
  child: ChildProcess;
}

/** How many requests a reference has answered so far (its own count, over IPC; ≤ 2 s). */
export function answeredBy(reference: Reference): Promise<number> {
  const { child } = reference;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error('bare Express did not tell its count within 2 s'));
    }, 2000);
    const onMessage = (message: { count?: number }) => {
      if (message.count === undefined) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(message.count);
    };
    child.on('message', onMessage);
    child.send('count');
  });
}

/** `file` of bench/ with `args`; resolves with its URL once it listens. */
async function startReference(file: string, args: string[]): Promise<Reference> {
  const child = forkChild(file, args);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${file} did not start`)), CHILD_START_MS);
      child.once('message', (message: { port: number }) => {
        clearTimeout(timer);
        resolve(message.port);
      });
      child.once('exit', (code) => reject(new Error(`${file} exited (${code})`)));
    });
    return { url: `http://127.0.0.1:${port}`, child };
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}

/** The bare server, then the bare forward in front of it. */
export async function startReferences(started: Reference[]): Promise<[Reference, Reference]> {
  const bare = await startReference('bareExpress.ts', []);
  started.push(bare);
  const hop = await startReference('bareExpress.ts', ['forward', bare.url]);
  started.push(hop);
  return [bare, hop];
}

/** The bare node:http hop (bench/nodeHop.ts) in front of `leaderUrl`, added to `started`. */
export async function startNodeHop(leaderUrl: string, started: Reference[]): Promise<Reference> {
  const hop = await startReference('nodeHop.ts', [leaderUrl]);
  started.push(hop);
  return hop;
}
