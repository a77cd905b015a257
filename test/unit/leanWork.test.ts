/**
 * A forward costs what a proxy hop costs: the follower sends the client's body on as it came
 * and relays the leader's answer byte for byte; every member takes the common forms of /work
 * (a client's GET or JSON POST, a member's forward) on node:http before Express, with the same
 * validation, error bodies, metrics and token check as the Express route. A trailing slash is
 * one of the forms it leaves to Express, which matches it: the tests ask both ways. The surfaces are real (createPoolSurface on a node:http server, served as the
 * member's own server serves them); the elections are stand-ins exposing only what the work
 * router and the routes read.
 */
import http from 'node:http';
import querystring from 'node:querystring';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { parseQuery } from '../../src/http/leanWork.js';
import { BATCH_CONTENT_TYPE, decodeFrames, encodeFrames } from '../../src/work/batchFrames.js';
import { LINK_PATH } from '../../src/work/linkFrames.js';
import {
  ask,
  forward,
  FORWARD_TOKEN,
  serveSurface,
  StandInElection,
  workRequests,
  type Ask,
  type Surface,
} from '../support/surface.js';

describe('parseQuery', () => {
  it('reads every query string as node:querystring (Express simple parser) does', () => {
    const queries = [
      'payload=x',
      'payload=',
      'payload',
      'a=b',
      'payload=a=b',
      '=x',
      '',
      'payload=é',
    ];
    queries.push(
      '__proto__=1',
      'constructor=1',
      'payload=x&payload=y',
      'payload=%41',
      'payload=a+b',
    );
    for (const query of queries) {
      expect({ ...parseQuery(query) }, query).to.deep.equal({ ...querystring.parse(query) });
      expect(Object.getPrototypeOf(parseQuery(query)), query).to.equal(null);
    }
  });
});

