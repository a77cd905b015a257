/**
 * Coalescing forwards: nothing waits while the leader is idle; under load the waiting
 * requests leave as one batch; every request gets the outcome a single forward would give —
 * including when the leader has no batch route, answers the batch as a whole, or was
 * superseded while requests waited. The forwarder is a stand-in here: the exchanges are the
 * test's to settle.
 */
import { EventEmitter, once } from 'node:events';
import { expect } from 'chai';
import { NotLeaderError, PoolError } from '../../src/errors.js';
import { BATCH_CONTENT_TYPE, decodeFrames, encodeFrames } from '../../src/work/batchFrames.js';
import { ForwardBatches, PATIENCE_MS, type BatchLink } from '../../src/work/forwardBatch.js';
import { monotonicNow } from '../../src/util/time.js';
import type { HttpAnswer } from '../../src/work/httpAnswer.js';
import type { ForwardRequest, UpstreamAnswer } from '../../src/work/upstream.js';

const TARGET = { id: 'a', url: 'http://a', term: 7n };

function request(n: number, pool = 'default'): ForwardRequest {
  return { pool, payload: n, body: Buffer.from(`{"payload":${n}}`), hops: 0, via: ['b'] };
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** A link whose exchanges wait for the test: what was sent, and how to answer it. */
class StandInLink extends EventEmitter implements BatchLink {
  readonly singles: { payload: unknown; answer: Deferred<UpstreamAnswer> }[] = [];
  readonly batches: { pool: string; payloads: unknown[]; answer: Deferred<HttpAnswer> }[] = [];

  one(_target: unknown, request: ForwardRequest) {
    const answer = deferred<UpstreamAnswer>();
    this.singles.push({ payload: request.payload, answer });
    this.emit('sent');
    return answer.promise;
  }

  batch(_target: unknown, request: ForwardRequest, body: Buffer) {
    const answer = deferred<HttpAnswer>();
    const payloads = decodeFrames(body).map(
      (f) => (JSON.parse(f.bytes.toString()) as { payload: unknown }).payload,
    );
    this.batches.push({ pool: request.pool, payloads, answer });
    this.emit('sent');
    return answer.promise;
  }
}

const ok = (n: number): UpstreamAnswer => ({
  status: 200,
  contentType: 'application/json',
  bytes: Buffer.from(`{"n":${n}}`),
});

function framed(frames: { status: number; body: string }[]): HttpAnswer {
  return {
    status: 200,
    contentType: BATCH_CONTENT_TYPE,
    body: encodeFrames(frames.map(({ status, body }) => ({ status, bytes: Buffer.from(body) }))),
    keepAlive: true,
  };
}

/** A leader's answer to a batch when it has no batch route. */
const NOT_FOUND: HttpAnswer = {
  status: 404,
  contentType: undefined,
  body: Buffer.from('{}'),
  keepAlive: true,
};

/** Answers each request of `batch` 200 with its own payload, in frames. */
function answerAll(batch: StandInLink['batches'][number]): void {
  batch.answer.resolve(
    framed(batch.payloads.map((n) => ({ status: 200, body: `{"n":${n as number}}` }))),
  );
}

/** Batches to a leader that has answered one batch with frames: it is known to take them. */
async function knownToTakeBatches(): Promise<{ link: StandInLink; batches: ForwardBatches }> {
  const link = new StandInLink();
  const batches = new ForwardBatches(link);
  const all = [101, 102, 103].map((n) => batches.submit(TARGET, request(n)));
  link.singles[0]!.answer.resolve(ok(101));
  await tick();
  answerAll(link.batches[0]!);
  await outcomes(all);
  link.singles.length = 0;
  link.batches.length = 0;
  return { link, batches };
}

/** Settles of `promises`, as text: the answer's body or the error's code. */
async function outcomes(promises: Promise<UpstreamAnswer>[]): Promise<string[]> {
  return Promise.all(
    promises.map((p) =>
      p.then(
        (answer) => `${answer.status} ${answer.bytes.toString()}`,
        (error: unknown) => (error instanceof PoolError ? error.code : String(error)),
      ),
    ),
  );
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('ForwardBatches', () => {
  it('an idle leader gets each request at once, alone', async () => {
    const link = new StandInLink();
    const batches = new ForwardBatches(link);
    const first = batches.submit(TARGET, request(1));
    link.singles[0]!.answer.resolve(ok(1));
    await first;
    const second = batches.submit(TARGET, request(2));
    link.singles[1]!.answer.resolve(ok(2));
    expect(await outcomes([first, second])).to.deep.equal(['200 {"n":1}', '200 {"n":2}']);
    expect(link.batches).to.deep.equal([]);
  });

  it('requests that come while an exchange is under way leave together, each with its own answer', async () => {
    const link = new StandInLink();
    const batches = new ForwardBatches(link);
    const all = [1, 2, 3, 4].map((n) => batches.submit(TARGET, request(n)));
    expect([link.singles.length, link.batches.length]).to.deep.equal([1, 0]);
    link.singles[0]!.answer.resolve(ok(1));
    await tick();
    expect(link.batches.map((b) => b.payloads)).to.deep.equal([[2, 3, 4]]);
    link.batches[0]!.answer.resolve(
      framed([
        { status: 200, body: '{"n":2}' },
        { status: 421, body: '{"error":{"code":"NOT_LEADER"}}' },
        { status: 503, body: '{"error":{"code":"OVERLOADED"}}' },
      ]),
    );
    expect(await outcomes(all)).to.deep.equal([
      '200 {"n":1}',
      '200 {"n":2}',
      'NOT_LEADER',
      '503 {"error":{"code":"OVERLOADED"}}',
    ]);
  });

  it('a batch answered as a whole gives every request that answer; a failed one its failure', async () => {
    const link = new StandInLink();
    const batches = new ForwardBatches(link);
    const all = [1, 2, 3, 4, 5, 6].map((n) => batches.submit(TARGET, request(n)));
    link.singles[0]!.answer.resolve(ok(1));
    await tick();
    link.batches[0]!.answer.resolve({
      status: 401,
      contentType: 'application/json; charset=utf-8',
      body: Buffer.from('{"error":{"code":"UNAUTHORIZED"}}'),
      keepAlive: true,
    });
    expect((await outcomes(all)).slice(1)).to.deep.equal(
      Array(5).fill('401 {"error":{"code":"UNAUTHORIZED"}}'),
    );
    const more = [7, 8, 9].map((n) => batches.submit(TARGET, request(n)));
    link.singles[1]!.answer.resolve(ok(7));
    await tick();
    link.batches[1]!.answer.reject(new PoolError('UPSTREAM_FAILED', 'reset'));
    expect(await outcomes(more)).to.deep.equal([
      '200 {"n":7}',
      'UPSTREAM_FAILED',
      'UPSTREAM_FAILED',
    ]);
  });

  it('a slow exchange holds the others at most PATIENCE_MS: then they leave beside it', async () => {
    const link = new StandInLink();
    const batches = new ForwardBatches(link);
    const slow = batches.submit(TARGET, request(1));
    const waitingSince = monotonicNow();
    const others = [2, 3].map((n) => batches.submit(TARGET, request(n)));
    await once(link, 'sent');
    expect(monotonicNow() - waitingSince).to.be.at.least(PATIENCE_MS - 1);
    expect(link.batches.map((b) => b.payloads)).to.deep.equal([[2, 3]]);
    link.batches[0]!.answer.resolve(
      framed([
        { status: 200, body: '{"n":2}' },
        { status: 200, body: '{"n":3}' },
      ]),
    );
    expect(await outcomes(others)).to.deep.equal(['200 {"n":2}', '200 {"n":3}']);
    link.singles[0]!.answer.resolve(ok(1));
    expect(await outcomes([slow])).to.deep.equal(['200 {"n":1}']);
  });

  it('requests for two pools never share a batch, even to one leader under one term', async () => {
    const { link, batches } = await knownToTakeBatches();
    const orders = [1, 2, 3].map((n) => batches.submit(TARGET, request(n, 'orders')));
    const billing = [4, 5, 6].map((n) => batches.submit(TARGET, request(n, 'billing')));
    link.singles[0]!.answer.resolve(ok(1));
    link.singles[1]!.answer.resolve(ok(4));
    await tick();
    expect(link.batches.map((b) => [b.pool, b.payloads])).to.deep.equal([
      ['orders', [2, 3]],
      ['billing', [5, 6]],
    ]);
    for (const batch of link.batches) answerAll(batch);
    expect(await outcomes([...orders, ...billing])).to.deep.equal(
      [1, 2, 3, 4, 5, 6].map((n) => `200 {"n":${n}}`),
    );
  });

  it('a batch stays within 1 MiB as framed; one the leader finds too large (413) goes one by one', async () => {
    const link = new StandInLink();
    const batches = new ForwardBatches(link);
    // 16 bodies of 65,535 bytes are 1 MiB less 16 bytes: with their frame headers, over.
    const large = (n: number) => ({
      ...request(n),
      body: Buffer.from(`{"payload":${n},"pad":"${'x'.repeat(65_535 - 21)}"}`),
    });
    const all = Array.from({ length: 17 }, (_, n) => batches.submit(TARGET, large(n)));
    link.singles[0]!.answer.resolve(ok(0));
    await tick();
    expect(link.batches.map((b) => b.payloads.length)).to.deep.equal([15]);
    link.batches[0]!.answer.resolve({
      status: 413,
      contentType: 'application/json; charset=utf-8',
      body: Buffer.from('{"error":{"code":"PAYLOAD_TOO_LARGE"}}'),
      keepAlive: false,
    });
    await tick();
    // The 15 one by one, and the one left over: alone, as nothing else waits.
    expect(link.singles.map((s) => s.payload as number).sort((a, b) => a - b)).to.deep.equal(
      Array.from({ length: 17 }, (_, n) => n),
    );
    expect([link.batches.length, batches.refusedBy(TARGET.url)]).to.deep.equal([1, false]);
    for (const single of link.singles.slice(1)) single.answer.resolve(ok(single.payload as number));
    expect(await outcomes(all)).to.deep.equal(
      Array.from({ length: 17 }, (_, n) => `200 {"n":${n}}`),
    );
  });

  it('an answer with fewer items than sent fails each request as ambiguous', async () => {
    const link = new StandInLink();
    const batches = new ForwardBatches(link);
    const all = [1, 2, 3].map((n) => batches.submit(TARGET, request(n)));
    link.singles[0]!.answer.resolve(ok(1));
    await tick();
    link.batches[0]!.answer.resolve(framed([{ status: 200, body: '{}' }]));
    expect((await outcomes(all)).slice(1)).to.deep.equal(['UPSTREAM_FAILED', 'UPSTREAM_FAILED']);
  });

  it('a leader without the batch route (404) gets them one by one, and no batch again', async () => {
    const link = new StandInLink();
    const batches = new ForwardBatches(link);
    const all = [1, 2, 3].map((n) => batches.submit(TARGET, request(n)));
    link.singles[0]!.answer.resolve(ok(1));
    await tick();
    const late = batches.submit(TARGET, request(4));
    link.batches[0]!.answer.resolve(NOT_FOUND);
    await tick();
    expect(link.singles.map((s) => s.payload)).to.deep.equal([1, 2, 3, 4]);
    for (const single of link.singles.slice(1)) single.answer.resolve(ok(single.payload as number));
    expect(await outcomes([...all, late])).to.deep.equal([
      '200 {"n":1}',
      '200 {"n":2}',
      '200 {"n":3}',
      '200 {"n":4}',
    ]);
    expect(batches.refusedBy(TARGET.url)).to.equal(true);
    expect(link.batches).to.have.length(1);
  });

  it('until a leader answered a batch, one batch asks it: who runs out of patience meanwhile goes alone', async () => {
    const link = new StandInLink();
    const batches = new ForwardBatches(link);
    const first = batches.submit(TARGET, request(1));
    const asking = [2, 3].map((n) => batches.submit(TARGET, request(n)));
    await once(link, 'sent');
    expect(link.batches.map((b) => b.payloads)).to.deep.equal([[2, 3]]);
    // The single and the batch are both unanswered: these run out of patience beside them.
    const meanwhile = [4, 5].map((n) => batches.submit(TARGET, request(n)));
    await once(link, 'sent');
    await tick();
    expect(link.batches).to.have.length(1);
    expect(link.singles.map((s) => s.payload)).to.deep.equal([1, 4, 5]);
    link.batches[0]!.answer.resolve(NOT_FOUND);
    await tick();
    for (const single of link.singles) single.answer.resolve(ok(single.payload as number));
    expect(await outcomes([first, ...asking, ...meanwhile])).to.deep.equal(
      [1, 2, 3, 4, 5].map((n) => `200 {"n":${n}}`),
    );
    expect([link.batches.length, batches.refusedBy(TARGET.url)]).to.deep.equal([1, true]);
  });

  it('once a leader answered a batch with frames, batches go to it beside each other', async () => {
    const { link, batches } = await knownToTakeBatches();
    // A slow single, a slow batch beside it, and a second batch beside both.
    const more = [4, 5, 6].map((n) => batches.submit(TARGET, request(n)));
    await once(link, 'sent');
    const later = [7, 8].map((n) => batches.submit(TARGET, request(n)));
    await once(link, 'sent');
    expect(link.batches.map((b) => b.payloads)).to.deep.equal([
      [5, 6],
      [7, 8],
    ]);
    link.singles[0]!.answer.resolve(ok(4));
    for (const batch of link.batches) answerAll(batch);
    expect(await outcomes([...more, ...later])).to.deep.equal(
      [4, 5, 6, 7, 8].map((n) => `200 {"n":${n}}`),
    );
  });

  it('what leaders answered is remembered for at most 1024 URLs: then they are asked again', async () => {
    const link = new StandInLink();
    const batches = new ForwardBatches(link);
    /** One batch to `target`: a single goes first, two wait and leave together. */
    const batchTo = async (target: typeof TARGET, answer: HttpAnswer) => {
      const all = [1, 2, 3].map((n) => batches.submit(target, request(n)));
      link.singles.at(-1)!.answer.resolve(ok(1));
      await tick();
      link.batches.at(-1)!.answer.resolve(answer);
      await tick();
      for (const single of link.singles) single.answer.resolve(ok(single.payload as number));
      await outcomes(all);
    };
    await batchTo(TARGET, NOT_FOUND);
    expect(batches.refusedBy(TARGET.url)).to.equal(true);
    for (let i = 0; i < 1023; i++) {
      await batchTo(
        { ...TARGET, url: `http://m${i}` },
        framed([
          { status: 200, body: '{}' },
          { status: 200, body: '{}' },
        ]),
      );
    }
    expect(batches.refusedBy(TARGET.url), 'within the bound').to.equal(true);
    await batchTo(
      { ...TARGET, url: 'http://one-more' },
      framed([
        { status: 200, body: '{}' },
        { status: 200, body: '{}' },
      ]),
    );
    expect(batches.refusedBy(TARGET.url), 'past it').to.equal(false);
  });

  it('requests still waiting when their leader is superseded were never sent: "not leader"', async () => {
    const link = new StandInLink();
    const batches = new ForwardBatches(link);
    const superseded = new AbortController();
    const all = [1, 2, 3].map((n) => batches.submit(TARGET, request(n), superseded.signal));
    superseded.abort();
    link.singles[0]!.answer.reject(new PoolError('UPSTREAM_FAILED', 'abandoned'));
    expect(await outcomes(all)).to.deep.equal(['UPSTREAM_FAILED', 'NOT_LEADER', 'NOT_LEADER']);
    expect(await all[1]!.catch((e: unknown) => e)).to.be.instanceOf(NotLeaderError);
    expect(link.batches).to.deep.equal([]);
  });
});
