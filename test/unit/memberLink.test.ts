import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { expect } from 'chai';
import { failure } from '../support/forwardOutcome.js';
import { NotLeaderError } from '../../src/errors.js';
import { Forwarder, type ForwardTarget } from '../../src/work/forwarder.js';
import { LINK_OPEN_TIMEOUT_MS } from '../../src/work/memberLink.js';
import {
  answerReader,
  encodeAnswer,
  encodeForward,
  forwardReader,
  GOING_AWAY,
  LINK_PATH,
  LINK_PROTOCOL,
  LinkFormatError,
  type ForwardFrame,
} from '../../src/work/linkFrames.js';

describe('member link frames', () => {
  const forward: ForwardFrame = {
    id: 42,
    term: '18446744073709551615',
    pool: 'orders_eu-1',
    via: 'b.pod-1',
    body: Buffer.from('{"payload":"é"}'),
  };

  it('a forward and an answer read back as written, however the bytes are cut', () => {
    const bytes = Buffer.concat([
      encodeForward(forward),
      encodeForward({ ...forward, id: 43, body: Buffer.alloc(0) }),
    ]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const reader = forwardReader(1024);
      const frames = [...reader.push(bytes.subarray(0, cut)), ...reader.push(bytes.subarray(cut))];
      expect(frames.map((f) => ({ ...f, body: f.body.toString() }))).to.deep.equal([
        { ...forward, body: '{"payload":"é"}' },
        { ...forward, id: 43, body: '' },
      ]);
    }
    const answers = answerReader(1024);
    const answer = Buffer.concat([encodeAnswer(7, 421, Buffer.from('{}')), GOING_AWAY]);
    const read = [...answers.push(answer.subarray(0, 5)), ...answers.push(answer.subarray(5))];
    expect(read.map((a) => [a.id, a.status, a.body.toString()])).to.deep.equal([
      [7, 421, '{}'],
      [0, 0, ''],
    ]);
  });

  it('anything but frames is a LinkFormatError: a foreign header, a frame over the limit, a header that runs on, id 0', () => {
    const refused = (bytes: Buffer | string, limit = 1024) => {
      try {
        forwardReader(limit).push(Buffer.from(bytes));
      } catch (error) {
        return error instanceof LinkFormatError;
      }
      return false;
    };
    expect(refused('GET / HTTP/1.1\r\n\r\n')).to.equal(true);
    expect(refused(encodeForward({ ...forward, body: Buffer.alloc(2000) }))).to.equal(true);
    expect(refused('1'.repeat(500))).to.equal(true);
    expect(refused(encodeForward({ ...forward, id: 0 }))).to.equal(true);
    expect(refused(encodeForward({ ...forward, pool: 'Not A Pool' }))).to.equal(true);
  });
});

/**
 * A leader that speaks member links, as http/linkServer.ts does, each forward answered by
 * `behaviour`; it counts the links opened and the forwards that came by HTTP.
 */
class LinkLeader {
  readonly server: http.Server;
  links = 0;
  byHttp = 0;
  upgradeHeaders: http.IncomingHttpHeaders[] = [];
  readonly sockets = new Set<net.Socket>();
  behaviour: (
    frame: ForwardFrame,
    answer: (status: number, body: string) => void,
    socket: net.Socket,
  ) => void = (frame, answer) => answer(200, frame.body.toString());
  /** Answers the upgrade with this instead of 101, when set. */
  refuseWith: number | undefined;
  /** Never answers the upgrade, when set. */
  holdUpgrades = false;
  /** Links whose follower ended its side. */
  endedByFollower = 0;

  constructor() {
    this.server = http.createServer((req, res) => {
      this.byHttp++;
      req.resume();
      req.on('end', () =>
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"by":"http"}'),
      );
    });
    this.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
      this.upgradeHeaders.push(req.headers);
      this.sockets.add(socket);
      if (this.holdUpgrades) return;
      if (this.refuseWith !== undefined) {
        socket.end(
          `HTTP/1.1 ${this.refuseWith} No\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
        );
        return;
      }
      expect(req.url).to.equal(LINK_PATH);
      this.links++;
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('end', () => this.endedByFollower++);
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${LINK_PROTOCOL}\r\nConnection: Upgrade\r\n\r\n`,
      );
      const reader = forwardReader(1 << 20);
      socket.on('data', (chunk: Buffer) => {
        for (const frame of reader.push(chunk)) {
          this.behaviour(
            frame,
            (status, body) => socket.write(encodeAnswer(frame.id, status, Buffer.from(body))),
            socket,
          );
        }
      });
      socket.on('error', () => socket.destroy());
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): void {
    for (const socket of this.sockets) socket.destroy();
    this.server.closeAllConnections();
    this.server.close();
  }
}

