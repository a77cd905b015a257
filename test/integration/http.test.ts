/**
 * The process surface: --help, the HTTP error contract, metrics. Members are
 * real processes on a real etcd.
 */
import net from 'node:net';
import { expect } from 'chai';
import { EtcdCluster } from '../support/etcdCluster.js';
import { VARIABLES } from '../../src/config/variables.js';
import { runCli } from '../support/cli.js';
import { TestPool } from '../support/pool.js';

describe('the command line help', () => {
  it('serve --help lists every variable with its default', async () => {
    const result = await runCli(['serve', '--help']);
    expect(result.code).to.equal(0);
    for (const variable of VARIABLES) {
      expect(result.stdout).to.match(new RegExp(`${variable.name}\\s+.*\\(default: `));
    }
  });
});

describe('the HTTP surface of a member', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let pool: TestPool;
  let url: string;

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
    pool = new TestPool(etcd, { LEASE_TTL_SECONDS: '2' });
    await pool.start(['a']);
    url = pool.member('a').url;
    await pool.agreedLeader();
  });

  after(async () => {
    await pool?.close();
    await etcd?.close();
  });

  async function post(
    body: string | Buffer,
    contentType = 'application/json',
    headers: Record<string, string> = {},
  ) {
    const res = await fetch(`${url}/work`, {
      method: 'POST',
      headers: { 'content-type': contentType, ...headers },
      body,
    });
    return {
      status: res.status,
      body: (await res.json()) as { error?: { code: string; message: string } },
    };
  }

  const cases: [string, () => ReturnType<typeof post>, number, string][] = [
    ['invalid JSON', () => post('{"payload": '), 400, 'BAD_REQUEST'],
    ['a JSON array', () => post('[1,2]'), 400, 'BAD_REQUEST'],
    ['an object without payload', () => post('{"data": 1}'), 400, 'BAD_REQUEST'],
    ['text/plain', () => post('{"payload": 1}', 'text/plain'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    [
      'a payload over 64 KiB',
      () => post(JSON.stringify({ payload: 'x'.repeat(64 * 1024) })),
      413,
      'PAYLOAD_TOO_LARGE',
    ],
    [
      'a body over the limit',
      () => post(JSON.stringify({ payload: 'y'.repeat(200 * 1024) })),
      413,
      'PAYLOAD_TOO_LARGE',
    ],
    [
      'a forged hop header past the limit',
      () => post('{"payload": 1}', 'application/json', { 'x-pool-hops': '50' }),
      400,
      'HOP_LIMIT_EXCEEDED',
    ],
    [
      'a malformed via header',
      () =>
        post('{"payload": 1}', 'application/json', { 'x-pool-hops': '1', 'x-pool-via': 'a b,c' }),
      400,
      'BAD_REQUEST',
    ],
  ];
  for (const [what, send, status, code] of cases) {
    it(`POST /work with ${what} gets ${status} ${code} as JSON`, async () => {
      const answer = await send();
      expect(answer.status).to.equal(status);
      expect(answer.body.error?.code).to.equal(code);
      expect(answer.body.error?.message ?? '').not.to.equal('');
    });
  }

  it('GET /work with the payload twice gets 400; an unknown route gets a JSON 404', async () => {
    const twice = await fetch(`${url}/work?payload=a&payload=b`);
    expect(twice.status).to.equal(400);
    const missing = await fetch(`${url}/nowhere`);
    expect(missing.status).to.equal(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).to.equal(
      'NOT_FOUND',
    );
  });

  it('after all that it still serves work, a payload of exactly 64 KiB included', async () => {
    const payload = 'z'.repeat(64 * 1024 - 2);
    const answer = await post(JSON.stringify({ payload }));
    expect(answer.status).to.equal(200);
    const get = await fetch(`${url}/work?payload=hello`);
    expect(get.status).to.equal(200);
    expect(((await get.json()) as { payload: string; performedBy: string }).payload).to.equal(
      'hello',
    );
    expect(pool.member('a').running).to.equal(true);
  });

  it('serves /healthz, /readyz and the metric families on /metrics', async () => {
    expect((await fetch(`${url}/healthz`)).status).to.equal(200);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).to.equal(200);
    expect(await ready.json()).to.include({
      ready: true,
      registered: true,
      synced: true,
      etcdReachable: true,
    });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    for (const family of [
      'service_pool_is_leader{pool="default"} 1',
      'service_pool_leader_info{pool="default",leader_id="a"} 1',
      'service_pool_members{pool="default"} 1',
      'service_pool_term{pool="default"}',
      'service_pool_leader_changes_total',
      'service_pool_last_leader_change_timestamp_seconds',
      'service_pool_work_requests_total{route="work",role="leader",outcome="ok"}',
      'service_pool_work_requests_total{route="work",role="leader",outcome="payload_too_large"}',
      'service_pool_work_duration_seconds_bucket',
      'service_pool_lease_time_left_seconds',
      'service_pool_etcd_requests_total{operation="txn"}',
      'service_pool_build_info{version=',
      'process_cpu_seconds_total',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(metrics).to.include(family);
    }
  });

  it('a client that pipelines requests and hangs up does not stall graceful shutdown', async () => {
    const { port } = new URL(url);
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        socket.write('GET /work?payload=p HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(20), () => {
          socket.destroy();
          resolve();
        });
      });
      socket.on('error', reject);
    });
    await fetch(`${url}/healthz`);
    const stoppedAt = Date.now();
    const exit = await pool.member('a').stop();
    expect(exit.code).to.equal(0);
    expect(Date.now() - stoppedAt).to.be.below(5000);
  });
});