describe('a forward between members', function () {
  this.timeout(10_000);

  describe('on the follower: bytes through', () => {
    let upstream: http.Server;
    let follower: Surface;
    let seen: { body: string; headers: http.IncomingHttpHeaders }[] = [];
    /** Not what JSON.stringify would write: spacing, a non-ASCII character, 1.50. */
    const ANSWER = '{ "answer" :  "é",\n "n": 1.50 }';

    before(async () => {
      upstream = http.createServer((req, res) => {
        // A leader of a version without links: forwards come by HTTP.
        if (req.url === LINK_PATH) return void res.writeHead(404).end();
        let body = '';
        req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        req.on('end', () => {
          seen.push({ body, headers: req.headers });
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(ANSWER);
        });
      });
      await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
      follower = await serveSurface(
        new StandInElection('b', undefined, { id: 'a', url, term: 7n }),
      );
    });
    after(() => {
      follower.close();
      upstream.closeAllConnections();
      upstream.close();
    });

    it("relays the leader's answer byte for byte and sends the client's body on as it came", async () => {
      seen = [];
      const express = follower.throughExpress;
      const body = '{ "payload" : [1,  2], "note": "é" }';
      const answer = await ask(`${follower.url}/work`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      expect(answer).to.include({
        status: 200,
        type: 'application/json; charset=utf-8',
        body: ANSWER,
      });
      expect(seen).to.have.length(1);
      expect(seen[0]!.body).to.equal(body);
      expect(seen[0]!.headers).to.include({ 'x-pool-hops': '1', 'x-pool-via': 'b' });
      expect(follower.throughExpress, 'taken by the lean path').to.equal(express);
    });

    it('a GET forwards its payload as a JSON body', async () => {
      seen = [];
      const express = follower.throughExpress;
      const answer = await ask(`${follower.url}/work?payload=hello`);
      expect(answer.body).to.equal(ANSWER);
      expect(follower.throughExpress, 'taken by the lean path').to.equal(express);
      const throughExpress = await ask(`${follower.url}/work/?payload=hello`);
      expect(throughExpress).to.deep.equal(answer);
      expect(seen.map((s) => s.body)).to.deep.equal(['{"payload":"hello"}', '{"payload":"hello"}']);
    });
  });

  describe('on the leader: the lean path', () => {
    let leader: Surface;
    before(async () => {
      const self = { id: 'a', url: 'http://127.0.0.1:1', term: 7n };
      leader = await serveSurface(new StandInElection('a', 7n, self));
    });
    after(() => leader.close());

    it('serves a forward before Express, with the answer the Express route gives', async () => {
      const lean = await ask(`${leader.url}/pools/default/work`, forward('{"payload":{"n":1}}'));
      expect(leader.throughExpress).to.equal(0);
      const express = await ask(`${leader.url}/work/`, forward('{"payload":{"n":1}}'));
      expect(leader.throughExpress).to.equal(1);
      expect(lean).to.deep.equal(express);
      expect(JSON.parse(lean.body as string)).to.deep.equal({
        payload: { n: 1 },
        via: ['b', 'a'],
        term: '7',
      });
    });

    const deep = `{"payload":${'['.repeat(200)}${']'.repeat(200)}}`;
    const malformed: [string, string, Record<string, string>, number, string][] = [
      ['invalid JSON', '{"payload": ', {}, 400, 'BAD_REQUEST'],
      ['an empty body', '', {}, 400, 'BAD_REQUEST'],
      ['a JSON array', '[1,2]', {}, 400, 'BAD_REQUEST'],
      ['an object without payload', '{"data":1}', {}, 400, 'BAD_REQUEST'],
      ['a payload nested too deep', deep, {}, 400, 'BAD_REQUEST'],
      [
        'a hop count past the limit',
        '{"payload":1}',
        { 'x-pool-hops': '50' },
        400,
        'HOP_LIMIT_EXCEEDED',
      ],
      ['a malformed via header', '{"payload":1}', { 'x-pool-via': 'a b,c' }, 400, 'BAD_REQUEST'],
      ['a malformed term', '{"payload":1}', { 'x-pool-term': 'x' }, 400, 'BAD_REQUEST'],
      [
        'a newer term than the leader knows',
        '{"payload":1}',
        { 'x-pool-term': '8' },
        421,
        'NOT_LEADER',
      ],
    ];
    for (const [what, body, headers, status, code] of malformed) {
      it(`a forward with ${what} gets the same ${status} ${code} as through Express, counted`, async () => {
        const before = {
          express: leader.throughExpress,
          counted: await workRequests(leader, code.toLowerCase()),
        };
        const lean = await ask(`${leader.url}/pools/default/work`, forward(body, headers));
        expect(leader.throughExpress, 'taken by the lean path').to.equal(before.express);
        expect(await workRequests(leader, code.toLowerCase())).to.equal(before.counted + 1);
        const express = await ask(`${leader.url}/work/`, forward(body, headers));
        expect(lean).to.deep.equal(express);
        expect(lean.status).to.equal(status);
        expect(
          (JSON.parse(lean.body as string) as { error: { code: string } }).error.code,
        ).to.equal(code);
      });
    }

    it('a body with a UTF-8 byte order mark is read as the Express parser reads it', async () => {
      const body = '\ufeff{"payload":"bom"}';
      const lean = await ask(`${leader.url}/pools/default/work`, forward(body));
      expect(lean).to.deep.equal(await ask(`${leader.url}/work/`, forward(body)));
      expect(lean.status).to.equal(200);
    });

    const clients: [string, string, Ask, number][] = [
      ['a GET with a payload', '?payload=hi', {}, 200],
      ['a GET without a payload', '', {}, 200],
      ['a GET with an encoded payload', '?payload=a%20b+c%C3%A9&other=1', {}, 200],
      ['a GET with the payload twice', '?payload=a&payload=b', {}, 400],
      ['a GET with a malformed hop header', '?payload=1', { headers: { 'x-pool-hops': 'x' } }, 400],
      [
        'a JSON POST',
        '',
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"payload":[1]}',
        },
        200,
      ],
      [
        'a POST that is not JSON',
        '',
        { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"payload"' },
        400,
      ],
    ];
    for (const [what, query, init, status] of clients) {
      it(`${what} from a client gets ${status} from the lean path, as through Express, counted`, async () => {
        const outcome =
          status === 200 ? 'ok' : status === 413 ? 'payload_too_large' : 'bad_request';
        const before = {
          express: leader.throughExpress,
          counted: await workRequests(leader, outcome),
        };
        const lean = await ask(`${leader.url}/work${query}`, init);
        expect(leader.throughExpress, 'taken by the lean path').to.equal(before.express);
        expect(await workRequests(leader, outcome)).to.equal(before.counted + 1);
        expect(lean).to.deep.equal(await ask(`${leader.url}/work/${query}`, init));
        expect(lean.status).to.equal(status);
      });
    }

    it('what it does not take goes on to Express: HEAD, another path or type, a POST query', async () => {
      const before = leader.throughExpress;
      const text = await ask(
        `${leader.url}/pools/default/work`,
        forward('{}', { 'content-type': 'text/plain' }),
      );
      expect(text.status).to.equal(415);
      await ask(`${leader.url}/pools/default/work?x=1`, forward('{"payload":1}'));
      await ask(`${leader.url}/work?payload=1`, { method: 'HEAD' });
      await ask(`${leader.url}/WORK?payload=1`);
      const unknown = await ask(`${leader.url}/pools/other/work?payload=1`);
      expect(unknown.status).to.equal(404);
      expect(leader.throughExpress).to.equal(before + 5);
    });
  });

  describe('with a forward token', () => {
    let leader: Surface;
    before(async () => {
      const self = { id: 'a', url: 'http://127.0.0.1:1', term: 7n };
      leader = await serveSurface(new StandInElection('a', 7n, self), {
        forwardToken: FORWARD_TOKEN,
      });
    });
    after(() => leader.close());

    it('the lean path refuses a forward without the token, or with a wrong one, with 401, counted', async () => {
      for (const token of [undefined, 'wrong-token-0123456789']) {
        const headers: Record<string, string> = token ? { 'x-pool-token': token } : {};
        const lean = await ask(
          `${leader.url}/pools/default/work`,
          forward('{"payload":1}', headers),
        );
        expect(lean).to.deep.equal(
          await ask(`${leader.url}/work/`, forward('{"payload":1}', headers)),
        );
        expect(lean).to.include({ status: 401, authenticate: 'Bearer' });
      }
      expect(leader.throughExpress).to.equal(2);
      const refused = await leader.metrics.forwardsRefused.get();
      expect(refused.values[0]?.value).to.equal(4);
      const ok = await ask(
        `${leader.url}/pools/default/work`,
        forward('{"payload":1}', { 'x-pool-token': FORWARD_TOKEN }),
      );
      expect(ok.status).to.equal(200);
      expect(leader.throughExpress).to.equal(2);
    });
  });

  describe('with the admission bound reached', () => {
    let leader: Surface;
    before(async () => {
      const self = { id: 'a', url: 'http://127.0.0.1:1', term: 7n };
      leader = await serveSurface(new StandInElection('a', 7n, self), { maxPendingWork: 0 });
    });
    after(() => leader.close());

    it('the lean path sheds a forward as the Express route does: 503 OVERLOADED, connection closed', async () => {
      const lean = await ask(`${leader.url}/pools/default/work`, forward('{"payload":1}'));
      expect(leader.throughExpress, 'taken by the lean path').to.equal(0);
      expect(lean).to.deep.equal(await ask(`${leader.url}/work/`, forward('{"payload":1}')));
      expect(lean).to.include({ status: 503, retryAfter: '1', connection: 'close' });
      expect(await workRequests(leader, 'overloaded')).to.equal(2);
    });
  });
});

