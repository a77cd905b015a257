/**
 * nginx and HAProxy (Debian's packages) as the reference hops of the throughput benchmark
 * (bench/throughput.ts): what a forward costs when a proxy built for it does it, on the same
 * machine and in the same rounds as the pool's own forward through a follower.
 *
 * The configuration is written to a temporary directory and the proxy runs in the foreground
 * as the current user — nginx: `nginx -p <dir> -e <log> -c <conf> -g 'daemon off;'` with one
 * worker process; HAProxy: `haproxy -db -f <conf>`, one process with one thread — so each hop
 * is one process like a member. Upstream keep-alive to the leader on both; no cap on the
 * requests of a client's keep-alive connection (nginx's `keepalive_requests` far above a run;
 * HAProxy has none), because autocannon mis-times every response after a server closes a
 * keep-alive connection (nginx's default closes one every 1,000 requests; issue 16).
 *
 * What blocks: `start` until the proxy answers through to the leader (≤ START_TIMEOUT_MS);
 * `close` until it has exited (nginx SIGQUIT, HAProxy SIGTERM; SIGKILL after
 * STOP_TIMEOUT_MS).
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

/** Where `name` is: on PATH, or in the sbin directories a user's PATH may lack (Debian's). */
function sbinBinary(name: string): string {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin'];
  for (const dir of dirs.filter((d) => d !== '')) {
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  throw new Error(
    `${name} not found on PATH or in /usr/sbin: \`make bench\` installs Debian's ${name} ` +
      '(scripts/install-system-deps.sh bench)',
  );
}

export interface ProxyConfigOptions {
  /** The temporary directory: pid file, error log and temp paths go there. */
  dir: string;
  port: number;
  /** host:port of the upstream (the leader). */
  upstream: string;
  /** Set when running as root, whose workers would otherwise switch to `nobody`. */
  user: string | undefined;
}

/** The whole configuration: one worker, access log off, keep-alive on both sides. */
export function nginxConfig(options: ProxyConfigOptions): string {
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

/**
 * HAProxy's: one thread, HTTP mode with keep-alive on both sides and upstream connections
 * reused by any request (`http-reuse always`), no logging.
 */
export function haproxyConfig(options: ProxyConfigOptions): string {
  return [
    'global',
    '  nbthread 1',
    '  maxconn 4096',
    ...(options.user === undefined ? [] : [`  user ${options.user}`]),
    'defaults',
    '  mode http',
    '  option http-keep-alive',
    '  http-reuse always',
    '  timeout connect 5s',
    '  timeout client 60s',
    '  timeout server 60s',
    'frontend hop',
    `  bind 127.0.0.1:${options.port}`,
    '  default_backend leader',
    'backend leader',
    `  server leader ${options.upstream}`,
    '',
  ].join('\n');
}

/** How each proxy is configured, started, and told to stop. */
const KINDS = {
  nginx: {
    config: nginxConfig,
    args: (dir: string, conf: string) => [
      '-p',
      dir,
      '-e',
      path.join(dir, 'error.log'),
      '-c',
      conf,
      '-g',
      'daemon off;',
    ],
    stopSignal: 'SIGQUIT',
    /** Its master forks the worker that serves. */
    servingPids: (master: number) => childPids(master),
  },
  haproxy: {
    config: haproxyConfig,
    args: (_dir: string, conf: string) => ['-db', '-f', conf],
    stopSignal: 'SIGTERM',
    /** With -db, one process serves. */
    servingPids: (master: number) => [master],
  },
} as const;

export type ProxyKind = keyof typeof KINDS;

/** A running proxy in front of one upstream. */
export class ProxyHop {
  private constructor(
    readonly url: string,
    private readonly dir: string,
    private readonly master: ChildProcess,
    private readonly exited: Promise<unknown>,
    private readonly stopSignal: NodeJS.Signals,
    /** The processes that serve the requests, and so what a request costs. */
    readonly workerPids: number[],
  ) {}

  /**
   * `kind` on a free loopback port, forwarding to `upstreamUrl`; ready when `probePath`
   * answers 200 through it.
   */
  static async start(kind: ProxyKind, upstreamUrl: string, probePath: string): Promise<ProxyHop> {
    const binary = sbinBinary(kind);
    const { config, args, stopSignal, servingPids } = KINDS[kind];
    const dir = await mkdtemp(path.join(os.tmpdir(), `spl-bench-${kind}-`));
    const port = await freePort();
    const conf = path.join(dir, `${kind}.conf`);
    await writeFile(
      conf,
      config({
        dir,
        port,
        upstream: new URL(upstreamUrl).host,
        user: process.getuid?.() === 0 ? os.userInfo().username : undefined,
      }),
    );
    const master = spawn(binary, args(dir, conf), {
      env: inheritedEnv(),
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const exited = supervise(master);
    const url = `http://127.0.0.1:${port}`;
    const outcome = await pollUntil(async () => (await httpGet(url + probePath))?.status === 200, {
      timeoutMs: START_TIMEOUT_MS,
      intervalMs: 50,
      abandonIf: () => master.exitCode !== null || master.signalCode !== null,
    });
    const pids = master.pid === undefined ? [] : servingPids(master.pid);
    const hop = new ProxyHop(url, dir, master, exited, stopSignal, pids);
    if (outcome !== 'satisfied' || hop.workerPids.length === 0) {
      const log = await readTail(path.join(dir, 'error.log'), 10).catch(() => '(no log)');
      await hop.close();
      throw new Error(
        `${kind} did not answer ${probePath} through to ${upstreamUrl} within ${START_TIMEOUT_MS} ms (${outcome}); its log:\n${log}`,
      );
    }
    return hop;
  }

  /**
   * Its stop signal, SIGKILL if it lingers — to the workers too, which outlive a killed
   * master; then its directory goes.
   */
  async close(): Promise<void> {
    this.master.kill(this.stopSignal);
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