describe('Forwarder on a member link', function () {
  this.timeout(10_000);
  let leader: LinkLeader;
  let forwarder: Forwarder;
  let target: ForwardTarget;
  const request = { pool: 'default', payload: { n: 1 }, hops: 0, via: ['b'] };

  beforeEach(async () => {
    leader = new LinkLeader();
    target = { id: 'a', url: await leader.listen(), term: 7n };
    forwarder = new Forwarder(400, 'the-forward-token');
  });
  afterEach(() => {
    forwarder.close();
    leader.close();
  });

  it('many forwards at once travel on one link, each answered by its id, in any order', async () => {
    const held: (() => void)[] = [];
    let seen: ForwardFrame[] = [];
    leader.behaviour = (frame, answer) => {
      seen.push(frame);
      const { payload } = JSON.parse(frame.body.toString()) as { payload: { n: number } };
      held.push(() => answer(200, `{"n":${payload.n}}`));
      // Answered last first, once all came.
      if (held.length === 20) for (const send of held.reverse()) send();
    };
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, n) =>
        forwarder.forward(target, { ...request, payload: { n } }),
      ),
    );
    expect(answers.map((a) => [a.status, a.bytes.toString()])).to.deep.equal(
      Array.from({ length: 20 }, (_, n) => [200, `{"n":${n}}`]),
    );
    expect(leader.links, 'links opened').to.equal(1);
    expect(leader.byHttp, 'forwards by HTTP').to.equal(0);
    expect(seen[0]).to.include({ term: '7', pool: 'default', via: 'b' });
    expect(leader.upgradeHeaders[0]).to.include({ 'x-pool-token': 'the-forward-token' });
    seen = [];
  });

  it("sends the client's body as it came, and relays the answer byte for byte", async () => {
    let body = '';
    leader.behaviour = (frame, answer) => {
      body = frame.body.toString();
      answer(200, '{ "answer" :  "é" }');
    };
    const sent = Buffer.from('{ "payload" : [1,  2] }');
    const answer = await forwarder.forward(target, { ...request, body: sent });
    expect(body).to.equal(sent.toString());
    expect(answer.bytes.toString()).to.equal('{ "answer" :  "é" }');
    expect(answer.contentType).to.equal('application/json; charset=utf-8');
  });

  it('an answer on a link is relayed unparsed: only the leader writes there (no JSON check, unlike HTTP)', async () => {
    // Bytes no member writes, to show they are not parsed: by HTTP they would be refused.
    leader.behaviour = (_frame, answer) => answer(200, 'not parsed');
    const answer = await forwarder.forward(target, request);
    expect([answer.status, answer.bytes.toString()]).to.deep.equal([200, 'not parsed']);
  });

  it('421 on a link is "not leader", naming the successor the leaver named', async () => {
    leader.behaviour = (_frame, answer) =>
      answer(
        421,
        JSON.stringify({
          error: { code: 'NOT_LEADER', details: { successor: { id: 'c', url: 'http://c:1' } } },
        }),
      );
    try {
      await forwarder.forward(target, request);
      expect.fail('answered');
    } catch (error) {
      expect(error).to.be.instanceOf(NotLeaderError);
      expect((error as NotLeaderError).successor).to.deep.equal({ id: 'c', url: 'http://c:1' });
    }
  });

  it('a leader that answers the upgrade otherwise (an older version) gets the forward by HTTP, and later ones without asking again', async () => {
    leader.refuseWith = 404;
    for (let i = 0; i < 3; i++) {
      const answer = await forwarder.forward(target, request);
      expect(answer.bytes.toString()).to.equal('{"by":"http"}');
    }
    expect(leader.upgradeHeaders, 'upgrades asked').to.have.length(1);
    expect(leader.byHttp).to.equal(3);
  });

  it('no member at the URL: unreachable, nothing was sent (retryable)', async () => {
    leader.close();
    expect(await failure(forwarder.forward(target, request))).to.equal('unreachable');
  });

  it('the link closing after the forward was written is ambiguous, not retryable', async () => {
    leader.behaviour = (_frame, _answer, socket) => socket.destroy();
    expect(await failure(forwarder.forward(target, request))).to.equal('UPSTREAM_FAILED');
  });

  it('bytes that are not frames from the leader are ambiguous', async () => {
    leader.behaviour = (_frame, _answer, socket) => socket.write('HTTP/1.1 200 OK\r\n\r\n');
    expect(await failure(forwarder.forward(target, request))).to.equal('UPSTREAM_FAILED');
  });

  it('a forward past its timeout is UPSTREAM_TIMEOUT; the link stays for the next one, its late answer dropped', async () => {
    let first = true;
    let lateAnswerSent!: () => void;
    const lateAnswer = new Promise<void>((resolve) => (lateAnswerSent = resolve));
    leader.behaviour = (frame, answer) => {
      if (!first) return answer(200, frame.body.toString());
      first = false;
      setTimeout(() => {
        answer(200, '{"late":true}');
        lateAnswerSent();
      }, 600);
    };
    expect(await failure(forwarder.forward(target, request))).to.equal('UPSTREAM_TIMEOUT');
    const answer = await forwarder.forward(target, { ...request, payload: { n: 2 } });
    expect(JSON.parse(answer.bytes.toString())).to.deep.equal({ payload: { n: 2 } });
    await lateAnswer;
    const after = await forwarder.forward(target, { ...request, payload: { n: 3 } });
    expect(JSON.parse(after.bytes.toString())).to.deep.equal({ payload: { n: 3 } });
    expect(leader.links).to.equal(1);
  });

  it('an answer over 1 MiB fails that forward alone, ambiguous; the others on the link are answered', async () => {
    leader.behaviour = (frame, answer) => {
      const { payload } = JSON.parse(frame.body.toString()) as { payload: { n: number } };
      answer(200, payload.n === 0 ? `"${'x'.repeat(1024 * 1024)}"` : frame.body.toString());
    };
    const [large, small] = await Promise.all([
      failure(forwarder.forward(target, { ...request, payload: { n: 0 } })),
      forwarder.forward(target, { ...request, payload: { n: 1 } }),
    ]);
    expect(large).to.equal('UPSTREAM_FAILED');
    expect(JSON.parse(small.bytes.toString())).to.deep.equal({ payload: { n: 1 } });
    expect(leader.links).to.equal(1);
  });

  it('abandoning a forward on a link is an ambiguous UPSTREAM_FAILED', async () => {
    leader.behaviour = () => undefined;
    const abandon = new AbortController();
    const forwarded = forwarder.forward(target, request, abandon.signal);
    setTimeout(() => abandon.abort(), 50);
    expect(await failure(forwarded)).to.equal('UPSTREAM_FAILED');
  });

  it('a leader going away answers what it has; the forwards after go by HTTP', async () => {
    leader.behaviour = (frame, answer, socket) => {
      socket.write(GOING_AWAY);
      setTimeout(() => answer(200, frame.body.toString()), 20);
    };
    const answer = await forwarder.forward(target, request);
    expect(JSON.parse(answer.bytes.toString())).to.deep.equal({ payload: { n: 1 } });
    const next = await forwarder.forward(target, request);
    expect(next.bytes.toString()).to.equal('{"by":"http"}');
    expect(leader.links).to.equal(1);
    expect(leader.endedByFollower, 'the follower ended its side once answered').to.equal(1);
  });

  it(`a member that never answers the upgrade gets the waiting forward by HTTP after ${LINK_OPEN_TIMEOUT_MS} ms`, async () => {
    leader.holdUpgrades = true;
    const patient = new Forwarder(LINK_OPEN_TIMEOUT_MS * 3);
    try {
      const answer = await patient.forward(target, request);
      expect(answer.bytes.toString()).to.equal('{"by":"http"}');
      expect(leader.upgradeHeaders).to.have.length(1);
    } finally {
      patient.close();
    }
  });

  it('a forward that times out or is abandoned while its link opens was never sent: unreachable', async () => {
    leader.holdUpgrades = true;
    expect(await failure(forwarder.forward(target, request))).to.equal('unreachable');
    const abandon = new AbortController();
    const forwarded = forwarder.forward(target, request, abandon.signal);
    abandon.abort();
    expect(await failure(forwarded)).to.equal('unreachable');
  });

  it('a forwarded request (hops > 0) goes by HTTP: a link carries first hops only', async () => {
    const answer = await forwarder.forward(target, { ...request, hops: 1, via: ['c', 'b'] });
    expect(answer.bytes.toString()).to.equal('{"by":"http"}');
    expect(leader.links).to.equal(0);
  });
});
