/**
 * Terms and tickets leave the program exact: as decimal strings in JSON and in pino's logs,
 * however far beyond 2^53 they are.
 */
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { pino } from 'pino';
import { jsonReplacer, toJsonSafe } from '../../src/util/jsonSafe.js';

const HUGE = 2n ** 64n + 1n;

describe('bigints as JSON (jsonSafe.ts)', () => {
  it('JSON.stringify with jsonReplacer writes bigints as exact decimal strings, at any depth', () => {
    const text = JSON.stringify({ term: HUGE, tickets: [1n, { next: 2n }], id: 'a' }, jsonReplacer);
    expect(text).to.equal('{"term":"18446744073709551617","tickets":["1",{"next":"2"}],"id":"a"}');
    expect(BigInt((JSON.parse(text) as { term: string }).term)).to.equal(HUGE);
  });

  it('toJsonSafe copies arrays and plain objects with bigints as strings, keeps other objects and leaves the input alone', () => {
    const error = new Error('boom');
    const at = new Date(0);
    const input = { term: HUGE, leader: { term: 3n, self: true }, seen: [4n], error, at };
    const safe = toJsonSafe(input);
    expect(safe).to.deep.equal({
      term: '18446744073709551617',
      leader: { term: '3', self: true },
      seen: ['4'],
      error,
      at,
    });
    expect(safe.error).to.equal(error);
    expect(input.leader.term).to.equal(3n);
  });

  it("as pino's log formatter, logs bigints as decimal strings", () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = pino({ base: null, formatters: { log: toJsonSafe } }, destination);
    logger.info({ term: HUGE }, 'leading');
    expect(JSON.parse(lines[0]!)).to.include({ term: '18446744073709551617', msg: 'leading' });
  });
});
