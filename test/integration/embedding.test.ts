/**
 * A pool member embedded in a service's own Express app, on a real etcd: routes the service
 * adds after `PoolMember.start` answer; the member's routes mounted under a prefix in the
 * service's own app and server (`serve: false`, `member.router`) serve /pool and /work,
 * forwarding between members included; the status page and the teaching path /simple-work can
 * be left out. Members run in this process.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import express from 'express';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/config.js';
import { freePorts } from '../../src/demo/ports.js';
import { PoolMember, type PoolMemberOptions } from '../../src/member.js';
import { EtcdCluster } from '../support/etcdCluster.js';

interface Answer {
  status: number;
  type: string | null;
  body: {
    performedBy?: string;
    via?: string[];
    leader?: { id: string } | null;
    member?: string;
    route?: string;
    error?: { code: string; message: string };
  };
}

async function ask(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
  const type = res.headers.get('content-type');
  const text = await res.text();
  return {
    status: res.status,
    type,
    body: type?.startsWith('application/json') ? (JSON.parse(text) as Answer['body']) : {},
  };
}

const postWork = (url: string, payload: unknown) =>
  ask(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ payload }),
  });

describe('a pool member embedded in your Express app', function () {
  this.timeout(60_000);
  let etcd: EtcdCluster;
  let prefix: string;
  const members: PoolMember[] = [];
  const servers: http.Server[] = [];

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
  });

  after(async () => {
    await etcd?.close();
  });

  beforeEach(() => {
    prefix = `/embedding-${Date.now()}-${Math.random().toString(16).slice(2)}`;
  });

  afterEach(async () => {
    await Promise.all(members.splice(0).map((member) => member.shutdown()));
    for (const server of servers.splice(0)) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  /** Starts member `id` in this process on `port`, with `env` over the test's settings. */
  async function startMember(
    id: string,
    options: Omit<PoolMemberOptions, 'config'> & { port?: number; env?: Record<string, string> },
  ): Promise<PoolMember> {
    const { port = (await freePorts(1))[0]!, env = {}, ...memberOptions } = options;
    const config = loadConfig({
      MEMBER_ID: id,
      PORT: String(port),
      HOST: '127.0.0.1',
      ADVERTISE_URL: `http://127.0.0.1:${port}`,
      ETCD_ENDPOINTS: etcd.endpoints.join(','),
      ETCD_PREFIX: prefix,
      LEASE_TTL_SECONDS: '2',
      SHUTDOWN_TIMEOUT_MS: '3000',
      SHUTDOWN_LINGER_MS: '0',
      ...env,
    });
    const member = await PoolMember.start({
      config,
      logger: pino({ level: 'silent' }),
      ...memberOptions,
    });
    members.push(member);
    return member;
  }

  /** Resolves once `member` names `id` as its pool's leader. */
  async function leaderSeen(member: PoolMember, id: string): Promise<void> {
    await member.election
      .waitFor((election) => election.leader()?.id === id, AbortSignal.timeout(10_000))
      .catch(() => expect.fail(`${member.election.memberId} does not see ${id} lead`));
  }

  it('a route added to your app after start answers; what no route matches gets the JSON 404, what your routes throw the JSON error body', async () => {
    const app = express();
    app.get('/before', (_req, res) => res.json({ route: 'before' }));
    const member = await startMember('a', { app });
    app.get('/after', (_req, res) => res.json({ route: 'after' }));
    app.get('/broken', () => {
      throw new Error('a bug of the service');
    });
    const url = `http://127.0.0.1:${member.port}`;
    await leaderSeen(member, 'a');

    expect((await ask(`${url}/before`)).body).to.deep.equal({ route: 'before' });
    expect(await ask(`${url}/after`)).to.deep.include({ status: 200, body: { route: 'after' } });
    expect((await postWork(`${url}/work`, 'x')).body.performedBy).to.equal('a');
    const unknown = await ask(`${url}/nowhere`);
    expect(unknown.status).to.equal(404);
    expect(unknown.body.error).to.deep.equal({
      code: 'NOT_FOUND',
      message: 'no route GET /nowhere',
    });
    // An error of your routes that no handler of yours answered: the JSON error body.
    const broken = await ask(`${url}/broken`);
    expect([broken.status, broken.body.error?.code]).to.deep.equal([500, 'INTERNAL']);
    // The status page and the teaching path are served by default.
    const page = await ask(`${url}/`);
    expect([page.status, page.type]).to.deep.equal([200, 'text/html; charset=utf-8']);
    expect((await ask(`${url}/simple-work?payload=y`)).body.performedBy).to.equal('a');
  });

  it('the router mounted under a prefix in your own app and server serves /pool and /work, forwarding to the leader, and your routes after it', async () => {
    const ports = await freePorts(2);
    const started: PoolMember[] = [];
    for (const [i, id] of ['a', 'b'].entries()) {
      const port = ports[i]!;
      const member = await startMember(id, {
        serve: false,
        port,
        env: { ADVERTISE_URL: `http://127.0.0.1:${port}/pool-api` },
      });
      const app = express();
      app.get('/orders', (_req, res) => res.json({ route: 'orders' }));
      app.use('/pool-api', member.router);
      app.get('/pool-api/mine', (_req, res) => res.json({ route: 'mine' }));
      const server = http.createServer(app).listen(port, '127.0.0.1');
      servers.push(server);
      await new Promise((resolve) => server.once('listening', resolve));
      expect((server.address() as AddressInfo).port).to.equal(port);
      expect(member.port, 'the member listens on no port of its own').to.equal(undefined);
      started.push(member);
      if (id === 'a') await leaderSeen(member, 'a');
    }
    await leaderSeen(started[1]!, 'a');
    const b = `http://127.0.0.1:${ports[1]!}`;

    expect((await ask(`${b}/pool-api/healthz`)).body.member).to.equal('b');
    expect((await ask(`${b}/pool-api/pool`)).body.leader?.id).to.equal('a');
    const work = await postWork(`${b}/pool-api/work`, 'tea');
    expect(work.status, JSON.stringify(work.body)).to.equal(200);
    expect(work.body).to.deep.include({ performedBy: 'a', via: ['b', 'a'] });
    expect((await ask(`${b}/pool-api/mine`)).body).to.deep.equal({ route: 'mine' });
    expect((await ask(`${b}/orders`)).body).to.deep.equal({ route: 'orders' });
    // Outside the prefix the pool's routes are not there: the app's own 404.
    expect((await ask(`${b}/work?payload=x`)).status).to.equal(404);
  });

  it('with the status page and /simple-work left out (by variable or by option), / and /simple-work answer the JSON 404 and /work still works', async () => {
    const byVariable = await startMember('a', {
      env: { STATUS_PAGE: 'false', SIMPLE_WORK: 'false' },
    });
    await leaderSeen(byVariable, 'a');
    const byOption = await startMember('b', { statusPage: false, simpleWork: false });
    await leaderSeen(byOption, 'a');

    for (const member of [byVariable, byOption]) {
      const url = `http://127.0.0.1:${member.port}`;
      for (const path of ['/', '/events', '/simple-work?payload=x', '/pools/default/simple-work']) {
        const answer = await ask(`${url}${path}`);
        expect([answer.status, answer.body.error?.code], path).to.deep.equal([404, 'NOT_FOUND']);
      }
      expect((await postWork(`${url}/work`, 'x')).body.performedBy).to.equal('a');
    }
  });
});
