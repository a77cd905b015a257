/**
 * Member links on the leader (http/linkServer.ts): a forward on a link gets the answer a
 * forward by HTTP gets, byte for byte, counted alike; a link opens only with the forward token,
 * never on a draining member; a draining member says it is going away and still answers; bytes
 * that are not frames close the link; a request asking for another protocol is served plainly.
 * The surfaces are real (test/support/surface.ts), the links opened by hand or by a follower.
 */
import net from 'node:net';
import { expect } from 'chai';
import { waitUntil } from '../../src/util/waitUntil.js';
import {
  answerReader,
  encodeForward,
  LINK_PATH,
  LINK_PROTOCOL,
  type AnswerFrame,
  type ForwardFrame,
} from '../../src/work/linkFrames.js';
import {
  ask,
  forward,
  FORWARD_TOKEN,
  serveSurface,
  StandInElection,
  workRequests,
  type Surface,
} from '../support/surface.js';

/** A link opened by hand: the status line of the answer to its upgrade, and its frames. */
interface HandLink {
  status: string;
  socket: net.Socket;
  /** Sends a forward; resolves with the answer to it. */
  send(frame: Omit<ForwardFrame, 'id'>): Promise<AnswerFrame>;
  /** Every frame that came, in order (the "going away" frame included). */
  frames: AnswerFrame[];
  closed: Promise<void>;
}

function openLink(url: string, headers: Record<string, string> = {}): Promise<HandLink> {
  const { hostname, port } = new URL(url);
  const socket = net.connect(Number(port), hostname);
  const reader = answerReader(1 << 20);
  const waiting = new Map<number, (frame: AnswerFrame) => void>();
  let nextId = 1;
  let head = '';
  let opened = false;
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return new Promise((resolve, reject) => {
    const link: HandLink = {
      status: '',
      socket,
      frames: [],
      closed,
      send: (frame) => {
        const id = nextId++;
        socket.write(encodeForward({ id, ...frame }));
        return new Promise((answered) => waiting.set(id, answered));
      },
    };
    socket.on('error', reject);
    socket.on('connect', () =>
      socket.write(
        `GET ${LINK_PATH} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ${LINK_PROTOCOL}\r\n` +
          Object.entries(headers)
            .map(([name, value]) => `${name}: ${value}\r\n`)
            .join('') +
          '\r\n',
      ),
    );
    socket.on('data', (chunk: Buffer) => {
      if (!opened) {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        opened = true;
        link.status = head.slice(0, head.indexOf('\r\n'));
        resolve(link);
        chunk = Buffer.from(head.slice(end + 4), 'latin1');
        if (!link.status.includes(' 101 ')) return;
      }
      for (const frame of reader.push(chunk)) {
        link.frames.push(frame);
        waiting.get(frame.id)?.(frame);
        waiting.delete(frame.id);
      }
    });
    void closed.then(() => {
      if (!opened) reject(new Error('closed before answering the upgrade'));
    });
  });
}

const self = { id: 'a', url: 'http://127.0.0.1:1', term: 7n };

/** service_pool_member_links{direction} of `surface`. */
async function links(surface: Surface, direction: 'in' | 'out'): Promise<number | undefined> {
  const { values } = await surface.metrics.memberLinks.get();
  return values.find((v) => v.labels.direction === direction)?.value;
}

