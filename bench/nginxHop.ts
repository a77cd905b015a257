/**
 * nginx (Debian's package) as the reference hop of the throughput benchmark
 * (bench/throughput.ts): what a forward costs when a proxy built for it does it, on the same
 * machine and in the same rounds as the pool's own forward through a follower.
 *
 * The configuration is written to a temporary directory (config, pid file, error log, temp
 * paths) and nginx runs in the foreground as the current user: `nginx -p <dir> -e <log>
 * -c <conf> -g 'daemon off;'`. One worker process, so the hop has one process like a member;
 * upstream keep-alive to the leader; and `keepalive_requests` on both sides far above what a
 * run sends, because autocannon mis-times every response after a server closes a keep-alive
 * connection (nginx's default closes one every 1,000 requests; issue 16).
 *
 * What blocks: `start` until nginx answers through to the leader (≤ START_TIMEOUT_MS);
 * `close` until the master has exited (SIGQUIT, SIGKILL after STOP_TIMEOUT_MS).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  httpGet,
  inheritedEnv,
  pollUntil,
  readTail,
  supervise,
} from '../src/demo/childProcesses.js';
import { freePort } from '../src/demo/ports.js';
import { childPids } from './processCpu.js';

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5000;
/** Requests one keep-alive connection may carry: more than any run sends. */
const KEEPALIVE_REQUESTS = 100_000_000;

/** Where nginx is: on PATH, or in the sbin directories a user's PATH may lack (Debian's). */
function nginxBinary(): string {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs.filter((d) => d !== '')) {
    const file = path.join(dir, 'nginx');
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  throw new Error(
    "nginx not found on PATH or in /usr/sbin: `make bench` installs Debian's nginx " +
      '(scripts/install-system-deps.sh bench)',
  );
}

export interface NginxConfigOptions {
  /** The temporary directory: pid file, error log and temp paths go there. */
  dir: string;
  port: number;
  /** host:port of the upstream (the leader). */
  upstream: string;
  /** Set when running as root, whose workers would otherwise switch to `nobody`. */
  user: string | undefined;
}

/** The whole configuration: one worker, access log off, keep-alive on both sides. */
export function nginxConfig(options: NginxConfigOptions): string {
  const at = (name: string) => path.join(options.dir, name);
  return [
    ...(options.user === undefined ? [] : [`user ${options.user};`]),
    'worker_processes 1;',
    `pid ${at('nginx.pid')};`,
    `error_log ${at('error.log')} warn;`,
    'events { worker_connections 1024; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
      (kind) => `  ${kind}_temp_path ${at(`${kind}_temp`)};`,
    ),
    '  upstream leader {',
    `    server ${options.upstream};`,
    '    keepalive 64;',
    `    keepalive_requests ${KEEPALIVE_REQUESTS};`,
    '  }',
    '  server {',
    `    listen 127.0.0.1:${options.port};`,
    `    keepalive_requests ${KEEPALIVE_REQUESTS};`,
    '    location / {',
    '      proxy_pass http://leader;',
    '      proxy_http_version 1.1;',
    '      proxy_set_header Connection "";',
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** A running nginx in front of one upstream. */
export class NginxHop {
  private constructor(
    readonly url: string,
    private readonly dir: string,
    private readonly master: ChildProcess,
    private readonly exited: Promise<unknown>,
    /** The worker processes: what serves the requests, and so what a request costs. */
    readonly workerPids: number[],
  ) {}

  /** nginx on a free loopback port, forwarding to `upstreamUrl`; ready when `probePath` answers 200 through it. */
  static async start(upstreamUrl: string, probePath: string): Promise<NginxHop> {
    const binary = nginxBinary();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'spl-bench-nginx-'));
    const port = await freePort();
    const conf = path.join(dir, 'nginx.conf');
    await writeFile(
      conf,
      nginxConfig({
        dir,
        port,
        upstream: new URL(upstreamUrl).host,
        user: process.getuid?.() === 0 ? os.userInfo().username : undefined,
      }),
    );
    const master = spawn(
      binary,
      ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf, '-g', 'daemon off;'],
      { env: inheritedEnv(), stdio: ['ignore', 'inherit', 'inherit'] },
    );
    const exited = supervise(master);
    const url = `http://127.0.0.1:${port}`;
    const outcome = await pollUntil(async () => (await httpGet(url + probePath))?.status === 200, {
      timeoutMs: START_TIMEOUT_MS,
      intervalMs: 50,
      abandonIf: () => master.exitCode !== null || master.signalCode !== null,
    });
    const hop = new NginxHop(url, dir, master, exited, childPids(master.pid ?? -1));
    if (outcome !== 'satisfied' || hop.workerPids.length === 0) {
      const log = await readTail(path.join(dir, 'error.log'), 10);
      await hop.close();
      throw new Error(
        `nginx did not answer ${probePath} through to ${upstreamUrl} within ${START_TIMEOUT_MS} ms (${outcome}); its log:\n${log}`,
      );
    }
    return hop;
  }

  /**
   * SIGQUIT (graceful), SIGKILL if it lingers — to the workers too, which outlive a killed
   * master; then its directory goes.
   */
  async close(): Promise<void> {
    this.master.kill('SIGQUIT');
    const timer = setTimeout(() => {
      this.master.kill('SIGKILL');
      for (const pid of this.workerPids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }, STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
    await rm(this.dir, { recursive: true, force: true });
  }
}
