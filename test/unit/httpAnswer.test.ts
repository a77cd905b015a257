/**
 * The forward's own reader of HTTP/1.1 answers: every framing a member (or a proxy in front
 * of one) may use, split at every byte, and every malformed answer refused with a reason.
 */
import { expect } from 'chai';
import {
  AnswerFormatError,
  AnswerReader,
  MAX_HEAD_BYTES,
  type HttpAnswer,
} from '../../src/work/httpAnswer.js';

/** Reads `text` whole, then again one byte at a time; both must agree. */
function read(text: string, options: { limit?: number; end?: boolean; head?: boolean } = {}) {
  const readAll = (chunks: Buffer[]): HttpAnswer | undefined => {
    const reader = new AnswerReader(options.limit ?? 1024, options.head ?? false);
    let answer: HttpAnswer | undefined;
    for (const chunk of chunks) {
      expect(answer, 'an answer before its last byte').to.equal(undefined);
      answer = reader.push(chunk);
    }
    if (options.end) answer = reader.end();
    return answer;
  };
  const bytes = Buffer.from(text, 'latin1');
  const whole = readAll([bytes]);
  const byteByByte = readAll([...bytes].map((byte) => Buffer.from([byte])));
  expect(byteByByte).to.deep.equal(whole);
  return whole && { ...whole, body: whole.body.toString('latin1') };
}

function refusal(text: string, options: { limit?: number; end?: boolean } = {}): string {
  try {
    read(text, options);
  } catch (error) {
    expect(error).to.be.instanceOf(AnswerFormatError);
    return (error as Error).message;
  }
  return 'read';
}

describe('AnswerReader', () => {
  it('reads a Content-Length answer, and keeps the connection alive', () => {
    expect(
      read('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}'),
    ).to.deep.equal({
      status: 200,
      contentType: 'application/json',
      body: '{"a":1}',
      keepAlive: true,
      keepAliveMs: undefined,
    });
  });

  it('reads a chunked answer with extensions and trailers', () => {
    const answer = read(
      'HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n' +
        '4;name=x\r\n{"a"\r\n3\r\n:1}\r\n0\r\nX-Trailer: 1\r\n\r\n',
    );
    expect(answer).to.deep.equal({
      status: 503,
      contentType: undefined,
      body: '{"a":1}',
      keepAlive: true,
      keepAliveMs: undefined,
    });
  });

  it('chunked wins over a Content-Length beside it', () => {
    const answer = read(
      'HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
    );
    expect(answer?.body).to.equal('{}');
  });

  it('an answer without a length ends with the connection, which is then not kept', () => {
    const reader = new AnswerReader(1024);
    expect(reader.push(Buffer.from('HTTP/1.1 200 OK\r\n\r\n{"a"'))).to.equal(undefined);
    expect(reader.push(Buffer.from(':1}'))).to.equal(undefined);
    const answer = reader.end();
    expect([answer.body.toString(), answer.keepAlive]).to.deep.equal(['{"a":1}', false]);
  });

  it('skips informational answers; 204, 304 and the answer to HEAD have no body', () => {
    expect(
      read('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}')?.body,
    ).to.equal('{}');
    expect(read('HTTP/1.1 204 No Content\r\n\r\n')?.body).to.equal('');
    expect(read('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n')?.body).to.equal('');
    expect(read('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', { head: true })?.body).to.equal(
      '',
    );
  });

  it("reads the member's Keep-Alive timeout, in ms", () => {
    const hint = (value: string) =>
      read(`HTTP/1.1 200 OK\r\nKeep-Alive: ${value}\r\nContent-Length: 0\r\n\r\n`)?.keepAliveMs;
    expect(hint('timeout=5')).to.equal(5000);
    expect(hint('timeout=65, max=100')).to.equal(65_000);
    expect(hint('max=100')).to.equal(undefined);
  });

  it('keeps the connection only when the answer allows it', () => {
    const keep = (head: string) => read(`${head}\r\nContent-Length: 0\r\n\r\n`)?.keepAlive;
    expect(keep('HTTP/1.1 200 OK\r\nConnection: close')).to.equal(false);
    expect(keep('HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close')).to.equal(false);
    expect(keep('HTTP/1.0 200 OK')).to.equal(false);
    expect(keep('HTTP/1.0 200 OK\r\nConnection: keep-alive')).to.equal(true);
    expect(keep('HTTP/1.1 200 OK')).to.equal(true);
  });

  const malformed: [string, string, string, { limit?: number; end?: boolean }?][] = [
    ['a status line of another protocol', 'status line', 'HTTP/2 200\r\n\r\n'],
    ['a status line without a code', 'status line', 'HTTP/1.1 OK\r\n\r\n'],
    [
      'a header field without a colon',
      'header field',
      'HTTP/1.1 200 OK\r\nContent-Length 2\r\n\r\n{}',
    ],
    [
      'a folded header field',
      'header field',
      'HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n',
    ],
    [
      'a negative Content-Length',
      'Content-Length',
      'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
    ],
    [
      'two different Content-Lengths',
      'Content-Length',
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}',
    ],
    [
      'a chunk size that is not hex',
      'chunk size',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    ],
    [
      'a chunk longer than its size',
      'longer than its size',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{}\r\n0\r\n\r\n',
    ],
    [
      'a body over the limit (Content-Length)',
      'body over 10 bytes',
      'HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n',
      { limit: 10 },
    ],
    [
      'a body over the limit (chunked)',
      'body over 10 bytes',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n',
      { limit: 10 },
    ],
    [
      'a body over the limit (until the end)',
      'body over 10 bytes',
      `HTTP/1.1 200 OK\r\n\r\n${'x'.repeat(20)}`,
      { limit: 10, end: true },
    ],
    [
      'a head over the limit',
      'head over',
      `HTTP/1.1 200 OK\r\nX: ${'x'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`,
    ],
    ['a head that never ends', 'head over', `HTTP/1.1 200 OK\r\nX: ${'x'.repeat(MAX_HEAD_BYTES)}`],
    [
      'bytes after the answer',
      'bytes after the answer',
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1',
    ],
    [
      'an upgrade',
      'switched protocols',
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n',
    ],
    [
      'an answer cut short',
      'closed before',
      'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{"a"',
      { end: true },
    ],
  ];
  for (const [what, reason, text, options] of malformed) {
    it(`refuses ${what}`, () => {
      expect(refusal(text, options)).to.include(reason);
    });
  }
});