describe('member links on the leader', function () {
  this.timeout(10_000);
  let leader: Surface;
  beforeEach(async () => {
    leader = await serveSurface(new StandInElection('a', 7n, self), { links: true });
  });
  afterEach(() => leader.close());

  const cases: [string, string, string][] = [
    ['a valid forward', '{"payload":{"n":1}}', '7'],
    ['invalid JSON', '{"payload": ', '7'],
    ['an empty body', '', '7'],
    ['a JSON array', '[1,2]', '7'],
    ['an object without payload', '{"data":1}', '7'],
    ['a payload nested too deep', `{"payload":${'['.repeat(200)}${']'.repeat(200)}}`, '7'],
    ['a newer term than the leader knows', '{"payload":1}', '8'],
  ];
  it('a forward on a link gets the answer a forward by HTTP gets, byte for byte, and is counted alike', async () => {
    const link = await openLink(leader.url);
    expect(link.status).to.equal('HTTP/1.1 101 Switching Protocols');
    for (const [what, body, term] of cases) {
      const byHttp = await ask(
        `${leader.url}/pools/default/work`,
        forward(body, { 'x-pool-term': term }),
      );
      const { error } = JSON.parse(byHttp.body as string) as { error?: { code: string } };
      const outcome = (error?.code ?? 'ok').toLowerCase();
      const counted = await workRequests(leader, outcome);
      const answer = await link.send({ term, pool: 'default', via: 'b', body: Buffer.from(body) });
      expect([answer.status, answer.body.toString()], what).to.deep.equal([
        byHttp.status,
        byHttp.body,
      ]);
      expect(await workRequests(leader, outcome), `${what}: counted`).to.equal(counted + 1);
    }
    const unknown = await link.send({
      term: '7',
      pool: 'other',
      via: 'b',
      body: Buffer.from('{}'),
    });
    expect(unknown.status).to.equal(404);
    expect(leader.received, 'nothing came by HTTP on the link').to.not.include(LINK_PATH);
  });

  it('many forwards sent at once are all answered on the one link', async () => {
    const link = await openLink(leader.url);
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, n) =>
        link.send({ term: '7', pool: 'default', via: 'b', body: Buffer.from(`{"payload":${n}}`) }),
      ),
    );
    expect(
      answers.map((a) => (JSON.parse(a.body.toString()) as { payload: number }).payload),
    ).to.deep.equal(Array.from({ length: 50 }, (_, n) => n));
  });

  it('a draining member says it is going away, still answers on the link, and opens no new one (503)', async () => {
    const link = await openLink(leader.url);
    leader.links.goAway();
    const answer = await link.send({
      term: '7',
      pool: 'default',
      via: 'b',
      body: Buffer.from('{"payload":2}'),
    });
    expect(link.frames.map((f) => f.id)).to.deep.equal([0, answer.id]);
    expect(answer.status).to.equal(200);
    const refused = await openLink(leader.url);
    expect(refused.status).to.equal('HTTP/1.1 503 Service Unavailable');
    await refused.closed;
  });

  it('bytes that are not frames close the link', async () => {
    const link = await openLink(leader.url);
    link.socket.write('GET /work HTTP/1.1\r\n\r\n');
    await link.closed;
  });

  it('a request asking to upgrade to another protocol (h2c) is served as a plain one', async () => {
    const socket = net.connect(Number(new URL(leader.url).port), '127.0.0.1');
    socket.write(
      'GET /work?payload=plain HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n' +
        'Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
    );
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    await new Promise((resolve) => socket.once('close', resolve));
    expect(answer).to.match(/^HTTP\/1\.1 200 OK\r\n/);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).to.include({
      payload: 'plain',
    });
  });

  it('a follower ending its side closes the link here; after "going away", closed() resolves then', async () => {
    const link = await openLink(leader.url);
    expect(leader.links.size).to.equal(1);
    leader.links.goAway();
    const closed = leader.links.closed(5_000);
    link.socket.end();
    await closed;
    expect(leader.links.size).to.equal(0);
    expect(await links(leader, 'in')).to.equal(0);
    await link.closed;
  });

  it('a POST asking to upgrade to another protocol is served plainly, its body read', async () => {
    const body = '{"payload":{"n":5}}';
    const socket = net.connect(Number(new URL(leader.url).port), '127.0.0.1');
    socket.write(
      'POST /work HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n' +
        `HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n` +
        body.slice(0, 5),
    );
    setTimeout(() => socket.write(body.slice(5)), 20);
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    await new Promise((resolve) => socket.once('close', resolve));
    expect(answer).to.match(/^HTTP\/1\.1 200 OK\r\n/);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).to.deep.include({
      payload: { n: 5 },
    });
  });
});

describe('a client that resets a connection that asked for another protocol', function () {
  this.timeout(10_000);
  let follower: Surface;
  before(async () => {
    // Its leader cannot be reached: the request waits, and its answer finds the socket reset.
    follower = await serveSurface(
      new StandInElection('b', undefined, { id: 'a', url: 'http://127.0.0.1:1', term: 7n }),
      { links: true },
    );
  });
  after(() => follower.close());

  it('does not bring the member down', async () => {
    const socket = net.connect(Number(new URL(follower.url).port), '127.0.0.1');
    socket.write(
      'GET /work?payload=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n',
    );
    const taken = () => follower.received.includes('/work?payload=1');
    expect(await waitUntil(follower.requests, 'request', taken, 5_000)).to.equal(true);
    socket.resetAndDestroy();
    // Asked after it, this one waits for a leader as long: once it is answered, the member has
    // answered the first into the reset socket too — and is still here.
    const after = await ask(`${follower.url}/work?payload=2`);
    expect(after.status).to.equal(503);
    expect((await ask(`${follower.url}/healthz`)).status).to.equal(200);
  });
});

describe('member links with a forward token', function () {
  this.timeout(10_000);
  let leader: Surface;
  before(async () => {
    leader = await serveSurface(new StandInElection('a', 7n, self), {
      links: true,
      forwardToken: FORWARD_TOKEN,
    });
  });
  after(() => leader.close());

  it('a link opens only with the token: without it 401 and closed', async () => {
    const refused = await openLink(leader.url);
    expect(refused.status).to.equal('HTTP/1.1 401 Unauthorized');
    await refused.closed;
    const link = await openLink(leader.url, { 'x-pool-token': FORWARD_TOKEN });
    expect(link.status).to.equal('HTTP/1.1 101 Switching Protocols');
    const answer = await link.send({
      term: '7',
      pool: 'default',
      via: 'b',
      body: Buffer.from('{"payload":1}'),
    });
    expect(answer.status).to.equal(200);
    link.socket.destroy();
  });
});

describe('a client through a follower, on a member link', function () {
  this.timeout(10_000);
  let leader: Surface;
  let follower: Surface;
  before(async () => {
    leader = await serveSurface(new StandInElection('a', 7n, self), { links: true });
    follower = await serveSurface(
      new StandInElection('b', undefined, { id: 'a', url: leader.url, term: 7n }),
    );
  });
  after(() => {
    follower.close();
    leader.close();
  });

  it('gets the answer it would by HTTP; the leader served no forward by HTTP', async () => {
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, n) => ask(`${follower.url}/work?payload=${n}`)),
    );
    for (const [n, answer] of answers.entries()) {
      expect(answer.status).to.equal(200);
      expect(JSON.parse(answer.body as string)).to.deep.equal({
        payload: String(n),
        via: ['b', 'a'],
        term: '7',
      });
    }
    expect(leader.received.filter((url) => url.includes('/work'))).to.deep.equal([]);
    expect(await links(follower, 'out')).to.equal(1);
    expect(await links(leader, 'in')).to.equal(1);
  });
});