describe('forwards under load travel in batches', function () {
  this.timeout(10_000);
  let leader: Surface;
  let follower: Surface;
  before(async () => {
    const self = { id: 'a', url: 'http://127.0.0.1:1', term: 7n };
    leader = await serveSurface(new StandInElection('a', 7n, self));
    const claim = { id: 'a', url: leader.url, term: 7n };
    follower = await serveSurface(new StandInElection('b', undefined, claim));
  });
  after(() => {
    follower.close();
    leader.close();
  });

  /** `count` clients at once on `surface`, each with its own payload; their answers' payloads. */
  async function clients(surface: Surface, count: number): Promise<unknown[]> {
    const answers = await Promise.all(
      Array.from({ length: count }, (_, i) => ask(`${surface.url}/work?payload=client-${i}`)),
    );
    return answers.map((answer) => {
      expect(answer.status).to.equal(200);
      return (JSON.parse(answer.body as string) as { payload: unknown }).payload;
    });
  }

  it('each client gets its own answer; the leader gets fewer requests, and counts every one', async () => {
    leader.received = [];
    const before = await workRequests(leader, 'ok');
    const payloads = await clients(follower, 40);
    expect(payloads).to.deep.equal(Array.from({ length: 40 }, (_, i) => `client-${i}`));
    expect(leader.received.filter((url) => url.endsWith('/work-batch'))).to.have.length.above(0);
    expect(leader.received.length).to.be.below(40);
    expect(await workRequests(leader, 'ok')).to.equal(before + 40);
  });

  it('a leader without the batch route gets them one by one, after one 404, and from then on', async () => {
    let batches = 0;
    const plain = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        if (req.url!.endsWith('/work-batch')) {
          batches++;
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{}}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      });
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    const behind = await serveSurface(
      new StandInElection('b', undefined, { id: 'a', url, term: 7n }),
    );
    try {
      const expected = Array.from({ length: 30 }, (_, i) => `client-${i}`);
      expect(await clients(behind, 30)).to.deep.equal(expected);
      expect(await clients(behind, 30)).to.deep.equal(expected);
      expect(batches).to.equal(1);
    } finally {
      behind.close();
      plain.closeAllConnections();
      plain.close();
    }
  });

  /** A batch as a member sends it, `frames` as given. */
  function batch(frames: Buffer, headers: Record<string, string> = {}) {
    return ask(`${leader.url}/pools/default/work-batch`, {
      method: 'POST',
      headers: {
        'content-type': BATCH_CONTENT_TYPE,
        'x-pool-hops': '1',
        'x-pool-via': 'b',
        'x-pool-term': '7',
        ...headers,
      },
      body: frames,
    });
  }

  it('the leader answers each item of a batch on its own, a bad one with its own error', async () => {
    const items = ['{"payload":1}', '{"payload": ', '{"payload":"é"}'];
    const answer = await batch(
      encodeFrames(items.map((item) => ({ status: 0, bytes: Buffer.from(item) }))),
    );
    expect(answer).to.include({ status: 200, type: BATCH_CONTENT_TYPE });
    const frames = decodeFrames(Buffer.from(answer.body as string));
    expect(frames.map((frame) => frame.status)).to.deep.equal([200, 400, 200]);
    const bodies = frames.map((frame) => JSON.parse(frame.bytes.toString('utf8')) as object);
    expect(bodies[0]).to.deep.include({ payload: 1, via: ['b', 'a'] });
    expect(bodies[1]).to.deep.include({
      error: { code: 'BAD_REQUEST', message: 'request body is not valid JSON' },
    });
    expect(bodies[2]).to.deep.include({ payload: 'é' });
  });

  it('a batch that is not framed, or not from a member, is refused whole with 400', async () => {
    const framed = encodeFrames([{ status: 0, bytes: Buffer.from('{"payload":1}') }]);
    const unframed = await batch(Buffer.from('{"payload":1}'));
    expect(unframed.status).to.equal(400);
    expect(unframed.body).to.include('not a batch of forwards');
    const fromClient = await ask(`${leader.url}/pools/default/work-batch`, {
      method: 'POST',
      headers: { 'content-type': BATCH_CONTENT_TYPE },
      body: framed,
    });
    expect(fromClient.status).to.equal(400);
    expect(fromClient.body).to.include('comes from a member');
  });
});
